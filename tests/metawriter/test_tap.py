"""``twistd viabtc-metawriter``: options and makeService."""

import os

from twisted.trial import unittest

from tests.roles import RoleTapChecks, write_json
from viabtc.metawriter import tap
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.service import MetaWriterService


class TapTests(RoleTapChecks, unittest.TestCase):
    tap = tap
    config_class = MetaWriterConfig
    service_class = MetaWriterService
    role = "metawriter"
    good = {
        "svr": {"bind": ["tcp@127.0.0.1:3000", "udp@127.0.0.1:3000"], "max_pkg_size": 1048576},
        "redis": {"host": "127.0.0.1", "port": 6379},
        "alert": {"host": "mw-1"},
        "trust_file": "trust.json",
    }
    bad = {"svr": {"bind": "tcp@127.0.0.1:3000", "max_pkg_size": 1}, "redis": {},
           "alert": {"host": "h"}, "trust_file": "nope.json"}
    bad_key = "trust_file"

    def config_path(self, data):
        """The config in a directory of its own, beside the trust file it names."""
        directory = self.mktemp()
        os.makedirs(directory)
        write_json(os.path.join(directory, "trust.json"), {"127.0.0.1": "local"})
        return write_json(os.path.join(directory, "config.json"), data)
