"""
A role whose own reactor stalled (a long computation, a loaded machine) must
not drop a healthy module link: the peer's heartbeats are waiting unread in
the socket when the heartbeat deadline comes due.

The peer here is a FAKE: a blocking socket loop in a thread, standing in for
another live process whose reactor keeps running while ours is blocked.  A
second reactor cannot be run in one process, and a separate process would
make the test slow; the fault itself (our thread stalled, theirs not) is
what the thread shows.
"""

import socket
import threading
import time

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase

from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import PacketDecoder, PacketType, encode, heartbeat_request
from viabtc.rpc.protocol import RPCServerFactory

TIMEOUT = 2.0
STALL = TIMEOUT + 0.8


def stall_reactor(seconds):
    """Block the reactor thread, as a long computation would."""
    time.sleep(seconds)


class ThreadPeer:
    """The fake live peer: runs ``serve(sock)`` in a thread until ``stop``."""

    def __init__(self, sock, serve):
        self.sock = sock
        self.stopped = threading.Event()
        self.closed_by_us = threading.Event()
        self.thread = threading.Thread(target=serve, args=(self,), daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def answer_heartbeats(peer):
    """An RPC server end: replies to every heartbeat request at once."""
    decoder = PacketDecoder(max_size=4096)
    peer.sock.settimeout(0.1)
    while not peer.stopped.is_set():
        try:
            data = peer.sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            peer.closed_by_us.set()
            return
        for packet in decoder.feed(data):
            if packet.pkg_type == PacketType.REQUEST and packet.command == 0:
                peer.sock.sendall(encode(packet.reply()))


def send_heartbeats(peer):
    """An RPC client end: a heartbeat request every 0.5 s, as the seed's every 1 s."""
    peer.sock.settimeout(0.5)
    sequence = 0
    while not peer.stopped.is_set():
        sequence += 1
        try:
            peer.sock.sendall(encode(heartbeat_request(TIMEOUT, sequence)))
            if peer.sock.recv(4096) == b"":
                peer.closed_by_us.set()
                return
        except socket.timeout:
            continue
        except OSError:
            peer.closed_by_us.set()
            return
        peer.stopped.wait(0.5)


class StalledClientTests(TestCase):
    @defer.inlineCallbacks
    def test_client_keeps_a_live_link_across_its_own_stall(self):
        """
        The reply to the heartbeat sent just before the stall is read before
        the client decides the link is dead, so it stays up.
        """
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        client = FailoverClient([TCP4ClientEndpoint(reactor, "127.0.0.1", port)],
                                max_size=4096, heartbeat_timeout=TIMEOUT)
        downs = []

        class Observer:
            def on_connect(self, link):
                pass

            def on_packet(self, link, packet):
                pass

            def on_disconnect(self, link):
                downs.append(link)

        client.add_observer(Observer())
        client.startService()
        self.addCleanup(client.stopService)
        accepted, _ = yield task.deferLater(reactor, 0, listener.accept)
        peer = ThreadPeer(accepted, answer_heartbeats)
        self.addCleanup(peer.stop)
        yield task.deferLater(reactor, 1.2, lambda: None)
        self.assertTrue(client.connected)
        yield task.deferLater(reactor, 0, stall_reactor, STALL)
        yield task.deferLater(reactor, 1.5, lambda: None)
        self.assertEqual(downs, [])
        self.assertTrue(client.connected)


class StalledServerTests(TestCase):
    @defer.inlineCallbacks
    def test_server_keeps_a_live_peer_across_its_own_stall(self):
        """
        The heartbeats the peer sent during the server's stall are read
        before the server decides the peer is silent, so it keeps the peer.
        """

        class Handler:
            def peerConnected(self, protocol):
                pass

            def packetReceived(self, protocol, packet):
                pass

            def peerDisconnected(self, protocol, reason):
                pass

        factory = RPCServerFactory(Handler(), max_size=4096)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sock = socket.create_connection(("127.0.0.1", port.getHost().port))
        peer = ThreadPeer(sock, send_heartbeats)
        self.addCleanup(peer.stop)
        yield task.deferLater(reactor, 1.2, lambda: None)
        self.assertEqual(len(factory.connections), 1)
        yield task.deferLater(reactor, 0, stall_reactor, STALL)
        yield task.deferLater(reactor, 1.5, lambda: None)
        self.assertEqual(len(factory.connections), 1)
        self.assertFalse(peer.closed_by_us.is_set())
        for protocol in list(factory.connections):
            protocol.transport.loseConnection()
