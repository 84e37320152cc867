"""The trust file: the seed's entry rules, IPv4-mapped peers, reloads and the listing."""

import json

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.metawriter.trust import TrustEntry, TrustFileError, TrustTable, load_trust_file


class TrustFileTests(unittest.TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def test_seed_rules(self):
        entries, skipped = load_trust_file(self.write({
            "127.0.0.1": "losthost",
            "": "empty ip",
            "1234:5678:9abc:def0::1": "longer than 15",
            "10.0.0.2": "",
            "10.0.0.3": "x" * 51,
            "10.0.0.4": 7,
            "gateway-1": "not an ip",
            "::1": "v6 loopback",
        }))
        self.assertEqual(entries, [TrustEntry("127.0.0.1", "losthost"), TrustEntry("::1", "v6 loopback")])
        self.assertEqual([ip for ip, _ in skipped],
                         ["", "1234:5678:9abc:def0::1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "gateway-1"])

    def test_bad_files(self):
        for text in ("[1, 2]", "{not json", None):
            path = self.mktemp() if text is None else self.write(text)
            self.assertRaises(TrustFileError, load_trust_file, path)

    def test_table_matches_and_reloads(self):
        EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        table = TrustTable()
        self.assertFalse(table("127.0.0.1"))
        table.load(self.write({"127.0.0.1": "local", "10.1.2.3": "gw"}))
        self.assertTrue(table("127.0.0.1"))
        self.assertTrue(table("::ffff:10.1.2.3"))
        self.assertFalse(table("10.1.2.4"))
        self.assertFalse(table("not-an-ip"))
        # A broken file leaves the table as it was.
        self.assertRaises(TrustFileError, table.load, self.write("{"))
        self.assertEqual(len(table), 2)
        table.load(self.write({"10.1.2.4": "new"}))
        self.assertFalse(table("127.0.0.1"))
        self.assertTrue(table("10.1.2.4"))

    def test_listing_is_the_seeds(self):
        table = TrustTable([TrustEntry("127.0.0.1", "losthost")])
        self.assertEqual(table.listing(), "%-15s %-50s\n%-15s %-50s\n" % ("ip", "info", "127.0.0.1", "losthost"))
