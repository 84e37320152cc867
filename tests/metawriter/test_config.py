"""The metawriter configuration: the seed's sample, ours, our keys and errors naming the key."""

import json
import os
import shutil

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.config import ConfigError
from viabtc.metawriter.config import DEFAULT_JOURNAL, MetaWriterConfig

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs")
OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "metawriter.json")


class ConfigTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "trust.json"), "w") as f:
            json.dump({"127.0.0.1": "local"}, f)

    def write(self, data):
        path = os.path.join(self.dir, "config.json")
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def base(self, **changes):
        data = {
            "svr": {"bind": ["tcp@127.0.0.1:3000", "udp@127.0.0.1:3000"], "max_pkg_size": 1048576},
            "redis": {"host": "127.0.0.1", "port": 6379},
            "alert": {"host": "mw-1"},
            "trust_file": "trust.json",
        }
        data.update(changes)
        return data

    def test_seed_sample(self):
        """The seed's config.json with its trust.json beside it loads as it is."""
        shutil.copy(os.path.join(SEED, "metawriter.json"), os.path.join(self.dir, "config.json"))
        shutil.copy(os.path.join(SEED, "metawriter-trust.json"), os.path.join(self.dir, "trust.json"))
        config = MetaWriterConfig.from_file(os.path.join(self.dir, "config.json"))
        self.assertEqual([a.text for a in config.svr.binds], ["tcp@0.0.0.0:3000", "udp@0.0.0.0:3000"])
        self.assertEqual((config.redis.host, config.redis.port), ("127.0.0.1", 6379))
        self.assertEqual(config.dup_timeout, 3600)
        self.assertEqual(config.key_expire, 3600)
        self.assertEqual(config.alert.host, "192.168.1.1")
        self.assertEqual(config.trust_file, os.path.join(os.path.abspath(self.dir), "trust.json"))
        self.assertEqual(config.journal, DEFAULT_JOURNAL)
        self.assertIsNone(config.retention)
        self.assertEqual(config.cli.text, "tcp@127.0.0.1:4001")
        self.assertFalse([e for e in self.events if "unknown key" in e.get("log_format", "")])

    def test_ours(self):
        config = MetaWriterConfig.from_file(OURS)
        self.assertEqual(len(config.svr.stream_binds), 1)
        self.assertEqual(len(config.svr.datagram_binds), 1)
        self.assertTrue(os.path.exists(config.trust_file))

    def test_our_keys(self):
        config = MetaWriterConfig.from_file(self.write(self.base(
            journal="journal", retention_days=30, redis_retry_interval=0.5, redis_timeout=3, flush_delay=3,
            brother={"name": "brother", "addr": "tcp@127.0.0.1:3001", "max_pkg_size": 1048576},
        )))
        self.assertEqual(config.journal, os.path.join(os.path.abspath(self.dir), "journal"))
        self.assertEqual(config.retention, 30 * 86400)
        self.assertEqual((config.redis_retry_interval, config.redis_timeout), (0.5, 3.0))
        self.assertEqual((config.flush_delay, MetaWriterConfig.from_file(OURS).flush_delay), (3.0, 0.0))
        self.assertEqual(config.brother.addrs[0].port, 3001)

    def test_errors_name_the_key(self):
        for changes, key in (
            ({"trust_file": "missing.json"}, "trust_file"),
            ({"trust_file": None}, "trust_file"),
            ({"alert": None}, "alert"),
            ({"dup_timeout": 0}, "dup_timeout"),
            ({"retention_days": -1}, "retention_days"),
            ({"redis_retry_interval": 0}, "redis_retry_interval"),
            ({"flush_delay": 30}, "flush_delay"),
            ({"flush_delay": -1}, "flush_delay"),
            ({"svr": {"bind": "tcp@127.0.0.1:3000"}}, "svr.max_pkg_size"),
            ({"brother": {"name": "b", "addr": "tcp@127.0.0.1:0", "max_pkg_size": 1}}, "brother.addr"),
            ({"brother": {"name": "b", "addr": ["tcp@127.0.0.1:1", "udp@127.0.0.1:2"], "max_pkg_size": 1}},
             "brother.addr"),
        ):
            e = self.assertRaises(ConfigError, MetaWriterConfig.from_file, self.write(self.base(**changes)))
            self.assertEqual(e.key, key, changes)
