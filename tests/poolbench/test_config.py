"""Poolbench's configuration: the seed's sample, ours, and errors naming the key."""

import json
import os

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.config import ConfigError
from viabtc.poolbench.config import PoolbenchConfig, PoolEntry

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "poolbench.json")
OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "poolbench.json")


def local_config(**changes):
    data = {
        "pool_list": [{"name": "rival", "host": "127.0.0.1", "port": 3333, "user": "w"}],
        "is_notify": True,
        "max_delay": 0.5,
        "jobmaster": ["udp@127.0.0.1:6000"],
    }
    data.update(changes)
    return data


class ConfigTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def load(self, **changes):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(local_config(**changes), f)
        return PoolbenchConfig.from_file(path)

    def error(self, **changes):
        return str(self.assertRaises(ConfigError, self.load, **changes))

    def test_seed_sample(self):
        config = PoolbenchConfig.from_file(SEED)
        self.assertEqual(config.pools, (PoolEntry("viabtc", "127.0.0.1", 443, "haiyang.abc", "",
                                                  True, True),))
        self.assertEqual((config.notify, config.max_delay), (True, 0.1))
        self.assertEqual((config.jobmaster_url, config.request_auth, config.jobmaster_update_interval),
                         ("http://127.0.0.1:8081/jobmaster", "xxxxxxxx", 30.0))
        self.assertEqual(config.jobmasters, ())
        self.assertEqual(config.cli.port, 4001)
        self.assertFalse([e for e in self.events if "unknown key" in e.get("log_format", "")])

    def test_ours(self):
        config = PoolbenchConfig.from_file(OURS)
        self.assertEqual(tuple(a.sockaddr for a in config.jobmasters), (("127.0.0.1", 6000),))
        self.assertEqual([(p.name, p.is_notify, p.is_self) for p in config.pools],
                         [("ours", False, True), ("rival", True, False)])

    def test_defaults(self):
        config = self.load()
        [pool] = config.pools
        self.assertEqual((pool.password, pool.is_notify, pool.is_self), ("", True, False))
        self.assertIsNone(config.secret)
        self.assertIsNone(config.jobmaster_url)

    def test_static_jobmasters_and_secret(self):
        config = self.load(jobmaster=["udp@10.0.0.1:6000", "10.0.0.2:6001"], secret="s" * 16)
        self.assertEqual(tuple(a.sockaddr for a in config.jobmasters),
                         (("10.0.0.1", 6000), ("10.0.0.2", 6001)))
        self.assertEqual(config.secret.value, b"s" * 16)

    def test_errors_name_the_key(self):
        self.assertIn("jobmaster[0]", self.error(jobmaster=["tcp@10.0.0.1:6000"]))
        self.assertIn("jobmaster[0]", self.error(jobmaster=["udp:host=jm.example:port=6000"]))
        self.assertIn("jobmaster:", self.error(jobmaster=None))
        self.assertIn("jobmaster_url", self.error(jobmaster_url="ftp://x"))
        self.assertIn("pool_list:", self.error(pool_list=[]))
        self.assertIn("pool_list[1].name", self.error(pool_list=[
            {"name": "a", "host": "h", "port": 1, "user": "u"},
            {"name": "a", "host": "h", "port": 2, "user": "u"}]))
        self.assertIn("pool_list[0].port", self.error(pool_list=[
            {"name": "a", "host": "h", "port": 70000, "user": "u"}]))
        self.assertIn("pool_list[0].is_self", self.error(pool_list=[
            {"name": "a", "host": "h", "port": 1, "user": "u", "is_self": 1}]))
        self.assertIn("max_delay", self.error(max_delay=-1))
        self.assertIn("is_notify", self.error(is_notify=None))
        self.assertIn("secret", self.error(secret="short"))

    def test_url_alone_is_enough(self):
        config = self.load(jobmaster=None, jobmaster_url="http://127.0.0.1:8081/jm")
        self.assertEqual(config.jobmaster_url, "http://127.0.0.1:8081/jm")
