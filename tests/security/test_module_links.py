"""
Forged module packets (ref §12.1, §12.2): with a shared secret configured, a
height hint (cmd 4 over UDP), a found block (cmd 2 over TCP) and a ban
(cmd 3, TCP and UDP), untagged or tagged with the wrong secret, never reach
the role.  Against the real ``RPCServerFactory`` / ``RPCDatagramProtocol``
over real loopback sockets, and against the jobmaster service's own
listeners.
"""

import json
import os
import socket
import zlib

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.config import ConfigReader
from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.tap import build_service
from viabtc.rpc.codec import Command, Packet, PacketType, encode
from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory, TrustedHosts

SECRET = b"the pool's shared module secret"
WRONG = b"an attacker's guess at a secret!"

HINT = Packet(Command.HEIGHT_UPDATE, json.dumps(
    {"height": 900_001, "curtime": 1_700_000_000, "prevhash": "11" * 32}).encode())
FOUND = Packet(Command.FOUND_BLOCK, json.dumps(
    {"job_id": "1a", "hash": "00" * 32, "block_head": "00" * 80, "coinbase": "00" * 80,
     "type": "main", "name": "BTC"}).encode(), PacketType.REQUEST)
BAN = Packet(Command.UPDATE_BAN, json.dumps({"ip": ["10.9.9.9"], "op": "add"}).encode(),
             PacketType.REQUEST)


def forgeries(packet):
    """``(name, bytes)``: untagged, tagged with a wrong secret, a tag moved from another packet."""
    now = reactor.seconds()
    donor = encode(Packet(Command.HEARTBEAT, b""), SECRET, now=now)
    plain = encode(packet)
    # The header's ext_size says 49 bytes; splice a genuine tag into this packet.
    moved = bytearray(encode(packet, WRONG, now=now))
    moved[36:36 + 49] = donor[36:36 + 49]
    moved[14:18] = b"\0\0\0\0"
    moved[14:18] = zlib.crc32(bytes(moved)).to_bytes(4, "little")
    return [("untagged", plain), ("wrong secret", encode(packet, WRONG, now=now)),
            ("moved tag", bytes(moved))]


@implementer(IPacketHandler, IDatagramHandler)
class RecordingHandler:
    """A real handler: records every packet the server delivers."""

    def __init__(self):
        self.packets = []

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet, address=None):
        self.packets.append(packet.command)

    def peerDisconnected(self, protocol, reason):
        pass


class Collector(Protocol):
    def __init__(self):
        self.closed = defer.Deferred()

    def connectionLost(self, reason):
        self.closed.callback(None)


