"""The alertcenter configuration: the seed's sample, ours, and errors naming the key."""

import json
import os
import socket

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.alertcenter.config import AlertCenterConfig, LimitBlock
from viabtc.config import ConfigError

SEED_SAMPLE = "/work/shared/seed/configs/alertcenter.json"
OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "alertcenter.json")


class ConfigTests(unittest.TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_seed_sample(self):
        """The seed's sample, with its Sentinel-style redis block, is accepted and spoken."""
        if not os.path.exists(SEED_SAMPLE):
            raise unittest.SkipTest("seed sample configs not present")
        EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        config = AlertCenterConfig.from_file(SEED_SAMPLE)
        self.assertEqual([a.text for a in config.svr.binds], ["tcp@0.0.0.0:10000", "udp@0.0.0.0:10000"])
        self.assertEqual(config.redis.master_name, "mymaster")
        self.assertEqual(config.redis.sentinels, (("127.0.0.1", 26381), ("127.0.0.1", 26382), ("127.0.0.1", 26383)))
        self.assertEqual(config.limit, LimitBlock())
        self.assertEqual(config.identity, socket.gethostname())

    def test_ours(self):
        config = AlertCenterConfig.from_file(OURS)
        self.assertEqual(config.limit, LimitBlock())
        self.assertEqual(config.svr.max_pkg_size, 10240)
        self.assertEqual(len(config.svr.stream_binds), 1)
        self.assertEqual(len(config.svr.datagram_binds), 1)

    def test_limits_and_identity(self):
        config = AlertCenterConfig.from_file(self.write({
            "svr": {"bind": "udp@127.0.0.1:10000", "max_pkg_size": 10240},
            "redis": {"host": "127.0.0.1", "port": 6380},
            "alert": {"host": "ac-1"},
            "limit": {"rate": 1, "burst": 3, "queue": 50},
        }))
        self.assertEqual(config.limit, LimitBlock(rate=1.0, burst=3, queue=50))
        self.assertEqual(config.identity, "ac-1")

    def test_errors_name_the_key(self):
        base = {"svr": {"bind": "udp@127.0.0.1:10000", "max_pkg_size": 10240}, "redis": {}}
        for change, key in (
            ({"limit": {"rate": 0}}, "limit.rate"),
            ({"limit": {"burst": 1.5}}, "limit.burst"),
            ({"svr": None}, "svr"),
            ({"redis": {"port": 70000}}, "redis.port"),
        ):
            data = dict(base, **change)
            if data["svr"] is None:
                del data["svr"]
            e = self.assertRaises(ConfigError, AlertCenterConfig.from_file, self.write(data))
            self.assertEqual(e.key, key)
