"""``twistd viabtc-bitpeer``: options, the service, and the one-line config error."""

import json
import os

from twisted.trial.unittest import TestCase

from tests.bitpeer.test_config import local_config
from tests.roles import RoleTapChecks, write_json
from viabtc.bitpeer import tap
from viabtc.bitpeer.config import BitpeerConfig
from viabtc.bitpeer.service import BitpeerService
from viabtc.service import StartupError


class OptionsTests(RoleTapChecks, TestCase):
    tap = tap
    config_class = BitpeerConfig
    service_class = BitpeerService
    role = "bitpeer"
    good = local_config()
    bad = local_config(start_string="xyz")
    bad_key = "start_string"

    def config_path(self, data):
        directory = self.mktemp()
        os.makedirs(directory)
        write_json(os.path.join(directory, "peer.json"), {"peers": ["127.0.0.1:18444"]})
        return write_json(os.path.join(directory, "bitpeer.json"), data)

    def test_bad_peers_file_is_one_line(self):
        path = self.config_path(self.good)
        with open(os.path.join(os.path.dirname(path), "peer.json"), "w") as f:
            json.dump({"peers": ["nowhere"]}, f)
        options = tap.Options()
        options.parseOptions(["--config", path])
        from twisted.internet import reactor
        e = self.assertRaises(StartupError, tap.build_service, options.config, reactor)
        self.assertIn("peer_config_path", str(e))
        self.assertNotIn("\n", str(e))
