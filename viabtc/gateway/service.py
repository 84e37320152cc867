# -*- test-case-name: tests.gateway.test_service -*-
"""
The gateway service: every part of the role wired together for one
``GatewayConfig`` (architecture §2, ref §4).

Links first (the statistics writer with its journal, the jobmaster), then
the listeners (Stratum, HTTP, monitor, CLI).  Graceful stop (SIGTERM) runs
the other way, in order: stop accepting; send every session's
``disconnected`` events and close the sessions; flush every minute of
statistics, the current one included, and wait up to
``stats_drain_timeout`` for the writer's ACKs (what is still unacknowledged
stays in the journal and is resent at the next start); close the links,
logging any block candidate that never reached a jobmaster.
"""

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from viabtc.cli import cli_service
from viabtc.gateway.bans import BanList
from viabtc.gateway.blocks import BlockCourier
from viabtc.gateway.commands import gateway_commands
from viabtc.gateway.context import ROLE, GatewayContext
from viabtc.gateway.http import GatewayResource
from viabtc.gateway.joblink import JobLink
from viabtc.gateway.metrics import gateway_metrics
from viabtc.gateway.server import GatewayStratumFactory
from viabtc.gateway.stats import GatewayStats
from viabtc.metrics import RoleMetrics, WithMetrics
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.reliable import ReliableSender
from viabtc.service import client_link, listen_monitor, listen_stream
from viabtc.stats.gateway_agg import MinuteAggregator
from viabtc.stratum.jobs import JobBook
from viabtc.stratum.protocol import uncompiled


class GatewayService(service.MultiService):
    """
    The whole role.  Public parts for tests and the CLI: ``context``
    (``GatewayContext``), ``server`` (the Stratum factory), ``stats``,
    ``sender``, ``job_client`` and ``courier``.
    """

    _log = Logger()

    def __init__(self, config, reactor, resend_timeout=10.0):
        super().__init__()
        self.config = config
        self.reactor = reactor
        secret = None if config.secret is None else config.secret.value
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

        self._links = service.MultiService()
        self._links.setServiceParent(self)
        self._listeners = service.MultiService()
        self._listeners.setServiceParent(self)

        self.writer = writer = client_link(config.writer, reactor, secret, ROLE)
        writer.setServiceParent(self._links)
        self.sender = ReliableSender(writer, config.queue, reactor=reactor, role=ROLE,
                                     resend_timeout=resend_timeout)
        self.sender.setServiceParent(self._links)

        job = config.job
        self.job_client = FailoverClient(
            [a.client_endpoint(reactor) for a in job.addrs], max_size=job.max_pkg_size, secret=secret,
            heartbeat_timeout=job.heartbeat_timeout, reconnect_timeout=job.reconnect_timeout,
            reactor=reactor, role=ROLE)
        self.job_client.setServiceParent(self._links)
        self.courier = BlockCourier(self.job_client, reactor,
                                    self.job_client.heartbeat_timeout + self.job_client.heartbeat_interval, ROLE)

        self.stats = GatewayStats(MinuteAggregator(config.host, config.coin), self.sender, reactor,
                                  connections=lambda: self.server.miner_connections, role=ROLE)
        self.context = GatewayContext(config.stratum, config.worker_id, JobBook(), BanList(reactor),
                                      self.stats, self.courier, reactor)
        self.server = GatewayStratumFactory(self.context, reactor, limits=config.limits,
                                            first_job_wait=config.first_job_wait,
                                            agent_v2=config.agent_v2)
        self.context.server = self.server
        self._job_link = JobLink(self.context)
        self.job_client.add_observer(self._job_link)
        self.job_client.add_observer(self.courier)

        self.metrics = RoleMetrics(ROLE)
        self.metrics.add(gateway_metrics(self))
        self._stratum = self.listen_stratum(self._listeners)
        if config.http_svr is not None:
            resource = WithMetrics(GatewayResource(self.server, reactor), self.metrics)
            site = Site(resource, timeout=config.http_svr.keep_alive, reactor=reactor)
            for address in config.http_svr.server.stream_binds:
                listen_stream(self._listeners, address, site, reactor)
        listen_monitor(self._listeners, config.monitor, reactor)
        if config.cli is not None:
            cli = cli_service(config.cli, gateway_commands(self.context), reactor)
            cli._raiseSynchronously = True
            cli.setServiceParent(self._listeners)

    def listen_stratum(self, parent):
        """
        Serve the Stratum factory on ``svr.bind`` under ``parent``; returns
        the listeners whose ports ``startService`` hands to the server's
        ``hold`` (a worker adopts its parent's sockets instead).
        """
        return [listen_stream(parent, address, self.server, self.reactor) for address in self.config.svr.binds]

    def startService(self):
        service.Service.startService(self)
        pending = self.sender.pending_count()
        if pending:
            self._log.info("{count} statistics packets from before the restart will be resent",
                           count=pending, role=ROLE)
        slow = uncompiled()
        if slow is not None:
            self._log.warn("{why}", why=slow, role=ROLE)
        self._links.startService()
        self.stats.start()
        self._listeners.startService()
        for listener in self._stratum:
            listener._waitingForPort.addCallback(self.server.hold)
        self._log.info(
            "gateway {host} (worker_id {worker_id}): stratum on {binds}, jobmaster {job}, writer {writer}",
            host=self.config.host, worker_id=self.config.worker_id,
            binds=", ".join(a.text for a in self.config.svr.binds),
            job=", ".join(a.text for a in self.config.job.addrs),
            writer=", ".join(a.text for a in self.config.writer.addrs), role=ROLE)

    def stopService(self):
        service.Service.stopService(self)
        self.server.stop_holding()
        d = defer.maybeDeferred(self._listeners.stopService)
        d.addCallback(lambda _: self._close_sessions())
        d.addCallback(lambda _: self._drain())
        d.addBoth(self._stop_links)
        return d

    def _close_sessions(self):
        closed = self.context.close_sessions()
        self.stats.stop()
        self._log.info("stopping: closed {count} miner sessions, statistics flushed", count=closed, role=ROLE)

    def _drain(self):
        timeout = self.config.stats_drain_timeout
        d = self.sender.when_drained()
        d.addTimeout(timeout, self.reactor)

        def undrained(failure):
            failure.trap(defer.TimeoutError)
            self._log.warn("stopping with {count} statistics packets unacknowledged; they are resent"
                           " at the next start", count=self.sender.pending_count(), role=ROLE)

        return d.addErrback(undrained)

    def _stop_links(self, result):
        if isinstance(result, Failure):
            self._log.failure("graceful stop incomplete", result, role=ROLE)
        self.courier.stop()
        # An orderly close: neither a link-down warning nor jobs after it.
        self.job_client.remove_observer(self._job_link)
        return self._links.stopService()
