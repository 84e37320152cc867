"""
The poolbench service over real loopback TCP and UDP: in-test Stratum pools
(the project's fake pool, ``tests/tools/fakepool.py``) announce jobs, a real
``RPCDatagramProtocol`` listens as the jobmaster does for the hints.
"""

import json

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web import server
from zope.interface import implementer

from tests.poolbench.test_config import local_config
from tests.rpc.test_addresslist import FakeListService
from tests.roles import wait_for
from tests.tools.fakepool import FakePool, make_job
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.poolbench.config import PoolbenchConfig, PoolEntry
from viabtc.poolbench.service import PoolbenchService
from viabtc.poolbench.watcher import PoolWatcher
from viabtc.rpc.codec import Command, parse_auth_ext
from viabtc.rpc.interfaces import IDatagramHandler
from viabtc.rpc.protocol import RPCDatagramProtocol

SECRET = b"poolbench-test-secret"


def rival_job(height, branch_size=2):
    return make_job(f"{height:x}", height, 0x1D00FFFF, branch_size=branch_size, seed=height)


def announce(pool, height, clean=True, branch_size=2):
    """Make ``height`` the fake pool's job and send it to every session."""
    pool.job = rival_job(height, branch_size)
    pool.send_all("mining.notify", pool.job.notify_params(clean))


@implementer(IDatagramHandler)
class HintCollector:
    """Keeps every packet the jobmaster-side UDP listener accepts."""

    def __init__(self):
        self.packets = []

    def packetReceived(self, protocol, packet, address):
        self.packets.append(packet)

    def hints(self):
        return [json.loads(p.body) for p in self.packets if p.command == Command.HEIGHT_UPDATE]


class LineClient(Protocol):
    def __init__(self):
        self.data = b""

    def dataReceived(self, data):
        self.data += data


