"""SIGHUP's part in the metawriter: the trust file is read again."""

import json
import os

import attrs
from twisted.internet import reactor
from twisted.trial import unittest

from viabtc.config import AlertBlock, RedisBlock, ServerBlock, parse_address
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.reload import reload_metawriter
from viabtc.metawriter.service import MetaWriterService
from viabtc.reload import ReloadReport


class MetaWriterReloadTests(unittest.TestCase):
    def test_trust_file_read_again(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        trust = os.path.join(directory, "trust.json")
        with open(trust, "w") as f:
            json.dump({"10.9.9.9": "elsewhere"}, f)
        config = MetaWriterConfig(
            svr=ServerBlock((parse_address("tcp@127.0.0.1:1"),), 1 << 20), redis=RedisBlock(),
            alert=AlertBlock("mw-test"), trust_file=trust, journal=os.path.join(directory, "journal"))
        service = MetaWriterService(config, reactor)
        service.trust.load(trust)
        self.assertFalse(service.trust("127.0.0.1"))
        with open(trust, "w") as f:
            json.dump({"127.0.0.1": "this host"}, f)
        report = reload_metawriter(service, attrs.evolve(config, key_expire=60))
        self.assertEqual(report, ReloadReport(("trust_file",), ("key_expire",)))
        self.assertTrue(service.trust("127.0.0.1"))
        self.assertFalse(service.trust("10.9.9.9"))
        report = reload_metawriter(service, attrs.evolve(config, flush_delay=3.0))
        self.assertEqual(report, ReloadReport(("trust_file", "flush_delay"), ()))
        self.assertEqual(service.config.flush_delay, 3.0)
