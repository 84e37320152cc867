"""
Tests for ``viabtc.bitcoin.retarget``, with the real mainnet vectors of
Bitcoin Core's ``pow_tests.cpp`` and real testnet4 headers.
"""

from hypothesis import given, strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.network import MAINNET, REGTEST, SIGNET, TESTNET, TESTNET4
from viabtc.bitcoin.retarget import MAX_TIMEWARP, min_block_time, next_bits
from viabtc.bitcoin.target import target_to_bits


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


# Real testnet4 headers (80 bytes, hex) from the chain's first period, as
# Bitcoin Core's functional test data (test/functional/data/testnet4.hex)
# carries them; Core's mining_testnet.py asserts that block 2016 needs
# 1c3fffc0 (difficulty 4) on top of them.
TESTNET4_HEADERS = {
    0: "0100000000000000000000000000000000000000000000000000000000000000000000004e7b2b91"
       "28fe0291db0693af2ae418b767e657cd407e80cb1434221eaea7a07a046f3566ffff001dbb0c7817",
    1: "0000002043f08bdab050e35b567c864b91f47f50ae725ae2de53bcfbbaf284da000000005c78b286"
       "f0d46ba2b8b104b6f7aec904fa0e93259e5637aaaac87d59b89d9c6160d63866ffff001da680f8ad",
    2014: "0000002058ab261a2632040a2ced2fb4698ba5c75f4e211d57e896fac4f61bed000000008f5f0ad0"
          "0435af53621ba244fa9e951f6f388cd0f468f3d9191125c5f05d0e5515463966ffff001d154ec382",
    2015: "00000020e107801e289e2ae3a1ba51fcaac781dd2539d846a8037511483848940000000011d313ae"
          "3df661a7d83b7289b34acff3ed5857992641e1db4661d567b602361f1c463966ffff001ded50454a",
}


def testnet4_header(height):
    return BlockHeader.parse(bytes.fromhex(TESTNET4_HEADERS[height]))


class Testnet4Tests(TestCase):
    """
    BIP94 on testnet4.  The first three tests use real headers; the chain's
    first period never shows the block-storm fix or a timewarp-limited
    block (every block has the minimum bits), so the last tests derive
    their inputs from BIP94's rules, said so in each.
    """

    def test_real_headers_chain(self):
        self.assertEqual(sha256d(bytes.fromhex(TESTNET4_HEADERS[0])), TESTNET4.genesis_hash)
        self.assertEqual(testnet4_header(2015).prev_hash,
                         sha256d(bytes.fromhex(TESTNET4_HEADERS[2014])))
        self.assertEqual(testnet4_header(1).prev_hash, TESTNET4.genesis_hash)

    def test_real_retarget_boundary_2016(self):
        # Blocks 0..2015 took 251,672 s, less than a quarter of two weeks:
        # the target shrinks four-fold, from the first block's bits.
        first, last = testnet4_header(0), testnet4_header(2015)
        bits = next_bits(TESTNET4, 2015, last.bits, last.time, first.time,
                         first_bits_of_period=first.bits)
        self.assertEqual(bits, 0x1C3FFFC0)

    def test_real_twenty_minute_block_1(self):
        # Block 1 came 223,068 s after the genesis block: the 20-minute rule
        # allows the minimum difficulty (which it carries).
        genesis, block1 = testnet4_header(0), testnet4_header(1)
        self.assertGreater(block1.time, genesis.time + 1200)
        bits = next_bits(TESTNET4, 0, genesis.bits, genesis.time, new_block_time=block1.time)
        self.assertEqual(bits, block1.bits)
        self.assertEqual(bits, target_to_bits(TESTNET4.pow_limit))

    def test_real_timewarp_floor_after_2015(self):
        # Block 2016 opens a period: it may be dated at most 600 s before
        # block 2015, whatever the median time past allows.
        last = testnet4_header(2015)
        self.assertEqual(min_block_time(TESTNET4, 2016, last.time, last.time - 3000),
                         last.time - MAX_TIMEWARP)
        # Inside a period only the median time past bounds it.
        self.assertEqual(min_block_time(TESTNET4, 2015, last.time, last.time - 3000),
                         last.time - 2999)

    def test_derived_block_storm_fix(self):
        # Derived from BIP94: a period of exactly two weeks whose last block
        # was a 20-minute min-difficulty block.  Testnet3 scales the last
        # block's (minimum) bits back up to the minimum; testnet4 keeps the
        # period's real difficulty, from its first block.
        start, end = 1_720_000_000, 1_720_000_000 + 14 * 24 * 3600
        limit = target_to_bits(TESTNET4.pow_limit)
        self.assertEqual(next_bits(TESTNET, 4031, limit, end, start), limit)
        self.assertEqual(next_bits(TESTNET4, 4031, limit, end, start,
                                   first_bits_of_period=0x1C3FFFC0), 0x1C3FFFC0)
        e = self.assertRaises(ValueError, next_bits, TESTNET4, 4031, limit, end, start)
        self.assertIn("first_bits_of_period", str(e))

    def test_derived_twenty_minute_rule_inside_a_period(self):
        # Derived: after a real-difficulty block, a block 1201 s later may
        # use the minimum, one 1200 s later may not.
        t = 1_720_000_000
        limit = target_to_bits(TESTNET4.pow_limit)
        self.assertEqual(next_bits(TESTNET4, 2100, 0x1C3FFFC0, t, new_block_time=t + 1201), limit)
        self.assertEqual(next_bits(TESTNET4, 2100, 0x1C3FFFC0, t, new_block_time=t + 1200),
                         0x1C3FFFC0)

    def test_derived_timewarp_on_every_network(self):
        # Derived: the floor Core's miner applies on every network.
        for network in (MAINNET, TESTNET, TESTNET4, SIGNET):
            self.assertEqual(min_block_time(network, 4032, 10_000), 10_000 - 600)
            self.assertEqual(min_block_time(network, 4033, 10_000), 0)


class Bip94PropertyTests(TestCase):

    @given(st.integers(1, 1000), st.integers(0x1B000001, 0x1D00FFFF), st.integers(1, 10**7))
    def test_same_first_and_last_bits_retarget_as_testnet3(self, period, bits, timespan):
        # When the period's first and last blocks carry the same bits, BIP94
        # changes nothing.
        if bits & 0x00800000 or not bits & 0x007FFFFF:
            bits = 0x1C00FFFF
        height = period * 2016 - 1
        self.assertEqual(
            next_bits(TESTNET4, height, bits, 10**9 + timespan, 10**9, first_bits_of_period=bits),
            next_bits(TESTNET, height, bits, 10**9 + timespan, 10**9))
