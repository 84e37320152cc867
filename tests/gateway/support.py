"""
Real peers of a gateway for the gateway tests: a jobmaster RPC server (the
real ``viabtc.rpc`` server, sending real cmd 1 jobs and cmd 3 bans), a UDP
statistics writer (the real datagram server, ACKing as the metawriter
does), a raw-TCP Stratum miner, and a solver that finds shares the way a
miner would from what the gateway sent.
"""

import itertools
import json

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from viabtc.bitcoin.target import bits_to_target, difficulty_to_target
from viabtc.rpc.codec import Command, Packet, PacketType
from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory
from viabtc.stats import records
from viabtc.stratum.client import StratumJob
from viabtc.tools.mining import grind, header_prefix

from tests.stratum.jobs import job_dict
from tests.support import wait_for  # noqa: F401 (the gateway tests import it from here)


def job_body(job_id="1", clean=True, **changes):
    """A cmd 1 body (bytes) built on the stratum tests' job."""
    return json.dumps(job_dict(job_id=job_id, clean_jobs=clean, **changes)).encode()


@implementer(IPacketHandler)
class TestJobmaster:
    """
    A jobmaster's RPC server in the test process: the real
    ``RPCServerFactory``, listening on a loopback port.  A gateway that
    connects gets ``job`` (clean) and ``bans``, as the jobmaster sends them;
    packets it sends are kept in ``received``.  ``links`` counts the gateway
    connections it accepted and ``jobs_sent`` the cmd 1 packets it wrote to
    them (a reconnect legitimately gets the current job again).
    """

    def __init__(self, job=None, secret=None):
        self.job = job
        self.bans = []
        self.received = []
        self.links = 0
        self.jobs_sent = 0
        self.factory = RPCServerFactory(self, max_size=1 << 20, secret=secret, reactor=reactor, role="test-jobmaster")
        self.port = None

    async def listen(self, port=0):
        self.port = await TCP4ServerEndpoint(reactor, port, interface="127.0.0.1").listen(self.factory)
        return self.port.getHost().port

    async def stop(self):
        """Stop listening and drop every gateway link."""
        if self.port is not None:
            port, self.port = self.port, None
            await port.stopListening()
        for connection in list(self.factory.connections):
            connection.transport.abortConnection()

    def peerConnected(self, protocol):
        self.links += 1
        if self.job is not None:
            protocol.send(Packet(Command.UPDATE_JOB, self.job, PacketType.PUSH))
            self.jobs_sent += 1
        for ban in self.bans:
            protocol.send(Packet(Command.UPDATE_BAN, ban, PacketType.REQUEST))

    def packetReceived(self, protocol, packet):
        self.received.append(packet)

    def peerDisconnected(self, protocol, reason):
        pass

    def push_job(self, body):
        self.job = body
        sent = self.factory.broadcast(Packet(Command.UPDATE_JOB, body, PacketType.PUSH))
        self.jobs_sent += sent
        return sent

    def push_ban(self, op, ips, limit=None):
        body = {"ip": ips, "op": op}
        if limit is not None:
            body["limit"] = limit
        raw = json.dumps(body).encode()
        self.bans.append(raw)
        return self.factory.broadcast(Packet(Command.UPDATE_BAN, raw, PacketType.REQUEST))

    def found_blocks(self):
        return [json.loads(p.body) for p in self.received if p.command == Command.FOUND_BLOCK]


@implementer(IDatagramHandler)
class StatsWriter:
    """A statistics writer on a real UDP socket: ACKs every packet and decodes it."""

    def __init__(self):
        self.packets = []
        self.protocol = RPCDatagramProtocol(self, max_size=1 << 20, reactor=reactor, role="test-writer")
        self.port = reactor.listenUDP(0, self.protocol, interface="127.0.0.1")

    @property
    def address(self):
        return f"udp@127.0.0.1:{self.port.getHost().port}"

    def packetReceived(self, protocol, packet, address):
        protocol.send(packet.reply(), address)
        self.packets.append(packet)

    def stop(self):
        return self.port.stopListening()

    def records(self, command):
        """``[(minute, record), ...]`` of every body received for ``command``."""
        out = []
        for packet in self.packets:
            if packet.command == command:
                minute = records.body_minute(packet.body)
                out.extend((minute, r) for r in records.decode_body(command, packet.body))
        return out


