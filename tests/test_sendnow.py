"""
``viabtc.sendnow`` over real loopback TCP: bytes reach the kernel within
the call while nothing is queued, order is kept once something is, and
nothing goes out after an abort.  These also guard the Twisted
internals the module reads (``dataBuffer``, ``_tempDataLen``, ``_aborting``).
"""

from twisted.internet import defer, protocol, reactor
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from viabtc.sendnow import direct_socket, send_now

from tests.support import wait_for


class _Collect(protocol.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.lost.callback(None)


class SendNowTests(TestCase):
    async def pair(self):
        """A connected (server protocol, client reader) over loopback."""
        accepted = defer.Deferred()

        class Server(protocol.Protocol):
            def connectionMade(self):
                accepted.callback(self)

        factory = protocol.Factory.forProtocol(Server)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        reader = _Collect()
        await protocol.ClientCreator(reactor, lambda: reader).connectTCP("127.0.0.1", port.getHost().port)
        server = await accepted

        def close():
            for transport in (server.transport, reader.transport):
                if transport.connected:
                    transport.abortConnection()
            return reader.lost

        self.addCleanup(close)
        return server, reader

    async def test_sent_within_the_call(self):
        server, reader = await self.pair()
        sock = direct_socket(server.transport)
        self.assertIsNotNone(sock)
        send_now(server.transport, sock, b"hello\n")
        # Nothing left for the reactor: the bytes are in the kernel already.
        self.assertEqual((server.transport.dataBuffer, server.transport._tempDataLen), (b"", 0))
        await wait_for(lambda: reader.data == b"hello\n")

    async def test_order_kept_behind_queued_bytes(self):
        server, reader = await self.pair()
        sock = direct_socket(server.transport)
        server.transport.write(b"first ")
        send_now(server.transport, sock, b"second ")
        chunks = [b"%07d" % i + b"z" * 4088 + b"\n" for i in range(1000)]  # 4 MB: past the kernel's buffer
        for chunk in chunks:
            send_now(server.transport, sock, chunk)
        await wait_for(lambda: len(reader.data) == 13 + 4096 * 1000)
        self.assertEqual(bytes(reader.data), b"first second " + b"".join(chunks))

    async def test_nothing_after_abort(self):
        server, reader = await self.pair()
        sock = direct_socket(server.transport)
        server.transport.abortConnection()
        send_now(server.transport, sock, b"late\n")
        await reader.lost
        self.assertEqual(bytes(reader.data), b"")

    async def test_transport_decides_while_closing(self):
        """After ``loseConnection`` the bytes go where ``transport.write`` puts them: queued, then the close."""
        server, reader = await self.pair()
        sock = direct_socket(server.transport)
        send_now(server.transport, sock, b"before\n")
        server.transport.loseConnection()
        send_now(server.transport, sock, b"after\n")
        self.assertEqual(server.transport._tempDataLen, len(b"after\n"))
        await reader.lost
        self.assertEqual(bytes(reader.data), b"before\nafter\n")

    def test_no_socket_for_other_transports(self):
        transport = StringTransport()
        self.assertIsNone(direct_socket(transport))
        send_now(transport, None, b"queued\n")
        self.assertEqual(transport.value(), b"queued\n")
