"""``twistd viabtc-alertcenter``: options and makeService."""

import json

from twisted.internet import reactor
from twisted.python import usage
from twisted.trial import unittest

from viabtc.alertcenter.config import AlertCenterConfig
from viabtc.alertcenter.service import AlertCenterService
from viabtc.alertcenter.tap import Options, makeService


class TapTests(unittest.TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_make_service(self):
        path = self.write({
            "svr": {"bind": ["tcp@127.0.0.1:10000", "udp@127.0.0.1:10000"], "max_pkg_size": 10240},
            "redis": {"host": "127.0.0.1", "port": 6379},
        })
        options = Options()
        options.parseOptions(["--config", path])
        self.assertIsInstance(options.config, AlertCenterConfig)
        service = makeService(options, reactor)
        self.addCleanup(service.role_logging.remove)
        self.assertIsInstance(service, AlertCenterService)
        self.assertEqual(service.role_logging.role, "alertcenter")

    def test_bad_config_is_a_usage_error(self):
        path = self.write({"svr": {"bind": "tcp@127.0.0.1:10000"}, "redis": {}})
        e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--config", path])
        self.assertIn("svr.max_pkg_size", str(e))
