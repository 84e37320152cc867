"""
SIGHUP's part in the blockmaster, in-process on the real reactor: the static
blockmaster and bitpeer lists (links follow over real sockets) and ``trust``
(a refused host is let in after the reload); a broken file changes nothing.
"""

import json

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests.blockmaster.test_tap import local_config
from tests.support import wait_for
from viabtc.blockmaster import tap
from viabtc.devnet import free_port
from viabtc.reload import HangupReload, ReloadReport
from viabtc.rpc.interfaces import IPacketHandler
from viabtc.rpc.protocol import RPCServerFactory


@implementer(IPacketHandler)
class Counting:
    """An RPC server end that counts the links made to it."""

    def __init__(self):
        self.connected = 0

    def peerConnected(self, protocol):
        self.connected += 1

    def peerDisconnected(self, protocol, reason):
        self.connected -= 1

    def packetReceived(self, protocol, packet):
        pass


class Closed(protocol.Protocol):
    def __init__(self):
        self.closed = defer.Deferred()

    def connectionLost(self, reason):
        self.closed.callback(None)


class BlockmasterReloadTests(TestCase):
    timeout = 30

    def listen(self):
        handler = Counting()
        port = reactor.listenTCP(0, RPCServerFactory(handler, max_size=1 << 20, reactor=reactor, role="test"),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return handler, f"tcp@127.0.0.1:{port.getHost().port}"

    async def test_lists_and_trust(self):
        peer_a, address_a = self.listen()
        peer_b, address_b = self.listen()
        bitpeer_a, bit_a = self.listen()
        bitpeer_b, bit_b = self.listen()
        svr_port = free_port()
        # The node is away: the role polls it and logs, nothing more.
        data = local_config(svr={"bind": [f"tcp@127.0.0.1:{svr_port}"], "max_pkg_size": 16 << 20},
                            coin={"name": "BTC", "host": "127.0.0.1", "port": free_port(), "user": "u",
                                  "pass": "p"},
                            blockmaster=[address_a], bitpeer=[bit_a], trust=["10.1.2.3"])
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        options = tap.Options()
        service = tap.build_service(options.parse_config(path), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        await wait_for(lambda: peer_a.connected and bitpeer_a.connected, what="the first links")

        # Not trusted: svr closes the connection at once.
        closed = Closed()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", svr_port), closed)
        await closed.closed

        with open(path, "w") as f:
            json.dump(dict(data, blockmaster=[address_b], bitpeer=[bit_a, bit_b], trust=["127.0.0.0/8"],
                           mempool_timeout=3), f)
        hup = HangupReload("blockmaster", path, options.parse_config, service, reactor)
        self.assertEqual(hup.reload(), ReloadReport(("blockmasters", "bitpeers", "trust"), ("mempool_timeout",)))
        await wait_for(lambda: (peer_a.connected, peer_b.connected, bitpeer_a.connected, bitpeer_b.connected)
                       == (0, 1, 1, 1), what="the links following the lists")
        self.assertTrue(service.is_trusted("127.0.0.1"))
        self.assertEqual(service.config.mempool_timeout, 10.0)

        with open(path, "w") as f:
            f.write('{"svr": 1')
        self.assertIsNone(hup.reload())
        self.assertEqual([a.text for a in service.config.blockmasters], [address_b])
        self.assertEqual(len(service.bitpeers), 2)