async def wait_until(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("timed out")


class TCPLinkTests(TestCase):
    """cmd 2 and cmd 3 over real TCP to a keyed RPCServerFactory."""

    def setUp(self):
        self.handler = RecordingHandler()
        self.factory = RPCServerFactory(self.handler, max_size=1 << 16, secret=SECRET,
                                        reactor=reactor, role="test")
        d = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(self.factory)
        d.addCallback(self._listening)
        return d

    def _listening(self, port):
        self.port = port
        self.addCleanup(port.stopListening)

    async def send(self, data):
        client = Collector()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        await connectProtocol(endpoint, client)
        client.transport.write(data)
        return client

    async def test_forged_found_block_and_ban_dropped(self):
        for packet in (FOUND, BAN):
            for name, data in forgeries(packet):
                client = await self.send(data)
                # The server drops the peer: the connection closes without delivery.
                await client.closed
                self.assertEqual(self.handler.packets, [], name)

    async def test_genuine_packets_delivered_and_replays_dropped(self):
        data = encode(FOUND, SECRET, now=reactor.seconds())
        client = await self.send(data + encode(BAN, SECRET, now=reactor.seconds()))
        await wait_until(lambda: len(self.handler.packets) == 2)
        self.assertEqual(self.handler.packets, [Command.FOUND_BLOCK, Command.UPDATE_BAN])
        client.transport.loseConnection()
        again = await self.send(data)  # captured and replayed on a new connection
        await again.closed
        self.assertEqual(len(self.handler.packets), 2)

    async def test_untrusted_source_refused(self):
        self.factory.trust = TrustedHosts(["10.0.0.0/8"])
        client = await self.send(encode(BAN, SECRET, now=reactor.seconds()))
        await client.closed
        self.assertEqual(self.handler.packets, [])


class UDPLinkTests(TestCase):
    """cmd 4 (and cmd 3) over real UDP to a keyed RPCDatagramProtocol."""

    def setUp(self):
        self.handler = RecordingHandler()
        self.protocol = RPCDatagramProtocol(self.handler, max_size=1 << 16, secret=SECRET,
                                            reactor=reactor, role="test")
        self.port = reactor.listenUDP(0, self.protocol, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    def send(self, data):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(data, ("127.0.0.1", self.port.getHost().port))

    async def test_forged_height_hint_and_ban_dropped(self):
        for packet in (HINT, BAN):
            for name, data in forgeries(packet):
                self.send(data)
        # A genuine packet sent last is the barrier: once it is in, the
        # forgeries before it have been judged.
        self.send(encode(Packet(Command.HEIGHT_UPDATE, b"{}"), SECRET, now=reactor.seconds()))
        await wait_until(lambda: self.handler.packets)
        self.assertEqual(self.handler.packets, [Command.HEIGHT_UPDATE])

    async def test_replayed_hint_dropped(self):
        data = encode(HINT, SECRET, now=reactor.seconds())
        self.send(data)
        self.send(data)
        self.send(encode(BAN, SECRET, now=reactor.seconds()))
        await wait_until(lambda: len(self.handler.packets) == 2)
        self.assertEqual(self.handler.packets, [Command.HEIGHT_UPDATE, Command.UPDATE_BAN])

    async def test_stale_hint_dropped(self):
        self.send(encode(HINT, SECRET, now=reactor.seconds() - 3600))
        self.send(encode(BAN, SECRET, now=reactor.seconds()))
        await wait_until(lambda: self.handler.packets)
        self.assertEqual(self.handler.packets, [Command.UPDATE_BAN])

    def test_untrusted_source_dropped(self):
        protocol = RPCDatagramProtocol(self.handler, max_size=1 << 16, secret=SECRET,
                                       trust=TrustedHosts(["10.0.0.1"]), reactor=Clock())
        protocol.datagramReceived(encode(HINT, SECRET, now=0), ("10.0.0.2", 5000))
        self.assertEqual(self.handler.packets, [])


def jobmaster_config(secret=SECRET, **changes):
    data = {
        "network": "regtest",
        "svr": {"bind": ["tcp@127.0.0.1:0", "udp@127.0.0.1:0"], "max_pkg_size": 1 << 20},
        "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": 1, "user": "u", "pass": "p"},
        "main_coin_recipient": encode_segwit_address("bcrt", 0, bytes(20)),
        "pool_name": "viabtc-test",
        "secret": secret.decode(),
    }
    data.update(changes)
    return JobmasterConfig.from_reader(ConfigReader(data))


class JobmasterServiceTests(TestCase):
    """
    The jobmaster's own listeners (``service.factory`` for gateways, the
    datagram protocol for hints), built from a config with a ``secret``.
    The service is not started: nothing here needs its node.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.found_dir = os.path.abspath(self.mktemp())
        self.service = build_service(jobmaster_config(found_blocks_dir=self.found_dir), self.clock)

    def gateway(self):
        protocol = self.service.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def hints(self):
        return self.service.datagram_services[0].protocol

    def events(self, logs, word):
        return [e for e in logs if word in e.get("log_format", "")]

    def test_forged_found_block_and_ban_dropped(self):
        for packet in (FOUND, BAN):
            for name, data in forgeries(packet):
                protocol, transport = self.gateway()
                with capturedLogs() as logs:
                    protocol.dataReceived(data)
                self.assertTrue(transport.disconnecting, name)
                self.assertEqual(self.events(logs, "found block"), [], name)
                self.assertEqual(self.events(logs, "ban {op}"), [], name)
        self.assertEqual(len(self.service.bans), 0)

    def test_forged_height_hint_dropped(self):
        for packet in (HINT, BAN):
            for name, data in forgeries(packet):
                with capturedLogs() as logs:
                    self.hints().datagramReceived(data, ("127.0.0.1", 5000))
                self.assertEqual(self.events(logs, "height hint"), [], name)
                self.assertTrue(self.events(logs, "dropped datagram"), name)
        self.assertEqual(self.service.work.mode, "normal")

    def test_genuine_packets_reach_the_jobmaster(self):
        """The control: the same packets, tagged with the pool's secret, are acted on."""
        protocol, _ = self.gateway()
        protocol.dataReceived(encode(BAN, SECRET, now=self.clock.seconds()))
        self.assertIn("10.9.9.9", self.service.bans)
        with capturedLogs() as logs:
            self.hints().datagramReceived(encode(HINT, SECRET, now=self.clock.seconds()),
                                          ("127.0.0.1", 5000))
        self.assertEqual(len(self.events(logs, "height hint")), 1)
