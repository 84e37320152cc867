"""Tests for viabtc.jobmaster.bans."""

from twisted.trial.unittest import TestCase

from viabtc.jobmaster.bans import BanList
from viabtc.rpc.bans import BanUpdate


class BanListTests(TestCase):

    def test_add_expire_delete(self):
        bans = BanList()
        bans.apply(BanUpdate("add", ("1.1.1.1", "2.2.2.2"), 60), now=1000)
        bans.apply(BanUpdate("add", ("3.3.3.3",), 0), now=1000)
        self.assertEqual(len(bans), 3)
        self.assertEqual(bans.expire(1059), BanUpdate("del", ()))
        self.assertEqual(bans.expire(1060), BanUpdate("del", ("1.1.1.1", "2.2.2.2")))
        self.assertNotIn("1.1.1.1", bans)
        self.assertIn("3.3.3.3", bans)
        bans.apply(BanUpdate("del", ("3.3.3.3", "9.9.9.9")), now=2000)
        self.assertEqual(len(bans), 0)

    def test_readd_restarts_clock(self):
        bans = BanList()
        bans.apply(BanUpdate("add", ("1.1.1.1",), 60), now=0)
        bans.apply(BanUpdate("add", ("1.1.1.1",), 60), now=50)
        self.assertEqual(bans.expire(100).ips, ())
        self.assertEqual(bans.expire(110).ips, ("1.1.1.1",))

    def test_snapshot_gives_remaining_time(self):
        bans = BanList()
        bans.apply(BanUpdate("add", ("1.1.1.1",), 60), now=0)
        bans.apply(BanUpdate("add", ("2.2.2.2",), 0), now=0)
        bans.apply(BanUpdate("add", ("3.3.3.3",), 10), now=0)
        self.assertEqual(bans.snapshot(20.5), [
            BanUpdate("add", ("2.2.2.2",), 0),
            BanUpdate("add", ("1.1.1.1",), 40),
        ])
        self.assertEqual(bans.describe(20.5),
                         ["1.1.1.1 40s left", "2.2.2.2 permanent"])
