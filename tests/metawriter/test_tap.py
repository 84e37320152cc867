"""``twistd viabtc-metawriter``: options and makeService."""

import json
import os

from twisted.internet import reactor
from twisted.python import usage
from twisted.trial import unittest

from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.service import MetaWriterService
from viabtc.metawriter.tap import Options, makeService


class TapTests(unittest.TestCase):
    def write(self, data):
        directory = self.mktemp()
        os.makedirs(directory)
        with open(os.path.join(directory, "trust.json"), "w") as f:
            json.dump({"127.0.0.1": "local"}, f)
        path = os.path.join(directory, "config.json")
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_make_service(self):
        path = self.write({
            "svr": {"bind": ["tcp@127.0.0.1:3000", "udp@127.0.0.1:3000"], "max_pkg_size": 1048576},
            "redis": {"host": "127.0.0.1", "port": 6379},
            "alert": {"host": "mw-1"},
            "trust_file": "trust.json",
        })
        options = Options()
        options.parseOptions(["--config", path])
        self.assertIsInstance(options.config, MetaWriterConfig)
        service = makeService(options, reactor)
        self.addCleanup(service.role_logging.remove)
        self.assertIsInstance(service, MetaWriterService)
        self.assertEqual(service.role_logging.role, "metawriter")

    def test_bad_config_is_a_usage_error(self):
        path = self.write({"svr": {"bind": "tcp@127.0.0.1:3000", "max_pkg_size": 1}, "redis": {},
                           "alert": {"host": "h"}, "trust_file": "nope.json"})
        e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--config", path])
        self.assertIn("trust_file", str(e))
