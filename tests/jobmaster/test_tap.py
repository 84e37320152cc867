"""Tests for viabtc.jobmaster.tap: the twistd command line."""

import os

from twisted.internet import reactor
from twisted.python.usage import UsageError
from twisted.trial.unittest import TestCase

from tests.jobmaster.test_config import local_config
from tests.roles import RoleTapChecks
from viabtc.jobmaster import tap
from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.service import JobmasterService
from viabtc.jobmaster.tap import Options, build_service

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "etc",
                       "jobmaster.json")


class OptionsTests(RoleTapChecks, TestCase):
    tap = tap
    config_class = JobmasterConfig
    service_class = JobmasterService
    role = "jobmaster"
    good = local_config()
    bad = local_config(coin_recipients=[{"address": "not-an-address", "percent": 0.5}])
    bad_key = "coin_recipients[0].address"

    def test_good_config(self):
        options = Options()
        options.parseOptions(["--config", self.config_path(self.good)])
        self.assertEqual(options.config.network.name, "regtest")
        service = build_service(options.config, reactor)
        self.assertIsInstance(service, JobmasterService)
        self.assertFalse(service.running)

    def test_example_config_loads(self):
        options = Options()
        options.parseOptions(["--config", EXAMPLE])
        self.assertEqual(options.config.network.name, "regtest")

    def test_missing_config(self):
        self.assertRaises(UsageError, Options().parseOptions, [])
