"""The P2P connection: today's handshake, keep-alive, and one bad or slow peer dropped alone."""

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from viabtc.p2p.framing import FrameDecoder, encode_frame
from viabtc.p2p.messages import (
    NODE_NETWORK,
    NODE_WITNESS,
    FeeFilter,
    Inv,
    InvItem,
    Ping,
    Pong,
    SendCmpct,
    SendHeaders,
    Verack,
    Version,
    WtxidRelay,
    decode,
)
from viabtc.p2p.protocol import IPeerHandler, PeerFactory, PeerSettings

MAGIC = bytes.fromhex("fabfb5da")


@implementer(IPeerHandler)
class Recorder:
    """Records what the protocol hands to its role."""

    def __init__(self, fail=False):
        self.events = []
        self.fail = fail

    def peerReady(self, peer):
        self.events.append(("ready", peer))

    def messageReceived(self, peer, message):
        if self.fail:
            raise RuntimeError("handler bug")
        self.events.append(("message", message))

    def peerLost(self, peer, reason):
        self.events.append(("lost", peer))


def frame(message):
    return encode_frame(MAGIC, message.command, message.serialize())


class Peer:
    """One connection under test: a protocol on a string transport."""

    def __init__(self, factory, port=18444):
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        self.decoder = FrameDecoder(MAGIC)

    def sent(self):
        """Messages written since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return [decode(c, p) for c, p in self.decoder.feed(data)]

    def receive(self, *messages):
        self.protocol.dataReceived(b"".join(frame(m) for m in messages))

    def handshake(self, version=70016, services=NODE_NETWORK | NODE_WITNESS):
        self.receive(Version(version=version, services=services, nonce=1, start_height=5), Verack())

    @property
    def dropped(self):
        return self.transport.disconnecting


class ProtocolCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.handler = Recorder()
        self.factory = PeerFactory(self.handler, PeerSettings(MAGIC), reactor=self.clock,
                                   start_height=lambda: 42, role="test")


class HandshakeTests(ProtocolCase):
    def test_version_on_connect(self):
        peer = Peer(self.factory)
        [version] = peer.sent()
        self.assertEqual((version.version, version.services, version.start_height, version.relay),
                         (70016, NODE_WITNESS, 42, False))

    def test_todays_order(self):
        peer = Peer(self.factory)
        peer.sent()
        peer.receive(Version(version=70016, services=NODE_WITNESS, nonce=1))
        self.assertEqual([m.command for m in peer.sent()], ["wtxidrelay", "sendaddrv2", "verack"])
        self.assertEqual(self.handler.events, [])
        peer.receive(WtxidRelay(), Verack())
        self.assertEqual(peer.sent(), [SendHeaders(), SendCmpct(True, 2)])
        self.assertEqual(self.handler.events, [("ready", peer.protocol)])
        self.assertTrue(peer.protocol.ready)

    def test_70015_peer_gets_no_bip339(self):
        peer = Peer(self.factory)
        peer.sent()
        peer.receive(Version(version=70015, services=NODE_WITNESS, nonce=1))
        self.assertEqual(peer.sent(), [Verack()])

    def test_peer_without_witness_gets_compact_version_1(self):
        peer = Peer(self.factory)
        peer.handshake(services=NODE_NETWORK)
        self.assertIn(SendCmpct(True, 1), peer.sent())

    def test_old_version_dropped(self):
        peer = Peer(self.factory)
        peer.receive(Version(version=70001, nonce=1))
        self.assertTrue(peer.dropped)

    def test_message_before_version_dropped(self):
        peer = Peer(self.factory)
        peer.receive(Ping(1))
        self.assertTrue(peer.dropped)

    def test_feature_after_verack_dropped(self):
        peer = Peer(self.factory)
        peer.handshake()
        peer.receive(WtxidRelay())
        self.assertTrue(peer.dropped)

    def test_self_connection_dropped(self):
        peer = Peer(self.factory)
        peer.receive(Version(version=70016, nonce=self.factory.nonce))
        self.assertTrue(peer.dropped)

    def test_handshake_timeout(self):
        peer = Peer(self.factory)
        self.clock.advance(29)
        self.assertFalse(peer.dropped)
        self.clock.advance(1)
        self.assertTrue(peer.dropped)

    def test_capabilities_recorded(self):
        peer = Peer(self.factory)
        peer.handshake()
        peer.receive(SendHeaders(), SendCmpct(False, 1), SendCmpct(True, 2), FeeFilter(1000))
        p = peer.protocol
        self.assertEqual((p.wants_headers, p.compact_announce, p.compact_version, p.fee_filter),
                         (True, True, 2, 1000))
        self.assertEqual(self.handler.events, [("ready", p)])

    def test_unknown_compact_version_ignored(self):
        peer = Peer(self.factory)
        peer.handshake()
        peer.receive(SendCmpct(True, 3))
        self.assertEqual(peer.protocol.compact_version, 0)


class TrafficTests(ProtocolCase):
    def ready_peer(self, port=18444):
        peer = Peer(self.factory, port)
        peer.handshake()
        peer.sent()
        return peer

    def test_messages_reach_the_handler(self):
        peer = self.ready_peer()
        inv = Inv([InvItem(2, bytes(32))])
        peer.receive(inv)
        self.assertEqual(self.handler.events[-1], ("message", inv))

    def test_unknown_message_ignored(self):
        peer = self.ready_peer()
        peer.protocol.dataReceived(encode_frame(MAGIC, "addrv2", b"\xff\xff"))
        self.assertFalse(peer.dropped)

    def test_ping_answered(self):
        peer = self.ready_peer()
        peer.receive(Ping(77))
        self.assertEqual(peer.sent(), [Pong(77)])

    def test_keepalive(self):
        peer = self.ready_peer()
        self.clock.advance(120)
        [ping] = peer.sent()
        self.clock.advance(10)
        peer.receive(Pong(ping.nonce))
        self.assertEqual(peer.protocol.ping_time, 10)
        self.clock.advance(120)
        [ping] = peer.sent()
        self.clock.advance(60)
        self.assertTrue(peer.dropped)

    def test_stalled_message(self):
        peer = self.ready_peer()
        data = frame(Ping(5))
        peer.protocol.dataReceived(data[:-1])
        self.clock.advance(119)
        self.assertFalse(peer.dropped)
        self.clock.advance(1)
        self.assertTrue(peer.dropped)

    def test_completed_message_cancels_stall(self):
        peer = self.ready_peer()
        data = frame(Ping(5))
        peer.protocol.dataReceived(data[:-1])
        self.clock.advance(100)
        peer.protocol.dataReceived(data[-1:])
        self.clock.advance(100)
        self.assertFalse(peer.dropped)

    def test_bad_peer_dropped_alone(self):
        good, bad = self.ready_peer(1), self.ready_peer(2)
        bad.protocol.dataReceived(b"\x00" * 30)
        self.assertTrue(bad.dropped)
        good.receive(Ping(1))
        self.assertFalse(good.dropped)
        self.assertEqual(good.sent(), [Pong(1)])

    def test_malformed_payload_dropped(self):
        peer = self.ready_peer()
        peer.protocol.dataReceived(encode_frame(MAGIC, "inv", b"\x05"))
        self.assertTrue(peer.dropped)

    def test_handler_error_does_not_drop(self):
        self.handler.fail = True
        peer = self.ready_peer()
        peer.receive(Inv([]))
        self.assertFalse(peer.dropped)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_lost_reported_and_forgotten(self):
        peer = self.ready_peer()
        self.assertEqual(self.factory.peers, {peer.protocol})
        self.assertTrue(peer.protocol.ready)
        peer.protocol.connectionLost(None)
        self.assertEqual(self.handler.events[-1], ("lost", peer.protocol))
        self.assertEqual(self.factory.peers, set())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unread_output_drops_peer(self):
        self.factory.settings = PeerSettings(MAGIC, max_send_buffer=100)
        peer = Peer(self.factory)
        peer.transport = StuckTransport()
        peer.protocol.transport = peer.transport
        peer.protocol.send(Inv([InvItem(2, bytes(32))] * 5))
        self.assertTrue(peer.dropped)


class StuckTransport(StringTransport):
    """
    A stand-in for a TCP transport whose peer stopped reading: everything
    written stays in its ``dataBuffer`` (a real socket's kernel buffers
    would take megabytes first).
    """

    @property
    def dataBuffer(self):
        return self.value()


class FuzzTests(ProtocolCase):
    """Whatever a peer sends, nothing raises into the reactor: the peer is served or dropped."""

    def test_random_streams(self):
        from hypothesis import given, settings
        from hypothesis import strategies as st

        commands = st.sampled_from(["version", "verack", "ping", "pong", "inv", "headers", "getdata",
                                    "sendcmpct", "cmpctblock", "getblocktxn", "block", "x"])

        @settings(max_examples=200, deadline=None)
        @given(st.lists(st.one_of(st.binary(max_size=40),
                                  st.builds(lambda c, p: encode_frame(MAGIC, c, p), commands,
                                            st.binary(max_size=120))), max_size=6))
        def check(chunks):
            peer = Peer(self.factory)
            peer.handshake()
            for chunk in chunks:
                peer.protocol.dataReceived(chunk)

        check()
