"""The poolbench's /metrics source: height hints sent."""

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.poolbench.test_config import local_config
from viabtc.config import ConfigReader
from viabtc.poolbench import tap
from viabtc.poolbench.config import PoolbenchConfig


class PoolbenchMetricsTests(TestCase):
    def test_hints_sent(self):
        service = tap.build_service(PoolbenchConfig.from_reader(ConfigReader(local_config())), reactor)
        service.hints_sent = 3
        self.assertIn("viabtc_poolbench_hints_sent_total 3.0", service.metrics.render().decode())
