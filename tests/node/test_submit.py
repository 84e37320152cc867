"""
Block submission: classifying node answers (pure), and real blocks, mined
in Python on a real bcoin regtest node's template, submitted to it.
"""

from twisted.internet import defer
from twisted.trial import unittest

from tests.node.blocks import mine_block
from tests.support import bcoin_node
from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.devnet import free_port
from viabtc.bitcoin.serialize import push_data
from viabtc.bitcoin.transaction import TxOut
from viabtc.node.jsonrpc import NODE_SEND_LIMIT, NodeConfig, NodeError, NodeGroup, NodeRPCClient, NodeUnavailable
from viabtc.node.submit import (
    BlockSubmitter,
    NodeSubmission,
    Outcome,
    Presence,
    SubmitReport,
    classify_submit_error,
    classify_submit_result,
)
from viabtc.node.template import Template


class ClassifyTests(unittest.TestCase):
    def test_results(self):
        cases = {
            None: (Outcome.ACCEPTED, None),
            "duplicate": (Outcome.DUPLICATE, "duplicate"),
            "duplicate-inconclusive": (Outcome.DUPLICATE, "duplicate-inconclusive"),
            "rejected: duplicate": (Outcome.DUPLICATE, "duplicate"),
            "duplicate-invalid": (Outcome.REJECTED, "duplicate-invalid"),
            "inconclusive": (Outcome.INCONCLUSIVE, "inconclusive"),
            "inconclusive-not-best-prevblk": (Outcome.INCONCLUSIVE, "inconclusive-not-best-prevblk"),
            "high-hash": (Outcome.REJECTED, "high-hash"),
            "rejected: bad-cb-amount": (Outcome.REJECTED, "bad-cb-amount"),
            "rejected": (Outcome.REJECTED, "rejected"),
            "": (Outcome.REJECTED, "rejected"),
        }
        for result, expected in cases.items():
            self.assertEqual(classify_submit_result(result), expected, result)
        self.assertEqual(classify_submit_result(True)[0], Outcome.INCONCLUSIVE)

    def test_errors(self):
        self.assertEqual(classify_submit_error(NodeError("n", "submitblock", -22, "Block decode failed")),
                         (Outcome.REJECTED, "error -22: Block decode failed"))
        self.assertEqual(classify_submit_error(NodeError("n", "submitblock", -28, "Loading"))[0],
                         Outcome.INCONCLUSIVE)
        self.assertEqual(classify_submit_error(NodeUnavailable("n", "submitblock", "refused")),
                         (Outcome.UNREACHABLE, "refused"))

    def test_report(self):
        h = bytes(range(32))
        accepted = SubmitReport(h, (
            NodeSubmission("a", Outcome.UNREACHABLE, "refused", Presence.UNREACHABLE),
            NodeSubmission("b", Outcome.DUPLICATE, "duplicate", Presence.IN_CHAIN),
        ))
        self.assertTrue(accepted.accepted)
        self.assertFalse(accepted.retryable)
        self.assertIn(hash_to_display_hex(h), accepted.summary())
        self.assertIn("b: duplicate (duplicate), block in its best chain", accepted.summary())
        down = SubmitReport(h, (NodeSubmission("a", Outcome.UNREACHABLE, "x", Presence.UNREACHABLE),))
        self.assertTrue(down.retryable)
        self.assertIn("NOT accepted", down.summary())
        stale = SubmitReport(h, (NodeSubmission("a", Outcome.ACCEPTED, None, Presence.OFF_CHAIN),))
        self.assertFalse(stale.accepted)
        self.assertFalse(stale.retryable)


