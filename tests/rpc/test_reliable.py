"""Tests for viabtc.rpc.reliable: ACKs, resends, window overflow, restarts."""

import os

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from viabtc.rpc.client import DatagramSender, FailoverClient
from viabtc.rpc.codec import Command, Packet, PacketDecoder, PacketType, encode
from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory
from viabtc.rpc.reliable import ReliableSender


def stats(n):
    """A stats packet whose body is unique, as the gateway's are (ref §2.5)."""
    return Packet(Command.META_SHARE, b"%032d" % n + b"records", PacketType.REQUEST)


class Harness:
    """
    A ReliableSender over a real FailoverClient whose one connection is a
    StringTransport, on a memory reactor: the test plays the receiver.
    """

    def __init__(self, testcase, directory, **kw):
        self.reactor = MemoryReactorClock()
        endpoint = TCP4ClientEndpoint(self.reactor, "10.0.0.1", 3000)
        # The test plays a receiver that never answers heartbeats; a long
        # heartbeat timeout keeps the link up for the whole test.
        self.client = FailoverClient(
            [endpoint], max_size=1 << 20, reactor=self.reactor, heartbeat_timeout=600
        )
        self.sender = ReliableSender(self.client, directory, reactor=self.reactor, **kw)
        self.client.startService()
        self.sender.startService()
        testcase.addCleanup(self.stop)
        self.connect()

    def connect(self):
        _, _, factory, _, _ = self.reactor.tcpClients[-1]
        address = IPv4Address("TCP", "10.0.0.1", 3000)
        self.protocol = factory.buildProtocol(address)
        self.transport = StringTransport(peerAddress=address)
        self.protocol.makeConnection(self.transport)

    def disconnect(self):
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def sent(self):
        """Non-heartbeat packets written since the last call."""
        packets = PacketDecoder(1 << 20).feed(self.transport.value())
        self.transport.clear()
        return [p for p in packets if p.command != Command.HEARTBEAT]

    def ack(self, packet, command=None):
        reply = packet.reply()
        if command is not None:
            reply = Packet(command, b"", PacketType.REPLY, packet.sequence)
        self.protocol.dataReceived(encode(reply))
        self.reactor.advance(0)

    def stop(self):
        if self.sender.running:
            self.sender.stopService()
        if self.client.running:
            self.client.stopService()


