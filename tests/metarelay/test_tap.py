"""``twistd viabtc-metarelay``: options and makeService."""

import json

from twisted.internet import reactor
from twisted.python import usage
from twisted.trial import unittest

from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.service import MetaRelayService
from viabtc.metarelay.tap import Options, makeService


class TapTests(unittest.TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_make_service(self):
        path = self.write({
            "svr": {"bind": ["tcp@127.0.0.1:3200", "udp@127.0.0.1:3200"], "max_pkg_size": 1048576},
            "writer": {"name": "writer", "addr": "tcp@127.0.0.1:3000", "max_pkg_size": 1048576},
            "queue": "queue",
            "trust": ["127.0.0.1"],
        })
        options = Options()
        options.parseOptions(["--config", path])
        self.assertIsInstance(options.config, MetaRelayConfig)
        service = makeService(options, reactor)
        self.addCleanup(service.role_logging.remove)
        self.assertIsInstance(service, MetaRelayService)
        self.assertEqual(service.role_logging.role, "metarelay")

    def test_bad_config_is_a_usage_error(self):
        path = self.write({"svr": {"bind": "tcp@127.0.0.1:3200", "max_pkg_size": 1}, "queue": "q", "trust": []})
        e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--config", path])
        self.assertIn("writer", str(e))
