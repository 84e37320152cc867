"""
``worker_num: 2`` through a REAL gateway: ``twistd -n viabtc-gateway`` as
a process (the parent and its two workers), an in-test jobmaster (the real
RPC server) and a real metawriter writing a real redis-server.

Shown: sessions spread over both workers (a worker's index is the top bit
of its extranonce1); extranonce1 unique across many sessions; jobs and bans
reach every worker; Redis per-user and per-worker share counts equal the
shares the miners had accepted, after SIGTERM stopped the parent and both
workers with nothing in flight lost; a worker killed with SIGKILL is
replaced and the port keeps serving.
"""

import json
import os
import signal
import socket
import urllib.request

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial import unittest

from viabtc.config import AlertBlock, RedisBlock, ServerBlock, parse_address
from viabtc.devnet import free_port
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.service import MetaWriterService

from tests.gateway.support import TestJobmaster, connect_miner, job_body, solve, wait_for
from tests.integration.processes import Processes
from tests.support import redis_server

DIFFICULTY = 2.0 ** -20
#: Sessions opened for the extranonce1 test: the issue's 10,000.
SESSIONS = 10_000
#: Sessions opened at once.
BATCH = 250


def free_pair():
    """A free port whose next port is free too (http_svr's port + worker index)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


def getclientsinfo(port):
    """The gateway HTTP interface's ``getclientsinfo`` answer at ``port``."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", method="POST",
                                     data=b'{"id":1,"method":"getclientsinfo","params":[]}')
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def children(pid):
    """The pids of ``pid``'s child processes."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def worker_of(extranonce1):
    """A session's worker index: the top bit of its extranonce1 (two workers)."""
    return extranonce1[0] >> 7


async def subscribe_once(port):
    """Open a session, subscribe, close; its extranonce1 (bytes)."""
    miner = await connect_miner(port)
    try:
        reply = await miner.call("mining.subscribe", ["workers-test"])
        return bytes.fromhex(reply["result"][1])
    finally:
        miner.transport.loseConnection()
        await miner.closed


