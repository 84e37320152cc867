"""Tests for viabtc.rpc.client: the failover state machine and real loopback links."""

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from viabtc.rpc.client import (
    CONNECTED,
    CONNECTING,
    STOPPED,
    WAITING,
    DatagramSender,
    FailoverClient,
)
from viabtc.rpc.codec import (
    Command,
    Packet,
    PacketDecoder,
    PacketType,
    encode,
    parse_heartbeat_timeout,
)
from viabtc.rpc.interfaces import IPacketHandler
from viabtc.rpc.protocol import RPCServerFactory

SECRET = b"pool secret"


class EventLog:
    """An ILinkObserver that records link events, optionally signalling waiters."""

    def __init__(self):
        self.events = []
        self._waiters = []

    def on_connect(self, link):
        self._record(("connect", getattr(link, "endpoint", None)))

    def on_packet(self, link, packet):
        self._record(("packet", packet.command, packet.body))

    def on_disconnect(self, link):
        self._record(("disconnect",))

    def _record(self, event):
        self.events.append(event)
        waiters, self._waiters = self._waiters, []
        for kind, waiter in waiters:
            if kind == event[0]:
                waiter.callback(event)
            else:
                self._waiters.append((kind, waiter))

    def next(self, kind):
        waiter = defer.Deferred()
        self._waiters.append((kind, waiter))
        return waiter


class FailoverStateMachineTests(TestCase):
    """The seed's client behaviour (ref §2.3), driven with a memory reactor."""

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.endpoints = [
            TCP4ClientEndpoint(self.reactor, "10.0.0.%d" % i, 6000) for i in (1, 2, 3)
        ]
        self.client = FailoverClient(self.endpoints, max_size=4096, reactor=self.reactor)
        self.log = EventLog()
        self.client.add_observer(self.log)

    def pending(self):
        """The most recent connection attempt: (host, factory)."""
        host, _, factory, _, _ = self.reactor.tcpClients[-1]
        return host, factory

    def refuse(self):
        host, factory = self.pending()
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        return host

    def accept(self):
        host, factory = self.pending()
        protocol = factory.buildProtocol(IPv4Address("TCP", host, 6000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, 6000))
        protocol.makeConnection(transport)
        return protocol, transport

    def test_first_reachable_of_three(self):
        self.client.startService()
        self.assertEqual(self.client.state, CONNECTING)
        self.assertFalse(self.client.send(Packet(Command.FOUND_BLOCK, b"{}")))
        self.assertEqual(self.refuse(), "10.0.0.1")
        self.assertEqual(self.refuse(), "10.0.0.2")
        self.accept()
        self.assertEqual(self.client.state, CONNECTED)
        self.assertEqual(self.client.endpoint, self.endpoints[2])
        self.assertEqual(self.log.events, [("connect", self.endpoints[2])])

    def test_full_cycle_waits_reconnect_timeout(self):
        self.client.startService()
        for _ in range(3):
            self.refuse()
        self.assertEqual(self.client.state, WAITING)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        self.reactor.advance(0.99)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        self.reactor.advance(0.01)
        self.assertEqual(self.client.state, CONNECTING)
        self.assertEqual(self.pending()[0], "10.0.0.1")

    def test_heartbeats_every_second_announcing_timeout(self):
        client = FailoverClient(
            self.endpoints, max_size=4096, reactor=self.reactor, heartbeat_timeout=7
        )
        client.startService()
        _, transport = self.accept()
        self.reactor.advance(1.0)
        self.reactor.advance(1.0)
        beats = PacketDecoder(4096).feed(transport.value())
        self.assertEqual(len(beats), 3)
        self.assertEqual({b.command for b in beats}, {Command.HEARTBEAT})
        self.assertEqual({b.pkg_type for b in beats}, {PacketType.REQUEST})
        self.assertEqual({parse_heartbeat_timeout(b.body) for b in beats}, {7.0})
        self.assertEqual(len({b.sequence for b in beats}), 3)

    def test_no_heartbeat_reply_moves_to_next_address(self):
        self.client.startService()
        protocol, transport = self.accept()
        self.assertEqual(self.client.endpoint, self.endpoints[0])
        for _ in range(4):
            self.reactor.advance(0.5)
            reply = Packet(Command.HEARTBEAT, b"", PacketType.REPLY)
            protocol.dataReceived(encode(reply))
        self.assertFalse(transport.disconnecting)
        # Time passes with heartbeats going out every second (one jump of
        # 3 s would be a stall of our own, which does not count against the
        # peer: tests/rpc/test_stall.py); 3 s after the last reply it is dropped.
        for _ in range(5):
            self.reactor.advance(0.5)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(0.5)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.client.state, CONNECTING)
        self.assertEqual(self.pending()[0], "10.0.0.2")
        self.assertEqual(self.log.events[-1], ("disconnect",))

    def test_every_close_moves_to_next_address(self):
        self.client.startService()
        protocol, _ = self.accept()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.pending()[0], "10.0.0.2")
        protocol, _ = self.accept()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.pending()[0], "10.0.0.3")
        protocol, _ = self.accept()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.client.state, WAITING)

    def test_packets_reach_observers_heartbeats_do_not(self):
        self.client.startService()
        protocol, transport = self.accept()
        protocol.dataReceived(
            encode(Packet(Command.HEARTBEAT, b"", PacketType.REPLY))
            + encode(Packet(Command.UPDATE_JOB, b'{"job_id":"1"}'))
        )
        self.assertEqual(self.log.events[1:], [("packet", Command.UPDATE_JOB, b'{"job_id":"1"}')])
        transport.clear()
        self.assertTrue(self.client.send(Packet(Command.FOUND_BLOCK, b"{}", PacketType.REQUEST)))
        self.assertEqual(PacketDecoder(4096).feed(transport.value())[0].command, Command.FOUND_BLOCK)

    def test_connect_attempt_times_out(self):
        self.client.startService()
        self.reactor.advance(3.0)
        self.assertEqual(self.pending()[0], "10.0.0.2")

    def test_stop_while_connected(self):
        self.client.startService()
        protocol, transport = self.accept()
        stopped = self.client.stopService()
        again = self.client.stopService()
        self.assertNoResult(stopped)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopped)
        self.successResultOf(again)
        self.assertEqual(self.client.state, STOPPED)
        self.assertEqual(self.log.events[-1], ("disconnect",))
        self.reactor.advance(10)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_stop_while_connecting_and_waiting(self):
        self.client.startService()
        self.successResultOf(self.client.stopService())
        self.assertEqual(self.client.state, STOPPED)
        self.client.startService()
        for _ in range(3):
            self.refuse()
        self.successResultOf(self.client.stopService())
        self.reactor.advance(10)
        self.assertEqual(len(self.reactor.tcpClients), 4)

    def test_timeout_clamped(self):
        self.assertEqual(
            FailoverClient(self.endpoints, max_size=1, reactor=self.reactor, heartbeat_timeout=0.1).heartbeat_timeout,
            2.0,
        )


