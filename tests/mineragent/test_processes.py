"""
The mineragent and the gateway as real ``twistd`` processes (the jobmaster
and the statistics writer are real RPC peers in the test): the upstream
cut and restarted under protocol v2 (no share lost or counted twice, miners
sent away once the last job expired), our agent against a gateway that
speaks only v1, and a seed agent's v1 session, byte for byte as the C
mineragent writes it, against our gateway.
"""

import json
import os
import signal
import socket
import struct

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.merkle import merkle_root_from_branch
from viabtc.bitcoin.target import difficulty_to_target
from viabtc.devnet import free_port
from viabtc.stats import records
from viabtc.stratum.coinbase import agent_coinbase1_head, coinbase1_tail
from viabtc.stratum.job import Job, PreparedJob

from tests.gateway.support import StatsWriter, TestJobmaster, connect_miner, job_body, solve, wait_for
from tests.gateway.test_service import DIFFICULTY, gateway_data
from tests.integration.processes import Processes
from tests.mineragent.test_service import credited_shares
from tests.support import seed_sample


#: How long the upstream is cut: the issue's 30 s, within the seed sample's
#: ``broadcast_timeout`` of 55 s, so the miners keep mining the last real job.
CUT_SECONDS = 30.0


def credited(writer, key="alice:rig1"):
    return credited_shares(writer).get(key, 0)


class AgentProcesses(TestCase):
    timeout = 120

    async def setup(self, gateway=None, agent=None, with_agent=True):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.procs = Processes(self, directory)
        self.jobmaster = TestJobmaster(job_body())
        jobmaster_port = await self.jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
        self.writer = StatsWriter()
        self.addCleanup(self.writer.stop)
        self.gateway_port, self.agent_port = free_port(), free_port()
        self.gateway_config = gateway_data(
            jobmaster_port, self.writer.address, os.path.join(directory, "queue"),
            svr={"bind": [f"tcp@127.0.0.1:{self.gateway_port}"], "max_pkg_size": 10240},
            http_svr=None, monitor=None, cli=None, **(gateway or {}))
        await self.start_gateway()
        if with_agent:
            data = seed_sample("mineragent")
            data.pop("log")
            data.pop("cli")
            data["svr"]["bind"] = [f"tcp@127.0.0.1:{self.agent_port}"]
            data["stratum_port"] = self.gateway_port
            data.update(diff_min=DIFFICULTY / 4, diff_default=DIFFICULTY, diff_max=1024)
            data.update(agent or {})
            self.procs.role("mineragent", data)
            await self.procs.wait_port("mineragent", self.agent_port)

    async def start_gateway(self):
        self.procs.role("gateway", self.gateway_config)
        await self.procs.wait_port("gateway", self.gateway_port)

    async def stop_gateway(self):
        self.assertIn(await self.procs.terminate("gateway"), (0, -signal.SIGTERM))

    async def miner(self):
        for _ in range(200):
            # The agent refuses miners until its first job arrived.
            miner = await connect_miner(self.agent_port)
            await deferLater(reactor, 0.05, lambda: None)
            if miner.connected:
                break
        self.addCleanup(lambda: miner.transport.loseConnection())
        await miner.login("alice.rig1")
        await wait_for(lambda: miner.notifications("mining.notify"), what="a job through the agent")
        return miner

    def submit(self, miner, index):
        notify = miner.notifications("mining.notify")[-1]
        en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=index * 1000)
        return miner.request("mining.submit", ["alice.rig1", notify[0], en2, ntime, nonce])

    async def run_scenario(self, scenario):
        """Await ``scenario()``; on failure print every process's log."""
        try:
            await scenario()
        except BaseException:
            if hasattr(self, "procs"):
                print(self.procs.logs())
            raise

    def agent_log(self):
        with open(self.procs.log_path("mineragent")) as f:
            return f.read()


class UpstreamCutTests(AgentProcesses):
    async def test_v2_no_share_lost_or_counted_twice(self):
        async def scenario():
            await self.setup()
            miner = await self.miner()
            for i in range(3):
                self.assertIs((await miner.reply(self.submit(miner, i)))["result"], True)
            await self.stop_gateway()
            # Found while the gateway is away: held, then sent to the next gateway.
            waiting = [self.submit(miner, i) for i in range(3, 6)]
            await deferLater(reactor, CUT_SECONDS, lambda: None)
            self.assertFalse([m for m in miner.messages if m.get("id") in waiting])
            await self.start_gateway()
            for msg_id in waiting:
                self.assertIs((await miner.reply(msg_id))["result"], True)
            for i in range(6, 8):
                self.assertIs((await miner.reply(self.submit(miner, i)))["result"], True)
            await self.stop_gateway()
            self.assertEqual(credited(self.writer), 8)
            self.assertEqual(credited(self.writer, "alice:rig1:reject"), 0)

        await self.run_scenario(scenario)

    async def test_miners_sent_away_when_the_last_job_expires(self):
        async def scenario():
            await self.setup(agent={"broadcast_timeout": 2})
            miner = await self.miner()
            await self.stop_gateway()
            await wait_for(lambda: miner.notifications("client.reconnect"), what="client.reconnect")
            await miner.closed
            # Refused until a gateway sends a job again.
            late = await connect_miner(self.agent_port)
            await late.closed
            self.assertIn("sent client.reconnect", self.agent_log())

        await self.run_scenario(scenario)


