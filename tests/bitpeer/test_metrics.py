"""
``GET /metrics`` of a bitpeer service with a real bcoin node (the
``test_service`` setup): a block pushed to ``svr``, announced to a P2P peer
(``tests.p2p``'s string-transport peer on the service's own factory), and
headers that peer sends which the relay refuses, as the relay counted them.
"""

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.bitcoin.vectors import block_bytes
from tests.bitpeer.mining import mine, mine_block
from tests.p2p.test_protocol import Peer
from tests.bitpeer import test_service
from tests.scrape import scrape
from tests.support import wait_for
from viabtc.bitcoin.block import parse_block
from viabtc.p2p.messages import Headers, SendHeaders
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet


class BitpeerMetricsTests(TestCase):
    timeout = 60
    setUp = test_service.ServiceTests.setUp
    write_peers = test_service.ServiceTests.write_peers

    async def test_scrape_follows_the_relay(self):
        service = self.service
        await wait_for(lambda: service.relay.chain.best is not None, what="the node's tip")
        got = await scrape(service.metrics)
        self.assertEqual(got.value("viabtc_role_info", role="bitpeer"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_peers"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_peers_connected"), 0)
        self.assertEqual(got.value("viabtc_bitpeer_best_height"), self.node.rpc("getblockcount"))
        self.assertEqual(got.value("viabtc_bitpeer_node_up"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_hints_sent_total"), 0)
        self.assertEqual(got.value("viabtc_bitpeer_blockmasters_connected"), 0)

        peer = Peer(service.p2p_factory)
        peer.handshake()
        peer.receive(SendHeaders())
        self.addCleanup(peer.protocol.connectionLost, Failure(ConnectionDone()))
        peer.receive(Headers([mine(b"\x09" * 32)]))
        client = FailoverClient([TCP4ClientEndpoint(reactor, "127.0.0.1", self.svr_port)],
                                max_size=1 << 22, reactor=reactor, role="test")
        client.startService()
        self.addCleanup(client.stopService)
        await wait_for(lambda: client.connected, what="the svr link")
        raw = mine_block(service.relay.chain.best.hash, parse_block(block_bytes("testnet-924634")).transactions)
        client.send(Packet(Command.SUBMIT_BLOCK, raw))
        await wait_for(lambda: service.relay.blocks, what="the block held for relay")
        got = await scrape(service.metrics)
        self.assertEqual(got.value("viabtc_bitpeer_peers_connected"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_blocks_announced_total"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_headers_refused_total", reason="unknown_parent"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_hints_sent_total"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_blockmasters_connected"), 1)
        self.assertEqual(got.value("viabtc_bitpeer_best_height"), self.node.rpc("getblockcount") + 1)
        counts = service.relay.counts
        self.assertEqual(got.value("viabtc_bitpeer_blocks_announced_total"), counts["announced"])
        self.assertEqual(got.value("viabtc_bitpeer_blocks_pushed_total"), counts["pushed"])
        self.assertEqual(got.value("viabtc_bitpeer_blocks_served_total", kind="compact_block"),
                         counts["served compact block"])
        self.assertEqual(got.value("viabtc_bitpeer_headers_refused_total", reason="bad_header"), 0)
        # A header failing its proof of work: refused, and the peer dropped.
        peer.receive(Headers([mine(service.relay.chain.best.hash, valid=False)]))
        got = await scrape(service.metrics)
        self.assertEqual(got.value("viabtc_bitpeer_headers_refused_total", reason="bad_header"), 1)
        self.assertTrue(peer.dropped)
