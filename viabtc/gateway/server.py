# -*- test-case-name: tests.gateway.test_service -*-
"""
The gateway's Stratum listener: ``viabtc.stratum``'s server with two
gateway rules added by composition.  It serves the ``agent.*`` protocol
of mineragents too (``viabtc.stratum.agent_server``).

* No job, no miners (ref §4.1): until the jobmaster sent a job a new
  connection is closed at once, so a load balancer's next try lands on a
  gateway that can give work.
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

    def __init__(self, context, clock, housekeeping_interval=None, limits=None, agent_v2=True):
        super().__init__(context, clock, housekeeping_interval, limits, agent_v2)
        self._refusing = False

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
