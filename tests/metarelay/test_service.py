"""
The metarelay service over real sockets: trusted TCP and UDP packets are
forwarded unchanged, untrusted ones dropped, and queued packets survive a
restart of the relay while the writer is away.
"""

import os
import socket

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import defer, reactor, threads
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest
from zope.interface import implementer

from tests.roles import tcp_exchange, udp_exchange, wait_for
from viabtc.config import RPCClientBlock, ServerBlock, parse_address
from viabtc.devnet import free_port
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.service import MetaRelayService
from viabtc.rpc.codec import Packet, PacketType, decode_datagram, encode
from viabtc.rpc.interfaces import IPacketHandler
from viabtc.rpc.protocol import RPCServerFactory
from viabtc.stats.records import EventRecord, ShareRecord, encode_bodies


@implementer(IPacketHandler)
class FakeWriter:
    """A fake metawriter: a real RPC server that records each packet and ACKs it."""

    def __init__(self):
        self.packets = []

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet):
        self.packets.append(packet)
        protocol.send(packet.reply())

    def peerDisconnected(self, protocol, reason):
        pass


def stats(user, sequence):
    [body] = encode_bodies(102, [ShareRecord(user, "gw", "btc", 1, 1, 0.0)], minute=120)
    return Packet(102, body, PacketType.REQUEST, sequence)


class RelayServiceTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.writer_port = free_port()
        self.writer = FakeWriter()
        self.writer_service = None
        self.queue = os.path.abspath(self.mktemp())

    def start_writer(self):
        factory = RPCServerFactory(self.writer, max_size=1 << 20, reactor=reactor, role="test-writer")
        service = StreamServerEndpointService(
            TCP4ServerEndpoint(reactor, self.writer_port, interface="127.0.0.1"), factory)
        service._raiseSynchronously = True
        service.startService()
        self.writer_service = service
        self.addCleanup(service.stopService)
        return factory

    def start_relay(self, trust=("127.0.0.1",)):
        self.tcp = free_port()
        self.udp = free_port(kind=socket.SOCK_DGRAM)
        config = MetaRelayConfig(
            svr=ServerBlock((parse_address("tcp@127.0.0.1:%d" % self.tcp),
                             parse_address("udp@127.0.0.1:%d" % self.udp)), 1 << 20),
            writer=RPCClientBlock("writer", (parse_address("tcp@127.0.0.1:%d" % self.writer_port),), 1 << 20,
                                  reconnect_timeout=0.1),
            queue=self.queue,
            trust=tuple(trust),
        )
        relay = MetaRelayService(config, reactor, resend_timeout=1.0)
        relay.privilegedStartService()
        relay.startService()
        return relay

    @defer.inlineCallbacks
    def test_forwards_unchanged_over_tcp_and_udp(self):
        self.start_writer()
        relay = self.start_relay()
        self.addCleanup(relay.stopService)
        one, two = stats("alice", 11), stats("bob", 12)
        [body] = encode_bodies(101, [EventRecord("carol", "rig", "btc", "10.0.0.5", "connected")])
        three = Packet(101, body, PacketType.REQUEST, 13)
        reply = yield threads.deferToThread(udp_exchange, self.udp, encode(one))
        self.assertEqual(decode_datagram(reply, 1 << 20), one.reply())
        replies = yield threads.deferToThread(tcp_exchange, self.tcp, encode(two) + encode(three))
        self.assertEqual(replies[0], two.reply())
        yield wait_for(lambda: len(self.writer.packets) == 3)
        got = sorted((p.command, p.pkg_type, p.body) for p in self.writer.packets)
        self.assertEqual(got, sorted((p.command, p.pkg_type, p.body) for p in (one, two, three)))
        yield relay.sender.when_drained()

    @defer.inlineCallbacks
    def test_untrusted_dropped_on_tcp_and_udp(self):
        self.start_writer()
        relay = self.start_relay(trust=("10.1.1.1",))
        self.addCleanup(relay.stopService)
        reply = yield threads.deferToThread(udp_exchange, self.udp, encode(stats("eve", 1)), 0.5)
        self.assertIsNone(reply)
        replies = yield threads.deferToThread(tcp_exchange, self.tcp, encode(stats("eve", 2)), 0.5)
        self.assertEqual(replies, [])
        self.assertEqual(relay.sender.pending_count(), 0)
        self.assertEqual(len([e for e in self.events if "untrusted" in e.get("log_format", "")]), 2)

    @defer.inlineCallbacks
    def test_queued_packets_survive_a_relay_restart(self):
        relay = self.start_relay()
        sent = [stats("user%d" % i, i + 1) for i in range(5)]
        for pkt in sent:
            reply = yield threads.deferToThread(udp_exchange, self.udp, encode(pkt))
            self.assertEqual(decode_datagram(reply, 1 << 20), pkt.reply())
        self.assertEqual(relay.sender.pending_count(), 5)
        yield relay.stopService()
        # The writer comes up; a new relay process finds the queue and delivers it.
        self.start_writer()
        relay = self.start_relay()
        self.addCleanup(relay.stopService)
        yield wait_for(lambda: len(self.writer.packets) >= 5)
        yield relay.sender.when_drained()
        self.assertEqual(sorted(p.body for p in self.writer.packets), sorted(p.body for p in sent))
