"""
``worker_num: 2`` through a REAL mineragent: ``twistd -n
viabtc-mineragent`` as a process (the parent and its two workers) in front
of a real gateway process, with an in-test jobmaster and statistics writer
(the real RPC peers).

Shown: the miners' sessions spread over both workers (a worker's index is
the top bit of its miners' extranonce1 values, its agent id ``agent_id +
index`` is in their coinbases), and 10,000 sessions without two sharing an
extranonce1; each worker subscribed to the gateway on its own link with its
own agent id, and a new job reaching the miners of both; shares of miners
on both workers accepted, and the gateway's per-user and per-worker
statistics equal to the shares the miners were told were accepted; each
worker's ``/metrics`` on the ``metrics`` port + its index; SIGHUP forwarded
to both workers; a worker killed with SIGKILL replaced (it subscribes again
under its agent id) while the port keeps serving; SIGTERM stopping the
parent and both workers.
"""

import os
import re
import signal
import urllib.request

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.gateway.support import StatsWriter, TestJobmaster, connect_miner, job_body, solve, wait_for
from tests.gateway.test_service import DIFFICULTY, gateway_data
from tests.integration.processes import Processes
from tests.integration.test_gateway_workers import children, free_pair, subscribe_once
from tests.mineragent.test_service import credited_shares
from tests.scrape import Scrape
from tests.support import seed_sample

AGENT_ID = 0x5EED0000
ACCOUNTS = [f"user{u}.rig{w}" for u in range(2) for w in range(4)]
#: Shares each miner submits before and after the killed worker's replacement.
SHARES = 2
#: Sessions opened (subscribe, close) for the extranonce1 check (the issue's 10,000), and at once.
SESSIONS = 10_000
BATCH = 250


def worker_of(extranonce1):
    """A miner's worker index: the top bit of its extranonce1 (two workers)."""
    return extranonce1[0] >> 7


def agent_id_in(notify):
    """The agent id of a miner's coinbase: ``... 0x12 | u16 job | u32 agent_id | u32 nonce_id`` ends coinb1."""
    return int.from_bytes(bytes.fromhex(notify[2])[-8:-4], "little")


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return Scrape(response.read().decode())


