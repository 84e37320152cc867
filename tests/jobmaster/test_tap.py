"""Tests for viabtc.jobmaster.tap: the twistd command line."""

import json
import os

from twisted.internet import reactor
from twisted.python.usage import UsageError
from twisted.trial.unittest import TestCase

from viabtc.jobmaster.service import JobmasterService
from viabtc.jobmaster.tap import Options, build_service

from tests.jobmaster.test_config import local_config

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "etc",
                       "jobmaster.json")


class OptionsTests(TestCase):

    def write(self, config):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def test_good_config(self):
        options = Options()
        options.parseOptions(["--config", self.write(local_config())])
        self.assertEqual(options.config.network.name, "regtest")
        service = build_service(options.config, reactor)
        self.assertIsInstance(service, JobmasterService)
        self.assertFalse(service.running)

    def test_example_config_loads(self):
        options = Options()
        options.parseOptions(["--config", EXAMPLE])
        self.assertEqual(options.config.network.name, "regtest")

    def test_bad_config_is_one_line_naming_the_key(self):
        bad = local_config(coin_recipients=[{"address": "not-an-address", "percent": 0.5}])
        with self.assertRaises(UsageError) as e:
            Options().parseOptions(["--config", self.write(bad)])
        self.assertIn("coin_recipients[0].address", str(e.exception))
        self.assertNotIn("\n", str(e.exception))

    def test_missing_config(self):
        self.assertRaises(UsageError, Options().parseOptions, [])
