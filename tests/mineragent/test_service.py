"""
The mineragent in-process over real sockets, in front of a real gateway
service (itself fed by a jobmaster RPC server in the test and shipping
statistics to a real UDP writer): miners speak Stratum to the agent, the
agent speaks agent.* to the gateway.
"""

import os

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.http import client_rows
from viabtc.gateway.service import GatewayService
from viabtc.mineragent.commands import mineragent_commands
from viabtc.mineragent.config import MinerAgentConfig
from viabtc.mineragent.service import MinerAgentService
from viabtc.stats import records
from viabtc.stratum.coinbase import agent_coinbase1_head

from tests.gateway.support import StatsWriter, TestJobmaster, connect_miner, job_body, solve, wait_for
from tests.gateway.test_service import DIFFICULTY, gateway_data
from tests.stratum.jobs import REGTEST_BITS, REGTEST_TARGET
from tests.support import seed_sample

AGENT_ID = 0xA6E27001


def agent_data(gateway_port, **changes):
    """The seed's sample mineragent.json with only hosts, ports and our test difficulties changed."""
    data = seed_sample("mineragent")
    data.pop("log")
    data.pop("process")
    data["svr"]["bind"] = [f"tcp@127.0.0.1:{free_port()}"]
    data["cli"] = f"tcp@127.0.0.1:{free_port()}"
    data["stratum_port"] = gateway_port
    data.update(diff_min=DIFFICULTY / 4, diff_max=1024, diff_default=DIFFICULTY, agent_id=AGENT_ID)
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def credited_shares(writer):
    """``{key: num}`` summed over the share records ``writer`` received."""
    out = {}
    for _, r in writer.records(records.META_SHARE):
        out[r.key] = out.get(r.key, 0) + r.num
    return out


class AgentServiceCase(TestCase):
    timeout = 60

    async def start_gateway(self, job=None, **changes):
        if not hasattr(self, "jobmaster"):
            self.jobmaster = TestJobmaster(job_body() if job is None else job)
            self.jobmaster_port = await self.jobmaster.listen()
            self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
            self.writer = StatsWriter()
            self.addCleanup(self.writer.stop)
            self.gateway_port = free_port()
            self.queue = os.path.abspath(self.mktemp())
        changes.setdefault("svr", {"bind": [f"tcp@127.0.0.1:{self.gateway_port}"], "max_pkg_size": 10240})
        data = gateway_data(self.jobmaster_port, self.writer.address, self.queue, **changes)
        self.gateway = GatewayService(GatewayConfig.from_reader(ConfigReader(data)), reactor)
        self.gateway.startService()
        self.addCleanup(self.stop_gateway)
        await wait_for(lambda: self.gateway.context.jobs.current, what="the gateway's first job")

    def stop_gateway(self):
        gateway, self.gateway = self.gateway, None
        return gateway.stopService() if gateway is not None and gateway.running else None

    async def start_agent(self, **changes):
        self.config = MinerAgentConfig.from_reader(ConfigReader(agent_data(self.gateway_port, **changes)))
        self.agent = MinerAgentService(self.config, reactor)
        self.agent.startService()
        self.addCleanup(lambda: self.agent.stopService() if self.agent.running else None)
        await wait_for(lambda: self.agent.context.jobs.current, what="the agent's first job")

    async def miner(self, account="alice.rig1"):
        miner = await connect_miner(self.config.svr.binds[0].port)
        self.addCleanup(lambda: miner.transport.loseConnection())
        await miner.login(account)
        await wait_for(lambda: miner.notifications("mining.notify"), what="the first notify")
        return miner

    async def shares(self, miner, count, start=0, account="alice.rig1"):
        notify = miner.notifications("mining.notify")[-1]
        replies = []
        for i in range(start, start + count):
            en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=i * 1000)
            replies.append(await miner.call("mining.submit", [account, notify[0], en2, ntime, nonce]))
        return replies

    async def credited(self):
        """``{key: num}`` of the share records the gateway shipped, after its graceful stop."""
        await self.stop_gateway()
        await wait_for(lambda: self.writer.records(records.META_SHARE), what="share records")
        return credited_shares(self.writer)


