"""The Redis schema spells keys and event JSON exactly as the seed does."""

import json

from twisted.trial import unittest

from viabtc.stats import schema


class KeyTests(unittest.TestCase):
    def test_share_keys(self):
        self.assertEqual(schema.share_key("btc", "s", "alice"), "btc:s:alice")
        self.assertEqual(schema.share_key("btc", "p", "alice", "rig1"), "btc:p:alice:rig1")
        self.assertEqual(schema.share_key("btc", "s", "alice", reject=True), "btc:s:alice:reject")
        self.assertEqual(schema.share_key("btc", "s", "alice", "rig1", reject=True),
                         "btc:s:alice:rig1:reject")
        self.assertEqual(schema.share_key("btc", "g", "alice"), "btc:g:alice")

    def test_share_type_checked(self):
        self.assertRaises(ValueError, schema.share_key, "btc", "x", "alice")

    def test_monitor_keys(self):
        self.assertEqual(schema.monitor_key("btc", "pow"), "btc:m:pow")
        self.assertEqual(schema.monitor_host_key("btc", "47.89.182.198", "pow"), "btc:mh:47.89.182.198:pow")
        self.assertEqual(schema.monitor_hosts_key("btc", "pow"), "btc:mk:pow")

    def test_fixed_names(self):
        self.assertEqual(
            (schema.MINING_KEYS, schema.MONITOR_KEYS, schema.NEWBLOCK, schema.NEWEVENT,
             schema.NEWWORKER, schema.ALERT_MESSAGE),
            ("mining:keys", "monitor:keys", "newblock", "newevent", "newworker", "alert:message"))

    def test_internal_keys(self):
        self.assertEqual(schema.apply_guard_key("ab12"), "viabtc:applied:ab12")
        self.assertEqual(schema.newworker_guard_key("btc", "alice", "rig1"), "viabtc:newworker:btc:alice:rig1")
        for key in (schema.apply_guard_key("ab12"), schema.newworker_guard_key("btc", "a", "b")):
            self.assertTrue(key.startswith(schema.INTERNAL_PREFIX))

    def test_float_format(self):
        self.assertEqual(schema.format_float(0.1), "0.1")
        self.assertEqual(schema.format_float(1 / 3), "0.3333333333333333")
        self.assertEqual(schema.format_float(1e-05), "1e-05")
        self.assertEqual(schema.format_float(123456789.0), "123456789")


class EventJsonTests(unittest.TestCase):
    """Byte-exact jansson json_dumps(obj, 0) output, the seed README's form."""

    def test_block(self):
        self.assertEqual(
            schema.block_json("haiyang", "example", "BTC",
                              "0000000000000000032aee4bb112977ae8f4fb3614e0df196893285aa9c2adc0"),
            '{"user": "haiyang", "worker": "example", "name": "BTC", '
            '"hash": "0000000000000000032aee4bb112977ae8f4fb3614e0df196893285aa9c2adc0"}')

    def test_event(self):
        self.assertEqual(
            schema.event_json("haiyang", "example", "BTC", "47.88.87.29", "connected"),
            '{"user": "haiyang", "worker": "example", "coin": "BTC", "peer": "47.88.87.29", '
            '"event": "connected"}')

    def test_worker(self):
        self.assertEqual(schema.worker_json("haiyang", "example", "BTC"),
                         '{"user": "haiyang", "worker": "example", "coin": "BTC"}')

    def test_escapes(self):
        text = schema.worker_json('a"b\\c', "\n\t\x01/é", "x")
        self.assertEqual(text, '{"user": "a\\"b\\\\c", "worker": "\\n\\t\\u0001/é", "coin": "x"}')
        self.assertEqual(json.loads(text), {"user": 'a"b\\c', "worker": "\n\t\x01/é", "coin": "x"})