class StratumLines(Protocol):
    """A raw Stratum connection: writes JSON lines, collects what comes back."""

    def __init__(self):
        self.messages = []
        self.closed = defer.Deferred()
        self.connected = False
        self._buffer = b""
        self._ids = itertools.count(1)

    def connectionMade(self):
        self.connected = True

    def dataReceived(self, data):
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        self.messages.extend(json.loads(line) for line in lines if line.strip())

    def connectionLost(self, reason):
        self.connected = False
        self.closed.callback(None)

    def send_raw(self, data):
        self.transport.write(data)

    def request(self, method, params):
        msg_id = next(self._ids)
        self.transport.write(json.dumps({"id": msg_id, "method": method, "params": params}).encode() + b"\n")
        return msg_id

    async def call(self, method, params):
        msg_id = self.request(method, params)
        return await self.reply(msg_id)

    async def reply(self, msg_id):
        return await wait_for(lambda: next((m for m in self.messages if m.get("id") == msg_id), None),
                              what=f"reply {msg_id}")

    def notifications(self, method):
        return [m["params"] for m in self.messages if m.get("id") is None and m.get("method") == method]

    async def login(self, account="alice.rig1", password="x"):
        """Subscribe and authorize; returns the extranonce1 bytes."""
        reply = await self.call("mining.subscribe", ["test-miner"])
        extranonce1 = bytes.fromhex(reply["result"][1])
        authorized = await self.call("mining.authorize", [account, password])
        assert authorized["result"] is True, authorized
        self.extranonce1 = extranonce1
        return extranonce1


async def connect_miner(port):
    proto = StratumLines()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), proto)
    return proto


#: Nonces ground per step of ``solve``: it stops at the first hit, so a
#: test's reactor is blocked for milliseconds (a share at the tests'
#: difficulties takes a few thousand hashes), never for the seconds a whole
#: nonce range takes, which on a loaded machine outlast the RPC heartbeat
#: timeout and drop every link of the test process.
SOLVE_STEP = 1 << 12


def solve(notify, extranonce1, difficulty, block=False, extranonce2=0):
    """
    ``(extranonce2 hex, ntime hex, nonce hex, hash)`` of the first share on
    ``notify`` (mining.notify params) meeting ``difficulty`` or, with
    ``block``, the block target.
    """
    job = StratumJob.from_notify(notify)
    target = bits_to_target(job.bits) if block else difficulty_to_target(difficulty)
    for counter in itertools.count(extranonce2):
        en2 = counter.to_bytes(8, "big")
        prefix = header_prefix(job, extranonce1, en2, job.version)
        for start in range(0, 1 << 20, SOLVE_STEP):
            found = grind(prefix, start, start + SOLVE_STEP, target)
            if found:
                nonce, digest = found[0]
                return en2.hex(), f"{job.time:08x}", f"{nonce:08x}", digest


def stats_pipeline(testcase, clock, host="gw-test", coin="btc"):
    """
    ``(GatewayStats, StatsWriter)``: the gateway's statistics on ``clock``
    through a real ``ReliableSender`` journal and a real UDP link to a real
    writer socket, all stopped by the test's cleanup.
    """
    from viabtc.gateway.stats import GatewayStats
    from viabtc.rpc.client import DatagramSender
    from viabtc.rpc.reliable import ReliableSender
    from viabtc.stats.gateway_agg import MinuteAggregator

    writer = StatsWriter()
    testcase.addCleanup(writer.stop)
    link = DatagramSender([("127.0.0.1", writer.port.getHost().port)], max_size=1 << 20, reactor=reactor)
    sender = ReliableSender(link, testcase.mktemp(), reactor=clock)
    link.startService()
    sender.startService()
    testcase.addCleanup(link.stopService)
    testcase.addCleanup(sender.stopService)
    return GatewayStats(MinuteAggregator(host, coin), sender, clock), writer
