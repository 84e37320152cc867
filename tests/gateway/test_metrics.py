"""
``GET /metrics`` on the gateway's ``http_svr``: counters read at scrape
time match the shares a real Stratum miner submitted; the seed's answers on
other paths stay.
"""

from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody

from tests.gateway.support import connect_miner, solve, wait_for
from tests.gateway.test_service import DIFFICULTY, running_gateway
from tests.scrape import Scrape
from viabtc.stratum.metrics import reject_reason


class GatewayMetricsTests(TestCase):
    timeout = 60

    async def test_scrape_counts_what_the_miner_saw(self):
        service, _ = await running_gateway(self)
        config = service.config
        miner = await connect_miner(config.svr.binds[0].port)
        self.addCleanup(lambda: miner.transport.loseConnection())
        await miner.login("alice.rig1")
        await wait_for(lambda: miner.notifications("mining.notify"), what="the first notify")
        notify = miner.notifications("mining.notify")[0]
        accepted = 0
        for i in range(3):
            en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=i * 1000)
            reply = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
            accepted += reply["result"] is True
        duplicate = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
        unknown = await miner.call("mining.submit", ["alice.rig1", "beef", en2, ntime, nonce])

        base = f"http://127.0.0.1:{config.http_svr.server.binds[0].port}"
        agent = Agent(reactor)
        response = await agent.request(b"GET", (base + "/metrics").encode())
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        got = Scrape((await readBody(response)).decode())
        value = got.value

        self.assertEqual(accepted, 3)
        self.assertEqual(value("viabtc_shares_total", result="accepted", reason=""), 3)
        self.assertEqual(value("viabtc_shares_total", result="rejected",
                               reason=reject_reason(duplicate["error"][0])), 1)
        self.assertEqual(value("viabtc_shares_total", result="rejected",
                               reason=reject_reason(unknown["error"][0])), 1)
        self.assertAlmostEqual(value("viabtc_share_difficulty_total"), 3 * DIFFICULTY)
        self.assertEqual(value("viabtc_sessions"), 1)
        self.assertEqual(value("viabtc_link_up", link="jobmaster"), 1)
        self.assertEqual(value("viabtc_gateway_events_total", event="new_authorized"), 1)
        self.assertGreaterEqual(value("viabtc_job_age_seconds"), 0)
        self.assertEqual(value("viabtc_role_info", role="gateway"), 1)
        self.assertIn(("process_open_fds", frozenset()), got.samples)

        # The seed's answers elsewhere.
        for path in ("/", "/metrics/x", "/anything"):
            response = await agent.request(b"GET", (base + path).encode())
            self.assertEqual((response.code, await readBody(response)), (200, b"ok\n"), path)

