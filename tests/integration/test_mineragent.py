"""
Issue 11's end-to-end test: a farm's miners behind one mineragent, all as
real processes.

A real bcoin regtest node; the jobmaster, two gateways, the mineragent and
the metawriter as ``twistd`` processes; a real redis-server.  Gateway
"agent" (coin ``agent``) has the mineragent in front of it; gateway
"direct" (coin ``direct``) takes the same miners directly.  ``MINERS``
light Stratum clients in the test connect through the agent and as many
again directly, with the same accounts, and play the same script: valid
shares, then a duplicate, an unknown job and an out-of-range ntime.  Every
per-user and per-worker count in Redis (shares and rejects) must be the
same under both coins, and equal to what the miners were told.  The
script's shares are chosen so that none solves a block (on regtest half of
all hashes do), so both runs see one job and the counts cannot depend on
timing.  Then ``viabtc-miner`` mines real blocks through the agent: the node
accepts them, and their coinbases carry the agent layout (``0x12``, the job
id, the agent id).
"""

import os
import signal
import time

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.target import bits_to_target
from viabtc.devnet import free_port
from viabtc.stratum.client import StratumJob
from viabtc.tools.mining import header_prefix

from tests.gateway.support import connect_miner, wait_for
from tests.integration.processes import BIN, Processes
from tests.integration.test_mining import gateway_config, jobmaster_config
from tests.integration.test_stats_pipeline import snapshot
from tests.mineragent.test_config import seed_sample
from tests.support import bcoin_node, redis_server

#: Simulated miners on each path (the issue's farm of 1,000).
MINERS = 1000
USERS = 40
VALID = 2
AGENT_ID = 0x0A6E4711
DIFFICULTY = 1e-12
BLOCKS = 2
MINING_DEADLINE = 300.0


async def in_thread(f, *args):
    return await threads.deferToThread(f, *args)


def non_block_shares(notify, extranonce1, count, first):
    """``count`` valid shares (every hash is one at DIFFICULTY) that are not blocks."""
    job = StratumJob.from_notify(notify)
    block_target = bits_to_target(job.bits)
    shares = []
    counter = first
    while len(shares) < count:
        en2 = counter.to_bytes(8, "big")
        counter += 1
        prefix = header_prefix(job, extranonce1, en2, job.version)
        for nonce in range(64):
            digest = sha256d(prefix + nonce.to_bytes(4, "little"))
            if int.from_bytes(digest, "little") > block_target:
                shares.append((en2.hex(), f"{job.time:08x}", f"{nonce:08x}"))
                break
    return shares


async def play(port, account, index):
    """One miner's script; returns ``(accepted, {reject code: count})`` as it was told."""
    miner = await connect_miner(port)
    try:
        await miner.login(account)
        await wait_for(lambda: miner.notifications("mining.notify"), timeout=60, what="a job")
        notify = miner.notifications("mining.notify")[-1]
        job_id, ntime = notify[0], notify[7]
        shares = non_block_shares(notify, miner.extranonce1, VALID, index * 100)
        script = [[account, job_id, *share] for share in shares]
        script.append(script[0])  # duplicate
        script.append([account, "beef", *shares[0]])  # unknown job
        script.append([account, job_id, shares[1][0], f"{int(ntime, 16) - 10_000:08x}", shares[1][2]])  # ntime
        accepted, rejected = 0, {}
        for params in script:
            reply = await miner.call("mining.submit", params)
            if reply["result"] is True:
                accepted += 1
            else:
                code = reply["error"][0]
                rejected[code] = rejected.get(code, 0) + 1
        return accepted, rejected
    finally:
        miner.transport.loseConnection()


def totals(contents, coin):
    """``{key without coin: sum of its minute fields}`` of the share hashes of ``coin``."""
    out = {}
    for key, value in contents.items():
        parts = key.split(":")
        if parts[0] == coin and parts[1] == "s" and isinstance(value, dict):
            out[":".join(parts[2:])] = sum(int(v) for v in value.values())
    return out


