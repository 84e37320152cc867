"""
Block heights from a real bcoin regtest node: the lookups, their cache and
its bound, failures (unknown block, a node that never answers), and the
dashboard showing a height it learnt while pages keep being served.
"""

import json
import socket
import time

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, readBody

from tests.roles import wait_for
from tests.support import bcoin_node, redis_server
from viabtc.config import CoinRPCBlock, HTTPBlock, NodeEntry, RedisBlock, ServerBlock, parse_address
from viabtc.dashboard.config import DashboardConfig
from viabtc.dashboard.heights import BlockHeights, Header, header_from_reply
from viabtc.dashboard.service import DashboardService
from viabtc.dashboard.snapshot import Block
from viabtc.devnet import free_port
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.stats import schema


def group(bcoin):
    return NodeGroup.from_configs([NodeConfig(url=bcoin.rpc_url, user="viabtc", password=bcoin.api_key)], reactor)


def block(block_hash, aux=False):
    return Block(name="NMC" if aux else "BTC", hash=block_hash, user="alice", worker="rig1", minute=None, aux=aux)


class HeaderReplyTests(unittest.TestCase):
    def test_reply(self):
        self.assertEqual(header_from_reply({"height": 7, "time": 1700000000, "hash": "ab"}), Header(7, 1700000000))

    def test_not_a_header(self):
        for reply in (None, [], {"height": 1}, {"height": "1", "time": 2}, {"height": -1, "time": 2},
                      {"height": True, "time": 2}):
            self.assertRaises(ValueError, header_from_reply, reply)


class BlockHeightsTests(unittest.TestCase):
    def setUp(self):
        self.bcoin = bcoin_node(self, shared=True)
        self.node = group(self.bcoin)
        self.addCleanup(self.node.close)

    @defer.inlineCallbacks
    def test_heights_and_times_cached_and_bounded(self):
        hashes = self.bcoin.generate(3)
        tip = self.bcoin.rpc("getblockcount")
        found = []
        heights = BlockHeights(self.node, timeout=5.0, size=2, on_found=lambda: found.append(1))
        heights.want(hashes[:2])
        yield wait_for(lambda: len(found) == 2)
        first = heights.known(hashes[0])
        self.assertEqual(first.height, tip - 2)
        self.assertEqual(first.time, self.bcoin.rpc("getblockheader", hashes[0])["time"])
        self.assertEqual(heights.known(hashes[1].upper()).height, tip - 1)
        # Known hashes are not asked again.
        heights.want(hashes[:2])
        self.assertEqual(heights.lookups, 2)
        # At most two remembered: the oldest goes.
        heights.want(hashes[2:])
        yield wait_for(lambda: len(found) == 3)
        self.assertEqual((heights.known(hashes[0]), heights.known(hashes[2]).height), (None, tip))
        # Main-chain blocks get their height; aux blocks never.
        shown = heights.annotate((block(hashes[2]), block(hashes[2], aux=True), block(hashes[0])))
        self.assertEqual([(b.height, b.time is None) for b in shown], [(tip, False), (None, True), (None, True)])

    @defer.inlineCallbacks
    def test_unknown_block_is_asked_again_later(self):
        heights = BlockHeights(self.node, timeout=5.0)
        heights.want(["11" * 32, "not a hash", "22" * 31])
        self.assertEqual(heights.lookups, 1)
        yield wait_for(lambda: heights.failures == 1)
        self.assertIsNone(heights.known("11" * 32))
        heights.want(["11" * 32])
        self.assertEqual(heights.lookups, 2)
        yield wait_for(lambda: heights.failures == 2)


class SilentNodeTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_node_that_never_answers_times_out(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        node = NodeGroup.from_configs([NodeConfig.from_host("127.0.0.1", port, user="u", password="p")], reactor)
        self.addCleanup(node.close)
        heights = BlockHeights(node, timeout=0.3)
        heights.want(["33" * 32])
        yield wait_for(lambda: heights.failures == 1)
        self.assertIsNone(heights.known("33" * 32))


class DashboardHeightTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_page_shows_height_from_node(self):
        bcoin = bcoin_node(self, shared=False)
        (found,) = bcoin.generate(1)
        header = bcoin.rpc("getblockheader", found)
        server = redis_server(self)
        server.command("RPUSH", schema.NEWBLOCK, schema.block_json("alice", "rig1", "BTC", found))
        server.command("RPUSH", schema.NEWBLOCK, schema.block_json("alice", "rig1", "NMC", "44" * 32))
        port = free_port()
        node = CoinRPCBlock("BTC", (NodeEntry("127.0.0.1", bcoin.rpc_port, "viabtc", bcoin.api_key),))
        config = DashboardConfig(
            redis=RedisBlock("127.0.0.1", server.port), coin="btc",
            http_svr=HTTPBlock(ServerBlock((parse_address(f"tcp@127.0.0.1:{port}"),), 102400)),
            refresh=0.2, node=node)
        service = DashboardService(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        yield wait_for(lambda: service.state.snapshot is not None and service.state.snapshot.blocks
                       and service.state.snapshot.blocks[-1].height is not None)
        response = yield Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/api/snapshot.json".encode())
        data = json.loads((yield readBody(response)))
        by_name = {b["name"]: b for b in data["blocks"]}
        self.assertEqual((by_name["BTC"]["height"], by_name["BTC"]["time"]), (header["height"], header["time"]))
        self.assertEqual((by_name["NMC"]["height"], by_name["NMC"]["time"]), (None, None))
        response = yield Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/".encode())
        body = (yield readBody(response)).decode()
        self.assertIn(f'<td class="height">{header["height"]}</td>', body)
        self.assertIn('<td class="height">–</td>', body)
        self.assertIn(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(header["time"])), body)
        self.assertEqual(service.heights.lookups, 1)
