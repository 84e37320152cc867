"""
``GET /metrics`` of a poolbench watching two in-test Stratum pools (the
``test_service`` setup): pools, jobs seen and hints as the service has them.
"""

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.poolbench import test_service
from tests.poolbench.test_config import local_config
from tests.poolbench.test_service import announce
from tests.roles import wait_for
from tests.scrape import scrape
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.poolbench import tap
from viabtc.poolbench.config import PoolbenchConfig


class PoolbenchMetricsTests(TestCase):
    timeout = 30
    setUp = test_service.ServiceTests.setUp
    pool = test_service.ServiceTests.pool
    start = test_service.ServiceTests.start

    def test_built_by_the_tap(self):
        service = tap.build_service(PoolbenchConfig.from_reader(ConfigReader(local_config())), reactor)
        service.hints_sent = 3
        self.assertIn("viabtc_poolbench_hints_sent_total 3.0", service.metrics.render().decode())

    async def test_scrape_follows_the_pools(self):
        rival, rival_port = self.pool(101)
        self.start({"rival": (rival_port, {}), "gone": (free_port(), {})})
        await wait_for(lambda: self.collector.hints())
        announce(rival, 102)
        await wait_for(lambda: len(self.collector.hints()) >= 2)
        got = await scrape(self.service.metrics)
        self.assertEqual(got.value("viabtc_role_info", role="poolbench"), 1)
        self.assertEqual(got.value("viabtc_poolbench_pools"), 2)
        self.assertEqual(got.value("viabtc_poolbench_pool_up", pool="rival"), 1)
        self.assertEqual(got.value("viabtc_poolbench_pool_up", pool="gone"), 0)
        self.assertEqual(got.value("viabtc_poolbench_pool_height", pool="rival"), 102)
        self.assertNotIn(("viabtc_poolbench_pool_height", frozenset({"pool": "gone"}.items())), got.samples)
        self.assertEqual(got.value("viabtc_poolbench_jobs_seen_total", pool="rival"),
                         self.service.jobs_seen["rival"])
        self.assertGreaterEqual(self.service.jobs_seen["rival"], 2)
        self.assertEqual(got.value("viabtc_poolbench_hints_sent_total"), 2)
        self.assertEqual(got.value("viabtc_poolbench_best_height"), self.service.bench.best_height)
        self.assertEqual(got.value("viabtc_poolbench_jobmasters"), 1)
        self.assertEqual(got.value("viabtc_poolbench_tips_refused_total", pool="rival"), 0)
