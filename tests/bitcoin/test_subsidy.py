"""Tests for ``viabtc.bitcoin.subsidy``."""

from twisted.trial.unittest import TestCase

from viabtc.bitcoin.network import MAINNET, REGTEST
from viabtc.bitcoin.subsidy import block_subsidy

COIN = 100_000_000


class BlockSubsidyTests(TestCase):
    def test_mainnet_halvings_are_exact(self):
        for height, subsidy in [
            (0, 50 * COIN),
            (209999, 50 * COIN),
            (210000, 25 * COIN),  # the seed paid 50 here (ref §12.7)
            (419999, 25 * COIN),
            (420000, 1250000000),
            (630000, 625000000),
            (840000, 312500000),
            (1050000, 156250000),
        ]:
            self.assertEqual(block_subsidy(height, MAINNET), subsidy, height)

    def test_runs_out(self):
        self.assertEqual(block_subsidy(33 * 210000 - 1, MAINNET), 1)
        self.assertEqual(block_subsidy(33 * 210000, MAINNET), 0)
        self.assertEqual(block_subsidy(64 * 210000, MAINNET), 0)
        self.assertEqual(block_subsidy(10**12, MAINNET), 0)

    def test_regtest_halves_every_150(self):
        self.assertEqual(block_subsidy(149, REGTEST), 50 * COIN)
        self.assertEqual(block_subsidy(150, REGTEST), 25 * COIN)
        self.assertEqual(block_subsidy(300, REGTEST), 1250000000)

    def test_total_supply(self):
        total = sum(block_subsidy(h * 210000, MAINNET) * 210000 for h in range(64))
        self.assertEqual(total, 2099999997690000)

    def test_negative_height(self):
        self.assertRaises(ValueError, block_subsidy, -1, MAINNET)