class FarmBehindOneAgent(TestCase):
    timeout = 600

    async def test_farm_through_the_agent(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        procs = Processes(self, directory)
        node = bcoin_node(self)
        redis = redis_server(self)
        await procs.run(self.scenario(node, redis, procs, directory))

    async def scenario(self, node, redis, procs, directory):
        ports = {name: free_port() for name in ("jobmaster", "metawriter", "agent_gw", "direct_gw", "agent")}
        trust = os.path.join(directory, "trust.json")
        with open(trust, "w") as f:
            f.write('{"127.0.0.1": "the test\'s gateways"}')
        procs.role("metawriter", {
            "alert": {"host": "mw-e2e"},
            "svr": {"bind": [f"tcp@127.0.0.1:{ports['metawriter']}", f"udp@127.0.0.1:{ports['metawriter']}"],
                    "max_pkg_size": 1 << 20},
            "redis": {"host": "127.0.0.1", "port": redis.port},
            "trust_file": trust,
            "journal": os.path.join(directory, "metawriter-journal"),
        })
        procs.role("jobmaster", jobmaster_config(node, ports["jobmaster"], os.path.join(directory, "found")))
        await procs.wait_port("jobmaster", ports["jobmaster"])
        # TCP to the metawriter: a burst of UDP datagrams can overflow its socket, and a
        # gateway that stops waits only stats_drain_timeout for the ACKs.
        writer = type("Writer", (), {"address": f"tcp@127.0.0.1:{ports['metawriter']}"})
        for name, coin, worker_id in (("agent_gw", "agent", 1), ("direct_gw", "direct", 2)):
            self.role(procs, "gateway", f"gateway-{coin}", gateway_config(
                ports[name], ports["jobmaster"], writer, os.path.join(directory, f"queue-{coin}"),
                coin=coin, worker_id=worker_id, alert={"host": f"gw-{coin}"}, diff_min=DIFFICULTY,
                diff_default=DIFFICULTY, stats_drain_timeout=10))
            await procs.wait_port(f"gateway-{coin}", ports[name])
        agent = seed_sample()
        agent.pop("log")
        agent.pop("cli")
        agent["svr"]["bind"] = [f"tcp@127.0.0.1:{ports['agent']}"]
        agent["stratum_port"] = ports["agent_gw"]
        agent.update(agent_id=AGENT_ID, diff_min=DIFFICULTY, diff_default=DIFFICULTY)
        procs.role("mineragent", agent)
        await procs.wait_port("mineragent", ports["agent"])

        # -- the farm: the same script through the agent and directly -------------
        async def farm(port):
            results = []
            for start in range(0, MINERS, 250):
                batch = [defer.ensureDeferred(play(port, f"user{i % USERS}.rig{i}", i))
                         for i in range(start, min(start + 250, MINERS))]
                results.extend(await defer.gatherResults(batch, consumeErrors=True))
            return results

        await self.until_jobs_reach(ports["agent"])
        through_agent, direct = await defer.gatherResults(
            [defer.ensureDeferred(farm(ports["agent"])), defer.ensureDeferred(farm(ports["direct_gw"]))],
            consumeErrors=True)
        expected = (VALID, {22: 1, 21: 1, 27: 1})
        self.assertEqual(through_agent, [expected] * MINERS)
        self.assertEqual(direct, [expected] * MINERS)

        # -- blocks through the agent ---------------------------------------------
        start = await in_thread(node.rpc, "getblockcount")
        procs.miner("miner", "-o", f"stratum+tcp://127.0.0.1:{ports['agent']}", "-u", "finder.rig1",
                    "-p", "d=0.001", "--max-blocks", str(BLOCKS * 10), "--report-interval", "5")
        deadline = time.monotonic() + MINING_DEADLINE
        while (height := await in_thread(node.rpc, "getblockcount")) < start + BLOCKS:
            procs.check_alive("jobmaster", "gateway-agent", "mineragent", "miner")
            if time.monotonic() > deadline:
                break
            await deferLater(reactor, 0.2, lambda: None)
        self.assertGreaterEqual(height, start + BLOCKS, "blocks found through the agent were accepted")
        await procs.terminate("miner")
        for h in range(start + 1, start + BLOCKS + 1):
            raw = await in_thread(node.rpc, "getblock", await in_thread(node.rpc, "getblockhash", h), False)
            script_sig = parse_block(bytes.fromhex(raw)).transactions[0].inputs[0].script_sig
            # ... 0x12, u16 job id, u32 agent id, u32 nonce_id, extranonce1, extranonce2
            self.assertEqual(script_sig[-23], 0x12)
            self.assertEqual(int.from_bytes(script_sig[-20:-16], "little"), AGENT_ID)
            self.assertIn(b"Mined by finder/", script_sig)

        # -- the statistics, from Redis ---------------------------------------------
        for name in ("mineragent", "gateway-agent", "gateway-direct"):
            self.assertIn(await procs.terminate(name, timeout=30), (0, -signal.SIGTERM), name)
        self.assertIn(await procs.terminate("metawriter", timeout=30), (0, -signal.SIGTERM))
        contents = snapshot(redis)
        agent_counts, direct_counts = totals(contents, "agent"), totals(contents, "direct")
        agent_counts = {k: v for k, v in agent_counts.items() if not k.startswith("finder")}
        # Every key that differs, with both counts (the first 20, and how many in all).
        differ = sorted(k for k in set(agent_counts) | set(direct_counts)
                        if agent_counts.get(k) != direct_counts.get(k))
        self.assertEqual([(k, agent_counts.get(k), direct_counts.get(k)) for k in differ][:20], [], len(differ))
        per_user = MINERS // USERS
        self.assertEqual(direct_counts["user0"], VALID * per_user)
        self.assertEqual(direct_counts["user0:rig0"], VALID)
        self.assertEqual(direct_counts["user0:rig0:reject"], 3)
        self.assertEqual(direct_counts["user0:reject"], 3 * per_user)
        self.assertEqual(len(direct_counts), 2 * USERS + 2 * MINERS)

    def role(self, procs, role, name, config):
        """``twistd -n viabtc-<role>`` as process ``name`` (two gateways run here)."""
        path = procs.write_config(name, config)
        return procs.spawn(name, [os.path.join(BIN, "twistd"), "-n", "--pidfile=", f"viabtc-{role}",
                                  "--config", path])

    async def until_jobs_reach(self, port):
        """The agent refuses miners until the gateway's first job reached it."""
        for _ in range(300):
            miner = await connect_miner(port)
            await deferLater(reactor, 0.1, lambda: None)
            if miner.connected:
                miner.transport.loseConnection()
                return
        raise AssertionError("the agent never accepted a miner")
