"""The gateway's ban list, fed by the jobmaster's cmd 3 bodies."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from viabtc.gateway.bans import BanList
from viabtc.rpc.bans import BanUpdate


class BanListTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.bans = BanList(self.clock)

    def test_add_del_and_spellings(self):
        self.assertEqual(self.bans.apply(BanUpdate("add", ("1.2.3.4",))), {"1.2.3.4"})
        self.assertTrue(self.bans.is_banned("1.2.3.4"))
        self.assertTrue(self.bans.is_banned("::ffff:1.2.3.4"))
        self.assertFalse(self.bans.is_banned("1.2.3.5"))
        self.assertFalse(self.bans.is_banned("not an ip"))
        self.bans.apply(BanUpdate("del", ("1.2.3.4",)))
        self.assertFalse(self.bans.is_banned("1.2.3.4"))

    def test_limit_expires_permanent_stays(self):
        self.bans.apply(BanUpdate("add", ("1.2.3.4",), 10))
        self.bans.apply(BanUpdate("add", ("5.6.7.8",), 0))
        self.clock.advance(9.9)
        self.assertTrue(self.bans.is_banned("1.2.3.4"))
        self.clock.advance(0.1)
        self.assertFalse(self.bans.is_banned("1.2.3.4"))
        self.assertEqual(len(self.bans), 1)
        self.clock.advance(1e9)
        self.assertTrue(self.bans.is_banned("5.6.7.8"))
        self.bans.clear()
        self.assertFalse(self.bans.is_banned("5.6.7.8"))
