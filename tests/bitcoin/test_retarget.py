"""
Tests for ``viabtc.bitcoin.retarget``, with the real mainnet vectors of
Bitcoin Core's ``pow_tests.cpp``.
"""

from twisted.trial.unittest import TestCase

from viabtc.bitcoin.network import MAINNET, REGTEST, SIGNET, TESTNET
from viabtc.bitcoin.retarget import next_bits


class MainnetRetargetTests(TestCase):
    def test_first_difficulty_change_32256(self):
        # Block 30240 time 1261130161; block 32255 time 1262152739.
        self.assertEqual(next_bits(MAINNET, 32255, 0x1D00FFFF, 1262152739, 1261130161), 0x1D00D86A)

    def test_pow_limit_2016(self):
        # Blocks 0..2015 were slow: the target would rise above the limit.
        self.assertEqual(next_bits(MAINNET, 2015, 0x1D00FFFF, 1233061996, 1231006505), 0x1D00FFFF)

    def test_lower_limit_on_timespan_68544(self):
        self.assertEqual(next_bits(MAINNET, 68543, 0x1C05A3F4, 1279297671, 1279008237), 0x1C0168FD)

    def test_upper_limit_on_timespan(self):
        self.assertEqual(next_bits(MAINNET, 46367, 0x1C387F6F, 1269211443, 1263163443), 0x1D00E1FD)

    def test_within_a_period_bits_carry_over(self):
        self.assertEqual(next_bits(MAINNET, 32254, 0x1D00FFFF, 1262152000), 0x1D00FFFF)
        self.assertEqual(next_bits(SIGNET, 100, 0x1E0377AE, 0), 0x1E0377AE)

    def test_boundary_needs_period_start(self):
        e = self.assertRaises(ValueError, next_bits, MAINNET, 32255, 0x1D00FFFF, 1262152739)
        self.assertIn("first_time_of_period", str(e))


class MinDifficultyTests(TestCase):
    """Testnet's 20-minute rule and regtest's fixed difficulty."""

    T = 1_500_000_000

    def test_regtest_never_retargets(self):
        bits = next_bits(REGTEST, 2015, 0x207FFFFF, self.T, self.T - 10)
        self.assertEqual(bits, 0x207FFFFF)
        bits = next_bits(REGTEST, 99, 0x207FFFFF, self.T, new_block_time=self.T + 1)
        self.assertEqual(bits, 0x207FFFFF)

    def test_late_block_may_use_min_difficulty(self):
        bits = next_bits(TESTNET, 1000, 0x1C00FFFF, self.T, new_block_time=self.T + 1201)
        self.assertEqual(bits, 0x1D00FFFF)

    def test_timely_block_keeps_difficulty(self):
        bits = next_bits(TESTNET, 1000, 0x1C00FFFF, self.T, new_block_time=self.T + 1200)
        self.assertEqual(bits, 0x1C00FFFF)

    def test_after_min_difficulty_block_the_real_difficulty_returns(self):
        bits = next_bits(
            TESTNET, 1000, 0x1D00FFFF, self.T, new_block_time=self.T + 600, last_non_min_bits=0x1C00FFFF
        )
        self.assertEqual(bits, 0x1C00FFFF)
        e = self.assertRaises(
            ValueError, next_bits, TESTNET, 1000, 0x1D00FFFF, self.T, new_block_time=self.T + 600
        )
        self.assertIn("last_non_min_bits", str(e))

    def test_period_start_at_min_difficulty_is_kept(self):
        bits = next_bits(TESTNET, 2016, 0x1D00FFFF, self.T, new_block_time=self.T + 600)
        self.assertEqual(bits, 0x1D00FFFF)

    def test_needs_new_block_time(self):
        self.assertRaises(ValueError, next_bits, TESTNET, 1000, 0x1C00FFFF, self.T)

    def test_testnet_retargets_like_mainnet(self):
        self.assertEqual(next_bits(TESTNET, 32255, 0x1D00FFFF, 1262152739, 1261130161), 0x1D00D86A)
