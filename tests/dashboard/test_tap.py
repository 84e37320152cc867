"""``twistd viabtc-dashboard``: options and makeService."""

from twisted.trial import unittest

from tests.roles import RoleTapChecks
from viabtc.dashboard import tap
from viabtc.dashboard.config import DashboardConfig
from viabtc.dashboard.service import DashboardService


class TapTests(RoleTapChecks, unittest.TestCase):
    tap = tap
    config_class = DashboardConfig
    service_class = DashboardService
    role = "dashboard"
    good = {
        "redis": {"host": "127.0.0.1", "port": 6379},
        "coin": "btc",
        "http_svr": {"bind": ["tcp@127.0.0.1:8090"], "max_pkg_size": 102400},
    }
    bad = {"redis": {}, "coin": "", "http_svr": {"bind": ["tcp@127.0.0.1:8090"], "max_pkg_size": 102400}}
    bad_key = "coin"