@implementer(IPacketHandler)
class Server:
    """A real RPC server for the loopback tests; pushes a job on connect."""

    def __init__(self, name):
        self.name = name
        self.protocols = []
        self.packets = []
        self.received = defer.Deferred()

    def peerConnected(self, protocol):
        self.protocols.append(protocol)
        protocol.send(Packet(Command.UPDATE_JOB, self.name.encode()))

    def packetReceived(self, protocol, packet):
        self.packets.append(packet)
        if not self.received.called:
            self.received.callback(packet)

    def peerDisconnected(self, protocol, reason):
        pass


class LoopbackFailoverTests(TestCase):
    """Failover across three real loopback addresses (ref §2.3)."""

    def closed_port(self):
        """A loopback port with nothing listening (connections are refused)."""
        port = reactor.listenTCP(0, RPCServerFactory(Server("tmp"), max_size=1), interface="127.0.0.1")
        number = port.getHost().port
        return port.stopListening().addCallback(lambda _: number)

    def listen(self, name, number=0, secret=None):
        server = Server(name)
        port = reactor.listenTCP(
            number, RPCServerFactory(server, max_size=4096, secret=secret), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        return server, port.getHost().port

    @defer.inlineCallbacks
    def test_failover_across_three_endpoints(self, secret=None):
        first = yield self.closed_port()
        second = yield self.closed_port()
        third_server, third = self.listen("third", secret=secret)
        endpoints = [TCP4ClientEndpoint(reactor, "127.0.0.1", p) for p in (first, second, third)]
        client = FailoverClient(endpoints, max_size=4096, reconnect_timeout=0.05, secret=secret)
        log = EventLog()
        client.add_observer(log)
        pushed = log.next("packet")
        client.startService()
        self.addCleanup(client.stopService)

        event = yield pushed
        self.assertEqual(event, ("packet", Command.UPDATE_JOB, b"third"))
        self.assertIs(client.endpoint, endpoints[2])
        self.assertTrue(client.send(Packet(Command.FOUND_BLOCK, b'{"hash":"00"}', PacketType.REQUEST)))
        packet = yield third_server.received
        self.assertEqual(packet.body, b'{"hash":"00"}')

        # The first address comes back; the third drops us: the client cycles
        # (past the second, still refused) and lands on the first.
        first_server, _ = self.listen("first", number=first, secret=secret)
        down = log.next("disconnect")
        pushed = log.next("packet")
        third_server.protocols[0].transport.loseConnection()
        yield down
        event = yield pushed
        self.assertEqual(event, ("packet", Command.UPDATE_JOB, b"first"))
        self.assertIs(client.endpoint, endpoints[0])

        yield client.stopService()
        self.assertEqual(client.state, STOPPED)
        self.assertFalse(client.send(Packet(Command.FOUND_BLOCK, b"{}")))

    def test_keyed_failover(self):
        return self.test_failover_across_three_endpoints(secret=SECRET)


class DatagramSenderTests(TestCase):
    def test_ip_addresses_only(self):
        self.assertRaises(ValueError, DatagramSender, [("jobmaster.local", 6000)], max_size=1)

    def test_send_before_start(self):
        sender = DatagramSender([("127.0.0.1", 6000)], max_size=1)
        self.assertFalse(sender.connected)
        self.assertFalse(sender.send(Packet(Command.HEIGHT_UPDATE, b"{}")))

    @defer.inlineCallbacks
    def test_replies_only_from_destinations(self):
        """A datagram from any other (host, port) is dropped; the destination's reaches observers."""
        legit = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        stranger = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(legit.stopListening)
        self.addCleanup(stranger.stopListening)
        sender = DatagramSender([("127.0.0.1", legit.getHost().port)], max_size=4096)
        log = EventLog()
        sender.add_observer(log)
        sender.startService()
        self.addCleanup(sender.stopService)
        self.assertTrue(sender.connected)
        target = ("127.0.0.1", sender._port.getHost().port)
        packet = log.next("packet")
        stranger.write(encode(Packet(Command.META_SHARE, b"forged", PacketType.REPLY)), target)
        legit.write(encode(Packet(Command.META_SHARE, b"real", PacketType.REPLY)), target)
        event = yield packet
        self.assertEqual(event, ("packet", Command.META_SHARE, b"real"))
        self.assertEqual([e[0] for e in log.events], ["connect", "packet"])
