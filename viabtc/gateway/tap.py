# -*- test-case-name: tests.gateway.test_tap -*-
"""
``twistd -n viabtc-gateway --config etc/gateway.json``: the gateway's
command line and service, in the shape of Twisted's ``twisted/names/tap.py``.
"""

from functools import partial

from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.context import ROLE
from viabtc.gateway.reload import reload_gateway
from viabtc.gateway.service import GatewayService
from viabtc.gateway.workers import GatewayWorkers
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the gateway's JSON configuration (the seed's gateway.json is accepted)."""

    config_class = GatewayConfig
    longdesc = "Serves miners over Stratum, relays block candidates to the jobmaster, ships statistics."


def build_service(config, reactor):
    """The ``GatewayService`` for ``config``, reloading on SIGHUP."""
    service = GatewayService(config, reactor)
    service.reload = lambda new: reload_gateway(service, new)
    return service


def makeService(options, reactor=None):
    """The gateway ``MultiService`` for ``options.config`` (the parent of its workers when ``worker_num`` > 1)."""
    if options.config.worker_num > 1:
        return make_role_service(ROLE, options, partial(GatewayWorkers, config_path=options["config"]), reactor)
    return make_role_service(ROLE, options, build_service, reactor)