class RealNodeSubmitTests(unittest.TestCase):
    """Blocks mined in Python on a real bcoin regtest node's template."""

    def setUp(self):
        self.bcoin = bcoin_node(self, shared=True)

    def client(self, url=None, name="bcoin"):
        client = NodeRPCClient(NodeConfig(url=url or self.bcoin.rpc_url, user="x",
                                          password=self.bcoin.api_key, name=name))
        self.addCleanup(client.close)
        return client

    def template(self):
        return Template.from_rpc(self.bcoin.rpc("getblocktemplate", {"rules": ["segwit"]}))

    def submitter(self, *extra_clients):
        return BlockSubmitter(NodeGroup([self.client(), *extra_clients]))

    @defer.inlineCallbacks
    def test_mined_block_accepted_then_duplicate(self):
        template = self.template()
        block, block_hash = mine_block(template)
        submitter = self.submitter()
        report = yield submitter.submit(block, block_hash)
        self.assertTrue(report.accepted, report.summary())
        (node,) = report.nodes
        self.assertEqual((node.node, node.outcome, node.presence),
                         ("bcoin", Outcome.ACCEPTED, Presence.IN_CHAIN))
        display = hash_to_display_hex(block_hash)
        self.assertEqual(self.bcoin.rpc("getbestblockhash"), display)
        self.assertEqual(self.bcoin.rpc("getblockheader", display)["height"], template.height)

        again = yield submitter.submit(block, block_hash)
        self.assertEqual(again.nodes[0].outcome, Outcome.DUPLICATE)
        self.assertTrue(again.accepted)

    @defer.inlineCallbacks
    def test_large_block_reaches_node_unchanged(self):
        """
        An 800 kB block (1.6 MB of hex, far past Twisted's 128 KiB per
        reactor turn) over a node connection that sends it as fast as the
        kernel takes it, given as hex pieces cut inside the header and
        written one after the other: accepted, and the node's copy is the
        block's bytes.
        """
        template = self.template()
        bulk = [TxOut(0, b"\x6a" + push_data(bytes([i]) * 8000)) for i in range(100)]
        block, block_hash = mine_block(template, extra_outputs=bulk)
        self.assertGreater(len(block), 800_000)
        text = block.hex().encode()
        cuts = [0, 7, 8, 70, 161, 1000, len(text) // 2, len(text)]
        pieces = [text[a:b] for a, b in zip(cuts, cuts[1:])]
        client = self.client()
        report = yield BlockSubmitter(NodeGroup([client])).submit_hex(pieces, block_hash)
        self.assertTrue(report.accepted, report.summary())
        transports = [c.transport for conns in client._pool._connections.values() for c in conns]
        self.assertTrue(transports)
        self.assertEqual({t.SEND_LIMIT for t in transports}, {NODE_SEND_LIMIT})
        raw = self.bcoin.rpc("getblock", hash_to_display_hex(block_hash), 0)
        self.assertEqual(raw, block.hex())

    @defer.inlineCallbacks
    def test_invalid_block_rejected_with_reason(self):
        """A coinbase paying one satoshi too much: mined, valid PoW, rejected."""
        template = self.template()
        block, block_hash = mine_block(template, value_delta=1)
        report = yield self.submitter().submit(block, block_hash)
        (node,) = report.nodes
        self.assertEqual(node.outcome, Outcome.REJECTED)
        self.assertIn("bad-cb-amount", node.reason)
        self.assertEqual(node.presence, Presence.UNKNOWN)
        self.assertFalse(report.accepted)
        self.assertTrue(report.rejected)
        self.assertFalse(report.retryable)

    @defer.inlineCallbacks
    def test_undecodable_block_rejected(self):
        template = self.template()
        block, block_hash = mine_block(template)
        report = yield self.submitter().submit(block[:100], block_hash)
        self.assertEqual(report.nodes[0].outcome, Outcome.REJECTED)
        self.assertFalse(report.accepted)

    @defer.inlineCallbacks
    def test_one_node_down(self):
        """Every node gets the block; one down node does not stop the others."""
        down = self.client(f"http://127.0.0.1:{free_port()}/", name="down")
        block, block_hash = mine_block(self.template())
        report = yield self.submitter(down).submit(block, block_hash)
        self.assertTrue(report.accepted)
        outcomes = {n.node: (n.outcome, n.presence) for n in report.nodes}
        self.assertEqual(outcomes, {"bcoin": (Outcome.ACCEPTED, Presence.IN_CHAIN),
                                    "down": (Outcome.UNREACHABLE, Presence.UNREACHABLE)})

    @defer.inlineCallbacks
    def test_all_down_is_retryable(self):
        block, block_hash = mine_block(self.template())
        down = self.client(f"http://127.0.0.1:{free_port()}/", name="down")
        report = yield BlockSubmitter(NodeGroup([down])).submit(block, block_hash)
        self.assertTrue(report.retryable)
        self.assertFalse(report.accepted)
        # Idempotent: retrying on a reachable node lands it.
        retried = yield self.submitter().submit(block, block_hash)
        self.assertTrue(retried.accepted)

    def test_hash_must_match(self):
        block, block_hash = mine_block(self.template())
        with self.assertRaises(ValueError):
            self.submitter().submit(block, bytes(32))
        text = block.hex().encode()
        with self.assertRaises(ValueError):
            self.submitter().submit_hex((text[:100], text[100:]), bytes(32))


class SegwitBlockTests(unittest.TestCase):
    """After segwit activates (about 432 blocks on bcoin's regtest)."""

    @defer.inlineCallbacks
    def test_segwit_block_accepted(self):
        """The coinbase carries the commitment and the witness reserved value."""
        bcoin = bcoin_node(self)
        bcoin.generate(440)
        template = Template.from_rpc(bcoin.rpc("getblocktemplate", {"rules": ["segwit"]}))
        self.assertTrue(template.segwit_active)
        block, block_hash = mine_block(template)
        client = NodeRPCClient(NodeConfig(url=bcoin.rpc_url, user="x", password=bcoin.api_key))
        self.addCleanup(client.close)
        report = yield BlockSubmitter(NodeGroup([client])).submit(block, block_hash)
        self.assertEqual(report.nodes[0].outcome, Outcome.ACCEPTED, report.summary())
        self.assertTrue(report.accepted)
        raw = bcoin.rpc("getblock", hash_to_display_hex(block_hash), 0)
        self.assertEqual(bytes.fromhex(raw), block)