class GatewayWorkersTests(unittest.TestCase):
    timeout = 180

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.processes = Processes(self, self.dir)

    async def start_gateway(self, writer_port=None):
        self.jobmaster = TestJobmaster(job_body("1"))
        jobmaster_port = await self.jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
        self.port = free_port()
        self.http_port = free_pair()
        writer = (f"tcp@127.0.0.1:{writer_port}" if writer_port else f"udp@127.0.0.1:{free_port()}")
        config = {
            "alert": {"host": "gw-workers"},
            "svr": {"bind": [f"tcp@127.0.0.1:{self.port}"], "max_pkg_size": 10240},
            "http_svr": {"bind": f"tcp@127.0.0.1:{self.http_port}", "max_pkg_size": 10240},
            "job": {"name": "jobmaster", "addr": [f"tcp@127.0.0.1:{jobmaster_port}"],
                    "max_pkg_size": 1 << 20, "reconnect_timeout": 0.2},
            "writer": {"name": "writer", "addr": [writer], "max_pkg_size": 1 << 20, "reconnect_timeout": 0.2},
            "coin": "btc",
            "queue": os.path.join(self.dir, "gateway-queue"),
            "worker_id": 40,
            "worker_num": 2,
            "diff_min": DIFFICULTY,
            "diff_max": 1024,
            "diff_default": 1,
            "target_time": 10,
            "retarget_time": 600,
            "stats_drain_timeout": 10,
        }
        self.gateway_config = config
        self.gateway = self.processes.role("gateway", config)
        await self.processes.wait_port("gateway", self.port)
        await wait_for(lambda: self.jobmaster.links == 2, what="both workers linked to the jobmaster", timeout=60)

    async def sessions(self, count, batch=BATCH):
        values = []
        for start in range(0, count, batch):
            values += await defer.gatherResults(
                [defer.ensureDeferred(subscribe_once(self.port)) for _ in range(min(batch, count - start))])
        return values

    async def miner(self, account):
        miner = await connect_miner(self.port)
        self.addCleanup(lambda: miner.connected and miner.transport.loseConnection())
        await miner.login(account, f"d={DIFFICULTY!r}")
        await wait_for(lambda: miner.notifications("mining.notify"), what=f"{account}'s first job")
        return miner

    async def share(self, miner, account, extranonce2):
        notify = miner.notifications("mining.notify")[-1]
        en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=extranonce2)
        reply = await miner.call("mining.submit", [account, notify[0], en2, ntime, nonce])
        return reply["result"] is True

    def start_writer(self, server):
        trust = os.path.join(self.dir, "trust.json")
        with open(trust, "w") as f:
            f.write('{"127.0.0.1": "the gateway"}')
        port = free_port()
        config = MetaWriterConfig(
            svr=ServerBlock((parse_address(f"tcp@127.0.0.1:{port}"),), 1 << 20),
            redis=RedisBlock("127.0.0.1", server.port), alert=AlertBlock("mw-1"), trust_file=trust,
            journal=os.path.join(self.dir, "mw-journal"), redis_retry_interval=0.1)
        writer = MetaWriterService(config, reactor)
        writer.privilegedStartService()
        writer.startService()
        self.addCleanup(lambda: writer.running and writer.stopService())
        return writer, port

    async def test_sessions_jobs_bans_statistics_and_sigterm(self):
        server = redis_server(self)
        writer, writer_port = self.start_writer(server)
        await self.processes.run(self._sessions_jobs_bans_statistics(server, writer, writer_port))

    async def _sessions_jobs_bans_statistics(self, server, writer, writer_port):
        await self.start_gateway(writer_port)
        accounts = [f"user{u}.rig{w}" for u in range(3) for w in range(4)]
        miners = {a: await self.miner(a) for a in accounts}
        workers = {worker_of(m.extranonce1) for m in miners.values()}
        self.assertEqual(workers, {0, 1}, "sessions all on one worker")
        # Each worker's HTTP interface on http_svr's port + its index, listing its own sessions.
        listed = []
        for index in (0, 1):
            body = await threads.deferToThread(getclientsinfo, self.http_port + index)
            listed += [(index, c["user"], c["worker"]) for c in body["result"]]
        self.assertEqual(sorted(f"{u}.{w}" for _, u, w in listed), sorted(accounts))
        self.assertEqual({i for i, _, _ in listed}, {0, 1})

        # A job reaches every worker's miners.
        self.jobmaster.push_job(job_body("2", prevhash="22" * 32))
        for account, miner in miners.items():
            await wait_for(lambda: miner.notifications("mining.notify")[-1][0] == "2", what=f"job 2 at {account}")

        accepted = {}
        extranonce2 = 0
        for round_ in range(3):
            for account, miner in miners.items():
                extranonce2 += 1
                if await self.share(miner, account, extranonce2 << 24):
                    accepted[account] = accepted.get(account, 0) + 1
        self.assertEqual(sum(accepted.values()), 3 * len(accounts))

        # A ban reaches every worker: new connections from 127.0.0.1 are closed by both.
        self.jobmaster.push_ban("add", ["127.0.0.1"])
        await deferLater(reactor, 0.5, lambda: None)
        for _ in range(8):
            probe = await connect_miner(self.port)
            probe.send_raw(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
            await probe.closed
            self.assertEqual(probe.messages, [])
        self.jobmaster.push_ban("del", ["127.0.0.1"])
        await deferLater(reactor, 0.5, lambda: None)

        # SIGHUP to the parent: forwarded, each worker applies the new bounds itself.
        self.processes.write_config("gateway", dict(self.gateway_config, diff_max=512))
        os.kill(self.gateway.pid, signal.SIGHUP)

        def reloaded():
            with open(self.processes.log_path("gateway"), errors="replace") as f:
                return [line for line in f if "reloaded" in line and "applied stratum" in line]

        await wait_for(lambda: len(reloaded()) == 3, what="the parent's and both workers' reload lines")

        # SIGTERM: the parent stops both workers, which flush and drain their statistics.
        pid = self.gateway.pid
        self.assertEqual(len(children(pid)), 2)
        code = await self.processes.terminate("gateway", timeout=40)
        self.assertIn(code, (0, -signal.SIGTERM))
        self.assertEqual(children(pid), set())
        await writer.stopService()

        def total(key):
            return sum(int(v) for v in server.command("HVALS", key))

        for account, count in accepted.items():
            user, worker = account.split(".")
            self.assertEqual(total(f"btc:s:{user}:{worker}"), count, account)
        for u in range(3):
            self.assertEqual(total(f"btc:s:user{u}"), sum(c for a, c in accepted.items() if a.startswith(f"user{u}.")))
        self.assertEqual(total("btc:m:share"), sum(accepted.values()))
        self.assertEqual(total("btc:mh:gw-workers:share"), sum(accepted.values()))
        events = server.command("LRANGE", "newevent", 0, -1)
        self.assertEqual(sum('"connected"' in e for e in events), len(accounts))
        self.assertEqual(sum('"disconnected"' in e for e in events), len(accounts))

    async def test_unique_extranonce1_and_a_killed_worker_replaced(self):
        await self.processes.run(self._unique_and_replaced())

    async def _unique_and_replaced(self):
        await self.start_gateway()
        values = await self.sessions(SESSIONS)
        self.assertEqual(len(set(values)), SESSIONS)
        self.assertEqual({worker_of(v) for v in values}, {0, 1})

        pid = self.gateway.pid
        before = children(pid)
        self.assertEqual(len(before), 2)
        victim = sorted(before)[0]
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: len(children(pid) - {victim}) == 2, what="the killed worker replaced", timeout=60)
        await wait_for(lambda: self.jobmaster.links == 3, what="the new worker linked", timeout=60)
        # The port served on throughout, and both workers serve it again.
        values = set()
        while {worker_of(v) for v in values} != {0, 1}:
            values.update(await self.sessions(50, batch=50))
        self.processes.check_alive("gateway")
