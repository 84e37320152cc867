# -*- test-case-name: tests.gateway.test_service -*-
"""
The gateway's Stratum listener: ``viabtc.stratum``'s server with two
gateway rules added by composition.  It serves the ``agent.*`` protocol
of mineragents too (``viabtc.stratum.agent_server``).

* No job, no miners (ref §4.1): until the jobmaster sent a job a new
  connection is closed at once, so a load balancer's next try lands on a
  gateway that can give work.  Right after start-up, though, the first job
  is usually milliseconds away while a whole pool's miners reconnect: for
  up to ``first_job_wait`` seconds the Stratum ports accept nothing, the
  miners' connections wait in the kernel's queue (the listen backlog), and
  they are taken the moment the first job arrives instead of being closed
  and left to retry.
* Monitor counters (``connection_new``, ``request_invalid``, ...) go
  straight into the minute of the event, instead of waiting in
  ``counts`` for the next flush and landing in the following minute.
"""

from twisted.logger import Logger

from viabtc.stratum.agent_server import AgentServerFactory


class GatewayStratumFactory(AgentServerFactory):
    """
    ``AgentServerFactory`` (Stratum and ``agent.*`` on one port) for a
    ``GatewayContext`` whose ``stats`` take the counters.
    """

    _log = Logger()

    def __init__(self, context, clock, housekeeping_interval=None, limits=None, first_job_wait=10.0,
                 agent_v2=True):
        super().__init__(context, clock, housekeeping_interval, limits, agent_v2)
        self._refusing = False
        self.first_job_wait = first_job_wait
        self._held = []
        self._hold_timer = None

    def hold(self, port):
        """
        A Stratum port has opened: while there is no job yet it accepts
        nothing, for up to ``first_job_wait`` seconds; returns ``port``.
        """
        if self.context.jobs.current is None and self.first_job_wait > 0 and hasattr(port, "stopReading"):
            port.stopReading()
            self._held.append(port)
            if self._hold_timer is None:
                self._hold_timer = self.clock.callLater(self.first_job_wait, self._no_first_job)
        return port

    def _no_first_job(self):
        self._hold_timer = None
        self._log.warn("no job from the jobmaster {seconds:g} s after start; taking miners (and closing them"
                       " until a job arrives)", seconds=self.first_job_wait, role=self.context.role)
        self._resume(self._held)

    def stop_holding(self):
        """Stopping: forget the held ports (their listeners close them)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self._held = []

    def _resume(self, ports):
        self._held = []
        for port in ports:
            if port.connected:
                port.startReading()

    def broadcast_job(self, prepared):
        super().broadcast_job(prepared)
        if self._held:
            held = self._held
            self.stop_holding()
            self._resume(held)

    def buildProtocol(self, addr):
        if self.context.jobs.current is None:
            if not self._refusing:
                self._refusing = True
                self._log.warn("refusing miners until the jobmaster sends a job", role=self.context.role)
            return None
        self._refusing = False
        return super().buildProtocol(addr)

    def count(self, key, n=1):
        self.context.stats.count(key, n, self.clock.seconds())
