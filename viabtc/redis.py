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
"""

import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger

#: Seconds to wait for a TCP connection to Redis before trying again.
CONNECT_TIMEOUT = 5


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
        factory = txredisapi.RedisFactory(
            "%s:%d" % (block.host, block.port), block.db, 1, isLazy=True,
            password=block.password, replyTimeout=reply_timeout, convertNumbers=False,
        )
        factory.maxDelay = max_delay
        self._factory = factory
        self.handler = factory.handler
        # (succeeded, value) once the first connection is up or refused.
        self._outcome = None
        self._waiters = []
        factory.deferred.addCallbacks(self._first_connection, self._refused)
        factory.startConnecting(HostnameEndpoint(reactor, block.host, block.port, timeout=CONNECT_TIMEOUT))

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
        return self._factory.disconnect()

    def _first_connection(self, handler):
        self._settle((True, handler))

    def _refused(self, failure):
        self._log.critical("redis {host}:{port} refused the connection: {error}",
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