class MinerAgentWorkersTests(TestCase):
    timeout = 180

    async def test_two_workers_two_links_statistics_restart_and_sigterm(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.procs = Processes(self, directory)
        await self.procs.run(self.scenario(directory))

    async def start(self, directory):
        self.jobmaster = TestJobmaster(job_body())
        jobmaster_port = await self.jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
        self.writer = StatsWriter()
        self.addCleanup(self.writer.stop)
        self.gateway_port = free_pair()
        self.procs.role("gateway", gateway_data(
            jobmaster_port, self.writer.address, os.path.join(directory, "queue"),
            svr={"bind": [f"tcp@127.0.0.1:{self.gateway_port}"], "max_pkg_size": 10240},
            http_svr=None, monitor=None, cli=None))
        self.agent_port, self.metrics_port = free_pair(), free_pair()
        data = seed_sample("mineragent")
        data.pop("log")
        data["svr"]["bind"] = [f"tcp@127.0.0.1:{self.agent_port}"]
        data.update(stratum_port=self.gateway_port, worker_num=2, agent_id=AGENT_ID, cli=f"tcp@127.0.0.1:{free_pair()}",
                    metrics=f"tcp@127.0.0.1:{self.metrics_port}", diff_min=DIFFICULTY / 4, diff_default=DIFFICULTY,
                    diff_max=1024)
        self.agent_config = data
        self.agent = self.procs.role("mineragent", data)
        await self.procs.wait_port("gateway", self.gateway_port)
        await self.procs.wait_port("mineragent", self.agent_port)
        await wait_for(lambda: sorted(self.subscribed()) == [AGENT_ID, AGENT_ID + 1],
                       what="both workers subscribed upstream", timeout=60)

    def subscribed(self):
        """The agent ids the gateway logged a subscribe for, in order."""
        with open(self.procs.log_path("gateway"), errors="replace") as f:
            return [int(m) for m in re.findall(r"agent (\d+) \(protocol v2\) subscribed", f.read())]

    def agent_log(self):
        with open(self.procs.log_path("mineragent"), errors="replace") as f:
            return f.read()

    async def miner(self, account):
        for _ in range(100):
            # A worker refuses miners until its first job arrived.
            miner = await connect_miner(self.agent_port)
            await deferLater(reactor, 0.05, lambda: None)
            if miner.connected:
                break
        self.addCleanup(lambda: miner.connected and miner.transport.loseConnection())
        await miner.login(account)
        await wait_for(lambda: miner.notifications("mining.notify"), what=f"{account}'s first job")
        return miner

    async def shares(self, miners, accepted, first):
        for account, miner in miners.items():
            notify = miner.notifications("mining.notify")[-1]
            for i in range(SHARES):
                en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=(first + i) << 16)
                reply = await miner.call("mining.submit", [account, notify[0], en2, ntime, nonce])
                self.assertIs(reply["result"], True, (account, reply))
                accepted[account] = accepted.get(account, 0) + 1

    async def scenario(self, directory):
        await self.start(directory)
        miners = {a: await self.miner(a) for a in ACCOUNTS}
        workers = {a: worker_of(m.extranonce1) for a, m in miners.items()}
        self.assertEqual(set(workers.values()), {0, 1}, "sessions all on one worker")
        for account, miner in miners.items():
            self.assertEqual(agent_id_in(miner.notifications("mining.notify")[-1]), AGENT_ID + workers[account])
        accepted = {}
        await self.shares(miners, accepted, 0)

        # Each worker's /metrics on the metrics port + its index: its own miners and shares.
        scrapes = [await threads.deferToThread(scrape, self.metrics_port + i) for i in (0, 1)]
        for index, s in enumerate(scrapes):
            mine = [a for a, w in workers.items() if w == index]
            self.assertEqual(s.value("viabtc_sessions"), len(mine))
            self.assertEqual(s.value("viabtc_shares_total", result="accepted", reason=""), SHARES * len(mine))
            self.assertEqual(s.value("viabtc_link_up", link="gateway"), 1)

        # No two sessions of the farm share an extranonce1, whichever worker took them.
        values = []
        for _ in range(SESSIONS // BATCH):
            values += await defer.gatherResults(
                [defer.ensureDeferred(subscribe_once(self.agent_port)) for _ in range(BATCH)])
        values += [m.extranonce1 for m in miners.values()]
        self.assertEqual(len(set(values)), len(values))
        self.assertEqual({worker_of(v) for v in values}, {0, 1})

        # SIGHUP to the parent: forwarded, each worker applies the new bounds itself.
        self.procs.write_config("mineragent", dict(self.agent_config, diff_max=512))
        os.kill(self.agent.pid, signal.SIGHUP)
        await wait_for(lambda: self.agent_log().count("applied stratum") == 3,
                       what="the parent's and both workers' reload lines")

        # A new job reaches the miners of both workers, each worker's from its own link.
        self.jobmaster.push_job(job_body("2", prevhash="22" * 32))
        for account, miner in miners.items():
            await wait_for(lambda: miner.notifications("mining.notify")[-1][0] == "2", what=f"job 2 at {account}")

        # A worker killed: replaced under its agent id; its miners come back on the port.
        pid = self.agent.pid
        before = children(pid)
        self.assertEqual(len(before), 2)
        victim = sorted(before)[0]
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: len(children(pid) - {victim}) == 2, what="the killed worker replaced", timeout=60)
        index = int(re.search(rf"worker (\d) started \(pid {victim}\)", self.agent_log()).group(1))
        await wait_for(lambda: len(self.subscribed()) == 3, what="the new worker subscribed", timeout=60)
        self.assertEqual(self.subscribed()[-1], AGENT_ID + index)
        cut = [a for a, w in workers.items() if w == index]
        await wait_for(lambda: not any(miners[a].connected for a in cut), what="the dead worker's miners cut")
        self.assertTrue(all(m.connected for a, m in miners.items() if a not in cut))
        for account in cut:
            miners[account] = await self.miner(account)
        await self.shares(miners, accepted, SHARES)
        self.procs.check_alive("gateway", "mineragent")

        # SIGTERM: the parent stops both workers.
        for miner in miners.values():
            miner.transport.loseConnection()
        self.assertIn(await self.procs.terminate("mineragent", timeout=30), (0, -signal.SIGTERM))
        self.assertEqual(children(pid), set())
        self.assertIn(await self.procs.terminate("gateway", timeout=30), (0, -signal.SIGTERM))

        # The gateway credited every share the miners were told was accepted, to its user.worker.
        credited = credited_shares(self.writer)
        for account, count in accepted.items():
            self.assertEqual(credited.get(account.replace(".", ":"), 0), count, account)
        for user in ("user0", "user1"):
            self.assertEqual(credited.get(user, 0), sum(c for a, c in accepted.items() if a.startswith(user + ".")))
        self.assertEqual(sum(accepted.values()), 2 * SHARES * len(ACCOUNTS))
