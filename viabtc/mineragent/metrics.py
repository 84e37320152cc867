# -*- test-case-name: tests.mineragent.test_metrics -*-
"""
The mineragent's Prometheus metrics (``viabtc.metrics``), read at scrape
time from what the agent counts anyway: its miners' shares by result and
reject reason and the Stratum server's monitor counters (shaped by
``viabtc.stratum.metrics``, as the gateway's), the sessions, and the
upstream link: which gateway, connected or not, the agent protocol version,
the shares waiting for it, sent to it and judged by it.
"""

from prometheus_client.core import GaugeMetricFamily

from viabtc.metrics import counter, gauge, labelled
from viabtc.stratum.metrics import event_families, session_families, share_families


def mineragent_metrics(service):
    """A ``RoleMetrics`` source for a ``MinerAgentService``."""

    def collect():
        context, upstream = service.context, service.upstream
        families = share_families(context.accepted, context.counts)
        families += event_families("mineragent_events", "The Stratum server's monitor counters.",
                                   service.server.counts)
        families += session_families(service.server)
        families += [
            labelled(GaugeMetricFamily, "link_up", "1 while the module link is connected.", ["link"],
                     [(("gateway",), 1 if upstream.ready else 0)]),
            gauge("mineragent_upstream_info", "The gateway the agent uses or tries next (value 1).", 1,
                  {"gateway": service.endpoint.current}),
            gauge("mineragent_agent_protocol_version", "Agent protocol version in use upstream (0: link down).",
                  upstream.version),
            gauge("mineragent_upstream_queue_shares",
                  "Shares waiting to be sent to the gateway or for its verdict (kept while it is down).",
                  upstream.queued),
            counter("mineragent_upstream_shares_sent", "Shares written to the gateway (v2 resends included).",
                    upstream.sent),
            counter("mineragent_upstream_shares_dropped",
                    "Queued shares dropped (max_queued_shares exceeded while the gateway was down).",
                    upstream.dropped),
        ]
        families += share_families(upstream.acknowledged, upstream.verdicts, "mineragent_upstream_verdicts",
                                   "The v2 gateway's verdicts on the shares sent, by result and reject reason.")
        return families

    return collect
