# -*- test-case-name: tests.poolbench.test_tap -*-
"""
``twistd -n viabtc-poolbench --config etc/poolbench.json``: options and
service construction for the poolbench role.
"""

from viabtc.poolbench.config import PoolbenchConfig
from viabtc.poolbench.reload import reload_poolbench
from viabtc.poolbench.service import ROLE, PoolbenchService
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: poolbench's JSON configuration."""

    config_class = PoolbenchConfig
    longdesc = "Watches other pools' Stratum jobs and hints new heights to the jobmaster."


def build_service(config, reactor):
    """The ``PoolbenchService`` for ``config`` (with its metrics), reloading on SIGHUP."""
    service = PoolbenchService(config, reactor)
    service.reload = lambda new: reload_poolbench(service, new)
    return service


def makeService(options, reactor=None):
    """The poolbench ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)
