"""
``StratumServerProtocol.write`` over real loopback TCP: the direct
``send`` while the transport has nothing queued, the fall-back to the
transport for what the kernel did not take, and the slow-reader bound
still biting when the peer stops reading.
"""

import json

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase

from viabtc.stratum.limits import Limits
from viabtc.stratum.protocol import StratumServerFactory

from tests.stratum.jobs import prepared_job
from tests.stratum.test_protocol import RecordingContext
from tests.support import wait_for


class _Reader(protocol.Protocol):
    """Collects what the server writes; ``paused`` stops reading from the start."""

    def __init__(self, paused=False):
        self.data = bytearray()
        self.paused = paused
        self.lost = defer.Deferred()

    def connectionMade(self):
        if self.paused:
            self.transport.pauseProducing()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.lost.callback(None)


class DirectWriteTests(TestCase):
    def listen(self, max_send_buffer):
        self.context = RecordingContext()
        self.context.jobs.add(prepared_job())
        self.factory = StratumServerFactory(self.context, reactor, limits=Limits(max_send_buffer=max_send_buffer))
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    async def connect(self, paused=False, max_send_buffer=200_000):
        self.listen(max_send_buffer)
        reader = _Reader(paused)
        await protocol.ClientCreator(reactor, lambda: reader).connectTCP("127.0.0.1", self.port)
        await wait_for(lambda: len(self.factory.sessions) == 1)
        server = next(iter(self.factory.sessions))

        def close():
            if reader.transport.connected:
                reader.transport.abortConnection()
                return reader.lost

        self.addCleanup(close)
        return reader, server

    async def test_replies_sent_directly(self):
        reader, server = await self.connect()
        self.assertIsNotNone(server._socket)
        reader.transport.write(
            b'{"id":1,"method":"mining.subscribe","params":[]}\n'
            b'{"id":2,"method":"mining.authorize","params":["alice.rig1","x"]}\n'
        )
        await wait_for(lambda: reader.data.count(b"\n") >= 4)
        lines = [json.loads(line) for line in bytes(reader.data).splitlines()]
        self.assertEqual([m.get("id") for m in lines], [1, 2, None, None])
        self.assertEqual(lines[3]["method"], "mining.notify")

    async def test_order_kept_past_the_kernel_buffer(self):
        """More than the socket takes at once: the rest is queued behind, in order."""
        reader, server = await self.connect(max_send_buffer=8_000_000)
        chunks = [b"%08d" % i + b"x" * 4087 + b"\n" for i in range(1000)]  # 4 MB
        for chunk in chunks:
            server.write(chunk)
        self.assertTrue(server.transport._tempDataLen or server.transport.dataBuffer)
        await wait_for(lambda: len(reader.data) == 4096 * 1000)
        self.assertEqual(bytes(reader.data), b"".join(chunks))
        self.assertNotIn("limit_slow_reader", self.factory.counts)

    async def test_slow_reader_dropped(self):
        """A peer that reads nothing: the kernel fills, the transport pauses us, the bound bites."""
        reader, server = await self.connect(paused=True)
        line = b"y" * 4095 + b"\n"
        for _ in range(5000):  # 20 MB, far past kernel buffers and the 200 kB bound
            if server._aborted:
                break
            server.write(line)
        self.assertTrue(server._aborted)
        self.assertEqual(self.factory.counts["limit_slow_reader"], 1)
        reader.transport.resumeProducing()  # to see the abort
        await reader.lost

    async def test_nothing_sent_after_abort(self):
        reader, server = await self.connect()
        server.abort()
        server.write(b'{"id":null,"method":"mining.notify","params":[]}\n')
        await reader.lost
        self.assertEqual(bytes(reader.data), b"")
