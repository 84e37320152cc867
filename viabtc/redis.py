# -*- test-case-name: tests.test_redis -*-
"""
The one persistent, reconnecting Redis connection a role keeps.

The seed opened a Redis connection per alert (alertcenter) and ran a thread
per retried command (metawriter), so an outage lost alerts and reordered
writes (ref §2.8, §9, §12.5).  Our roles hold ONE lazy txredisapi
connection each: a command issued while Redis is away waits and goes out
once the connection is back, reconnection backs off up to ``max_delay``
seconds, and a command unanswered for ``reply_timeout`` seconds fails (the
caller retries).  Only Redis refusing our AUTH/SELECT -- a configuration
error that reconnecting cannot mend -- is logged as critical (an alert).

With Sentinel (a ``RedisBlock`` with ``sentinels``) the connection is to
the master the Sentinels name: before every connection attempt
``SentinelMasterEndpoint`` asks them all (``SENTINEL
GET-MASTER-ADDR-BY-NAME``) and goes where a majority points, a connection to a server
that is no longer the master is dropped at once (txredisapi's
``SentinelConnectionFactory`` checks ``ROLE``), and when the master moved
(seen at a reconnect, or every ``SENTINEL_RECHECK`` seconds while
connected: a demoted master may stay up) the connections to the old one
are closed.  So after a failover the
commands waiting go to the new master; a role that must lose nothing also
asks Redis to ``WAIT`` for ``min_replicas`` replicas before it forgets a
write (the metawriter's ``BatchStore``), since a write the old master had
not yet passed on is gone with it.
"""

import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

#: Seconds to wait for a TCP connection to Redis before trying again.
CONNECT_TIMEOUT = 5
#: Seconds between asking the Sentinels whether the master moved while connected.
SENTINEL_RECHECK = 5.0


class RedisConnection:
    """
    The connection to ``block`` (a ``RedisBlock``), connecting from
    construction on.  ``handler`` takes the commands (txredisapi's
    ``rpush``, ``execute_command``..., each returning a Deferred);
    ``disconnect()`` closes it for good.
    """

    _log = Logger()

    def __init__(self, block, reactor, *, reply_timeout, max_delay, role):
        self.block = block
        self._role = role
        self._watch = None
        settings = dict(isLazy=True, password=block.password, replyTimeout=reply_timeout, convertNumbers=False)
        if block.sentinels:
            # Its protocol drops a connection to a server that is not (or no longer) the master.
            factory = txredisapi.SentinelConnectionFactory(None, block.master_name, True, None,
                                                           block.db, 1, **settings)
            endpoint = SentinelMasterEndpoint(block.sentinels, block.master_name, factory, reactor, role)
            # A demoted master that stayed up keeps our connection: look again now and then.
            self._watch = LoopingCall(endpoint.recheck)
            self._watch.clock = reactor
            self._watch.start(SENTINEL_RECHECK, now=False)
        else:
            factory = txredisapi.RedisFactory("%s:%d" % (block.host, block.port), block.db, 1, **settings)
            endpoint = HostnameEndpoint(reactor, block.host, block.port, timeout=CONNECT_TIMEOUT)
        factory.maxDelay = max_delay
        self._factory = factory
        self.handler = factory.handler
        # (succeeded, value) once the first connection is up or refused.
        self._outcome = None
        self._waiters = []
        factory.deferred.addCallbacks(self._first_connection, self._refused)
        factory.startConnecting(endpoint)

    def when_connected(self):
        """
        A Deferred firing with ``handler`` once the first connection is up
        (at once if it is), or failing with ``ValueError`` when Redis
        refused our AUTH/SELECT.
        """
        if self._outcome is None:
            d = defer.Deferred()
            self._waiters.append(d)
            return d
        succeeded, value = self._outcome
        return defer.succeed(value) if succeeded else defer.fail(value)

    def disconnect(self):
        """Stop reconnecting and close the connection; a Deferred firing when it is closed."""
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        return self._factory.disconnect()

    def _first_connection(self, handler):
        self._settle((True, handler))

    def _refused(self, failure):
        self._log.critical("redis {where} refused the connection: {error}", where=self.block.text,
                           host=self.block.host, port=self.block.port,
                           error=failure.getErrorMessage(), role=self._role)
        self._settle((False, failure))

    def _settle(self, outcome):
        self._outcome = outcome
        waiters, self._waiters = self._waiters, []
        succeeded, value = outcome
        for waiter in waiters:
            if succeeded:
                waiter.callback(value)
            else:
                waiter.errback(value)