class ReliableSenderTests(TestCase):
    def setUp(self):
        self.directory = self.mktemp()

    def test_ack_drops_entry_and_drains(self):
        h = Harness(self, self.directory)
        self.successResultOf(h.sender.when_drained())
        self.assertTrue(h.sender.send(stats(1)))
        drained = h.sender.when_drained()
        self.assertEqual(h.sender.pending_count(), 1)
        (packet,) = h.sent()
        self.assertEqual(packet.body, stats(1).body)
        self.assertNotEqual(packet.sequence, 0)
        self.assertNoResult(drained)
        h.ack(packet)
        self.assertEqual(h.sender.pending_count(), 0)
        self.successResultOf(drained)
        self.assertEqual(os.listdir(self.directory), [])
        self.successResultOf(h.sender.when_drained())

    def test_reply_must_match_command_and_sequence(self):
        h = Harness(self, self.directory)
        h.sender.send(stats(1))
        (packet,) = h.sent()
        h.ack(packet, command=Command.META_EVENT)
        h.protocol.dataReceived(
            encode(Packet(packet.command, b"", PacketType.REPLY, packet.sequence ^ 1))
        )
        h.reactor.advance(0)
        self.assertEqual(h.sender.pending_count(), 1)

    def test_resend_same_body_new_sequence(self):
        h = Harness(self, self.directory)
        h.sender.send(stats(7))
        (first,) = h.sent()
        h.reactor.advance(9.0)
        self.assertEqual(h.sent(), [])
        h.reactor.advance(1.0)
        (second,) = h.sent()
        self.assertEqual(second.body, first.body)
        self.assertEqual(second.command, first.command)
        self.assertNotEqual(second.sequence, first.sequence)
        h.ack(first)  # a late ACK of the old sequence no longer matches
        self.assertEqual(h.sender.pending_count(), 1)
        h.ack(second)
        self.assertEqual(h.sender.pending_count(), 0)

    def test_window_full_overflows_to_file_queue(self):
        h = Harness(self, self.directory, window=2)
        self.assertTrue(h.sender.send_batch([stats(i) for i in range(5)]))
        on_wire = h.sent()
        self.assertEqual([p.body for p in on_wire], [stats(0).body, stats(1).body])
        self.assertEqual(h.sender.in_flight_count, 2)
        self.assertEqual(h.sender.pending_count(), 5)
        h.ack(on_wire[1])
        self.assertEqual([p.body for p in h.sent()], [stats(2).body])
        self.assertEqual(h.sender.pending_count(), 4)

    def test_restart_resends_what_was_in_flight(self):
        """A new sender on the same directory sends every unacknowledged packet (ref §12.26)."""
        h = Harness(self, self.directory, window=2)
        h.sender.send_batch([stats(i) for i in range(4)])
        on_wire = h.sent()
        h.ack(on_wire[0])
        h.stop()

        h2 = Harness(self, self.directory, window=10)
        self.assertEqual(h2.sender.pending_count(), 3)
        resent = h2.sent()
        self.assertEqual([p.body for p in resent], [stats(i).body for i in (1, 2, 3)])
        for packet in resent:
            h2.ack(packet)
        self.assertEqual(h2.sender.pending_count(), 0)
        self.assertEqual(os.listdir(self.directory), [])

    def test_disconnected_link_keeps_packets(self):
        h = Harness(self, self.directory)
        h.disconnect()
        self.assertTrue(h.sender.send(stats(1)))
        h.reactor.advance(1.0)
        h.connect()
        (packet,) = h.sent()
        self.assertEqual(packet.body, stats(1).body)

    def test_reconnect_resends_in_flight_at_once(self):
        h = Harness(self, self.directory)
        h.sender.send(stats(1))
        (first,) = h.sent()
        h.disconnect()
        h.reactor.advance(1.0)
        h.connect()
        (again,) = h.sent()
        self.assertEqual(again.body, first.body)
        self.assertNotEqual(again.sequence, first.sequence)

    def test_send_after_stop_refused(self):
        h = Harness(self, self.directory)
        h.sender.stopService()
        self.assertFalse(h.sender.send(stats(1)))
        self.assertEqual(os.listdir(self.directory), [])

    def test_full_journal_refuses(self):
        h = Harness(self, self.directory, max_bytes=200)
        self.assertTrue(h.sender.send(stats(1)))
        self.assertFalse(h.sender.send_batch([stats(2), stats(3), stats(4)]))
        self.assertEqual(h.sender.pending_count(), 1)


@implementer(IPacketHandler, IDatagramHandler)
class StatsReceiver:
    """A metawriter in miniature: ACKs (REPLY, same sequence) and de-duplicates by body."""

    def __init__(self, drop_first=0):
        self.bodies = []
        self.drop_first = drop_first

    def peerConnected(self, protocol):
        pass

    def peerDisconnected(self, protocol, reason):
        pass

    def packetReceived(self, protocol, packet, address=None):
        if self.drop_first:
            self.drop_first -= 1
            return
        if packet.body not in self.bodies:
            self.bodies.append(packet.body)
        if address is None:
            protocol.send(packet.reply())
        else:
            protocol.send(packet.reply(), address)


class LoopbackReliableTests(TestCase):
    """ReliableSender over real TCP and UDP links on loopback."""

    @defer.inlineCallbacks
    def test_over_tcp(self):
        receiver = StatsReceiver()
        port = reactor.listenTCP(0, RPCServerFactory(receiver, max_size=1 << 20), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = FailoverClient(
            [TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)], max_size=1 << 20
        )
        sender = ReliableSender(client, self.mktemp(), window=3)
        client.startService()
        sender.startService()
        self.addCleanup(client.stopService)
        self.addCleanup(sender.stopService)
        sender.send_batch([stats(i) for i in range(10)])
        yield sender.when_drained()
        self.assertEqual(receiver.bodies, [stats(i).body for i in range(10)])

    @defer.inlineCallbacks
    def test_over_udp_with_loss(self):
        """Dropped datagrams are resent (short resend timeout) until ACKed."""
        receiver = StatsReceiver(drop_first=2)
        port = reactor.listenUDP(
            0, RPCDatagramProtocol(receiver, max_size=65000), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        link = DatagramSender([("127.0.0.1", port.getHost().port)], max_size=65000)
        sender = ReliableSender(link, self.mktemp(), resend_timeout=0.05, check_interval=0.02)
        link.startService()
        sender.startService()
        self.addCleanup(link.stopService)
        self.addCleanup(sender.stopService)
        sender.send_batch([stats(i) for i in range(5)])
        yield sender.when_drained()
        self.assertEqual(sorted(receiver.bodies), [stats(i).body for i in range(5)])
