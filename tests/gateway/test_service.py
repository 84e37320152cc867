"""
The gateway service in-process over real sockets: a jobmaster RPC server in
the test sends real cmd 1 jobs and cmd 3 bans, miners speak Stratum over
TCP, statistics arrive at a real UDP writer.
"""

import json
import os
import time
from io import BytesIO

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import capturedLogs, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, FileBodyProducer, readBody

from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.rpc.codec import Command
from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.service import GatewayService
from viabtc.stats import records
from viabtc.stats.gateway_agg import minute_start
from viabtc.stratum.job import Job, PreparedJob

from tests.gateway.support import StatsWriter, TestJobmaster, connect_miner, job_body, solve, wait_for
from tests.stratum.jobs import REGTEST_BITS, REGTEST_TARGET

WORKER_ID = 0x1234
DIFFICULTY = 1e-6
#: The jobmaster link's heartbeat timeout in these tests.  The default 3 s
#: is shorter than a stall of this process on a loaded CI machine, after
#: which both ends drop the link and the jobmaster sends its job again:
#: right for a pool, but it would change what these tests count.  Links
#: that must drop here are dropped by the test.
HEARTBEAT_TIMEOUT = 60


def gateway_data(jobmaster_port, writer_address, queue, **changes):
    data = {
        "alert": {"host": "gw-test"},
        "svr": {"bind": [f"tcp@127.0.0.1:{free_port()}"], "max_pkg_size": 10240},
        "http_svr": {"bind": [f"tcp@127.0.0.1:{free_port()}"], "max_pkg_size": 102400},
        "monitor": {"bind": f"tcp@127.0.0.1:{free_port()}", "max_pkg_size": 10240},
        "job": {"name": "jobmaster", "addr": [f"tcp@127.0.0.1:{jobmaster_port}"], "max_pkg_size": 1 << 20,
                "reconnect_timeout": 0.1, "heartbeat_timeout": HEARTBEAT_TIMEOUT},
        "writer": {"name": "writer", "addr": [writer_address], "max_pkg_size": 1 << 20},
        "cli": f"tcp@127.0.0.1:{free_port()}",
        "coin": "btc",
        "queue": queue,
        "worker_id": WORKER_ID,
        "diff_min": DIFFICULTY / 4,
        "diff_max": 1024,
        "diff_default": DIFFICULTY,
        "target_time": 4,
        "retarget_time": 120,
        "stats_drain_timeout": 5,
    }
    data.update(changes)
    return data


async def running_gateway(testcase, build=GatewayService):
    """
    ``build(config, reactor)`` for ``gateway_data`` in this process, with a
    test jobmaster and statistics writer, started and holding its first job;
    returns ``(service, data)``; everything stops at the test's cleanup.
    """
    jobmaster = TestJobmaster(job_body())
    port = await jobmaster.listen()
    testcase.addCleanup(lambda: defer.ensureDeferred(jobmaster.stop()))
    writer = StatsWriter()
    testcase.addCleanup(writer.stop)
    data = gateway_data(port, writer.address, os.path.abspath(testcase.mktemp()))
    service = build(GatewayConfig.from_reader(ConfigReader(data)), reactor)
    service.startService()
    testcase.addCleanup(service.stopService)
    await wait_for(lambda: service.context.jobs.current, what="the first job")
    return service, data


class Collect(Protocol):
    """A TCP client keeping whatever it receives."""

    data = b""

    def dataReceived(self, data):
        self.data += data


