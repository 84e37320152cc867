"""
Tests for viabtc.service: the listeners every role builds from a
``ServerBlock``, the outgoing link for an ``RPCClientBlock``, and the
one-line start-up error.
"""

import socket

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.protocols.wire import Discard
from twisted.trial.unittest import TestCase

from viabtc.config import RPCClientBlock, ServerBlock, parse_address
from viabtc.devnet import free_port
from viabtc.rpc.client import DatagramSender, FailoverClient
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory, TrustedHosts
from viabtc.service import (
    DatagramListener,
    StartupError,
    client_link,
    listen_block,
    listen_monitor,
    listen_rpc,
    listen_stream,
)

def free_block():
    """Two TCP and two UDP loopback addresses nothing listens on, as one ``svr`` block."""
    stream = [free_port() for _ in range(2)]
    datagram = [free_port(kind=socket.SOCK_DGRAM) for _ in range(2)]
    return ServerBlock(tuple(parse_address(text) for text in (
        "tcp@127.0.0.1:%d" % stream[0], "udp@127.0.0.1:%d" % datagram[0],
        "tcp@127.0.0.1:%d" % stream[1], "udp@127.0.0.1:%d" % datagram[1])), 4096)


class Counting:
    """Makes a new factory or protocol per call and keeps them, so a test sees one per bind."""

    def __init__(self, make):
        self.make = make
        self.made = []

    def __call__(self):
        self.made.append(self.make())
        return self.made[-1]


def listening(parent):
    """``(address, factory or protocol)`` of each of ``parent``'s listeners, stream ones first."""
    streams = [(s.endpoint._port, s.factory) for s in parent if isinstance(s, StreamServerEndpointService)]
    datagrams = [(s.port.getHost().port, s.protocol) for s in parent if isinstance(s, DatagramListener)]
    return streams, datagrams


class ListenBlockTests(TestCase):
    def start(self, parent):
        parent.privilegedStartService()
        parent.startService()
        self.addCleanup(parent.stopService)

    def test_every_address_with_its_own_factory_or_protocol(self):
        block = free_block()
        parent = MultiService()
        factories, protocols = Counting(Factory), Counting(DatagramProtocol)
        listen_block(parent, block, reactor, factories, protocols)
        self.start(parent)
        streams, datagrams = listening(parent)
        self.assertEqual(streams, [(a.port, f) for a, f in zip(block.stream_binds, factories.made)])
        self.assertEqual(datagrams, [(a.port, p) for a, p in zip(block.datagram_binds, protocols.made)])
        self.assertEqual((len(factories.made), len(protocols.made)), (2, 2))
        self.assertEqual([s.port.maxPacketSize for s in parent if isinstance(s, DatagramListener)], [4096, 4096])

    def test_listen_rpc_keyed_and_trusted(self):
        block = free_block()
        trust = TrustedHosts(["10.0.0.0/8"])
        stream_handler, datagram_handler = object(), object()
        parent = MultiService()
        listen_rpc(parent, block, reactor, stream_handler, datagram_handler,
                   secret=b"s" * 32, trust=trust, role="test")
        self.start(parent)
        streams, datagrams = listening(parent)
        self.assertEqual([type(f) for _, f in streams], [RPCServerFactory] * 2)
        self.assertEqual([type(p) for _, p in datagrams], [RPCDatagramProtocol] * 2)
        for (_, side), handler in zip(streams + datagrams, [stream_handler] * 2 + [datagram_handler] * 2):
            self.assertEqual((side.handler, side.max_size, side.secret, side.trust, side.reactor, side.role),
                             (handler, 4096, b"s" * 32, trust, reactor, "test"))
            self.assertIsNotNone(side.guard)

    def test_monitor_accepts_and_discards(self):
        parent = MultiService()
        listen_monitor(parent, None, reactor)
        self.assertEqual(list(parent), [])
        block = free_block()
        listen_monitor(parent, block, reactor)
        self.start(parent)
        streams, datagrams = listening(parent)
        self.assertEqual([port for port, _ in streams], [a.port for a in block.stream_binds])
        self.assertEqual(datagrams, [])
        self.assertIsInstance(streams[0][1].buildProtocol(None), Discard)

    def test_stream_bind_failure_stops_start_up(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = parse_address("tcp@127.0.0.1:%d" % taken.getsockname()[1])
        parent = MultiService()
        listen_stream(parent, address, Factory.forProtocol(Protocol), reactor)
        self.assertRaises(CannotListenError, parent.privilegedStartService)


class DatagramListenerTests(TestCase):
    def listener(self):
        address = parse_address("udp@127.0.0.1:%d" % free_port(kind=socket.SOCK_DGRAM))
        return DatagramListener(address, DatagramProtocol(), reactor, 512)

    def test_binds_in_the_privileged_step(self):
        listener = self.listener()
        listener.privilegedStartService()
        port = listener.port
        self.assertEqual(port.getHost().port, listener.address.port)
        self.assertEqual(port.maxPacketSize, 512)
        listener.startService()
        self.assertIs(listener.port, port)
        return listener.stopService()

    def test_started_without_the_privileged_step(self):
        """``twist`` and tests start services without ``privilegedStartService``."""
        listener = self.listener()
        listener.startService()
        self.assertEqual(listener.port.getHost().port, listener.address.port)
        return listener.stopService()

    def test_stop_releases_the_port(self):
        listener = self.listener()
        listener.startService()
        d = listener.stopService()
        self.assertIsNone(listener.port)

        def rebind(_):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", listener.address.port))
        return d.addCallback(rebind)

    def test_bind_failure_stops_start_up(self):
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        address = parse_address("udp@127.0.0.1:%d" % taken.getsockname()[1])
        listener = DatagramListener(address, DatagramProtocol(), reactor, 512)
        self.assertRaises(CannotListenError, listener.privilegedStartService)


class ClientLinkTests(TestCase):
    def test_udp_address_is_a_datagram_sender(self):
        for text, interface in (("udp@127.0.0.1:3000", ""), ("udp@[::1]:3000", "::")):
            block = RPCClientBlock("writer", (parse_address(text),), 65536)
            link = client_link(block, reactor, b"k" * 32, "test")
            self.assertIsInstance(link, DatagramSender)
            self.assertEqual((link.max_size, link.secret, link.role, link.interface),
                             (65536, b"k" * 32, "test", interface))

    def test_stream_addresses_fail_over(self):
        block = RPCClientBlock("writer", (parse_address("tcp@127.0.0.1:3000"), parse_address("tcp@127.0.0.1:3001")),
                               1 << 20, reconnect_timeout=0.5, heartbeat_timeout=7.0)
        link = client_link(block, reactor, None, "test")
        self.assertIsInstance(link, FailoverClient)
        self.assertEqual(len(link.endpoints), 2)
        self.assertEqual((link.max_size, link.secret, link.reconnect_timeout, link.heartbeat_timeout, link.role),
                         (1 << 20, None, 0.5, 7.0, "test"))


class StartupErrorTests(TestCase):
    def test_a_system_exit_with_one_line(self):
        e = StartupError("journal error: /x: not a batches file")
        self.assertIsInstance(e, SystemExit)
        self.assertEqual(str(e), "journal error: /x: not a batches file")
        self.assertEqual(e.code, "journal error: /x: not a batches file")