class V1Tests(AgentProcesses):
    async def test_our_agent_against_a_v1_only_gateway(self):
        async def scenario():
            await self.setup(gateway={"agent_v2": False})
            miner = await self.miner()
            for i in range(3):
                self.assertIs((await miner.reply(self.submit(miner, i)))["result"], True)
            self.assertIn("speaks agent protocol v1", self.agent_log())
            await self.stop_gateway()
            self.assertEqual(credited(self.writer), 3)

        await self.run_scenario(scenario)

    async def test_a_seed_agent_session_against_our_gateway(self):
        """The C mineragent's lines (jansson's json_dumps(message, 0) format), as a plain socket writes them."""

        async def scenario():
            await self.setup(with_agent=False)
            count = await threads.deferToThread(self.seed_agent_session)
            self.assertEqual(count, 3)
            await self.stop_gateway()
            self.assertEqual(credited(self.writer, "bob:rig9"), 3)
            events = {(r.user, r.worker, r.event) for _, r in self.writer.records(records.META_EVENT)}
            self.assertIn(("bob", "rig9", "connected"), events)

        await self.run_scenario(scenario)

    def seed_agent_session(self):
        agent_id, miner_id, nonce_id, extranonce1 = 0x5EED0001, 7, 0x01020304, bytes.fromhex("0a0b0c0d")

        def line(msg_id, method, params):
            return json.dumps({"id": msg_id, "method": method, "params": params}).encode() + b"\n"

        with socket.create_connection(("127.0.0.1", self.gateway_port), 10) as s:
            f = s.makefile("rb")
            s.sendall(line(1700000000000, "agent.subscribe", [1, agent_id]))
            self.assertEqual(json.loads(f.readline()), {"id": 1700000000000, "error": None, "result": True})
            job = json.loads(f.readline())
            self.assertNotIn("id", job)
            self.assertIn("aux_target", job)
            prepared = PreparedJob.prepare(Job.from_json(job), 0)
            s.sendall(line(1700000000001, "agent.sync", [miner_id, nonce_id, extranonce1.hex(), DIFFICULTY])
                      + line(1700000000002, "agent.event", ["bob", "rig9", "connected"]))
            self.assertIs(json.loads(f.readline())["result"], True)
            # The C agent's coinbase: 0x12 | u16 job id | u32 agent id | u32 nonce id | en1 | en2.
            head = agent_coinbase1_head(prepared, "bob", agent_id) + coinbase1_tail(nonce_id)
            script_end = head[-11:]
            self.assertEqual(script_end, b"\x12" + struct.pack("<HII", prepared.number, agent_id, nonce_id))
            target = difficulty_to_target(DIFFICULTY)
            sent = 0
            for en2_counter in range(1000):
                en2 = en2_counter.to_bytes(8, "big")
                coinbase = head + extranonce1 + en2 + prepared.coinbase2
                root = merkle_root_from_branch(sha256d(coinbase), prepared.branch)
                for nonce in range(1 << 16):
                    header = struct.pack("<I32s32sIII", prepared.version, prepared.prevhash, root,
                                         prepared.curtime, prepared.nbits, nonce)
                    if int.from_bytes(sha256d(header), "little") <= target:
                        s.sendall(line(1700000000010 + sent, "agent.submit", [
                            miner_id, "bob.rig9", prepared.job_id, en2.hex(), f"{prepared.curtime:08x}",
                            f"{nonce:08x}", 0, 0, 0]))
                        sent += 1
                        break
                if sent == 3:
                    break
            s.sendall(line(1700000000020, "agent.status", [1700000040, 1]))
            # v1: no answer to submits; a sync's answer shows they were all read.
            s.sendall(line(1700000000021, "agent.sync", [miner_id, nonce_id, extranonce1.hex(), DIFFICULTY]))
            self.assertEqual(json.loads(f.readline())["id"], 1700000000021)
            return sent
