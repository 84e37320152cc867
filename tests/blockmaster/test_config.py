"""Blockmaster's configuration: the seed's sample as the seed reads it, ours, errors naming the key."""

import json
import os

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.blockmaster.test_tap import local_config
from viabtc.blockmaster.config import MIN_PKG_SIZE, BlockmasterConfig
from viabtc.config import ConfigError

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "blockmaster.json")
OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "blockmaster.json")


class ConfigTests(TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def load(self, **changes):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(local_config(**changes), f)
        return BlockmasterConfig.from_file(path)

    def test_seed_sample(self):
        config = BlockmasterConfig.from_file(SEED)
        self.assertEqual([a.text for a in config.svr.binds], ["tcp@0.0.0.0:5000", "udp@0.0.0.0:5000"])
        self.assertEqual(config.svr.max_pkg_size, MIN_PKG_SIZE)
        self.assertEqual([a.text for a in config.blockmasters], ["tcp@118.178.226.218:5000"])
        self.assertEqual([a.text for a in config.bitpeers], ["tcp@127.0.0.1:5100"])
        self.assertEqual((config.blockmaster_url, config.request_auth, config.blockmaster_update_interval),
                         ("http://127.0.0.1/blockmaster", "xxxxxxxxxxxxxxx", 30.0))
        self.assertEqual((config.coin.nodes[0].host, config.coin.nodes[0].port), ("127.0.0.1", 18332))
        self.assertEqual((config.mempool_timeout, config.blockmaster_timeout), (10.0, 60.0))
        formats = [e.get("log_format", "") for e in self.events]
        self.assertFalse([f for f in formats if "unknown key" in f])
        self.assertTrue([f for f in formats if "cannot carry a full block" in f])

    def test_ours(self):
        config = BlockmasterConfig.from_file(OURS)
        self.assertTrue(config.compact)
        self.assertEqual(config.svr.max_pkg_size, 16 << 20)

    def test_trust(self):
        self.assertIsNone(self.load().trust)
        self.assertEqual(self.load(trust=["127.0.0.1", "10.0.0.0/8"]).trust, ("127.0.0.1", "10.0.0.0/8"))

    def test_lists_may_be_empty_or_absent(self):
        config = self.load(blockmaster=[], bitpeer=[])
        self.assertEqual((config.blockmasters, config.bitpeers, config.blockmaster_url), ((), (), None))

    def test_errors_name_the_key(self):
        for changes, key in (({"bitpeer": ["udp@127.0.0.1:5"]}, "bitpeer[0]"),
                             ({"blockmaster_url": "ftp://x"}, "blockmaster_url"),
                             ({"mempool_timeout": 0}, "mempool_timeout"),
                             ({"trust": ["10.0.0.0/8", "nonsense"]}, "trust[1]"),
                             ({"coin": {"name": "BTC"}}, "coin.")):
            self.assertIn(key, str(self.assertRaises(ConfigError, self.load, **changes)))
