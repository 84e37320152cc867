# -*- test-case-name: tests.mineragent.test_service -*-
"""
The mineragent service: the miners' Stratum listeners, the one upstream
link to a gateway (with failover over several) and the agent's clocks
(ref §5.3), wired for one ``MinerAgentConfig``.

Clocks, checked every second:

* a gateway that stays connected but sends no job for ``NO_JOB_TIMEOUT``
  seconds is dropped and the next one tried (the seed's 120 s);
* while the gateway is unreachable miners keep the last real job only for
  ``broadcast_timeout`` seconds (within that time a live gateway sends a new
  one); then, and whenever the last job is older than ``connect_timeout``,
  every miner is sent ``client.reconnect`` and new ones are refused until a
  job arrives.  The seed instead made up "fake" jobs that the gateway had
  never issued (ref §12.27); this agent never does.
* ``agent.status`` (minute, authorized miners) every 60 s; in v2, the
  shares rejected here (``agent.rejects``) every second.

Reconnects to the gateway wait ``RECONNECT_DELAY`` seconds, as the seed's.
"""

import math

from twisted.application import service
from twisted.application.internet import ClientService
from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.cli import cli_service
from viabtc.metrics import RoleMetrics
from viabtc.mineragent.commands import mineragent_commands
from viabtc.mineragent.context import ROLE, MinerAgentContext
from viabtc.mineragent.metrics import mineragent_metrics
from viabtc.mineragent.server import MinerAgentFactory
from viabtc.mineragent.upstream import UpstreamLink
from viabtc.service import listen_stream
from viabtc.stratum import agent
from viabtc.stratum.agent_client import AgentClientProtocol
from viabtc.stratum.protocol import uncompiled

RECONNECT_DELAY = 3.0
NO_JOB_TIMEOUT = 120.0
STATUS_INTERVAL = 60.0


@implementer(IStreamClientEndpoint)
class FailoverEndpoint:
    """
    Connects to the first of ``endpoints`` that answers: a failed attempt
    moves on to the next for the following try; a working one is kept.
    """

    _log = Logger()

    def __init__(self, endpoints, names):
        self._endpoints = endpoints
        self._names = names
        self._index = 0

    @property
    def current(self):
        return self._names[self._index]

    def connect(self, factory):
        name = self.current

        def failed(failure):
            self._index = (self._index + 1) % len(self._endpoints)
            self._log.warn("upstream {name} unreachable ({error}); next try: {next}", role=ROLE, name=name,
                           error=failure.getErrorMessage(), next=self.current)
            return failure

        return self._endpoints[self._index].connect(factory).addErrback(failed)


class _UpstreamFactory(Factory):
    def __init__(self, link, agent_id, offer_v2, clock):
        self.link = link
        self.agent_id = agent_id
        self.offer_v2 = offer_v2
        self.clock = clock

    def buildProtocol(self, addr):
        return AgentClientProtocol(self.link, self.agent_id, self.offer_v2, self.clock, role=ROLE)


