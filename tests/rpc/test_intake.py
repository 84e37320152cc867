"""Tests for viabtc.rpc.intake: packets from TCP and UDP into one receiver, each with its ACK."""

import socket

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from tests.roles import wait_for
from viabtc.rpc.codec import Packet, PacketDecoder, PacketType, decode_datagram, encode
from viabtc.rpc.intake import DatagramIntake, StreamIntake, TurnBatch
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory


class Receiver:
    """The role side (a relay or a writer): keeps each packet with its ACK and peer."""

    def __init__(self):
        self.received = []

    def packet_received(self, packet, ack, peer):
        self.received.append((packet, ack, peer))


PACKET = Packet(102, b"statistics", PacketType.REQUEST, 7)


class StreamIntakeTests(TestCase):
    def test_ack_is_the_reply_on_the_connection(self):
        receiver = Receiver()
        factory = RPCServerFactory(StreamIntake(receiver), max_size=4096, reactor=Clock())
        protocol = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 5000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 5000))
        protocol.makeConnection(transport)
        protocol.dataReceived(encode(PACKET))
        [(packet, ack, peer)] = receiver.received
        self.assertEqual((packet, peer), (PACKET, "10.0.0.1:5000"))
        # Nothing is answered until the receiver says the packet is safe.
        self.assertEqual(transport.value(), b"")
        ack()
        self.assertEqual(PacketDecoder(4096).feed(transport.value()), [PACKET.reply()])


class DatagramIntakeTests(TestCase):
    def test_ack_goes_back_to_the_sender(self):
        receiver = Receiver()
        protocol = RPCDatagramProtocol(DatagramIntake(receiver), max_size=4096, reactor=reactor)
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        sender.bind(("127.0.0.1", 0))
        sender.settimeout(5)
        sender.sendto(encode(PACKET), ("127.0.0.1", port.getHost().port))
        d = wait_for(lambda: receiver.received)

        def received(_):
            [(packet, ack, peer)] = receiver.received
            self.assertEqual((packet, peer), (PACKET, "127.0.0.1:%d" % sender.getsockname()[1]))
            self.assertTrue(ack())
            self.assertEqual(decode_datagram(sender.recv(65536), 4096), PACKET.reply())
        return d.addCallback(received)


class TurnBatchTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.handled = []
        self.batch = TurnBatch(self.clock, self.handled.append)

    def test_one_turn_handled_together(self):
        """Items added in one turn reach the handler once, together, at its end."""
        self.batch.add(1)
        self.batch.add(2)
        self.assertEqual(self.handled, [])
        self.clock.advance(0)
        self.assertEqual(self.handled, [[1, 2]])
        self.batch.add(3)
        self.clock.advance(0)
        self.assertEqual(self.handled, [[1, 2], [3]])

    def test_explicit_drain_cancels_the_turn_call(self):
        self.batch.add(1)
        self.batch.drain()
        self.assertEqual(self.handled, [[1]])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.batch.drain()
        self.assertEqual(self.handled, [[1]])
