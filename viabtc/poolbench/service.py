# -*- test-case-name: tests.poolbench.test_service -*-
"""
The poolbench role assembled (ref §7): a watcher per pool, the ``Bench``
deciding on each job, the UDP sender of height hints (cmd 4) to every
jobmaster, the jobmaster list, a 0.1 s tick for the lag monitor and the
silence check, and the admin CLI.
"""

from twisted.application.service import MultiService
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from viabtc.cli import cli_service
from viabtc.metrics import RoleMetrics
from viabtc.poolbench.bench import Bench
from viabtc.poolbench.commands import poolbench_commands
from viabtc.poolbench.metrics import poolbench_metrics
from viabtc.rpc.jobmasters import jobmaster_list
from viabtc.poolbench.watcher import PoolWatcher
from viabtc.rpc.client import DatagramSender
from viabtc.rpc.codec import Command, Packet

ROLE = "poolbench"

#: How often our pool's lag and the pools' silence are checked (the seed's 0.1 s).
CHECK_INTERVAL = 0.1

#: Largest datagram accepted back from a jobmaster (none is expected).
MAX_REPLY_SIZE = 10240


class PoolbenchService(MultiService):
    """The whole role for one ``PoolbenchConfig``."""

    _log = Logger()

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.hints_sent = 0
        #: ``mining.notify`` jobs received, by pool name
        self.jobs_seen = {}
        self.bench = Bench(config.pools, notify=config.notify, max_delay=config.max_delay)
        self.sender = DatagramSender(
            (), max_size=MAX_REPLY_SIZE, secret=None if config.secret is None else config.secret.value,
            reactor=reactor, role=ROLE)
        self.sender.setServiceParent(self)
        self.jobmasters = jobmaster_list(
            self.sender, reactor, static=config.jobmasters, url=config.jobmaster_url,
            auth=config.request_auth, interval=config.jobmaster_update_interval, role=ROLE)
        self.jobmasters.setServiceParent(self)
        self.watchers = [self._watch(entry) for entry in config.pools]
        if config.cli is not None:
            commands = poolbench_commands(self.bench, self.jobmasters, reactor)
            cli_service(config.cli, commands, reactor).setServiceParent(self)
        self._tick = LoopingCall(self.tick)
        self._tick.clock = reactor
        self.metrics = RoleMetrics(ROLE)
        self.metrics.add(poolbench_metrics(self))
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def _watch(self, entry):
        watcher = PoolWatcher(entry, self.reactor, self.job_received, self.bench.set_connected)
        watcher.service.setServiceParent(self)
        return watcher

    def set_pools(self, entries):
        """
        Watch ``entries`` (``PoolEntry``) from now on (a reload): a pool new
        by name, or whose host, port, user or password changed, is watched
        afresh; a dropped one is let go; the others keep their connection.
        """
        old = {w.entry.name: w for w in self.watchers}
        watchers = []
        for entry in entries:
            watcher = old.pop(entry.name, None)
            if watcher is not None and _place(watcher.entry) != _place(entry):
                watcher.service.disownServiceParent()
                self.bench.pools.pop(entry.name, None)
                watcher = None
            if watcher is None:
                watcher = self._watch(entry)
            else:
                watcher.entry = entry
            watchers.append(watcher)
        for watcher in old.values():
            watcher.service.disownServiceParent()
        self.watchers = watchers
        self.bench.update_pools(entries)

    def startService(self):
        super().startService()
        self._tick.start(CHECK_INTERVAL, now=False)

    def stopService(self):
        if self._tick.running:
            self._tick.stop()
        return super().stopService()

    def job_received(self, name, job):
        """Pool ``name`` sent ``job``: hint if it shows a new height, then check our lag."""
        if name not in self.bench.pools:
            return  # from a pool a reload dropped, before its connection closed
        self.jobs_seen[name] = self.jobs_seen.get(name, 0) + 1
        now = self.reactor.seconds()
        body = self.bench.observe(name, job, now)
        if body is not None:
            self._send_hint(name, body)
        self.bench.check_lag(now)

    def _send_hint(self, name, body):
        if not self.sender.addresses:
            self._log.warn("pool {pool} shows height {height} but no jobmaster is known to hint",
                           pool=name, height=self.bench.hinted_height, role=ROLE)
            return
        if self.sender.send(Packet(Command.HEIGHT_UPDATE, body)):
            self.hints_sent += 1
            self._log.info("pool {pool} shows height {height}: hinted {count} jobmaster(s): {body}",
                           pool=name, height=self.bench.hinted_height,
                           count=len(self.sender.addresses), body=body.decode(), role=ROLE)

    def tick(self):
        now = self.reactor.seconds()
        self.bench.check_lag(now)
        for watcher in self.watchers:
            watcher.check_silence(now)


def _place(entry):
    """Where and as whom a pool is watched: a change means a new connection."""
    return (entry.host, entry.port, entry.user, entry.password)
