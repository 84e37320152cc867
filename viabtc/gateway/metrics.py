# -*- test-case-name: tests.gateway.test_metrics -*-
"""
The gateway's Prometheus metrics (``viabtc.metrics``), read at scrape time
from what the gateway counts anyway: the minute aggregator's totals (shares
by result and reject reason, as ``viabtc.stratum.metrics`` shapes them for
every Stratum server, share difficulty, blocks, the seed's monitor
counters), the sessions, the links and the statistics journal.
"""

from prometheus_client.core import CounterMetricFamily
from zope.interface import implementer

from viabtc.metrics import counter, gauge, labelled, link_families, sender_families
from viabtc.rpc.codec import Command
from viabtc.rpc.interfaces import ILinkObserver
from viabtc.stats.gateway_agg import GOAL, POW, POW_FLOAT, REJECT, SHARE
from viabtc.stratum.metrics import event_families, session_families, share_families

# Monitor keys shown by their own metrics, or samples rather than counts.
_OWN = {SHARE, POW, REJECT, "block", "block_aux", "connections"}


@implementer(ILinkObserver)
class JobClock:
    """Observes the jobmaster link: when the last job (cmd 1) arrived."""

    def __init__(self, clock):
        self._clock = clock
        self.last_job = None

    def on_connect(self, link):
        pass

    def on_disconnect(self, link):
        pass

    def on_packet(self, link, packet):
        if packet.command == Command.UPDATE_JOB:
            self.last_job = self._clock.seconds()


def gateway_metrics(service):
    """A ``RoleMetrics`` source for a ``GatewayService``."""
    jobs = JobClock(service.reactor)
    service.job_client.add_observer(jobs)

    def collect():
        ints, floats = service.stats.aggregator.totals()
        now = service.reactor.seconds()
        families = share_families(ints.get(SHARE, 0), ints)
        families += event_families("gateway_events", "The seed's gateway monitor counters.", ints, _OWN)
        families += session_families(service.server)
        families += [
            counter("share_difficulty", "Sum of accepted share difficulties (hashes = this x 2^32).",
                    floats.get(POW_FLOAT, float(ints.get(POW, 0)))),
            counter("share_goal", "Sum of accepted shares' fraction of a block.", floats.get(GOAL, 0.0)),
            labelled(CounterMetricFamily, "blocks_found", "Block candidates found, by chain.", ["chain"],
                     [(("main",), ints.get("block", 0)), (("aux",), ints.get("block_aux", 0))]),
            gauge("bans", "IP addresses banned.", len(service.context.bans)),
            gauge("job_age_seconds", "Seconds since the jobmaster's last job (NaN before the first).",
                  now - jobs.last_job if jobs.last_job is not None else float("nan")),
        ]
        families += link_families({"jobmaster": service.job_client, "writer": getattr(service, "writer", None)})
        families += sender_families(service.sender, "writer")
        return families

    return collect
