# -*- test-case-name: tests.poolbench.test_metrics -*-
"""
The poolbench's Prometheus metrics (``viabtc.metrics``): height hints sent
to jobmasters.
"""

from viabtc.metrics import counter


def poolbench_metrics(service):
    """A ``RoleMetrics`` source for a ``PoolbenchService``."""

    def collect():
        return [counter("poolbench_hints_sent", "Height hints sent to jobmasters.", service.hints_sent)]

    return collect
