# -*- test-case-name: tests.dashboard.test_tap -*-
"""
``twistd -n viabtc-dashboard --config etc/dashboard.json``: options and
service construction for the dashboard role.
"""

from viabtc.dashboard.config import DashboardConfig
from viabtc.dashboard.service import ROLE, DashboardService
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the dashboard's JSON configuration."""

    config_class = DashboardConfig


def makeService(options, reactor=None):
    """The dashboard ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, DashboardService, reactor)
