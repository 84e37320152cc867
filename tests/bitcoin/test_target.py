"""Tests for ``viabtc.bitcoin.target``."""

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.target import (
    DIFF1_TARGET,
    MAX_TARGET,
    bits_to_target,
    difficulty_to_target,
    hash_difficulty,
    target_to_bits,
    target_to_difficulty,
)


class CompactBitsTests(TestCase):
    """Vectors from Bitcoin Core's ``arith_uint256_tests`` (``bignum_SetCompact``)."""

    ZERO = [
        0,
        0x00123456,
        0x01003456,
        0x02000056,
        0x03000000,
        0x04000000,
        0x00923456,
        0x01803456,
        0x02800056,
        0x03800000,
        0x04800000,
    ]
    # (bits, target, canonical bits of that target)
    VALUES = [
        (0x01123456, 0x12, 0x01120000),
        (0x02123456, 0x1234, 0x02123400),
        (0x03123456, 0x123456, 0x03123456),
        (0x04123456, 0x12345600, 0x04123456),
        (0x05009234, 0x92340000, 0x05009234),
        (0x20123456, 0x123456 << 232, 0x20123456),
        (0x1D00FFFF, DIFF1_TARGET, 0x1D00FFFF),
        (0x207FFFFF, 0x7FFFFF << 232, 0x207FFFFF),
        (0x1B0404CB, 0x0404CB << 192, 0x1B0404CB),
    ]

    def test_zero_mantissas(self):
        for bits in self.ZERO:
            self.assertEqual(bits_to_target(bits), 0, hex(bits))
        self.assertEqual(target_to_bits(0), 0)

    def test_values(self):
        for bits, target, canonical in self.VALUES:
            self.assertEqual(bits_to_target(bits), target, hex(bits))
            self.assertEqual(target_to_bits(target), canonical, hex(bits))

    def test_negative_is_invalid(self):
        for bits in [0x01FEDCBA, 0x04923456, 0x1D80FFFF]:
            self.assertRaises(ValueError, bits_to_target, bits)

    def test_overflow_is_invalid(self):
        for bits in [0xFF123456, 0x23000001, 0x22000100, 0x21010000]:
            self.assertRaises(ValueError, bits_to_target, bits)
        # The largest sizes that still fit.
        self.assertEqual(bits_to_target(0x220000FF), 0xFF << 248)
        self.assertEqual(bits_to_target(0x2100FFFF), 0xFFFF << 240)

    def test_not_32_bits(self):
        self.assertRaises(ValueError, bits_to_target, -1)
        self.assertRaises(ValueError, bits_to_target, 2**32)

    def test_sign_bit_moves_to_next_byte(self):
        self.assertEqual(target_to_bits(0x80), 0x02008000)
        self.assertEqual(target_to_bits(0x800000), 0x04008000)

    def test_target_out_of_range(self):
        self.assertRaises(ValueError, target_to_bits, -1)
        self.assertRaises(ValueError, target_to_bits, MAX_TARGET + 1)

    @given(st.integers(min_value=0, max_value=MAX_TARGET))
    def test_target_round_trip_truncates(self, target):
        bits = target_to_bits(target)
        decoded = bits_to_target(bits)
        self.assertLessEqual(decoded, target)
        self.assertEqual(target_to_bits(decoded), bits)
        # Only the three most significant bytes survive.
        self.assertLess(target - decoded, max(1, decoded >> 15))

    @given(st.integers(min_value=3, max_value=0x20), st.integers(min_value=0x8000, max_value=0x7FFFFF))
    def test_canonical_bits_round_trip(self, size, mantissa):
        # A mantissa using its top two bytes (and not the sign bit) is the
        # canonical form, so it survives decoding and re-encoding unchanged.
        bits = (size << 24) | mantissa
        self.assertEqual(target_to_bits(bits_to_target(bits)), bits)


class DifficultyTests(TestCase):
    def test_difficulty_one(self):
        self.assertEqual(difficulty_to_target(1), DIFF1_TARGET)
        self.assertEqual(difficulty_to_target("1"), DIFF1_TARGET)
        self.assertEqual(difficulty_to_target(1.0), DIFF1_TARGET)

    def test_integer_floor(self):
        self.assertEqual(difficulty_to_target(3), DIFF1_TARGET // 3)
        self.assertEqual(difficulty_to_target(65536), DIFF1_TARGET // 65536)

    def test_small_pool_difficulty_is_exact(self):
        # 0.0001 as a decimal string is exactly 1/10000; as a float it is not.
        self.assertEqual(difficulty_to_target("0.0001"), DIFF1_TARGET * 10000)
        self.assertEqual(difficulty_to_target(Decimal("0.0001")), DIFF1_TARGET * 10000)
        self.assertEqual(difficulty_to_target(Fraction(1, 10000)), DIFF1_TARGET * 10000)
        f = Fraction(0.0001)
        self.assertEqual(difficulty_to_target(0.0001), DIFF1_TARGET * f.denominator // f.numerator)

    def test_string_spellings(self):
        self.assertEqual(difficulty_to_target("1e-4"), DIFF1_TARGET * 10000)
        self.assertEqual(difficulty_to_target(" 2.5 "), DIFF1_TARGET * 2 // 5)

    def test_capped_at_max_target(self):
        self.assertEqual(difficulty_to_target(Fraction(1, 2**40)), MAX_TARGET)
        self.assertEqual(difficulty_to_target("1e-30"), MAX_TARGET)

    def test_invalid(self):
        for bad in [0, -1, "0", "-0.5", "abc", "", float("nan"), float("inf"), None, True, [1]]:
            self.assertRaises(ValueError, difficulty_to_target, bad)

    @given(st.fractions(min_value=Fraction(1, 10**12), max_value=10**15))
    def test_target_is_floor(self, difficulty):
        target = difficulty_to_target(difficulty)
        if target < MAX_TARGET:
            self.assertLessEqual(target * difficulty, DIFF1_TARGET)
            self.assertGreater((target + 1) * difficulty, DIFF1_TARGET)

    def test_display_difficulty(self):
        self.assertEqual(target_to_difficulty(DIFF1_TARGET), 1.0)
        self.assertAlmostEqual(target_to_difficulty(bits_to_target(0x1B0404CB)), 16307.420938523983)
        self.assertRaises(ValueError, target_to_difficulty, 0)

    def test_hash_difficulty(self):
        self.assertEqual(hash_difficulty(DIFF1_TARGET // 4), 4.0)
        self.assertEqual(hash_difficulty(0), float("inf"))
