"""Ban updates from the jobmaster (cmd 3) and the gateway's ban list."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from viabtc.gateway.bans import BadBanUpdate, BanList, BanUpdate, parse_ban_update


class ParseTests(TestCase):
    def test_seed_bodies(self):
        self.assertEqual(parse_ban_update(b'{"ip":["1.2.3.4","::ffff:5.6.7.8"],"op":"add","limit":60}'),
                         BanUpdate("add", ("1.2.3.4", "5.6.7.8"), 60))
        self.assertEqual(parse_ban_update(b'{"ip":[],"op":"del"}'), BanUpdate("del", ()))
        self.assertEqual(parse_ban_update(b'{"ip":["1.2.3.4"],"op":"add"}').limit, 0)

    def test_bad_bodies_say_why(self):
        for body, why in [
            (b"nope", "JSON"),
            (b"[]", "object"),
            (b'{"ip":[],"op":"ban"}', "'op'"),
            (b'{"ip":"1.2.3.4","op":"add"}', "'ip'"),
            (b'{"op":"del"}', "'ip'"),
        ]:
            e = self.assertRaises(BadBanUpdate, parse_ban_update, body)
            self.assertIn(why, str(e))

    def test_a_bad_entry_costs_only_itself(self):
        update = parse_ban_update(b'{"ip":["1.2.3",7,"1.2.3.4",null,"::ffff:5.6.7.8"],"op":"add","limit":60}')
        self.assertEqual((update.op, update.ips, update.limit), ("add", ("1.2.3.4", "5.6.7.8"), 60))
        self.assertEqual(len(update.dropped), 3)
        self.assertIn("'ip' entry '1.2.3'", update.dropped[0])
        update = parse_ban_update(b'{"ip":["1.2.3.4","x"],"op":"del"}')
        self.assertEqual((update.ips, len(update.dropped)), (("1.2.3.4",), 1))

    def test_a_bad_limit_leaves_the_ban_to_its_del(self):
        """The seed's gateways never read ``limit``: a ban holds until the jobmaster's ``del``."""
        for limit in (b"-1", b"true", b"1.5", b'"60"', b"4294967296"):
            update = parse_ban_update(b'{"ip":["1.2.3.4"],"op":"add","limit":' + limit + b"}")
            self.assertEqual((update.ips, update.limit), (("1.2.3.4",), 0))
            [why] = update.dropped
            self.assertIn("'limit'", why)


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
