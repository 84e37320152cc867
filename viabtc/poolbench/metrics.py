# -*- test-case-name: tests.poolbench.test_metrics -*-
"""
The poolbench's Prometheus metrics (``viabtc.metrics``), read at scrape
time from the bench and the service: pools watched and connected, jobs
seen and the height each pool works on, tips refused, the best height,
height hints sent to jobmasters.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from viabtc.metrics import counter, gauge, labelled


def poolbench_metrics(service):
    """A ``RoleMetrics`` source for a ``PoolbenchService``."""

    def collect():
        pools = sorted(service.bench.pools.values(), key=lambda pool: pool.name)
        return [
            gauge("poolbench_pools", "Pools watched.", len(pools)),
            labelled(GaugeMetricFamily, "poolbench_pool_up", "1 while the pool's Stratum connection is up.",
                     ["pool"], [((pool.name,), 1 if pool.connected else 0) for pool in pools]),
            labelled(GaugeMetricFamily, "poolbench_pool_height",
                     "Height of the pool's latest believed job (absent before one).", ["pool"],
                     [((pool.name,), pool.height) for pool in pools if pool.height is not None]),
            labelled(CounterMetricFamily, "poolbench_jobs_seen", "mining.notify jobs received, by pool.",
                     ["pool"], [((name,), n) for name, n in sorted(service.jobs_seen.items())]),
            labelled(CounterMetricFamily, "poolbench_tips_refused", "Pool tips refused as not believable.",
                     ["pool"], [((pool.name,), pool.refused) for pool in pools]),
            gauge("poolbench_best_height", "Best height seen on any pool (0 before one).",
                  service.bench.best_height),
            counter("poolbench_hints_sent", "Height hints sent to jobmasters.", service.hints_sent),
            gauge("poolbench_jobmasters", "Jobmasters known to hint.", len(service.sender.addresses)),
        ]

    return collect