class ServiceTests(TestCase):
    timeout = 30

    def setUp(self):
        self.collector = HintCollector()
        listener = RPCDatagramProtocol(self.collector, max_size=65536, secret=SECRET, reactor=reactor,
                                       role="test-jobmaster")
        port = reactor.listenUDP(0, listener, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.udp = port.getHost().port

    def pool(self, height):
        """A fake pool on loopback whose current job mines ``height``; (pool, port)."""
        pool = FakePool(difficulty=1)
        pool.job = rival_job(height)
        port = reactor.listenTCP(0, pool, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return pool, port.getHost().port

    def start(self, pools, **changes):
        """Run poolbench on ``pools`` (name → (port, options)), hinting our listener."""
        changes.setdefault("jobmaster", [f"udp@127.0.0.1:{self.udp}"])
        changes.setdefault("secret", SECRET.decode())
        pool_list = [{"name": name, "host": "127.0.0.1", "port": port, "user": "watcher", **options}
                     for name, (port, options) in pools.items()]
        config = PoolbenchConfig.from_reader(ConfigReader(local_config(pool_list=pool_list, **changes)))
        service = PoolbenchService(config, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.service = service
        return service

    async def seen(self, name, height):
        """Wait until poolbench believed ``name``'s job at ``height``."""
        pool = self.service.bench.pools[name]
        await wait_for(lambda: pool.height == height)

    async def test_one_tagged_hint_per_new_height(self):
        pool, port = self.pool(101)
        self.start({"rival": (port, {})})
        await wait_for(lambda: self.collector.hints())
        announce(pool, 101, clean=False)
        announce(pool, 102)
        await wait_for(lambda: len(self.collector.hints()) >= 2)
        self.assertEqual(self.collector.hints(), [
            {"height": 100, "curtime": self.collector.hints()[0]["curtime"],
             "prevhash": rival_job(101).prev_hash[::-1].hex()},
            {"height": 101, "curtime": self.collector.hints()[1]["curtime"],
             "prevhash": rival_job(102).prev_hash[::-1].hex()},
        ])
        self.assertEqual(self.service.hints_sent, 2)
        for packet in self.collector.packets:
            self.assertEqual(len(parse_auth_ext(packet.ext).tag), 32)
        for hint in self.collector.hints():
            self.assertLessEqual(abs(hint["curtime"] - reactor.seconds()), 5)

    async def test_notify_off_sends_nothing(self):
        pool, port = self.pool(101)
        other, other_port = self.pool(101)
        self.start({"rival": (port, {}), "quiet": (other_port, {"is_notify": False})},
                   is_notify=False)
        await self.seen("rival", 101)
        announce(pool, 102)
        announce(other, 103)
        await self.seen("rival", 102)
        await self.seen("quiet", 103)
        self.assertEqual((self.collector.packets, self.service.hints_sent), ([], 0))
        self.assertEqual(self.service.bench.best_height, 102)

    async def test_lagging_own_pool_is_critical(self):
        ours, ours_port = self.pool(101)
        rival, rival_port = self.pool(101)
        with capturedLogs() as events:
            self.start({"ours": (ours_port, {"is_self": True, "is_notify": False}),
                        "rival": (rival_port, {})}, max_delay=0.2)
            await self.seen("ours", 101)
            await self.seen("rival", 101)
            announce(rival, 102)
            await wait_for(lambda: [e for e in events if e["log_level"] == LogLevel.critical])
            announce(ours, 102)
            await wait_for(lambda: [e for e in events if "caught up" in e.get("log_format", "")])
        [critical] = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual((critical["pool"], critical["tip"], critical["best"]), ("ours", 100, 101))
        self.assertGreater(critical["seconds"], 0.2)

    async def test_garbage_from_a_pool(self):
        pool, port = self.pool(101)
        self.start({"rival": (port, {})})
        await wait_for(lambda: self.collector.hints())
        [session] = pool.sessions
        absurd = rival_job(10**6).notify_params(True)
        bad_prevhash = rival_job(102).notify_params(True)
        bad_prevhash[1] = "zz" * 32
        no_height = rival_job(102).notify_params(True)
        no_height[2] = "01000000"
        for line in [b"garbage", b"{not json", b"[1,2]", b'{"method":"mining.notify","params":7}',
                     json.dumps({"id": None, "method": "mining.notify", "params": absurd}).encode(),
                     json.dumps({"id": None, "method": "mining.notify", "params": bad_prevhash}).encode(),
                     json.dumps({"id": None, "method": "mining.notify", "params": no_height}).encode()]:
            session.transport.write(line + b"\n")
        announce(pool, 102)
        await self.seen("rival", 102)
        await wait_for(lambda: len(self.collector.hints()) >= 2)
        self.assertEqual([h["height"] for h in self.collector.hints()], [100, 101])
        self.assertEqual(self.service.bench.pools["rival"].refused, 1)
        self.assertEqual(len(pool.sessions), 1)

    async def test_reconnects_quickly_and_lists(self):
        pool, port = self.pool(101)
        cli = free_port()
        self.start({"rival": (port, {})}, cli=f"tcp@127.0.0.1:{cli}")
        await wait_for(lambda: self.service.bench.pools["rival"].connected)
        pool.drop_all()
        await wait_for(lambda: not self.service.bench.pools["rival"].connected)
        await wait_for(lambda: self.service.bench.pools["rival"].connected and pool.sessions)
        self.assertEqual(self.service.hints_sent, 1)
        client = LineClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", cli), client)
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(b"list\n")
        await wait_for(lambda: client.data.count(b"\n") >= 3)
        lines = client.data.decode().splitlines()
        self.assertEqual(lines[0], "best_height 100 hinted 100")
        self.assertEqual(lines[1], f"jobmasters 127.0.0.1:{self.udp}")
        self.assertRegex(lines[2], r"^rival height 101 last_notify \S+Z \([0-9.]+ s ago\) "
                                   r"connected yes refused 0 notify$")

    async def test_jobmasters_from_http(self):
        service = FakeListService("token")
        service.reply = {"error": {"message": "ok"}, "result": [f"127.0.0.1:{self.udp}"]}
        http = reactor.listenTCP(0, server.Site(service), interface="127.0.0.1")
        self.addCleanup(http.stopListening)
        pool, port = self.pool(101)
        self.start({"rival": (port, {})}, jobmaster=None, request_auth="token",
                   jobmaster_url=f"http://127.0.0.1:{http.getHost().port}/jobmaster")
        await wait_for(lambda: self.service.jobmasters.addresses)
        announce(pool, 102)
        await wait_for(lambda: [h for h in self.collector.hints() if h["height"] == 101])


class SilenceTests(TestCase):
    """A pool that stops sending jobs is dropped (and so reconnected), on a simulated clock."""

    def test_silent_pool_dropped(self):
        clock = Clock()
        jobs, connections = [], []
        watcher = PoolWatcher(PoolEntry("rival", "127.0.0.1", 3333, "watcher", ""), clock,
                              lambda name, job: jobs.append(job),
                              lambda name, up: connections.append(up), silence=600)
        protocol = watcher.service.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b'{"id":1,"result":[[],"00000001",4],"error":null}\n'
                              b'{"id":2,"result":true,"error":null}\n')
        self.assertEqual(connections, [True])
        clock.advance(599)
        watcher.check_silence(clock.seconds())
        notify = {"id": None, "method": "mining.notify", "params": rival_job(101).notify_params(True)}
        protocol.dataReceived(json.dumps(notify).encode() + b"\n")
        self.assertEqual(len(jobs), 1)
        clock.advance(600)
        watcher.check_silence(clock.seconds())
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        with capturedLogs() as events:
            watcher.check_silence(clock.seconds())
        self.assertTrue(transport.disconnecting)
        self.assertIn("no job", events[0]["log_format"])
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(connections, [True, False])
