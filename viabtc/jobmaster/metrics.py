# -*- test-case-name: tests.jobmaster.test_metrics -*-
"""
The jobmaster's Prometheus metrics (``viabtc.metrics``): job age, the
node's answer times (``getblocktemplate`` is the template latency),
``submitblock`` outcomes per node, connected gateways and blockmasters, bans.

``TimedNodes`` and ``CountingSubmitter`` wrap the ``NodeGroup`` and the
``BlockSubmitter`` the tap builds, so the service itself is unchanged; they
keep plain sums that a scrape reads.
"""

from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

from viabtc.metrics import NAMESPACE, gauge, labelled, link_families


class TimedNodes:
    """
    A ``NodeGroup`` whose ``call`` and ``call_all`` are timed per RPC method
    (on ``clock``); everything else is the group's.  ``timings``: method →
    ``[count, seconds, failures]``.
    """

    def __init__(self, nodes, clock):
        self._nodes = nodes
        self._clock = clock
        self.timings = {}

    def __getattr__(self, name):
        return getattr(self._nodes, name)

    def _timed(self, method, d):
        started = self._clock.seconds()

        def done(result, failed):
            entry = self.timings.setdefault(method, [0, 0.0, 0])
            entry[0] += 1
            entry[1] += self._clock.seconds() - started
            entry[2] += failed
            return result

        return d.addCallbacks(done, done, callbackArgs=(0,), errbackArgs=(1,))

    def call(self, method, *params, timeout=None):
        return self._timed(method, self._nodes.call(method, *params, timeout=timeout))

    def call_all(self, method, *params, timeout=None):
        return self._timed(method, self._nodes.call_all(method, *params, timeout=timeout))


class CountingSubmitter:
    """A ``BlockSubmitter`` counting each node's ``submitblock`` outcome: ``outcomes[(node, outcome)]``."""

    def __init__(self, submitter):
        self._submitter = submitter
        self.outcomes = {}

    def __getattr__(self, name):
        return getattr(self._submitter, name)

    def _count(self, report):
        for entry in report.nodes:
            key = (entry.node, entry.outcome.value)
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
        return report

    def submit(self, block, block_hash):
        return self._submitter.submit(block, block_hash).addCallback(self._count)

    def submit_hex(self, hex_parts, block_hash):
        return self._submitter.submit_hex(hex_parts, block_hash).addCallback(self._count)


def jobmaster_metrics(service, nodes, submitter):
    """A ``RoleMetrics`` source for a ``JobmasterService`` with its ``TimedNodes`` and ``CountingSubmitter``."""

    def collect():
        rpc = SummaryMetricFamily(f"{NAMESPACE}_node_rpc_seconds",
                                  "Node RPC answer times by method (getblocktemplate: template latency).",
                                  labels=["method"])
        failures = []
        for method, (count, seconds, failed) in sorted(nodes.timings.items()):
            rpc.add_metric([method], count_value=count, sum_value=seconds)
            failures.append(((method,), failed))
        age = service.work.job_age()
        families = [
            rpc,
            labelled(CounterMetricFamily, "node_rpc_failures", "Node RPC calls that failed, by method.",
                     ["method"], failures),
            labelled(CounterMetricFamily, "submitblock_results", "submitblock outcomes, by node and outcome.",
                     ["node", "outcome"], [(key, n) for key, n in sorted(submitter.outcomes.items())]),
            gauge("job_age_seconds", "Seconds since the last job (NaN before the first).",
                  age if age != float("inf") else float("nan")),
            gauge("gateways", "Gateways connected.", service.hub.gateways),
            gauge("bans", "IP addresses banned.", len(service.bans)),
        ]
        families += link_families({f"blockmaster{i}": link for i, link in enumerate(service.blockmasters)})
        return families

    return collect
