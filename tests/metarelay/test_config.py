"""The metarelay configuration: the seed's sample, ours, and errors naming the key."""

import json
import os

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.config import ConfigError
from viabtc.metarelay.config import MetaRelayConfig

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "metarelay.json")
OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "metarelay.json")


class ConfigTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def write(self, **changes):
        data = {
            "svr": {"bind": ["tcp@127.0.0.1:3200", "udp@127.0.0.1:3200"], "max_pkg_size": 1048576},
            "writer": {"name": "writer", "addr": "tcp@127.0.0.1:3000", "max_pkg_size": 1048576},
            "queue": "queue",
            "trust": ["127.0.0.1", "10.0.0.0/8"],
        }
        data.update(changes)
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_seed_sample(self):
        config = MetaRelayConfig.from_file(SEED)
        self.assertEqual([a.text for a in config.svr.binds], ["tcp@0.0.0.0:3200", "udp@0.0.0.0:3200"])
        self.assertEqual([a.text for a in config.writer.addrs], ["tcp@127.0.0.1:3000"])
        self.assertEqual(config.queue, "/var/log/pool/metarelay1.dat")
        self.assertEqual(config.trust, ("127.0.0.1", "192.168.1.1"))
        self.assertEqual(config.monitor.binds[0].port, 3300)
        self.assertFalse([e for e in self.events if "unknown key" in e.get("log_format", "")])

    def test_ours(self):
        config = MetaRelayConfig.from_file(OURS)
        self.assertEqual(config.trust, ("127.0.0.1",))

    def test_relative_queue_and_udp_writer(self):
        path = self.write(writer={"name": "w", "addr": "udp@127.0.0.1:3000", "max_pkg_size": 65536})
        config = MetaRelayConfig.from_file(path)
        self.assertEqual(config.queue, os.path.join(os.path.dirname(path), "queue"))
        self.assertTrue(config.writer.addrs[0].is_datagram)

    def test_errors_name_the_key(self):
        for changes, key in (
            ({"trust": ["gateway-1"]}, "trust[0]"),
            ({"trust": None}, "trust"),
            ({"queue": ""}, "queue"),
            ({"writer": {"name": "w", "addr": ["udp@127.0.0.1:1", "udp@127.0.0.1:2"], "max_pkg_size": 1}},
             "writer.addr"),
            ({"writer": None}, "writer"),
        ):
            e = self.assertRaises(ConfigError, MetaRelayConfig.from_file, self.write(**changes))
            self.assertEqual(e.key, key, changes)
