"""
The jobmaster's /metrics sources and SIGHUP reload against a real bcoin
regtest node: a found block's submitblock outcome per node, the template
latency, connected gateways; bans and the coinbase message reloaded.
"""

import attrs
from twisted.trial.unittest import TestCase

from tests.jobmaster import test_service
from tests.jobmaster.mining import wait_for
from tests.scrape import Scrape
from viabtc.reload import ReloadReport


def samples(metrics):
    return Scrape(metrics.render().decode()).samples


class JobmasterMetricsTests(TestCase):
    timeout = 180
    # The node tests' helpers (not their class: trial would run its tests here too).
    setUp = test_service.JobmasterNodeTests.setUp
    start = test_service.JobmasterNodeTests.start
    gateway = test_service.JobmasterNodeTests.gateway
    first_job = test_service.JobmasterNodeTests.first_job
    land = test_service.JobmasterNodeTests.land

    async def test_metrics_and_reload(self):
        service = self.start()
        gateway = self.gateway()
        job = await self.first_job(gateway)
        await self.land(gateway, job)

        def accepted():
            return [v for (name, labels), v in samples(service.metrics).items()
                    if name == "viabtc_submitblock_results_total" and ("outcome", "accepted") in labels]

        self.assertEqual(await wait_for(accepted, what="the submission counted"), [1.0])
        got = samples(service.metrics)
        self.assertGreater(got[("viabtc_node_rpc_seconds_count", frozenset({("method", "getblocktemplate")}))], 0)
        self.assertEqual(got[("viabtc_gateways", frozenset())], 1)
        self.assertGreaterEqual(got[("viabtc_job_age_seconds", frozenset())], 0)

        config = self.config
        new = attrs.evolve(config, bans=("10.1.2.3",), job_rebroadcast_timeout=99.0,
                           settings=attrs.evolve(config.settings, coinbase_message="hello again"))
        report = service.reload(new)
        self.assertEqual(report, ReloadReport(("bans", "coinbase_message"), ("job_rebroadcast_timeout",)))
        await wait_for(lambda: gateway.bans(), what="the ban at the gateway")
        self.assertEqual(service.coinbase_message, "hello again")
        self.assertIn("10.1.2.3", service.bans)
        self.assertEqual(samples(service.metrics)[("viabtc_bans", frozenset())], 1)
        # Lifting it from the file lifts it everywhere.
        service.reload(attrs.evolve(new, bans=()))
        self.assertNotIn("10.1.2.3", service.bans)

