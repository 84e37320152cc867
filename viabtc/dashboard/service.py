# -*- test-case-name: tests.dashboard.test_service -*-
"""
The dashboard service: the Redis connection, a timer reading the
statistics every ``refresh`` seconds into the shared ``DashboardState``,
and the web site on ``http_svr``.
"""

import attrs
from twisted.application import internet, service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.server import Site

from viabtc.dashboard.heights import BlockHeights
from viabtc.dashboard.reader import StatsReader
from viabtc.dashboard.snapshot import build, mark_seen
from viabtc.dashboard.web import DashboardRoot, DashboardState
from viabtc.metrics import MetricsPage, RoleMetrics, counter, gauge
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.redis import RedisConnection
from viabtc.service import listen_stream

ROLE = "dashboard"
#: Longest wait between Redis reconnection attempts.
RECONNECT_MAX_DELAY = 5.0
#: Block headers remembered at least (more when ``max_blocks`` is larger).
HEIGHTS_CACHED = 256


class Refresher:
    """Reads ``reader`` into ``state`` when called, one read at a time; logs failures once per outage."""

    _log = Logger()

    def __init__(self, reader, state, clock, timeout, heights=None):
        self._reader = reader
        #: The ``BlockHeights`` of the optional node (None: heights are not looked up).
        self.heights = heights
        self._timeout = timeout
        self._state = state
        self._clock = clock
        self._pending = None
        # Block hash -> when a read first listed it (see snapshot.mark_seen).
        self._seen = {}
        self.failing = False
        self.reads = 0

    def __call__(self):
        if self._pending is not None:
            return None
        self._pending = d = self._reader.read(self._clock.seconds())
        # Commands wait while Redis is away; a read that takes too long is
        # given up so the next one can start (and the service can stop).
        d.addTimeout(self._timeout, self._clock)
        d.addCallback(self._done)
        d.addErrback(self._failed)
        # Not returned: the timer must not wait for Redis to stop.
        return None

    def stop(self):
        """Give up the read in progress, if any (the service is stopping)."""
        if self._pending is not None:
            self._pending.addErrback(lambda f: f.trap(defer.CancelledError))
            self._pending.cancel()

    def _done(self, raw):
        self._pending = None
        snapshot = build(raw)
        blocks = mark_seen(snapshot.blocks, self._seen, raw.now, first=self.reads == 0)
        if self.heights is not None:
            self.heights.want(b.hash for b in blocks if not b.aux)
            blocks = self.heights.annotate(blocks)
        self._state.snapshot = attrs.evolve(snapshot, blocks=blocks)
        self.reads += 1
        if self.failing:
            self._log.info("dashboard: reading redis again", role=ROLE)
        self.failing = False

    def heights_found(self):
        """A block's height became known: show it without waiting for the next read."""
        snapshot = self._state.snapshot
        if snapshot is not None and self.heights is not None:
            self._state.snapshot = attrs.evolve(snapshot, blocks=self.heights.annotate(snapshot.blocks))

    def _failed(self, failure):
        self._pending = None
        if failure.check(defer.CancelledError):
            return
        if not self.failing:
            self._log.warn("dashboard: cannot read redis: {error}", error=failure.getErrorMessage(), role=ROLE)
        self.failing = True


class DashboardService(service.MultiService):
    """The whole role for one ``DashboardConfig``; ``state`` holds what pages show."""

    _log = Logger()

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.role_logging = None
        self.state = DashboardState(coin=config.coin, refresh=config.refresh)
        self.redis = None
        self.reader = None
        self.refresher = None
        self.timer = None
        self.node = None
        self.heights = None
        self.root = DashboardRoot(self.state)
        self.metrics = RoleMetrics(ROLE)
        self.metrics.add(self._collect)
        self.root.putChild(b"metrics", MetricsPage(self.metrics))
        site = Site(self.root, timeout=config.http_svr.keep_alive, reactor=reactor)
        self.site = site
        self.listeners = [listen_stream(self, address, site, reactor)
                          for address in config.http_svr.server.stream_binds]

    def startService(self):
        config, reactor = self.config, self.reactor
        self.redis = RedisConnection(config.redis, reactor, reply_timeout=config.redis_timeout,
                                     max_delay=RECONNECT_MAX_DELAY, role=ROLE)
        self.reader = StatsReader(self.redis.handler, config.coin, history_minutes=config.history_minutes,
                                  worker_minutes=config.worker_minutes, max_workers=config.max_workers,
                                  max_blocks=config.max_blocks, main_chain=config.main_chain)
        self.refresher = Refresher(self.reader, self.state, reactor, config.redis_timeout)
        self.set_node(config.node, config.node_timeout, config.max_blocks)
        self.set_refresh(config.refresh)
        super().startService()
        self._log.info("dashboard for {coin} on {binds}, reading redis {host}:{port}",
                       coin=config.coin, binds=", ".join(a.text for a in config.http_svr.server.stream_binds),
                       host=config.redis.host, port=config.redis.port, role=ROLE)

    def set_node(self, node, timeout, max_blocks):
        """Look heights up through ``node`` (a ``CoinRPCBlock``; None: not at all) from now on."""
        if self.heights is not None:
            self.heights.stop()
            self.node.close()
            self.node = self.heights = None
        if node is not None:
            self.node = NodeGroup.from_configs([NodeConfig.from_entry(e) for e in node.nodes], self.reactor)
            self.heights = BlockHeights(self.node, timeout=timeout, size=max(HEIGHTS_CACHED, max_blocks),
                                        on_found=self.refresher.heights_found)
        self.refresher.heights = self.heights

    def set_refresh(self, seconds):
        """Read Redis every ``seconds`` from now on (and tell the pages so)."""
        if self.timer is not None:
            self.timer.disownServiceParent()
        self.state.refresh = seconds
        self.timer = internet.TimerService(seconds, self.refresher)
        self.timer.clock = self.reactor
        self.timer.setServiceParent(self)

    def _collect(self):
        refresher = self.refresher
        if refresher is None:
            return []
        families = [counter("dashboard_reads", "Statistics reads from Redis completed.", refresher.reads),
                    gauge("dashboard_redis_failing", "1 while reads from Redis fail.", int(refresher.failing))]
        if self.heights is not None:
            families += [counter("dashboard_height_lookups", "getblockheader calls to the node.",
                                 self.heights.lookups),
                         counter("dashboard_height_lookup_failures", "getblockheader calls that failed.",
                                 self.heights.failures)]
        return families

    def stopService(self):
        d = super().stopService()
        if self.refresher is not None:
            self.refresher.stop()
        if self.heights is not None:
            self.heights.stop()
        if self.node is not None:
            self.node.close()
        if self.redis is not None:
            self.redis.disconnect()
        return d
