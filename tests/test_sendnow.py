"""
``viabtc.sendnow`` over real loopback TCP: bytes reach the kernel within
the call while nothing is queued, order is kept once something is, and
nothing goes out after an abort.  These also guard the Twisted
internals the module reads (``dataBuffer``, ``_tempDataLen``, ``_aborting``).
"""

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from viabtc.sendnow import direct_socket, send_now


class _Collect(protocol.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.lost.callback(None)


class SendNowTests(TestCase):
    @defer.inlineCallbacks
    def pair(self):
        """A connected (server protocol, client reader) over loopback."""
        accepted = defer.Deferred()

        class Server(protocol.Protocol):
            def connectionMade(self):
                accepted.callback(self)

        factory = protocol.Factory.forProtocol(Server)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        reader = _Collect()
        yield protocol.ClientCreator(reactor, lambda: reader).connectTCP("127.0.0.1", port.getHost().port)
        server = yield accepted

        def close():
            for transport in (server.transport, reader.transport):
                if transport.connected:
                    transport.abortConnection()
            return reader.lost

        self.addCleanup(close)
        return server, reader

    @defer.inlineCallbacks
    def wait(self, condition):
        for _ in range(1000):
            if condition():
                return
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.fail("condition not met in 10 s")

    @defer.inlineCallbacks
    def test_sent_within_the_call(self):
        server, reader = yield self.pair()
        sock = direct_socket(server.transport)
        self.assertIsNotNone(sock)
        send_now(server.transport, sock, b"hello\n")
        # Nothing left for the reactor: the bytes are in the kernel already.
        self.assertEqual((server.transport.dataBuffer, server.transport._tempDataLen), (b"", 0))
        yield self.wait(lambda: reader.data == b"hello\n")

    @defer.inlineCallbacks
    def test_order_kept_behind_queued_bytes(self):
        server, reader = yield self.pair()
        sock = direct_socket(server.transport)
        server.transport.write(b"first ")
        send_now(server.transport, sock, b"second ")
        chunks = [b"%07d" % i + b"z" * 4088 + b"\n" for i in range(1000)]  # 4 MB: past the kernel's buffer
        for chunk in chunks:
            send_now(server.transport, sock, chunk)
        yield self.wait(lambda: len(reader.data) == 13 + 4096 * 1000)
        self.assertEqual(bytes(reader.data), b"first second " + b"".join(chunks))

    @defer.inlineCallbacks
    def test_nothing_after_abort(self):
        server, reader = yield self.pair()
        sock = direct_socket(server.transport)
        server.transport.abortConnection()
        send_now(server.transport, sock, b"late\n")
        yield reader.lost
        self.assertEqual(bytes(reader.data), b"")

    @defer.inlineCallbacks
    def test_transport_decides_while_closing(self):
        """After ``loseConnection`` the bytes go where ``transport.write`` puts them (queued, then the close)."""
        server, reader = yield self.pair()
        sock = direct_socket(server.transport)
        send_now(server.transport, sock, b"before\n")
        server.transport.loseConnection()
        send_now(server.transport, sock, b"after\n")
        self.assertEqual(server.transport._tempDataLen, len(b"after\n"))
        yield reader.lost
        self.assertEqual(bytes(reader.data), b"before\nafter\n")

    def test_no_socket_for_other_transports(self):
        transport = StringTransport()
        self.assertIsNone(direct_socket(transport))
        send_now(transport, None, b"queued\n")
        self.assertEqual(transport.value(), b"queued\n")
