"""Tests for viabtc.rpc.protocol: server heartbeats, bad input, trust, tags, UDP."""

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from viabtc.rpc.client import DatagramSender
from viabtc.rpc.codec import (
    Command,
    Packet,
    PacketDecoder,
    PacketType,
    encode,
    heartbeat_request,
)
from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import (
    RPCDatagramProtocol,
    RPCServerFactory,
    TrustedHosts,
)

SECRET = b"pool secret"


@implementer(IPacketHandler)
class RecordingHandler:
    """A real handler for tests: remembers what the server delivered."""

    def __init__(self):
        self.connected = []
        self.packets = []
        self.disconnected = []

    def peerConnected(self, protocol):
        self.connected.append(protocol)

    def packetReceived(self, protocol, packet):
        self.packets.append(packet)

    def peerDisconnected(self, protocol, reason):
        self.disconnected.append(protocol)


class _ServerCase(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.handler = RecordingHandler()

    def connect(self, factory=None, host="127.0.0.1"):
        factory = factory or RPCServerFactory(self.handler, max_size=4096, reactor=self.clock)
        address = IPv4Address("TCP", host, 40000)
        protocol = factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return factory, protocol, transport

    def replies(self, transport):
        return PacketDecoder(4096).feed(transport.value())



class ServerTests(_ServerCase):
    def test_heartbeat_answered_and_consumed(self):
        _, protocol, transport = self.connect()
        protocol.dataReceived(encode(heartbeat_request(10.0, sequence=7)))
        self.assertEqual(
            self.replies(transport),
            [Packet(Command.HEARTBEAT, b"", PacketType.REPLY, 7)],
        )
        self.assertEqual(self.handler.packets, [])
        self.assertEqual(protocol.timeout, 10.0)

    def test_announced_timeout_is_clamped(self):
        _, protocol, _ = self.connect()
        protocol.dataReceived(encode(heartbeat_request(0.5)))
        self.assertEqual(protocol.timeout, 2.0)
        protocol.dataReceived(encode(heartbeat_request(5000)))
        self.assertEqual(protocol.timeout, 600.0)

    def test_only_heartbeats_count_as_liveness(self):
        """A peer that sends data but no heartbeats is dropped after 3 s (ref §2.3)."""
        _, protocol, transport = self.connect()
        for _ in range(5):
            self.clock.advance(0.5)
            protocol.dataReceived(encode(Packet(Command.FOUND_BLOCK, b"{}")))
        self.assertFalse(transport.disconnecting)
        with capturedLogs() as events:
            self.clock.advance(0.6)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.handler.packets), 5)
        self.assertIn("no heartbeat", events[-1]["reason"])
        self.assertEqual(events[-1]["peer"], "127.0.0.1:40000")

    def test_heartbeats_keep_peer_alive(self):
        _, protocol, transport = self.connect()
        for _ in range(20):
            protocol.dataReceived(encode(heartbeat_request(3.0)))
            self.clock.advance(1.0)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(3.0)
        self.assertTrue(transport.disconnecting)

    def test_bad_packet_closes_with_reason(self):
        _, protocol, transport = self.connect()
        good = Packet(Command.FOUND_BLOCK, b"{}")
        with capturedLogs() as events:
            protocol.dataReceived(encode(good) + b"nope" * 10)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.handler.packets, [good])
        self.assertEqual(events[-1]["reason"], "bad magic")
        self.assertEqual(events[-1]["peer"], "127.0.0.1:40000")
        protocol.dataReceived(encode(good))
        self.assertEqual(self.handler.packets, [good])

    def test_oversize_closes(self):
        _, protocol, transport = self.connect()
        protocol.dataReceived(encode(Packet(Command.SUBMIT_BLOCK, b"x" * 5000))[:36])
        self.assertTrue(transport.disconnecting)

    def test_handler_error_is_logged_not_raised(self):
        class Broken(RecordingHandler):
            def packetReceived(self, protocol, packet):
                raise RuntimeError("role bug")

        handler = Broken()
        factory = RPCServerFactory(handler, max_size=4096, reactor=self.clock)
        _, protocol, transport = self.connect(factory)
        protocol.dataReceived(encode(Packet(1, b"a")) + encode(Packet(1, b"b")))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertFalse(transport.disconnecting)

    def test_connection_set_and_broadcast(self):
        factory, p1, t1 = self.connect()
        _, p2, t2 = self.connect(factory)
        self.assertEqual(factory.connections, {p1, p2})
        self.assertEqual(self.handler.connected, [p1, p2])
        job = Packet(Command.UPDATE_JOB, b'{"job_id":"a"}')
        self.assertEqual(factory.broadcast(job), 2)
        self.assertEqual(self.replies(t1), [job])
        self.assertEqual(self.replies(t2), [job])
        p1.connectionLost(None)
        self.assertEqual(factory.connections, {p2})
        self.assertEqual(self.handler.disconnected, [p1])

    def test_untrusted_source_refused(self):
        factory = RPCServerFactory(
            self.handler, max_size=4096, reactor=self.clock, trust=TrustedHosts(["10.0.0.0/8"])
        )
        with capturedLogs() as events:
            self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.168.1.5", 1)))
        self.assertEqual(events[-1]["peer"], "192.168.1.5:1")
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "10.2.3.4", 1)))


