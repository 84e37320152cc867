"""``twistd viabtc-metarelay``: options and makeService."""

from twisted.trial import unittest

from tests.roles import RoleTapChecks
from viabtc.metarelay import tap
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.service import MetaRelayService


class TapTests(RoleTapChecks, unittest.TestCase):
    tap = tap
    config_class = MetaRelayConfig
    service_class = MetaRelayService
    role = "metarelay"
    good = {
        "svr": {"bind": ["tcp@127.0.0.1:3200", "udp@127.0.0.1:3200"], "max_pkg_size": 1048576},
        "writer": {"name": "writer", "addr": "tcp@127.0.0.1:3000", "max_pkg_size": 1048576},
        "queue": "queue",
        "trust": ["127.0.0.1"],
    }
    bad = {"svr": {"bind": "tcp@127.0.0.1:3200", "max_pkg_size": 1}, "queue": "q", "trust": []}
    bad_key = "writer"