class GatewayServiceTests(TestCase):
    timeout = 60

    async def start(self, job=None, **changes):
        self.jobmaster = TestJobmaster(job_body() if job is None else job or None)
        self.jobmaster_port = await self.jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
        self.writer = StatsWriter()
        self.addCleanup(self.writer.stop)
        data = gateway_data(self.jobmaster_port, self.writer.address, os.path.abspath(self.mktemp()), **changes)
        self.config = GatewayConfig.from_reader(ConfigReader(data))
        self.service = GatewayService(self.config, reactor)
        self.service.startService()
        self.stopped = False
        self.addCleanup(self.stop)
        self.port = self.config.svr.binds[0].port
        if job is not False:
            await wait_for(lambda: self.service.context.jobs.current, what="the first job")

    def stop(self):
        if self.stopped:
            return None
        self.stopped = True
        return self.service.stopService()

    async def miner(self, account="alice.rig1"):
        miner = await connect_miner(self.port)
        self.addCleanup(lambda: miner.transport.loseConnection())
        await miner.login(account)
        await wait_for(lambda: miner.notifications("mining.notify"), what="the first notify")
        return miner

    # -- jobs -----------------------------------------------------------------

    async def test_jobs_reach_miners(self):
        """The first job is notified clean; a new job is notified; a clean one retires the old ids."""
        await self.start()
        miner = await self.miner()
        first = miner.notifications("mining.notify")[0]
        self.assertEqual(first[0], "1")
        self.assertTrue(first[8])
        prepared = self.service.context.jobs.current
        coinbase1 = bytes.fromhex(first[2])
        # The scriptSig ends with (worker_id << 16) + job number, then nonce_id (ref §4.4).
        unique = ((WORKER_ID << 16) + prepared.number).to_bytes(4, "little")
        self.assertEqual(coinbase1[-8:-4], unique)
        self.assertTrue(coinbase1.startswith(prepared.coinbase1))

        with capturedLogs() as events:
            self.jobmaster.push_job(job_body("2", clean=False))
            await wait_for(lambda: len(miner.notifications("mining.notify")) == 2, what="job 2")
        second = miner.notifications("mining.notify")[1]
        self.assertEqual((second[0], second[8]), ("2", False))
        # The job's line says how many miners got it and how long that took (the fan-out time).
        (sent,) = [e for e in events if "elapsed_ms" in e]
        self.assertEqual((sent["job_id"], sent["miners"], sent["role"]), ("2", 1, "gateway"))
        self.assertGreaterEqual(sent["elapsed_ms"], 0.0)
        self.assertRegex(formatEvent(sent), r"^job 2 at height \d+ \(clean False\) sent to 1 miners in [\d.]+ ms$")

        self.jobmaster.push_job(job_body("3", clean=True, prevhash="11" * 32))
        await wait_for(lambda: len(miner.notifications("mining.notify")) == 3, what="job 3")
        self.assertEqual(miner.notifications("mining.notify")[2][8], True)
        reply = await miner.call("mining.submit", ["alice.rig1", "2", "00" * 8, first[7], "00000000"])
        self.assertEqual(reply["error"][0], 26)

    async def test_job_sent_again_after_a_reconnect_keeps_its_shares(self):
        """
        After a link drop the jobmaster sends its current job again, as clean:
        the miners are not restarted and a share they sent before it stays a
        duplicate.  New work under the same id is still taken.
        """
        await self.start()
        miner = await self.miner()
        notify = miner.notifications("mining.notify")[0]
        share = ["alice.rig1", "1", *solve(notify, miner.extranonce1, DIFFICULTY)[:3]]
        self.assertIs((await miner.call("mining.submit", share))["result"], True)

        await self.jobmaster.stop()
        await self.jobmaster.listen(self.jobmaster_port)
        await wait_for(lambda: self.jobmaster.links == 2, what="the reconnect")
        # Behind the job sent again on the same link:
        self.jobmaster.push_job(job_body("2", clean=False))
        await wait_for(lambda: len(miner.notifications("mining.notify")) == 2, what="job 2 at the miner")
        self.assertEqual(self.jobmaster.jobs_sent, 3)
        self.assertEqual([(n[0], n[8]) for n in miner.notifications("mining.notify")], [("1", True), ("2", False)])
        self.assertEqual((await miner.call("mining.submit", share))["error"][0], 22)

        self.jobmaster.push_job(job_body("1", clean=True, prevhash="33" * 32))
        await wait_for(lambda: len(miner.notifications("mining.notify")) == 3, what="new work as job 1")
        self.assertEqual(miner.notifications("mining.notify")[2][1], "33" * 32)

    async def test_bad_job_is_refused_and_current_job_stays(self):
        await self.start()
        self.jobmaster.push_job(b'{"job_id": "2"}')
        self.jobmaster.push_job(job_body("3", clean=False))
        await wait_for(lambda: self.service.context.jobs.current.job_id == "3", what="job 3")
        self.assertIsNone(self.service.context.jobs.lookup("2"))

    async def test_no_miners_before_a_job(self):
        """Until the jobmaster sent a job, a new connection is closed at once (ref §4.1; no ``first_job_wait``)."""
        await self.start(job=False, first_job_wait=0)
        early = await connect_miner(self.port)
        await early.closed
        self.jobmaster.push_job(job_body())
        await wait_for(lambda: self.service.context.jobs.current, what="the job")
        miner = await self.miner()
        self.assertTrue(miner.connected)

    # -- bans -----------------------------------------------------------------

    async def test_ban_closes_existing_session_and_refuses_new(self):
        await self.start()
        miner = await self.miner()
        self.jobmaster.push_ban("add", ["127.0.0.1"], limit=0)
        await miner.closed
        refused = await connect_miner(self.port)
        await refused.closed
        self.jobmaster.push_ban("del", ["127.0.0.1"])
        await wait_for(lambda: not self.service.context.bans.is_banned("127.0.0.1"), what="the ban lifted")
        again = await self.miner()
        self.assertTrue(again.connected)

    async def test_malformed_ban_is_dropped(self):
        await self.start()
        miner = await self.miner()
        self.jobmaster.push_ban("ban", ["127.0.0.1"])
        self.jobmaster.push_ban("add", ["not-an-ip"])
        self.jobmaster.push_job(job_body("2", clean=False))
        await wait_for(lambda: len(miner.notifications("mining.notify")) == 2, what="job 2")
        self.assertTrue(miner.connected)
        self.assertFalse(self.service.context.bans.is_banned("127.0.0.1"))

    async def test_bad_ban_entry_costs_only_itself(self):
        await self.start()
        miner = await self.miner()
        with capturedLogs() as logs:
            self.jobmaster.push_ban("add", ["not-an-ip", "127.0.0.1"], limit=-5)
            await miner.closed
        self.assertTrue(self.service.context.bans.is_banned("127.0.0.1"))
        [warning] = [e for e in logs if "without its bad parts" in e.get("log_format", "")]
        self.assertIn("'not-an-ip'", warning["dropped"])
        self.assertIn("'limit' -5", warning["dropped"])

    async def test_bad_aux_costs_only_itself(self):
        await self.start()
        miner = await self.miner()
        good = {"aux_name": "NMC", "aux_hash": "ab" * 32, "aux_target": "00ff" + "00" * 30}
        with capturedLogs() as logs:
            self.jobmaster.push_job(job_body("2", clean=False, auxes=[{"aux_name": "X"}, good], segwit="yes"))
            await wait_for(lambda: len(miner.notifications("mining.notify")) == 2, what="job 2")
        job = self.service.context.jobs.current.job
        self.assertEqual(([a.aux_name for a in job.auxes], job.segwit), (["NMC"], None))
        [warning] = [e for e in logs if "without its bad parts" in e.get("log_format", "")]
        self.assertEqual(warning["dropped"], "auxes[0].aux_hash: missing; segwit: expected bool, got str")

    # -- blocks ---------------------------------------------------------------

    def regtest_job(self, job_id="1", clean=True):
        return job_body(job_id, clean=clean, nbits=REGTEST_BITS, target=REGTEST_TARGET)

    async def test_block_goes_to_jobmaster_before_the_reply(self):
        await self.start(job=self.regtest_job())
        miner = await self.miner()
        notify = miner.notifications("mining.notify")[0]
        en2, ntime, nonce, digest = solve(notify, miner.extranonce1, DIFFICULTY, block=True)

        # Record the order in which the gateway hands its bytes over, through
        # each connection's one output (both may send straight to the
        # socket, bypassing the transport): the jobmaster link's
        # ``write_encoded`` (the link up now) and the miner's ``write``.
        await wait_for(lambda: self.service.job_client.connected, what="the jobmaster link")
        link = self.service.job_client._protocol
        writes = []
        self.record(link, "jobmaster", writes)
        (session,) = self.service.server.sessions
        self.record(session, "miner", writes)
        # ... and where the candidate's log line falls: after cmd 2 has left.
        def logged(event):
            if event.get("log_format", "").startswith("block candidate"):
                writes.append("log")

        globalLogPublisher.addObserver(logged)
        self.addCleanup(globalLogPublisher.removeObserver, logged)

        reply = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
        self.assertIs(reply["result"], True)
        self.assertEqual((self.jobmaster.links, self.service.job_client._protocol), (1, link),
                         "the jobmaster link was recycled during the test")
        self.assertEqual(writes[:3], ["jobmaster", "log", "miner"])

        (found,) = await wait_for(self.jobmaster.found_blocks, what="cmd 2")
        self.assertEqual(found["hash"], hash_to_display_hex(digest))
        self.assertEqual(found["job_id"], "1")
        self.assertEqual((found["type"], found["name"]), ("main", "BTC"))
        header = bytes.fromhex(found["block_head"])
        self.assertEqual(sha256d(header), digest)
        coinbase = bytes.fromhex(found["coinbase"])
        self.assertIn(miner.extranonce1 + bytes.fromhex(en2), coinbase)
        # The header commits to that coinbase through the job's merkle branch.
        prepared = PreparedJob.prepare(Job.from_json(self.regtest_job()), 0)
        root = sha256d(coinbase)
        for sibling in prepared.branch:
            root = sha256d(root + sibling)
        self.assertEqual(header[36:68], root)

    async def test_aux_share_goes_to_jobmaster_with_the_aux_name(self):
        """A share meeting an aux target but not the block's: cmd 2 "aux" and a newblock record."""
        aux = {"aux_name": "NMC", "aux_hash": "ab" * 32, "aux_target": "ff" * 32}
        hard = {"aux_name": "SYS", "aux_hash": "cd" * 32, "aux_target": "00" * 31 + "01"}
        await self.start(job=job_body(auxes=[aux, hard]))
        miner = await self.miner()
        notify = miner.notifications("mining.notify")[0]
        en2, ntime, nonce, digest = solve(notify, miner.extranonce1, DIFFICULTY)
        reply = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
        self.assertIs(reply["result"], True)
        (found,) = await wait_for(self.jobmaster.found_blocks, what="cmd 2")
        self.assertEqual((found["type"], found["name"], found["job_id"]), ("aux", "NMC", "1"))
        self.assertEqual(found["hash"], hash_to_display_hex(digest))
        self.assertEqual(sha256d(bytes.fromhex(found["block_head"])), digest)
        (block,) = await wait_for(lambda: self.writer.records(records.META_BLOCK), what="the block record")
        record = block[1]
        self.assertEqual((record.user, record.worker, record.name, record.hash),
                         ("alice", "rig1", "NMC", "ab" * 32))

    def record(self, writer, name, writes):
        """
        Note each write's target (on the jobmaster link only cmd 2, not
        heartbeats), then let the real output have it.
        """
        output = "write_encoded" if name == "jobmaster" else "write"
        real = getattr(writer, output)

        def write(data):
            if name != "jobmaster" or int.from_bytes(data[4:8], "little") == Command.FOUND_BLOCK:
                writes.append(name)
            return real(data)

        setattr(writer, output, write)

    async def test_candidate_buffered_while_jobmaster_is_down(self):
        await self.start(job=self.regtest_job())
        miner = await self.miner()
        notify = miner.notifications("mining.notify")[0]
        await self.jobmaster.stop()
        await wait_for(lambda: not self.service.job_client.connected, what="the link to drop")
        en2, ntime, nonce, digest = solve(notify, miner.extranonce1, DIFFICULTY, block=True)
        reply = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
        self.assertIs(reply["result"], True)
        self.assertEqual(len(self.service.courier.pending), 1)
        self.assertEqual(self.jobmaster.found_blocks(), [])

        await self.jobmaster.listen(self.jobmaster_port)
        (found,) = await wait_for(self.jobmaster.found_blocks, what="the buffered candidate")
        self.assertEqual(found["hash"], hash_to_display_hex(digest))
        self.assertEqual(self.service.courier.pending, [])

    # -- statistics -----------------------------------------------------------

    async def test_statistics_reach_the_writer_stamped_with_their_minute(self):
        # Keep the shares inside one minute (waiting, not asserting a time).
        while time.time() % 60 > 45:
            await deferLater(reactor, 0.5, lambda: None)
        await self.start()
        miner = await self.miner()
        minute = minute_start(time.time())
        notify = miner.notifications("mining.notify")[0]
        for i in range(3):
            en2, ntime, nonce, _ = solve(notify, miner.extranonce1, DIFFICULTY, extranonce2=i * 1000)
            reply = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
            self.assertIs(reply["result"], True, reply)
        duplicate = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
        self.assertEqual(duplicate["error"][0], 22)
        unknown = await miner.call("mining.submit", ["alice.rig1", "beef", en2, ntime, nonce])
        self.assertEqual(unknown["error"][0], 21)
        self.assertEqual(minute_start(time.time()), minute)

        await wait_for(lambda: self.writer.records(records.META_EVENT), what="the connected event")
        await self.stop()
        await wait_for(lambda: self.writer.records(records.META_SHARE), what="share records")

        events = self.writer.records(records.META_EVENT)
        self.assertEqual([(m, r.user, r.worker, r.coin, r.peer, r.event) for m, r in events], [
            (minute, "alice", "rig1", "btc", "127.0.0.1", "connected"),
            (minute, "alice", "rig1", "btc", "127.0.0.1", "disconnected"),
        ])
        shares = {r.key: (m, r.num, r.host, r.coin) for m, r in self.writer.records(records.META_SHARE)}
        self.assertEqual(shares, {
            "alice": (minute, 3, "gw-test", "btc"),
            "alice:rig1": (minute, 3, "gw-test", "btc"),
            "alice:reject": (minute, 2, "gw-test", "btc"),
            "alice:rig1:reject": (minute, 2, "gw-test", "btc"),
        })
        ints = {r.key: r.sum for m, r in self.writer.records(records.META_MONITOR_INT) if m == minute}
        for key, value in {"share": 3, "reject": 2, "reject_21": 1, "reject_22": 1, "connection_new": 1,
                           "new_authorized": 1, "job_broadcast": 1, "job_clean": 1}.items():
            self.assertEqual(ints.get(key), value, key)
        goals = {r.key: r.sum for m, r in self.writer.records(records.META_MONITOR_FLOAT)}
        block_difficulty = self.service.context.jobs.current.block_difficulty
        self.assertAlmostEqual(goals["goal"] / (3 * DIFFICULTY / block_difficulty), 1.0)

    # -- HTTP, monitor, CLI ---------------------------------------------------

    async def test_http_interface(self):
        await self.start()
        await self.miner()
        address = self.config.http_svr.server.binds[0]
        agent = Agent(reactor)
        url = f"http://127.0.0.1:{address.port}/".encode()
        response = await agent.request(b"GET", url)
        self.assertEqual((response.code, await readBody(response)), (200, b"ok\n"))

        body = FileBodyProducer(BytesIO(b'{"id":7,"method":"getclientsinfo","params":[]}'))
        response = await agent.request(b"POST", url, bodyProducer=body)
        reply = json.loads(await readBody(response))
        self.assertEqual(reply["id"], 7)
        (row,) = reply["result"]
        self.assertEqual((row["user"], row["worker"], row["user_agent"]), ("alice", "rig1", "test-miner"))

    async def test_cli_and_monitor(self):
        await self.start()
        await self.miner()
        cli = Collect()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.config.cli.port), cli)
        self.addCleanup(cli.transport.loseConnection)
        cli.transport.write(b"getcoinname\nsetcoinname bch\ngetcoinname\nlist\nflushworker\n")
        await wait_for(lambda: cli.data.count(b"\n") >= 7 and b"ok 1" in cli.data, what="CLI replies")
        lines = cli.data.decode().splitlines()
        self.assertEqual(lines[:3], ["btc", "ok", "bch"])
        self.assertTrue(any(" alice rig1 " in line for line in lines), lines)

        monitor = Collect()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.config.monitor.binds[0].port), monitor)
        monitor.transport.write(b"anything at all\n")
        monitor.transport.loseConnection()
