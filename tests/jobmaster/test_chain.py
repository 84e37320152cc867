"""Tests for viabtc.jobmaster.chain (the node side is tested in test_service)."""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.network import MAINNET, REGTEST, TESTNET, TESTNET4
from viabtc.bitcoin.target import target_to_bits
from viabtc.jobmaster.chain import (
    ChainMismatch, ChainWatch, PinnedChainMismatch, header_fields, node_network,
)

from tests.jobmaster.templates import make_template

LIMIT = target_to_bits(TESTNET.pow_limit)


def block_hash(height):
    return sha256d(b"block %d" % height)


class TestnetHeaders:
    """
    A fake node answering ``getblockheader`` from a made-up testnet chain:
    real testnet cannot be run here, and bcoin's regtest never mixes
    min-difficulty blocks with real ones, which the walk back is about.
    """

    def __init__(self, bits_by_height):
        self.bits = bits_by_height
        self.calls = 0
        self.by_hash = {hash_to_display_hex(block_hash(h)): h for h in bits_by_height}

    def call(self, method, *params):
        self.calls += 1
        if method == "getblockchaininfo":
            return defer.succeed({"chain": "test"})
        height = self.by_hash[params[0]]
        return defer.succeed({
            "height": height, "bits": format(self.bits[height], "08x"), "time": 1000 + height,
            "previousblockhash": hash_to_display_hex(block_hash(height - 1)) if height else None,
        })


class ChainTests(TestCase):

    def test_header_fields(self):
        prev = "00" * 31 + "01"
        self.assertEqual(header_fields({"height": 5, "bits": "1d00ffff", "time": 7,
                                        "previousblockhash": prev}),
                         (5, 0x1D00FFFF, 7, bytes([1]) + bytes(31)))
        self.assertEqual(header_fields({"height": 5, "bits": 545259519, "time": 7})[:3],
                         (5, 0x207FFFFF, 7))

    def test_node_network(self):
        self.assertIs(node_network({"chain": "main"}), MAINNET)
        self.assertIs(node_network({"chain": "regtest"}), REGTEST)
        self.assertIs(node_network({"chain": "test"}), TESTNET)
        self.assertIs(node_network({"chain": "testnet4"}), TESTNET4)
        self.assertRaises(ValueError, node_network, {"chain": "testnet5"})
        self.assertRaises(ValueError, node_network, [])

    def test_mismatch(self):
        node = TestnetHeaders({0: LIMIT})
        failure = self.failureResultOf(ChainWatch(node.call, MAINNET).check_network(),
                                       PinnedChainMismatch)
        self.assertIn("pins mainnet", failure.getErrorMessage())
        self.assertIs(self.successResultOf(ChainWatch(node.call, TESTNET).check_network()), TESTNET)

    def test_unknown_chain(self):
        def call(method):
            return defer.succeed({"chain": "litecoin"})
        failure = self.failureResultOf(ChainWatch(call).check_network(), ChainMismatch)
        self.assertFalse(failure.check(PinnedChainMismatch))

    def test_unpinned_learns_the_chain(self):
        node = TestnetHeaders({0: LIMIT})
        watch = ChainWatch(node.call)
        self.assertIs(self.successResultOf(watch.check_network()), TESTNET)
        self.assertIs(watch.network, TESTNET)

    def test_walk_back_and_cache(self):
        bits = {h: LIMIT for h in range(2010, 2030)}
        bits[2016] = LIMIT  # a period start ends the walk even at the limit
        bits[2020] = 0x1C00FFFF
        node = TestnetHeaders(bits)
        watch = ChainWatch(node.call, TESTNET)
        template = make_template(height=2026, prevhash=block_hash(2025), bits=LIMIT)
        facts = self.successResultOf(watch.facts_for(template))
        self.assertEqual((facts.tip_height, facts.tip_last_non_min_bits), (2025, 0x1C00FFFF))
        calls = node.calls
        template = make_template(height=2027, prevhash=block_hash(2026), bits=LIMIT)
        facts = self.successResultOf(watch.facts_for(template))
        self.assertEqual(facts.tip_last_non_min_bits, 0x1C00FFFF)
        self.assertEqual(node.calls - calls, 2)  # the tip header, then its own step back
