"""Hashrate from Redis minutes is right at mainnet and regtest scales."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from viabtc.stats import hashrate as hr

T0 = 1_700_000_040


class PoolTests(unittest.TestCase):
    def test_integral_pow_is_exact(self):
        # Mainnet: difficulty 65536, 600 shares in a minute.
        diff = hr.pool_difficulty({T0: 65536 * 600}, {})
        self.assertEqual(hr.hashrate(diff[T0]), 65536 * 600 * 2**32 / 60)

    def test_regtest_pow_rounds_to_zero_pow_float_does_not(self):
        # 15 shares at 0.001: the integer pow is 0, pow_float keeps 0.015.
        diff = hr.pool_difficulty({}, {T0: 0.015})
        self.assertAlmostEqual(hr.hashrate(diff[T0]), 0.015 * 2**32 / 60)
        self.assertEqual(hr.format_hashrate(hr.hashrate(diff[T0])), "1.07 MH/s")

    def test_c_gateways_without_pow_float_keep_pow(self):
        self.assertEqual(hr.pool_difficulty({T0: 10}, {T0: 0.5}), {T0: 10.0})


class KeyTests(unittest.TestCase):
    def test_exact_wins(self):
        self.assertEqual(hr.key_difficulty({T0: 5}, {T0: 0}, exact={T0: 0.005}), {T0: 0.005})

    def test_integral_uses_pow(self):
        self.assertEqual(hr.key_difficulty({T0: 2, T0 + 60: 3}, {T0: 2048, T0 + 60: 3072}),
                         {T0: 2048.0, T0 + 60: 3072.0})

    def test_fractional_uses_the_minute_mean(self):
        self.assertEqual(hr.key_difficulty({T0: 4}, {}, mean={T0: 0.002}), {T0: 0.008})

    def test_fractional_falls_back_to_own_long_run_mean(self):
        # 2000 shares at 0.001 carried into 2 pow units over two minutes.
        got = hr.key_difficulty({T0: 1000, T0 + 60: 1000}, {T0: 1, T0 + 60: 1})
        self.assertEqual(got, {T0: 1.0, T0 + 60: 1.0})
        got = hr.key_difficulty({T0: 1500, T0 + 60: 500}, {T0: 1, T0 + 60: 1})
        self.assertEqual(got, {T0: 1.5, T0 + 60: 0.5})

    def test_nothing_known_is_zero(self):
        self.assertEqual(hr.key_difficulty({T0: 3}, {}), {T0: 0.0})

    def test_user_exact_from_goal(self):
        # Block difficulty 4.656542373906925e-10 (regtest); the pool did 0.02
        # in the minute, the user 0.005 of it.
        block = 4.656542373906925e-10
        got = hr.user_exact({T0: 0.005 / block}, {T0: 0.02}, {T0: 0.02 / block})
        self.assertAlmostEqual(got[T0], 0.005)
        self.assertEqual(hr.user_exact({T0: 1.0}, {}, {T0: 2.0}), {})

    @given(st.lists(st.sampled_from([0.001, 0.002, 0.004, 0.0005]), min_size=1, max_size=200))
    def test_user_exact_recovers_summed_difficulty(self, diffs):
        block = 4.656542373906925e-10
        total = sum(diffs)
        goal = sum(d / block for d in diffs)
        got = hr.user_exact({T0: goal}, {T0: total}, {T0: goal})
        self.assertAlmostEqual(got[T0], total, delta=total * 1e-9)


class AverageAndFormatTests(unittest.TestCase):
    def test_average_counts_missing_minutes_as_zero(self):
        self.assertEqual(hr.average_rate({T0: 60.0}, [T0, T0 + 60]), 60.0 * 2**32 / 120)
        self.assertEqual(hr.average_rate({}, []), 0.0)

    def test_units(self):
        self.assertEqual(hr.format_hashrate(0), "0 H/s")
        self.assertEqual(hr.format_hashrate(999), "999 H/s")
        self.assertEqual(hr.format_hashrate(1234), "1.23 kH/s")
        self.assertEqual(hr.format_hashrate(45.6e6), "45.6 MH/s")
        self.assertEqual(hr.format_hashrate(350e18), "350 EH/s")
        self.assertEqual(hr.format_hashrate(4e21), "4.00 ZH/s")
