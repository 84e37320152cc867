"""
The Stratum server under attack over real loopback TCP, for a few seconds:
hundreds of connections sending garbage, oversize lines, request floods and
slowloris half-lines, and peers that stop reading, beside honest miners
(``viabtc.tools.miner``, hashing with real sha256d).  Honest shares are all
accepted and counted, the server's tables stay within their bounds, and it
keeps serving afterwards.

Nothing here assumes a rate: on a loaded machine the miners hash slower and
the attack connects slower, so the attack lasts at least
``ATTACK_SECONDS`` and until the miners have ``HONEST_SHARES`` accepted
each and every limit has bitten, within a generous ``DEADLINE``.

Attackers connect from other loopback addresses (127.0.0.x binds) so the
per-IP limit bites them and not the honest miners on 127.0.0.1.
"""

import os
import resource
import socket

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.trial.unittest import TestCase

from viabtc.stratum.limits import Limits
from viabtc.stratum.protocol import StratumServerFactory
from viabtc.tools.miner import MinerConfig, run_miner

from tests.roles import wait_for
from tests.stratum.jobs import job_dict, prepared_job, settings as make_settings
from tests.stratum.test_protocol import RecordingContext

LIMITS = Limits(
    max_connections=400,
    max_connections_per_ip=20,
    request_rate=200,
    request_burst=400,
    auth_timeout=2,
    max_send_buffer=256 * 1024,
    close_timeout=2,
    ban_strikes=3,
    ban_time=1,
    ban_time_max=4,
)
ATTACK_SECONDS = 6.0
#: Accepted shares each honest miner must reach under attack.
HONEST_SHARES = 5
#: Bound of every wait here: far beyond what a loaded machine needs.
DEADLINE = 120.0
MAX_ATTACKERS = 300
LIMIT_COUNTS = ("limit_line", "limit_throttle", "limit_auth_timeout", "limit_conn_ip", "limit_banned")
HANDSHAKE = (b'{"id":1,"method":"mining.subscribe","params":[]}\n'
             b'{"id":2,"method":"mining.authorize","params":["mallory","x"]}\n')
FLOOD = b'{"id":1,"method":"mining.extranonce.subscribe","params":[]}\n' * 2000


def raise_fd_limit(wanted=4096):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Attacker(Protocol):
    """One hostile connection; ``kind`` says what it does once connected."""

    def __init__(self, kind, closed):
        self.kind = kind
        self.closed = closed

    def connectionMade(self):
        if self.kind == "garbage":
            self.transport.write(os.urandom(64).replace(b"\n", b" ") + b"\n")
        elif self.kind == "oversize":
            self.transport.write(b"x" * 20_000)
        elif self.kind == "flood":
            self.transport.write(FLOOD)
        elif self.kind == "slowloris":
            self.transport.write(b'{"id":1,')
        elif self.kind == "squatter":
            # Authorizes and then just sits there: only the per-IP limit stops it.
            self.transport.write(HANDSHAKE)
        elif self.kind == "deaf":
            # Subscribes and authorizes, then never reads another byte, with
            # a small receive buffer so the kernel does not hide it for long.
            self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            self.transport.write(HANDSHAKE)
            self.transport.pauseProducing()

    def connectionLost(self, reason):
        self.closed(self)


class Reader(Protocol):
    """An honest peer that authorizes and reads everything it is sent."""

    received = 0

    def connectionMade(self):
        self.transport.write(HANDSHAKE)

    def dataReceived(self, data):
        self.received += len(data)


