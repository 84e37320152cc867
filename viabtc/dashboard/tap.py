# -*- test-case-name: tests.dashboard.test_tap -*-
"""
``twistd -n viabtc-dashboard --config etc/dashboard.json``: options and
service construction for the dashboard role.
"""

from viabtc.dashboard.config import DashboardConfig
from viabtc.dashboard.reload import reload_dashboard
from viabtc.dashboard.service import ROLE, DashboardService
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the dashboard's JSON configuration."""

    config_class = DashboardConfig


def build_service(config, reactor):
    """The ``DashboardService`` for ``config``, reloading on SIGHUP."""
    service = DashboardService(config, reactor)
    service.reload = lambda new: reload_dashboard(service, new)
    return service


def makeService(options, reactor=None):
    """The dashboard ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)