class AgentV2Tests(AgentServiceCase):
    async def test_shares_credited_to_each_miner(self):
        await self.start_gateway()
        await self.start_agent()
        self.assertEqual(self.agent.upstream.version, 2)
        alice, bob = await self.miner("alice.rig1"), await self.miner("bob.rig7")
        for reply in await self.shares(alice, 3) + await self.shares(bob, 2, account="bob.rig7"):
            self.assertIs(reply["result"], True, reply)
        # Judged locally, never sent upstream.
        notify = alice.notifications("mining.notify")[-1]
        en2, ntime, nonce, _ = solve(notify, alice.extranonce1, DIFFICULTY)
        duplicate = await alice.call("mining.submit", ["alice.rig1", notify[0], en2, ntime, nonce])
        self.assertEqual(duplicate["error"][0], 22)
        self.assertEqual(self.agent.upstream.sent, 5)
        self.assertEqual(self.agent.upstream.queued, 0)
        # One connection upstream, two miners counted; getclientsinfo marks it an agent.
        self.assertEqual(len(self.gateway.server.sessions), 1)
        [row] = client_rows([p.session for p in self.gateway.server.sessions], 0,
                            {p.session for p in self.gateway.server.agents})
        self.assertTrue(row["is_agent"])
        self.assertEqual(row["user_agent"], "agent_1")
        # The admin CLI's commands.
        commands = mineragent_commands(self.agent)
        listing = commands["list"]([])
        self.assertIn(" alice rig1 ", listing)
        self.assertTrue(listing.endswith("total 2\n"), listing)
        self.assertIn(f"v2 agent_id {AGENT_ID} sent 5 queued 0 dropped 0", commands["upstream"]([]))
        # ... but counted there, for alice, as a direct miner's duplicate is.
        [session] = self.gateway.server.sessions
        await wait_for(lambda: session.session.share_error == 1, what="the agent's reject report")
        credited = await self.credited()
        self.assertEqual(credited, {"alice": 3, "alice:rig1": 3, "bob": 2, "bob:rig7": 2, "alice:reject": 1,
                                    "alice:rig1:reject": 1})
        events = {(r.user, r.worker, r.event) for _, r in self.writer.records(records.META_EVENT)}
        self.assertEqual(events, {("alice", "rig1", "connected"), ("bob", "rig7", "connected")})

    async def test_block_candidate_in_the_agent_layout(self):
        await self.start_gateway(job=job_body(nbits=REGTEST_BITS, target=REGTEST_TARGET))
        await self.start_agent(diff_min=1024, diff_default=1024)
        miner = await self.miner()
        notify = miner.notifications("mining.notify")[-1]
        coinbase1 = bytes.fromhex(notify[2])
        prepared = self.agent.context.jobs.current
        self.assertTrue(coinbase1.startswith(agent_coinbase1_head(prepared, "alice", AGENT_ID)))
        self.assertIn(bytes([0x12]) + prepared.number.to_bytes(2, "little") + AGENT_ID.to_bytes(4, "little"),
                      coinbase1)
        # A block below the share difficulty: a candidate on both sides.
        en2, ntime, nonce, digest = solve(notify, miner.extranonce1, 0, block=True)
        reply = await miner.call("mining.submit", ["alice.rig1", notify[0], en2, ntime, nonce])
        self.assertIs(reply["result"], True, reply)
        [found] = await wait_for(self.jobmaster.found_blocks, what="the block at the jobmaster")
        self.assertEqual(found["type"], "main")

    async def test_upstream_cut_shares_resent_and_counted_once(self):
        await self.start_gateway()
        await self.start_agent(broadcast_timeout=600)
        miner = await self.miner()
        self.assertEqual([r["result"] for r in await self.shares(miner, 2)], [True, True])
        await self.stop_gateway()
        await wait_for(lambda: not self.agent.upstream.ready, what="the agent to see the gateway gone")
        # Made while the gateway is away: the miner's answer waits for it.
        notify = miner.notifications("mining.notify")[-1]
        en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=50_000)
        msg_id = miner.request("mining.submit", ["alice.rig1", notify[0], en2, ntime, nonce])
        await wait_for(lambda: self.agent.upstream.queued == 1, what="the share queued")
        self.assertFalse([m for m in miner.messages if m.get("id") == msg_id])
        await self.start_gateway()
        reply = await miner.reply(msg_id)
        self.assertIs(reply["result"], True, reply)
        self.assertEqual(self.agent.upstream.queued, 0)
        credited = await self.credited()
        self.assertEqual(credited, {"alice": 3, "alice:rig1": 3})

    async def test_miners_sent_away_when_the_last_job_expires(self):
        await self.start_gateway()
        await self.start_agent(broadcast_timeout=1)
        miner = await self.miner()
        await self.stop_gateway()
        await wait_for(lambda: miner.notifications("client.reconnect"), what="client.reconnect")
        await miner.closed
        self.assertIsNone(self.agent.context.jobs.current)


