"""``twistd viabtc-gateway``: options and makeService."""

import json
import os

from twisted.internet import reactor
from twisted.python import usage
from twisted.trial.unittest import TestCase

from viabtc.devnet import project_root
from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.service import GatewayService
from viabtc.gateway.tap import Options, makeService
from viabtc.service import StartupError


class TapTests(TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def example(self):
        with open(os.path.join(project_root(), "etc", "gateway.json")) as f:
            data = json.load(f)
        data["queue"] = os.path.abspath(self.mktemp())
        data.pop("log")
        data.pop("alert")
        return data

    def test_make_service(self):
        options = Options()
        options.parseOptions(["--config", self.write(self.example())])
        self.assertIsInstance(options.config, GatewayConfig)
        service = makeService(options, reactor)
        self.addCleanup(service.role_logging.remove)
        self.assertIsInstance(service, GatewayService)
        self.assertEqual(service.role_logging.role, "gateway")

    def test_bad_config_is_one_line_naming_the_key(self):
        data = self.example()
        data["worker_id"] = "one hundred"
        e = self.assertRaises(StartupError, Options().parseOptions, ["--config", self.write(data)])
        self.assertTrue(str(e).startswith("config error: worker_id: "), str(e))

    def test_missing_config_option_is_a_usage_error(self):
        self.assertRaises(usage.UsageError, Options().parseOptions, [])