class MinerAgentService(service.MultiService):
    """
    The whole role (or one worker of a ``worker_num`` agent, whose
    ``identities`` is its ``IdentityAllocator``).  Public for tests, the CLI
    and /metrics: ``context``, ``server``, ``upstream``, ``metrics``.
    """

    _log = Logger()

    def __init__(self, config, reactor, identities=None):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.role_logging = None
        self.context = MinerAgentContext(config.stratum, config.agent_id, reactor, identities)
        self.upstream = UpstreamLink(self.context, reactor, config.agent_v2, config.max_queued_shares, ROLE)
        self.context.upstream = self.upstream
        self.server = MinerAgentFactory(self.context, reactor, limits=config.limits)
        self.context.server = self.server

        self._listeners = service.MultiService()
        self._listeners.setServiceParent(self)
        self.listen_miners(self._listeners)
        if config.cli is not None:
            cli = cli_service(config.cli, mineragent_commands(self), reactor)
            cli._raiseSynchronously = True
            cli.setServiceParent(self._listeners)

        self.endpoint = FailoverEndpoint([a.client_endpoint(reactor) for a in config.upstreams],
                                         [a.text for a in config.upstreams])
        self._client = ClientService(self.endpoint, _UpstreamFactory(self.upstream, config.agent_id,
                                                                     config.agent_v2, reactor),
                                     retryPolicy=lambda attempt: RECONNECT_DELAY, clock=reactor)
        self.metrics = RoleMetrics(ROLE)
        self.metrics.add(mineragent_metrics(self))
        self._connected_at = None
        self._watch = LoopingCall(self.watch)
        self._watch.clock = reactor
        self._status = LoopingCall(self.send_status)
        self._status.clock = reactor

    def listen_miners(self, parent):
        """The miners' listeners, as services of ``parent`` (a worker adopts its parent's sockets instead)."""
        for address in self.config.svr.stream_binds:
            listen_stream(parent, address, self.server, self.reactor)

    def startService(self):
        service.Service.startService(self)
        slow = uncompiled()
        if slow is not None:
            self._log.warn("{why}", why=slow, role=ROLE)
        self._client.startService()
        self._listeners.startService()
        self._watch.start(1.0, now=False).addErrback(lambda f: self._log.failure("watch stopped", f, role=ROLE))
        self._status.start(STATUS_INTERVAL, now=False).addErrback(
            lambda f: self._log.failure("status timer stopped", f, role=ROLE))
        self._log.info("mineragent {agent_id} (protocol v{version} offered): miners on {binds}, gateways {up}",
                       agent_id=self.config.agent_id, version=2 if self.config.agent_v2 else 1,
                       binds=", ".join(a.text for a in self.config.svr.binds),
                       up=", ".join(a.text for a in self.config.upstreams), role=ROLE)

    def stopService(self):
        service.Service.stopService(self)
        for loop in (self._watch, self._status):
            if loop.running:
                loop.stop()
        d = defer.maybeDeferred(self._listeners.stopService)

        def close_miners(_):
            # Their "disconnected" events go up while the link is still there.
            for link in list(self.context.links.values()):
                link.proto.close()
            if self.upstream.queued:
                self._log.warn("stopping with {count} shares the gateway has not acknowledged", role=ROLE,
                               count=self.upstream.queued)
            return self._client.stopService()

        return d.addCallback(close_miners)

    # -- clocks -----------------------------------------------------------------

    def watch(self):
        now = self.reactor.seconds()
        upstream = self.upstream
        context = self.context
        upstream.flush_rejects()
        if upstream.ready:
            if self._connected_at is None or self._connected_at[0] is not upstream.proto:
                self._connected_at = (upstream.proto, now)
            since = max(context.last_job_time or 0.0, self._connected_at[1])
            if now - since > NO_JOB_TIMEOUT:
                self._log.warn("upstream {peer} sent no job for {seconds:.0f} s; reconnecting", role=ROLE,
                               peer=upstream.proto.peer, seconds=now - since)
                upstream.proto.transport.loseConnection()
        if context.jobs.current is None or context.last_job_time is None:
            return
        age = now - context.last_job_time
        if (not upstream.ready and age > self.config.broadcast_timeout) or age > self.config.connect_timeout:
            sent = context.retire_jobs()
            self._log.warn("the last job is {age:.0f} s old and the gateway is {state}: {count} miners sent"
                           " client.reconnect; new ones refused until a job arrives", role=ROLE, age=age,
                           state="connected" if upstream.ready else "unreachable", count=sent)

    def send_status(self):
        if not self.upstream.ready:
            return
        now = self.reactor.seconds()
        minute = int(math.floor(now / 60) * 60)
        self.upstream.send(agent.request_line(int(now * 1000), "agent.status", [minute, self.server.authorized]))
