"""The gateway's configuration: the seed's sample, our example, and bad keys named."""

import json
import os

from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigError, ConfigReader
from viabtc.devnet import project_root
from viabtc.gateway.config import GatewayConfig

SEED = os.path.join(project_root(), "tests", "data", "seed-configs", "gateway.json")
EXAMPLE = os.path.join(project_root(), "etc", "gateway.json")


def seed_data():
    with open(SEED) as f:
        return json.load(f)


class GatewayConfigTests(TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_seed_sample_loads(self):
        config = GatewayConfig.from_file(SEED)
        self.assertEqual((config.worker_id, config.coin, config.host), (100, "btc", "192.168.1.1"))
        self.assertEqual(config.svr.binds[0].port, 3333)
        self.assertTrue(config.writer.addrs[0].is_datagram)
        self.assertEqual(config.stratum.vardiff.diff_default, 1024)
        self.assertEqual(config.stratum.client_max_idle_time, 86400)
        self.assertEqual(config.stratum.max_pkg_size, 10240)
        self.assertEqual(config.http_svr.server.binds[0].port, 8080)
        self.assertEqual(config.worker_num, 2)

    def test_example_is_local_and_loads(self):
        config = GatewayConfig.from_file(EXAMPLE)
        self.assertEqual(config.job.addrs[0].text, "tcp@127.0.0.1:6000")
        self.assertEqual(config.writer.addrs[0].text, "udp@127.0.0.1:3000")
        self.assertEqual(config.stratum.vardiff.diff_default, 0.001)
        self.assertEqual(config.worker_num, 1)

    def test_queue_is_relative_to_the_config_file(self):
        data = seed_data()
        data["queue"] = "gw-queue"
        path = self.write(data)
        config = GatewayConfig.from_file(path)
        self.assertEqual(config.queue, os.path.join(os.path.dirname(os.path.abspath(path)), "gw-queue"))

    def test_limits_section(self):
        data = seed_data()
        data["limits"] = {"max_connections_per_ip": 5}
        config = GatewayConfig.from_reader(ConfigReader(data))
        self.assertEqual(config.limits.max_connections_per_ip, 5)

    def assertBadKey(self, key, change):
        data = seed_data()
        change(data)
        e = self.assertRaises(ConfigError, GatewayConfig.from_reader, ConfigReader(data))
        self.assertEqual(e.key, key, str(e))

    def test_bad_keys_are_named(self):
        self.assertBadKey("worker_id", lambda d: d.update(worker_id=70000))
        self.assertBadKey("worker_id", lambda d: d.pop("worker_id"))
        self.assertBadKey("diff_default", lambda d: d.update(diff_default=1 << 20))
        self.assertBadKey("diff_max", lambda d: d.update(diff_max=1))
        self.assertBadKey("diff_min", lambda d: d.update(diff_min=0))
        self.assertBadKey("coin", lambda d: d.update(coin=""))
        self.assertBadKey("svr.bind", lambda d: d["svr"].update(bind="udp@0.0.0.0:3333"))
        self.assertBadKey("job.addr[0]", lambda d: d["job"].update(addr=["udp@127.0.0.1:6000"]))
        self.assertBadKey("writer.addr", lambda d: d["writer"].update(addr=["udp@127.0.0.1:1", "udp@127.0.0.1:2"]))
        self.assertBadKey("svr.max_pkg_size", lambda d: d["svr"].pop("max_pkg_size"))
        self.assertBadKey("limits.request_rate", lambda d: d.update(limits={"request_rate": -1}))

    def test_unknown_key_is_warned_by_name(self):
        data = seed_data()
        data["diff_mni"] = 3
        with capturedLogs() as events:
            GatewayConfig.from_file(self.write(data))
        self.assertIn("diff_mni", [e.get("key") for e in events])
