"""
Reconnect storms against a real gateway in-process (issue 16): thousands
of sessions opened at once from several loopback addresses each get their
first job, none refused while under the configured limits; a session whose
authorize arrives while a job is being broadcast to thousands of others
still gets its job, the new one; every listener listens with the
configured backlog.  The time a storm takes is measured in
``benchmarks/storm.py`` (docs/benchmarks.md), not here.
"""

import json
import os
import resource
import select
import socket
import threading

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import deferLater
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.backlog import somaxconn
from viabtc.config import ConfigReader
from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.service import GatewayService

from tests.gateway.support import StatsWriter, TestJobmaster, job_body, wait_for
from tests.gateway.test_service import gateway_data

#: Sessions of the storm: a few thousand, from this many loopback addresses.
SESSIONS = 2400
SOURCES = 4


def raise_file_limit(testcase, needed):
    """Raise RLIMIT_NOFILE to ``needed`` (as far as the hard limit allows) for ``testcase``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        testcase.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        if wanted < needed:
            testcase.fail(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} descriptors this test needs")


class StormMiner(Protocol):
    """A miner that subscribes and authorizes in one write, then keeps the lines it receives."""

    def __init__(self, storm, index):
        self.storm = storm
        self.index = index
        self.lines = []
        self._tail = b""

    def connectionMade(self):
        self.transport.write(
            b'{"id":1,"method":"mining.subscribe","params":["storm"]}\n'
            b'{"id":2,"method":"mining.authorize","params":["farm%d.rig%d","x"]}\n' % (self.index % 7, self.index)
        )

    def dataReceived(self, data):
        *lines, self._tail = (self._tail + data).split(b"\n")
        for line in lines:
            message = json.loads(line)
            self.lines.append(message)
            if message.get("method") == "mining.notify" and len(self.notifies()) == 1:
                self.storm.got_job += 1

    def notifies(self):
        return [m["params"] for m in self.lines if m.get("method") == "mining.notify"]

    def connectionLost(self, reason):
        self.storm.lost += 1


class Storm(ClientFactory):
    def __init__(self):
        self.got_job = 0
        self.lost = 0
        self.failed = 0
        self.miners = []

    def buildProtocol(self, addr):
        miner = StormMiner(self, len(self.miners))
        self.miners.append(miner)
        return miner

    def clientConnectionFailed(self, connector, reason):
        self.failed += 1


class StormTests(TestCase):
    timeout = 120

    async def start(self, job=True, **changes):
        # Both ends of every session live in this process.
        raise_file_limit(self, 2 * SESSIONS + 512)
        self.jobmaster = TestJobmaster(job_body() if job else None)
        jobmaster_port = await self.jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
        self.writer = StatsWriter()
        self.addCleanup(self.writer.stop)
        data = gateway_data(jobmaster_port, self.writer.address, os.path.abspath(self.mktemp()), **changes)
        self.config = GatewayConfig.from_reader(ConfigReader(data))
        self.service = GatewayService(self.config, reactor)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.port = self.config.svr.binds[0].port
        if job:
            await wait_for(lambda: self.service.context.jobs.current, what="the first job")

    def storm(self, sessions, sources):
        """Open ``sessions`` connections at once, spread over 127.0.0.2 ... 127.0.0.(1 + sources)."""
        storm = Storm()
        for i in range(sessions):
            reactor.connectTCP("127.0.0.1", self.port, storm, timeout=60, bindAddress=(f"127.0.0.{2 + i % sources}", 0))
        self.addCleanup(self.disconnect, storm)
        return storm

    def disconnect(self, storm):
        for miner in storm.miners:
            if miner.transport is not None:
                miner.transport.abortConnection()

    async def test_every_session_of_a_storm_gets_its_first_job(self):
        """
        ``SESSIONS`` sessions opened at once with the limits set exactly to
        what they need (total, and per address): every one subscribes,
        authorizes and gets ``mining.set_difficulty`` and ``mining.notify``
        right after its authorize reply; no limit refuses or closes any.
        """
        await self.start(limits={"max_connections": SESSIONS, "max_connections_per_ip": SESSIONS // SOURCES,
                                 "auth_timeout": 30})
        with capturedLogs() as events:
            storm = self.storm(SESSIONS, SOURCES)
            await wait_for(lambda: storm.got_job + storm.lost + storm.failed >= SESSIONS, timeout=90,
                           what=f"the first job of {SESSIONS} sessions")
        self.assertEqual((storm.got_job, storm.lost, storm.failed), (SESSIONS, 0, 0))
        self.assertEqual([e["limit"] for e in events if "limit" in e], [])
        server = self.service.server
        self.assertEqual(server.connections, SESSIONS)
        self.assertEqual(server.authorized, SESSIONS)
        for miner in storm.miners:
            kinds = [m.get("id") or m.get("method") for m in miner.lines]
            self.assertEqual(kinds, [1, 2, "mining.set_difficulty", "mining.notify"])
            self.assertIs(miner.lines[1]["result"], True)
        # One more is refused: the limits were live, just not exceeded.
        with capturedLogs() as events:
            extra = self.storm(1, 1)
            await wait_for(lambda: extra.lost, what="the refused extra connection")
        self.assertEqual([e["limit"] for e in events if "limit" in e], ["limit_conn_total"])

    async def test_authorize_during_a_broadcast_gets_the_new_job(self):
        """
        While a new job goes out to thousands of sessions, a miner's
        authorize arrives (sent from another thread the moment the first
        of 64 watched sessions received the new job): its reply is followed
        by ``mining.set_difficulty`` and the new job's ``mining.notify``.
        """
        await self.start()
        storm = self.storm(SESSIONS, SOURCES)
        await wait_for(lambda: storm.got_job >= SESSIONS, timeout=90, what="the storm's first jobs")

        watched = []
        for _ in range(64):
            s = socket.create_connection(("127.0.0.1", self.port))
            self.addCleanup(s.close)
            watched.append(s)
            s.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                      b'{"id":2,"method":"mining.authorize","params":["watch.w","x"]}\n')
        late = socket.create_connection(("127.0.0.1", self.port))
        self.addCleanup(late.close)
        late.sendall(b'{"id":1,"method":"mining.subscribe","params":["late"]}\n')
        await wait_for(lambda: self.service.server.authorized == SESSIONS + 64, what="the watched sessions")
        for s in [*watched, late]:
            _drain(s)

        sent = threading.Event()

        poller = select.poll()
        for s in watched:
            poller.register(s, select.POLLIN)

        def authorize_when_the_broadcast_starts():
            # poll, not select: these descriptors are above select's 1024.
            if poller.poll(30_000):
                late.sendall(b'{"id":2,"method":"mining.authorize","params":["late.w","x"]}\n')
                sent.set()

        thread = threading.Thread(target=authorize_when_the_broadcast_starts, daemon=True)
        thread.start()
        self.jobmaster.push_job(job_body("2", clean=True, prevhash="22" * 32))
        await wait_for(lambda: sent.is_set(), timeout=30, what="the authorize sent mid-broadcast")
        await wait_for(lambda: sum(1 for m in storm.miners if len(m.notifies()) == 2) == SESSIONS, timeout=60,
                       what="job 2 at every storm session")
        late.setblocking(False)
        reader = _LineReader(late)
        lines = await wait_for(lambda: reader.through("mining.notify"), what="the late session's job")
        kinds = [m.get("id") or m.get("method") for m in lines]
        self.assertEqual(kinds, [2, "mining.set_difficulty", "mining.notify"])
        self.assertIs(lines[0]["result"], True)
        self.assertEqual(lines[2]["params"][0], "2")
        self.assertEqual(lines[2]["params"][1], "22" * 32)

    async def test_a_storm_before_the_first_job_waits_for_it(self):
        """
        Miners reconnecting to a gateway that just started, before its first
        job: held in the kernel's queue (none accepted, none closed), then
        all taken and given the job the moment it arrives.
        """
        await self.start(job=False)
        await wait_for(lambda: self.jobmaster.links, what="the jobmaster link")
        storm = self.storm(300, 2)
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual((self.service.server.connections, storm.lost, storm.got_job), (0, 0, 0))
        self.jobmaster.push_job(job_body())
        await wait_for(lambda: storm.got_job + storm.lost >= 300, timeout=60, what="the first jobs")
        self.assertEqual((storm.got_job, storm.lost), (300, 0))

    async def test_no_first_job_within_the_wait_closes_miners(self):
        """Past ``first_job_wait`` without a job, the seed's rule: a miner is closed at once (ref §4.1)."""
        await self.start(job=False, first_job_wait=0.3)
        storm = self.storm(10, 1)
        await wait_for(lambda: storm.lost == 10, what="the held miners closed")
        self.assertEqual((self.service.server.connections, storm.got_job), (0, 0))

    async def test_every_listener_listens_with_the_configured_backlog(self):
        """``svr``, ``http_svr`` and ``monitor`` take their ``backlog``; the CLI the kernel's cap."""
        await self.start(svr={"bind": "tcp@127.0.0.1:0", "max_pkg_size": 10240, "backlog": 77},
                         http_svr={"bind": "tcp@127.0.0.1:0", "max_pkg_size": 102400, "backlog": 33},
                         monitor={"bind": "tcp@127.0.0.1:0", "max_pkg_size": 10240})
        backlogs = sorted(listener._waitingForPort.result.backlog for listener in self.service._listeners)
        self.assertEqual(backlogs, sorted([77, 33, somaxconn(), somaxconn()]))


def _drain(s):
    s.setblocking(False)
    try:
        while s.recv(1 << 16):
            pass
    except BlockingIOError:
        pass
    s.setblocking(True)


class _LineReader:
    """The JSON lines a non-blocking socket received."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def through(self, method):
        """Every line read so far once one of them is a ``method`` notification, else None."""
        try:
            self.buffer += self.sock.recv(1 << 16)
        except BlockingIOError:
            pass
        lines = [json.loads(line) for line in self.buffer.split(b"\n")[:-1]]
        return lines if any(m.get("method") == method for m in lines) else None