class AgentV1Tests(AgentServiceCase):
    async def test_against_a_v1_gateway(self):
        await self.start_gateway(agent_v2=False)
        await self.start_agent()
        self.assertEqual(self.agent.upstream.version, 1)
        miner = await self.miner()
        self.assertEqual([r["result"] for r in await self.shares(miner, 2)], [True, True])
        credited = await self.credited()
        self.assertEqual(credited, {"alice": 2, "alice:rig1": 2})

    async def test_v1_agent_against_our_gateway(self):
        await self.start_gateway()
        await self.start_agent(agent_v2=False)
        self.assertEqual(self.agent.upstream.version, 1)
        miner = await self.miner()
        self.assertEqual([r["result"] for r in await self.shares(miner, 2)], [True, True])
        self.assertEqual(self.gateway.server.agents.pop().agent_version, 1)


class UpstreamTransportTests(AgentServiceCase):
    """Our keys: several gateways (failover) and a verified TLS link to the gateway."""

    async def test_failover_to_the_next_gateway(self):
        await self.start_gateway()
        dead = free_port()
        data = agent_data(self.gateway_port, stratum_port=dead, upstream=[f"tcp@127.0.0.1:{self.gateway_port}"])
        self.config = MinerAgentConfig.from_reader(ConfigReader(data))
        self.agent = MinerAgentService(self.config, reactor)
        self.agent.startService()
        self.addCleanup(lambda: self.agent.stopService() if self.agent.running else None)
        await wait_for(lambda: self.agent.upstream.ready, timeout=30, what="the second gateway")
        miner = await self.miner()
        self.assertIs((await self.shares(miner, 1))[0]["result"], True)

    async def test_verified_tls_upstream(self):
        from tests.tools.test_tls import issue, make_ca, pem

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        ca = make_ca()
        server = issue(ca, ["localhost"])
        for name, data in (("key.pem", server.key_pem), ("cert.pem", server.cert_pem), ("ca.pem", pem(ca)),
                           ("other.pem", pem(make_ca("someone else")))):
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        tls_port = free_port()
        await self.start_gateway(svr={"bind": [
            f"ssl:{tls_port}:interface=127.0.0.1:privateKey={directory}/key.pem:certKey={directory}/cert.pem"],
            "max_pkg_size": 10240})
        # A gateway whose certificate is not from the configured CA is never used.
        wrong = f"ssl:host=127.0.0.1:port={tls_port}:caCertFile={directory}/other.pem:hostname=localhost"
        data = agent_data(tls_port, upstream=[wrong])
        del data["stratum_host"], data["stratum_port"]
        config = MinerAgentConfig.from_reader(ConfigReader(data))
        refused = MinerAgentService(config, reactor)
        refused.startService()
        self.addCleanup(lambda: refused.stopService() if refused.running else None)
        right = f"ssl:host=127.0.0.1:port={tls_port}:caCertFile={directory}/ca.pem:hostname=localhost"
        await self.start_agent(upstream=[right], stratum_port=None, stratum_host=None)
        self.assertEqual(self.agent.upstream.version, 2)
        miner = await self.miner()
        self.assertIs((await self.shares(miner, 1))[0]["result"], True)
        self.assertFalse(refused.upstream.ready)
        self.assertIsNone(refused.context.jobs.current)