class _SentinelQuery(LineReceiver):
    """One ``SENTINEL GET-MASTER-ADDR-BY-NAME`` on a fresh connection: fires ``answer`` with (host, port) or None."""

    delimiter = b"\r\n"

    def __init__(self, name):
        self._name = name.encode()
        self._lines = []
        self.answer = defer.Deferred()

    def connectionMade(self):
        words = [b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME", self._name]
        self.transport.write(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))

    def lineReceived(self, line):
        self._lines.append(line)
        lines = self._lines
        if lines[0] != b"*2":
            self._done(None)
        elif len(lines) == 5:
            try:
                self._done((lines[2].decode("ascii"), int(lines[4])))
            except ValueError:
                self._done(None)

    def connectionLost(self, reason):
        self._done(None)

    def _done(self, result):
        if not self.answer.called:
            self.answer.callback(result)
            self.transport.loseConnection()


@implementer(IStreamClientEndpoint)
class SentinelMasterEndpoint:
    """
    Connects to the master a majority of the Sentinels (``sentinels``,
    ``(host, port)`` pairs) name for ``name``, asking before every attempt; when the answer changed, the connections of
    ``factory`` (to the old master) are closed.
    """

    _log = Logger()

    def __init__(self, sentinels, name, factory, reactor, role):
        self._sentinels = sentinels
        self._name = name
        self._factory = factory
        self._reactor = reactor
        self._role = role
        self.master = None

    def _moved(self, address):
        self._log.warn("redis master {name} moved from {old} to {new}", name=self._name,
                       old="%s:%d" % self.master, new="%s:%d" % address, role=self._role)
        self.master = address
        for connection in list(self._factory.pool):
            connection.transport.loseConnection()

    async def discover(self):
        """
        The master's ``(host, port)`` as a majority of the Sentinels name
        it: a Sentinel that has not yet heard of a failover (or was cut off
        from the others) must not send us to a server that came back empty.
        """
        answers = await defer.gatherResults([defer.ensureDeferred(self._ask(host, port))
                                             for host, port in self._sentinels], consumeErrors=True)
        named = [a for a in answers if a is not None]
        if named:
            best = max(set(named), key=named.count)
            if named.count(best) > len(self._sentinels) // 2:
                return best
        raise ConnectError(string=f"no majority of the Sentinels names a master {self._name!r}: {named}")

    async def _ask(self, host, port):
        query = _SentinelQuery(self._name)
        try:
            await HostnameEndpoint(self._reactor, host, port, timeout=CONNECT_TIMEOUT).connect(
                Factory.forProtocol(lambda: query))
            return await query.answer.addTimeout(CONNECT_TIMEOUT, self._reactor)
        except (ConnectError, defer.TimeoutError, OSError):
            return None
        finally:
            # Asked or not (a timeout, or the role stopping), the question's connection ends here.
            if query.transport is not None:
                query.transport.loseConnection()

    def recheck(self):
        """Ask the Sentinels again; if the master moved, close the connections (they reconnect to it)."""
        d = defer.ensureDeferred(self.discover())

        def answered(address):
            if self.master is not None and address != self.master:
                self._moved(address)

        return d.addCallbacks(answered, lambda _: None)

    def connect(self, protocol_factory):
        d = defer.ensureDeferred(self.discover())
        d.addCallback(self._connect, protocol_factory)
        return d

    def _connect(self, address, protocol_factory):
        host, port = address
        if self.master is None:
            self._log.info("redis master {name} is {new}", name=self._name, new="%s:%d" % address,
                           role=self._role)
            self.master = address
        elif self.master != address:
            self._moved(address)
        return HostnameEndpoint(self._reactor, host, port, timeout=CONNECT_TIMEOUT).connect(protocol_factory)
