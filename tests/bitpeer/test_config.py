"""Bitpeer's configuration: the seed's sample as it is, ours, and errors naming the key."""

import json
import os

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.bitcoin.network import MAINNET, REGTEST
from viabtc.bitpeer.config import BitpeerConfig
from viabtc.config import ConfigError

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "bitpeer.json")
OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "bitpeer.json")


def local_config(**changes):
    data = {
        "svr": {"bind": "tcp@127.0.0.1:0", "max_pkg_size": 10485760},
        "coin": {"name": "BTC", "host": "127.0.0.1", "port": 18443, "user": "u", "pass": "p"},
        "peer_config_path": "peer.json",
        "start_string": "fabfb5da",
        "jobmaster": ["udp@127.0.0.1:6000"],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


class ConfigTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def load(self, **changes):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(local_config(**changes), f)
        return BitpeerConfig.from_file(path)

    def error(self, **changes):
        return str(self.assertRaises(ConfigError, self.load, **changes))

    def test_seed_sample(self):
        config = BitpeerConfig.from_file(SEED)
        self.assertEqual((config.start_string, config.network), (bytes.fromhex("f9beb4d9"), MAINNET))
        self.assertEqual((config.reconnect_timeout, config.broadcast_limit), (60.0, 20))
        self.assertEqual(config.peer_config_path, os.path.join(os.path.dirname(os.path.abspath(SEED)),
                                                               "peer.json"))
        self.assertEqual((config.jobmaster_url, config.request_auth, config.jobmaster_update_interval),
                         ("http://127.0.0.1:8081/jobmaster", "xxxxxxxxxxxxx", 30.0))
        self.assertEqual(config.svr.stream_binds[0].port, 5100)
        self.assertEqual(config.coin.nodes[0].port, 18332)
        self.assertFalse([e for e in self.events if "unknown key" in e.get("log_format", "")])

    def test_ours(self):
        config = BitpeerConfig.from_file(OURS)
        self.assertEqual(tuple(a.sockaddr for a in config.jobmasters), (("127.0.0.1", 6000),))

    def test_defaults_and_network_from_magic(self):
        config = self.load()
        self.assertEqual((config.network, config.reconnect_timeout, config.broadcast_limit),
                         (REGTEST, 60.0, 60))

    def test_errors_name_the_key(self):
        self.assertIn("start_string", self.error(start_string="f9beb4"))
        self.assertIn("start_string", self.error(start_string="01020304"))
        self.assertIn("start_string", self.error(network="mainnet"))
        self.assertIn("peer_config_path", self.error(peer_config_path=None))
        self.assertIn("jobmaster", self.error(jobmaster=None))
        self.assertIn("jobmaster[0]", self.error(jobmaster=["tcp@127.0.0.1:6000"]))
        self.assertIn("broadcast_limit", self.error(broadcast_limit=0))
        self.assertIn("svr.bind", self.error(svr={"bind": "udp@127.0.0.1:1", "max_pkg_size": 10}))
        self.assertIn("coin", self.error(coin=None))

    def test_unknown_magic_with_network_named(self):
        self.assertIn("not the magic", self.error(start_string="0b110907", network="regtest"))
