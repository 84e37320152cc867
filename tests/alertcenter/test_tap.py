"""``twistd viabtc-alertcenter``: options and makeService."""

from twisted.trial import unittest

from tests.roles import RoleTapChecks
from viabtc.alertcenter import tap
from viabtc.alertcenter.config import AlertCenterConfig
from viabtc.alertcenter.service import AlertCenterService


class TapTests(RoleTapChecks, unittest.TestCase):
    tap = tap
    config_class = AlertCenterConfig
    service_class = AlertCenterService
    role = "alertcenter"
    good = {
        "svr": {"bind": ["tcp@127.0.0.1:10000", "udp@127.0.0.1:10000"], "max_pkg_size": 10240},
        "redis": {"host": "127.0.0.1", "port": 6379},
    }
    bad = {"svr": {"bind": "tcp@127.0.0.1:10000"}, "redis": {}}
    bad_key = "svr.max_pkg_size"