class TrustedHostsTests(TestCase):
    def test_addresses_and_networks(self):
        trust = TrustedHosts(["127.0.0.1", "192.168.1.0/24", "::1"])
        self.assertTrue(trust("127.0.0.1"))
        self.assertTrue(trust("192.168.1.77"))
        self.assertTrue(trust("::1"))
        self.assertTrue(trust("::ffff:127.0.0.1"))
        self.assertFalse(trust("127.0.0.2"))
        self.assertFalse(trust("not an ip"))


class KeyedServerTests(_ServerCase):
    """The same server with a shared secret: tags required, replays refused."""

    def keyed(self):
        return RPCServerFactory(self.handler, max_size=4096, reactor=self.clock, secret=SECRET)

    def test_tagged_accepted(self):
        _, protocol, transport = self.connect(self.keyed())
        packet = Packet(Command.UPDATE_BAN, b'{"ip":[],"op":"add"}')
        protocol.dataReceived(encode(packet, SECRET, now=self.clock.seconds()))
        self.assertEqual([p.body for p in self.handler.packets], [packet.body])
        self.assertFalse(transport.disconnecting)

    def test_replies_are_tagged(self):
        _, protocol, transport = self.connect(self.keyed())
        protocol.dataReceived(encode(heartbeat_request(3), SECRET, now=self.clock.seconds()))
        self.assertEqual(len(PacketDecoder(4096, SECRET).feed(transport.value())), 1)

    def test_untagged_dropped_with_reason(self):
        _, protocol, transport = self.connect(self.keyed())
        with capturedLogs() as events:
            protocol.dataReceived(encode(Packet(Command.UPDATE_BAN, b"{}")))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.handler.packets, [])
        self.assertEqual(events[-1]["reason"], "missing auth tag")

    def test_wrong_key_dropped(self):
        _, protocol, transport = self.connect(self.keyed())
        with capturedLogs() as events:
            protocol.dataReceived(encode(Packet(1, b"{}"), b"guess", now=self.clock.seconds()))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(events[-1]["reason"], "bad auth tag")

    def test_replay_on_another_connection_dropped(self):
        factory = self.keyed()
        data = encode(Packet(Command.HEIGHT_UPDATE, b'{"height":5}'), SECRET, now=self.clock.seconds())
        _, p1, t1 = self.connect(factory)
        p1.dataReceived(data)
        _, p2, t2 = self.connect(factory)
        with capturedLogs() as events:
            p2.dataReceived(data)
        self.assertEqual(len(self.handler.packets), 1)
        self.assertTrue(t2.disconnecting)
        self.assertEqual(events[-1]["reason"], "replayed packet")

    def test_stale_timestamp_dropped(self):
        _, protocol, transport = self.connect(self.keyed())
        protocol.dataReceived(encode(Packet(1, b""), SECRET, now=self.clock.seconds() - 300))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.handler.packets, [])

    def test_keyed_broadcast(self):
        factory = self.keyed()
        _, _, t1 = self.connect(factory)
        factory.broadcast(Packet(Command.UPDATE_JOB, b"{}"))
        self.assertEqual(len(PacketDecoder(4096, SECRET).feed(t1.value())), 1)


