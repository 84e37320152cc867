"""Tests for viabtc.jobmaster.nextbits: the empty-block job's nbits."""

from twisted.trial.unittest import TestCase

from viabtc.bitcoin.network import MAINNET, REGTEST, TESTNET
from viabtc.bitcoin.target import target_to_bits
from viabtc.jobmaster.messages import HeightHint
from viabtc.jobmaster.nextbits import (
    ChainFacts, empty_block_bits, last_non_min_bits, period_start_height,
)

HASH = bytes(range(32))


def hint(height, curtime, nbits=None):
    return HeightHint(height, curtime, HASH, nbits)


class MainnetTests(TestCase):
    """
    Block 32256 opens a period: Bitcoin Core's pow_tests ``get_next_work``
    vector (block 30240 at 1261130161, block 32255 at 1262152739 with bits
    1d00ffff, so block 32256 needs 1d00d86a).
    """

    facts = ChainFacts(MAINNET, tip_height=32254, tip_hash=HASH, tip_bits=0x1D00FFFF,
                       tip_time=1262152000, template_bits=0x1D00FFFF,
                       period_start_time=1261130161)

    def test_period_start_height(self):
        self.assertEqual(period_start_height(32254, MAINNET), 30240)
        self.assertIsNone(period_start_height(32253, MAINNET))
        self.assertIsNone(period_start_height(32254, REGTEST))

    def test_retarget_boundary(self):
        bits = empty_block_bits(self.facts, hint(32255, 1262152739), 1262152800)
        self.assertEqual(bits, 0x1D00D86A)

    def test_hinted_bits_win(self):
        bits = empty_block_bits(self.facts, hint(32255, 1262152739, nbits=0x1D00FFFF), 1262152800)
        self.assertEqual(bits, 0x1D00D86A)

    def test_inside_a_period_keeps_the_bits(self):
        facts = ChainFacts(MAINNET, 32253, HASH, 0x1C0AE493, 1262150000, 0x1C0AE493)
        self.assertEqual(empty_block_bits(facts, hint(32254, 1262151000), 1262151100), 0x1C0AE493)

    def test_hint_for_another_height_refused(self):
        self.assertRaises(ValueError, empty_block_bits, self.facts, hint(32256, 1), 2)


class TestnetTests(TestCase):
    """The 20-minute rule, with Core's walk back to the last real bits."""

    limit = target_to_bits(TESTNET.pow_limit)
    facts = ChainFacts(TESTNET, tip_height=1000, tip_hash=HASH, tip_bits=0x1C00FFFF,
                       tip_time=10_000, template_bits=0x1C00FFFF,
                       tip_last_non_min_bits=0x1C00FFFF)

    def test_slow_block_may_use_min_difficulty(self):
        self.assertEqual(empty_block_bits(self.facts, hint(1001, 10_100), 10_100 + 1201), self.limit)

    def test_hinted_block_was_min_difficulty(self):
        # Block 1001 came 25 minutes after 1000, so it had the minimum bits;
        # a prompt block 1002 must carry the last real bits again.
        self.assertEqual(empty_block_bits(self.facts, hint(1001, 11_500), 11_600), 0x1C00FFFF)

    def test_walk_back(self):
        self.assertEqual(last_non_min_bits(TESTNET, 1001, self.limit, 0x1C00FFFF), 0x1C00FFFF)
        self.assertEqual(last_non_min_bits(TESTNET, 2016, self.limit, 0x1C00FFFF), self.limit)
        self.assertEqual(last_non_min_bits(TESTNET, 1001, 0x1B00FFFF, 0x1C00FFFF), 0x1B00FFFF)


class RegtestTests(TestCase):

    def test_no_retargeting(self):
        facts = ChainFacts(REGTEST, 2014, HASH, 0x207FFFFF, 1, 0x207FFFFF)
        self.assertEqual(empty_block_bits(facts, hint(2015, 5000), 9000), 0x207FFFFF)
