"""Tests for viabtc.rpc.bans: the cmd 3 body, as gateways and jobmasters read it."""

import json

from twisted.trial.unittest import TestCase

from viabtc.rpc.bans import BadBanUpdate, BanUpdate, parse_ban_update, parse_ips


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



    def test_round_trip(self):
        for update in (BanUpdate("add", ("1.2.3.4", "::1"), 30), BanUpdate("del", ("1.2.3.4",))):
            self.assertEqual(parse_ban_update(update.to_json()), update)
        self.assertEqual(json.loads(BanUpdate("del", ()).to_json()), {"ip": [], "op": "del"})

    def test_operator_lists_are_strict(self):
        """An admin command's typo is answered, not skipped."""
        self.assertEqual(parse_ips(["::ffff:1.2.3.4", "2001:DB8::1"]), ("1.2.3.4", "2001:db8::1"))
        e = self.assertRaises(BadBanUpdate, parse_ips, ["1.2.3.4", "host"])
        self.assertIn("'host'", str(e))