class RealTCPTrustTests(TestCase):
    """An untrusted peer on real loopback sockets is closed before any byte."""

    @defer.inlineCallbacks
    def test_refused_over_loopback(self):
        handler = RecordingHandler()
        factory = RPCServerFactory(handler, max_size=4096, trust=TrustedHosts(["10.0.0.0/8"]))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        lost = defer.Deferred()

        class Client(Protocol):
            def connectionMade(self):
                self.transport.write(encode(Packet(Command.FOUND_BLOCK, b"{}")))

            def connectionLost(self, reason):
                lost.callback(None)

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        with capturedLogs() as events:
            yield endpoint.connect(_factory_for(Client))
            yield lost
        self.assertEqual(handler.packets, [])
        self.assertTrue(any("untrusted" in e.get("log_format", "") for e in events))


def _factory_for(protocol_class):
    from twisted.internet.protocol import Factory

    return Factory.forProtocol(protocol_class)


@implementer(IDatagramHandler)
class AckingHandler:
    """A stats receiver in miniature: records packets and ACKs each one."""

    def __init__(self):
        self.packets = []
        self.received = defer.Deferred()

    def packetReceived(self, protocol, packet, address):
        self.packets.append((packet, address))
        protocol.send(packet.reply(), address)
        if not self.received.called:
            self.received.callback(packet)


class AckObserver:
    def __init__(self):
        self.packets = []
        self.acked = defer.Deferred()

    def on_connect(self, link):
        pass

    def on_packet(self, link, packet):
        self.packets.append(packet)
        if not self.acked.called:
            self.acked.callback(packet)

    def on_disconnect(self, link):
        pass


class DatagramServerTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.handler = AckingHandler()

    def listen(self, **kw):
        protocol = RPCDatagramProtocol(self.handler, max_size=4096, **kw)
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return protocol, port.getHost().port

    @defer.inlineCallbacks
    def test_ack_goes_back_to_sender(self, secret=None):
        protocol, port = self.listen(secret=secret, trust=TrustedHosts(["127.0.0.1"]))
        sender = DatagramSender([("127.0.0.1", port)], max_size=4096, secret=secret)
        observer = AckObserver()
        sender.add_observer(observer)
        sender.startService()
        self.addCleanup(sender.stopService)
        packet = Packet(Command.META_SHARE, b"r" * 32 + b"records", PacketType.REQUEST, 42)
        self.assertTrue(sender.send(packet))
        got = yield self.handler.received
        self.assertEqual((got.command, got.body, got.sequence), (packet.command, packet.body, 42))
        ack = yield observer.acked
        self.assertEqual((ack.command, ack.pkg_type, ack.sequence), (Command.META_SHARE, PacketType.REPLY, 42))

    def test_keyed_ack_round_trip(self):
        return self.test_ack_goes_back_to_sender(secret=SECRET)

    def test_untrusted_datagram_dropped(self):
        protocol = RPCDatagramProtocol(
            self.handler, max_size=4096, reactor=self.clock, trust=TrustedHosts(["127.0.0.1"])
        )
        with capturedLogs() as events:
            protocol.datagramReceived(encode(Packet(Command.HEIGHT_UPDATE, b"{}")), ("10.9.9.9", 99))
        self.assertEqual(self.handler.packets, [])
        self.assertEqual(events[-1]["peer"], "10.9.9.9:99")

    def test_bad_datagrams_dropped(self):
        protocol = RPCDatagramProtocol(self.handler, max_size=100, reactor=self.clock, secret=SECRET)
        now = self.clock.seconds()
        good = encode(Packet(4, b"{}"), SECRET, now=now)
        reasons = []
        for data in (
            b"",
            good[:20],
            good + b"x",
            encode(Packet(4, b"x" * 200), SECRET, now=now),
            encode(Packet(4, b"{}")),
            encode(Packet(4, b"{}"), b"wrong", now=now),
        ):
            with capturedLogs() as events:
                protocol.datagramReceived(data, ("127.0.0.1", 1))
            reasons.append(events[-1]["reason"])
        self.assertEqual(self.handler.packets, [])
        self.assertEqual(reasons[-2:], ["missing auth tag", "bad auth tag"])
        protocol.datagramReceived(good, ("127.0.0.1", 1))
        self.assertEqual(len(self.handler.packets), 1)
        with capturedLogs() as events:
            protocol.datagramReceived(good, ("127.0.0.1", 1))
        self.assertEqual(events[-1]["reason"], "replayed packet")
        self.assertEqual(len(self.handler.packets), 1)