class SoakTests(TestCase):
    timeout = 3 * DEADLINE

    def setUp(self):
        raise_fd_limit()
        self.context = RecordingContext(make_settings(diff_min=2**-14, diff_default=2**-14))
        self.context.jobs.add(prepared_job())
        self.factory = StratumServerFactory(self.context, reactor, limits=LIMITS)
        d = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1", backlog=1024).listen(self.factory)
        d.addCallback(self._listening)
        self.attackers = set()
        self.connects = 0
        self.connect_errors = 0
        self.samples = []
        return d

    def _listening(self, port):
        self.port = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(self._drop_everything)

    def _drop_everything(self):
        for proto in list(self.factory.sessions):
            proto.abort()
        for attacker in list(self.attackers):
            attacker.transport.abortConnection()

    # -- the attack -----------------------------------------------------------

    def launch(self, kinds):
        n = 0
        while len(self.attackers) + n < MAX_ATTACKERS and n < 40:
            kind = kinds[self.connects % len(kinds)]
            source = "127.0.0.9" if kind == "squatter" else f"127.0.0.{10 + self.connects % 40}"
            self.connects += 1
            n += 1
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=5,
                                          bindAddress=(source, 0))
            d = endpoint.connect(Factory.forProtocol(lambda kind=kind: Attacker(kind, self.attackers.discard)))
            d.addCallbacks(self.attackers.add, self._connect_failed)

    def _connect_failed(self, failure):
        self.connect_errors += 1

    def sample(self):
        f = self.factory
        self.samples.append((
            len(f.sessions), len(f._auth_deadlines), len(f._close_deadlines), len(f._per_host),
            len(f.offenders), sum(len(p._buffer) for p in f.sessions),
        ))

    def honest(self):
        """An honest miner mining until ``finish``; its ``MinerStats`` are live."""
        config = MinerConfig(url=f"stratum+tcp://127.0.0.1:{self.port}", user="alice.rig1",
                             report_interval=60)
        miner = run_miner(reactor, config).miner
        self.addCleanup(miner.finish)
        return miner

    async def mined(self, miners, shares, *, until=lambda: True):
        """
        Wait (``DEADLINE``) until each of ``miners`` has ``shares`` accepted and
        ``until()`` holds; then finish them, every share sent answered, and
        return their stats.
        """
        await wait_for(lambda: all(m.stats.accepted >= shares for m in miners) and until(), DEADLINE)
        await defer.gatherResults([m.finish() for m in miners])
        return [m.stats for m in miners]

    def assert_all_honest_shares_counted(self, stats, shares):
        """Every share the miners submitted was accepted, and counted once by the server."""
        for s in stats:
            self.assertGreaterEqual(s.accepted, shares)
            self.assertEqual(dict(s.rejected), {})
            self.assertEqual(s.submitted, s.accepted)
        accepted = [e for e in self.context.events if e[0] == "accepted" and e[1] == "alice"]
        rejected = [e for e in self.context.events if e[0] == "rejected" and e[1] == "alice"]
        self.assertEqual((len(accepted), rejected), (sum(s.accepted for s in stats), []))

    def attack_complete(self):
        counts = self.factory.counts
        return self.connects > 200 and all(counts.get(key, 0) > 0 for key in LIMIT_COUNTS)

    async def test_honest_miners_served_under_attack(self):
        kinds = ["garbage", "oversize", "flood", "slowloris", "slowloris", "squatter"]
        attack = LoopingCall(self.launch, kinds)
        attack.start(0.05)
        sampler = LoopingCall(self.sample)
        sampler.start(0.1)
        # Keep jobs flowing (non-clean, so honest shares stay valid).
        jobs = LoopingCall(self.broadcast)
        self.job_number = 0x100
        jobs.start(0.2)
        try:
            miners = [self.honest() for _ in range(3)]
            await deferLater(reactor, ATTACK_SECONDS, lambda: None)
            stats = await self.mined(miners, HONEST_SHARES, until=self.attack_complete)
        finally:
            attack.stop()
            sampler.stop()
            jobs.stop()

        # Honest work: every share accepted, and every accepted share counted.
        self.assert_all_honest_shares_counted(stats, HONEST_SHARES)

        # The attack happened and each limit bit.
        counts = self.factory.counts
        self.assertGreater(self.connects, 200)
        for key in LIMIT_COUNTS:
            self.assertGreater(counts.get(key, 0), 0, (key, counts))

        # Bounded: never more sessions than allowed, buffers within the line
        # limit, beside the one read a throttled connection holds back (a TCP
        # transport reads at most 64 KiB at a time).
        max_line = self.context.settings.max_pkg_size + 65536
        for sessions, auth, closing, hosts, offenders, buffered in self.samples:
            self.assertLessEqual(sessions, LIMITS.max_connections)
            self.assertLessEqual(auth, sessions)
            self.assertLessEqual(closing, sessions)
            self.assertLessEqual(hosts, sessions)
            self.assertLessEqual(offenders, LIMITS.max_offenders)
            self.assertLessEqual(buffered, sessions * max_line)

        # Once the attackers are gone (squatters never leave on their own)
        # the tables drain.
        for attacker in list(self.attackers):
            attacker.transport.loseConnection()
        await wait_for(lambda: not self.attackers and not self.factory.sessions, DEADLINE)
        self.assertEqual(self.factory._auth_deadlines, {})
        self.assertEqual(self.factory._per_host, {})

        # And it still serves.
        self.context.events.clear()
        self.assert_all_honest_shares_counted(await self.mined([self.honest()], 3), 3)

    def broadcast(self, **changes):
        self.job_number += 1
        prepared = prepared_job(job_id=f"{self.job_number:x}", clean_jobs=False, **changes)
        self.context.jobs.add(prepared)
        self.factory.broadcast_job(prepared)

    async def test_peers_that_stop_reading_are_dropped(self):
        """
        Over real TCP the transport pauses the session (its producer) when
        its buffer fills; past ``max_send_buffer`` more the peer is dropped,
        while peers that read get every job.
        """
        deaf = []
        for i in range(30):
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port,
                                          bindAddress=(f"127.0.0.{20 + i % 3}", 0))
            deaf.append(await endpoint.connect(Factory.forProtocol(
                lambda: Attacker("deaf", self.attackers.discard))))
        self.attackers.update(deaf)
        readers = []
        for _ in range(2):
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
            readers.append(await endpoint.connect(Factory.forProtocol(Reader)))
        await wait_for(lambda: self.factory.authorized >= 32, DEADLINE)
        self.assertEqual(self.factory.authorized, 32)
        # Notifies of about 32 KB each (a job with a large coinbase2).
        self.job_number = 0x100
        big = job_dict()["coinbase2"] + "00" * 16_000
        jobs = LoopingCall(self.broadcast, coinbase2=big)
        jobs.start(0.02)
        try:
            await wait_for(lambda: self.factory.counts.get("limit_slow_reader", 0) >= 30, DEADLINE)
        finally:
            jobs.stop()
        self.assertEqual(self.factory.counts.get("limit_slow_reader", 0), 30)
        self.assertEqual(self.factory.authorized, 2)
        sent = self.job_number - 0x100
        for reader in readers:
            self.assertTrue(reader.transport.connected)
        await wait_for(lambda: all(r.received >= sent * 32_000 for r in readers), DEADLINE)
        for reader in readers:
            self.assertGreaterEqual(reader.received, sent * 32_000)
            reader.transport.loseConnection()
