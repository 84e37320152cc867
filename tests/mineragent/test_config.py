"""Tests for viabtc.mineragent.config: the seed's mineragent.json as it is, and our keys."""

import os

from twisted.trial.unittest import TestCase

from viabtc.config import ConfigError, ConfigReader
from viabtc.devnet import project_root
from viabtc.mineragent.config import MinerAgentConfig

from tests import support


def seed_sample():
    """The seed's mineragent.json (``tests.integration.test_mineragent`` takes it from here)."""
    return support.seed_sample("mineragent")


def load(data):
    return MinerAgentConfig.from_reader(ConfigReader(data))


class SeedSampleTests(TestCase):
    def test_seed_sample_loads(self):
        config = load(seed_sample())
        self.assertEqual([a.text for a in config.upstreams], ["tcp:host=127.0.0.1:port=3222"])
        self.assertEqual([a.port for a in config.svr.binds], [6666])
        self.assertEqual(config.stratum.vardiff.diff_default, 1024)
        self.assertEqual((config.connect_timeout, config.broadcast_timeout), (600, 55))
        self.assertEqual(config.stratum.client_max_idle_time, 86400)
        self.assertTrue(config.agent_v2)
        self.assertEqual(config.cli.port, 9001)
        # A farm's miners may all come from one address.
        self.assertEqual(config.limits.max_connections_per_ip, config.limits.max_connections)
        self.assertTrue(0 <= config.agent_id < 2**32)

    def test_the_example_in_etc_loads(self):
        MinerAgentConfig.from_file(os.path.join(project_root(), "etc", "mineragent.json"))

    def test_defaults_of_the_seed(self):
        data = seed_sample()
        for key in ("connect_timeout", "broadcast_timeout", "client_max_idle_time", "worker_num"):
            del data[key]
        config = load(data)
        self.assertEqual((config.connect_timeout, config.broadcast_timeout), (300, 55))
        self.assertEqual(config.stratum.client_max_idle_time, 300)


class OurKeysTests(TestCase):
    def test_failover_upstreams(self):
        data = seed_sample()
        data["upstream"] = ["tcp@10.0.0.2:3333", "tcp:host=gw3.example:port=3333"]
        config = load(data)
        self.assertEqual([a.text for a in config.upstreams][1:], data["upstream"])

    def test_tls_upstream_must_verify(self):
        data = seed_sample()
        data["upstream"] = ["ssl:host=gw.example:port=3334"]
        e = self.assertRaises(ConfigError, load, data)
        self.assertIn("upstream", str(e))

    def test_upstream_alone(self):
        data = seed_sample()
        del data["stratum_host"], data["stratum_port"]
        data["upstream"] = ["tcp@127.0.0.1:3333"]
        self.assertEqual([a.port for a in load(data).upstreams], [3333])

    def test_agent_keys(self):
        data = seed_sample()
        data.update(agent_id=7, agent_v2=False, max_queued_shares=10, limits={"max_connections_per_ip": 5})
        config = load(data)
        self.assertEqual((config.agent_id, config.agent_v2, config.max_queued_shares), (7, False, 10))
        self.assertEqual(config.limits.max_connections_per_ip, 5)

    def test_errors_name_the_key(self):
        for key, value in [("stratum_port", 0), ("stratum_host", ""), ("diff_min", "x"), ("agent_id", 2**32),
                           ("broadcast_timeout", -1)]:
            data = seed_sample()
            data[key] = value
            e = self.assertRaises(ConfigError, load, data)
            self.assertIn(key, str(e))
        data = seed_sample()
        del data["stratum_host"], data["stratum_port"]
        self.assertIn("stratum_host", str(self.assertRaises(ConfigError, load, data)))
