"""The dashboard configuration: our sample, defaults, and errors naming the key."""

import json
import os

from twisted.trial import unittest

from viabtc.config import ConfigError
from viabtc.dashboard.config import DashboardConfig

OURS = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "dashboard.json")


class ConfigTests(unittest.TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_ours(self):
        config = DashboardConfig.from_file(OURS)
        self.assertEqual((config.coin, config.main_chain, config.redis.port), ("btc", "BTC", 6379))
        self.assertEqual([a.text for a in config.http_svr.server.binds], ["tcp@127.0.0.1:8090"])
        self.assertEqual(config.http_svr.keep_alive, 60.0)

    def test_redis_in_the_metawriters_form_and_defaults(self):
        config = DashboardConfig.from_file(self.write({
            "redis": {"host": "10.0.0.5", "port": 6380, "auth": "pw"},
            "coin": "bch",
            "http_svr": {"bind": "tcp@0.0.0.0:8090", "max_pkg_size": 10240},
        }))
        self.assertEqual((config.redis.host, config.redis.port, config.redis.password), ("10.0.0.5", 6380, "pw"))
        self.assertEqual((config.main_chain, config.refresh, config.history_minutes), ("BCH", 30.0, 360))
        self.assertIsNone(config.node)

    def test_node_in_the_coin_rpc_form(self):
        base = {"redis": {}, "coin": "btc", "http_svr": {"bind": "tcp@127.0.0.1:8090", "max_pkg_size": 10240}}
        config = DashboardConfig.from_file(self.write(dict(base, node={
            "host": "127.0.0.1", "port": 8332, "user": "u", "pass": "p"}, node_timeout=2)))
        self.assertEqual((config.node.name, config.node.nodes[0].port, config.node_timeout), ("BTC", 8332, 2.0))
        config = DashboardConfig.from_file(self.write(dict(base, node={
            "name": "BTC", "addr": [{"host": "10.0.0.1", "port": 8332, "user": "u", "pass": "p"},
                                    {"host": "10.0.0.2", "port": 8332, "cookie_file": "/x/.cookie"}]})))
        self.assertEqual([n.host for n in config.node.nodes], ["10.0.0.1", "10.0.0.2"])
        with self.assertRaises(ConfigError) as caught:
            DashboardConfig.from_file(self.write(dict(base, node={"host": "127.0.0.1", "port": 8332})))
        self.assertIn("node.user", str(caught.exception))

    def test_errors_name_the_key(self):
        base = {"redis": {}, "coin": "btc", "http_svr": {"bind": "tcp@127.0.0.1:8090", "max_pkg_size": 10240}}
        for change, key in (({"coin": 5}, "coin"), ({"refresh": 0}, "refresh"),
                            ({"http_svr": {"bind": "udp@127.0.0.1:8090", "max_pkg_size": 1}}, "http_svr.bind"),
                            ({"http_svr": {"bind": "tcp@127.0.0.1:8090"}}, "http_svr.max_pkg_size")):
            with self.assertRaises(ConfigError) as caught:
                DashboardConfig.from_file(self.write(dict(base, **change)))
            self.assertIn(key, str(caught.exception))
