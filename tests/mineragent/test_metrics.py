"""
``GET /metrics`` of a mineragent in front of a real gateway service (the
``test_service`` setup): its miners' shares, sessions and the upstream link
as the agent's own state has them, through a gateway outage.
"""

from tests.gateway.support import solve, wait_for
from tests.gateway.test_service import DIFFICULTY
from tests.mineragent.test_service import AgentServiceCase
from tests.scrape import scrape
from viabtc.stratum.metrics import reject_reason


class MinerAgentMetricsTests(AgentServiceCase):
    async def test_scrape_follows_the_agent(self):
        await self.start_gateway()
        await self.start_agent(broadcast_timeout=600)
        alice, bob = await self.miner("alice.rig1"), await self.miner("bob.rig7")
        replies = await self.shares(alice, 3) + await self.shares(bob, 1, account="bob.rig7")
        self.assertEqual([r["result"] for r in replies], [True] * 4)
        notify = alice.notifications("mining.notify")[-1]
        en2, ntime, nonce, _ = solve(notify, alice.extranonce1, DIFFICULTY)
        duplicate = await alice.call("mining.submit", ["alice.rig1", notify[0], en2, ntime, nonce])
        unknown = await alice.call("mining.submit", ["alice.rig1", "beef", en2, ntime, nonce])

        got = await scrape(self.agent.metrics)
        self.assertEqual(got.value("viabtc_role_info", role="mineragent"), 1)
        self.assertEqual(got.value("viabtc_shares_total", result="accepted", reason=""), 4)
        self.assertEqual(got.value("viabtc_shares_total", result="rejected",
                                   reason=reject_reason(duplicate["error"][0])), 1)
        self.assertEqual(got.value("viabtc_shares_total", result="rejected",
                                   reason=reject_reason(unknown["error"][0])), 1)
        self.assertEqual(got.value("viabtc_sessions"), 2)
        self.assertEqual(got.value("viabtc_mineragent_events_total", event="new_authorized"), 2)
        self.assertEqual(got.value("viabtc_link_up", link="gateway"), 1)
        self.assertEqual(got.value("viabtc_mineragent_upstream_info", gateway=self.agent.endpoint.current), 1)
        self.assertEqual(got.value("viabtc_mineragent_agent_protocol_version"), 2)
        self.assertEqual(got.value("viabtc_mineragent_upstream_shares_sent_total"), 4)
        self.assertEqual(got.value("viabtc_mineragent_upstream_verdicts_total", result="accepted", reason=""), 4)
        self.assertEqual(got.value("viabtc_mineragent_upstream_queue_shares"), 0)
        self.assertEqual(got.value("viabtc_mineragent_upstream_shares_dropped_total"), 0)
        self.assertIn(("process_open_fds", frozenset()), got.samples)

        # The gateway goes away: a share made meanwhile waits in the queue.
        await self.stop_gateway()
        await wait_for(lambda: not self.agent.upstream.ready, what="the agent to see the gateway gone")
        en2, ntime, nonce, _ = solve(notify, alice.extranonce1, DIFFICULTY, extranonce2=50_000)
        alice.request("mining.submit", ["alice.rig1", notify[0], en2, ntime, nonce])
        await wait_for(lambda: self.agent.upstream.queued == 1, what="the share queued")
        got = await scrape(self.agent.metrics)
        self.assertEqual(got.value("viabtc_link_up", link="gateway"), 0)
        self.assertEqual(got.value("viabtc_mineragent_agent_protocol_version"), 0)
        self.assertEqual(got.value("viabtc_mineragent_upstream_queue_shares"), 1)
        self.assertEqual(got.value("viabtc_shares_total", result="accepted", reason=""), 5)
        self.assertEqual(got.value("viabtc_mineragent_upstream_shares_sent_total"), 4)
