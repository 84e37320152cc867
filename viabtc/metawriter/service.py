# -*- test-case-name: tests.metawriter.test_service -*-
"""
The metawriter service: one process (the seed's receiver/writer fork is
gone), wiring the ``svr`` listeners (TCP and UDP, both behind the trust
file), the brother link, the journal, the Redis store, the 1 s tick, the
``monitor`` health port and the CLI (``loadtrust``, ``listtrust``).

A trust file or journal that cannot be read stops start-up with one line
naming it (``StartupError``), before Redis is connected or a port bound.

Graceful stop: the listeners close, the aggregate is flushed (journaled
first), and the Redis writes get ``STOP_TIMEOUT`` seconds to complete;
whatever Redis has not confirmed by then is applied at the next start.
"""

from twisted.application import internet, service
from twisted.internet import defer
from twisted.logger import Logger

from viabtc.cli import cli_service
from viabtc.metawriter.journal import Journal, JournalError
from viabtc.metawriter.store import BatchStore
from viabtc.metawriter.trust import TrustFileError, TrustTable
from viabtc.metawriter.writer import MetaWriter
from viabtc.redis import RedisConnection
from viabtc.rpc.intake import DatagramIntake, StreamIntake
from viabtc.service import StartupError, client_link, listen_monitor, listen_rpc
from viabtc.stats.writer_agg import WriterAggregator

ROLE = "metawriter"
TICK_INTERVAL = 1.0
STOP_TIMEOUT = 10.0


class MetaWriterService(service.MultiService):
    """
    The whole role for one ``MetaWriterConfig``.  ``clock`` (default:
    ``reactor``) is the time the minute flushes follow; tests pass a
    ``task.Clock`` to place the minute boundary.
    """

    _log = Logger()

    def __init__(self, config, reactor, clock=None):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.clock = reactor if clock is None else clock
        self.trust = TrustTable(role=ROLE)
        self.writer = None
        self.journal = None
        self.store = None
        self.redis = None
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def privilegedStartService(self):
        config, reactor = self.config, self.reactor
        secret = None if config.secret is None else config.secret.value
        recovery = self._read_disk()
        self.redis = RedisConnection(config.redis, reactor, reply_timeout=config.redis_timeout,
                                     max_delay=config.redis_retry_interval, role=ROLE)
        self.store = BatchStore(self.redis.handler, reactor, self.journal.confirm,
                                retry_interval=config.redis_retry_interval, role=ROLE,
                                min_replicas=config.redis.min_replicas)
        brother = None
        if config.brother is not None:
            brother = client_link(config.brother, reactor, secret, ROLE)
            brother.setServiceParent(self)
        aggregator = WriterAggregator(key_expire=config.key_expire, dup_timeout=config.dup_timeout,
                                      retention=config.retention)
        self.writer = MetaWriter(aggregator, self.journal, self.store, self.clock, config.alert.host,
                                 config.dup_timeout, brother=brother, reactor=reactor, role=ROLE,
                                 flush_delay=config.flush_delay)
        self.writer.restore(recovery)
        listen_rpc(self, config.svr, reactor, StreamIntake(self.writer), DatagramIntake(self.writer),
                   secret=secret, trust=self.trust, role=ROLE)
        listen_monitor(self, config.monitor, reactor)
        if config.cli is not None:
            cli_service(config.cli, {"loadtrust": self.cli_loadtrust, "listtrust": self.cli_listtrust},
                        reactor).setServiceParent(self)
        timer = internet.TimerService(TICK_INTERVAL, self.writer.tick)
        timer.clock = self.clock
        timer.setServiceParent(self)
        self._log.info("metawriter: writing to redis {where}, journal {journal}", where=config.redis.text,
                       host=config.redis.host, port=config.redis.port, journal=config.journal, role=ROLE)
        super().privilegedStartService()

    def _read_disk(self):
        """
        Load the trust file and read the journal back (``Journal.recover``);
        a file that cannot be read stops start-up with one line naming it.
        """
        config = self.config
        try:
            self.trust.load(config.trust_file)
        except TrustFileError as e:
            raise StartupError(f"config error: trust_file: {e}") from None
        try:
            self.journal = Journal(config.journal, role=ROLE)
            return self.journal.recover(self.clock.seconds(), config.dup_timeout)
        except JournalError as e:
            raise StartupError(f"journal error: {e}") from None
        except OSError as e:
            raise StartupError(f"journal error: {e.filename or config.journal}: {e.strerror or e}") from None

    def cli_loadtrust(self, args):
        """loadtrust <file> - reload the trust file"""
        if len(args) != 1:
            return "usage: loadtrust filename\n"
        try:
            self.trust.load(args[0])
        except TrustFileError as e:
            return f"loadtrust failed: {e}\n"
        return "ok\n"

    def cli_listtrust(self, args):
        """listtrust - list trusted sources"""
        return self.trust.listing()

    @defer.inlineCallbacks
    def stopService(self):
        yield super().stopService()
        writer, store = self.writer, self.store
        writer.stop()
        idle = store.when_idle()
        timeout = self.reactor.callLater(STOP_TIMEOUT, idle.cancel)
        try:
            yield idle
        except defer.CancelledError:
            self._log.warn("metawriter stopping with {count} Redis batches unconfirmed; "
                           "they stay journaled for the next start", count=len(store), role=ROLE)
        else:
            timeout.cancel()
        store.stop()
        self.journal.close()
        yield self.redis.disconnect()
