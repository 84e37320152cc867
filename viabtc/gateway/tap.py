# -*- test-case-name: tests.gateway.test_tap -*-
"""
``twistd -n viabtc-gateway --config etc/gateway.json``: the gateway's
command line and service, in the shape of Twisted's ``twisted/names/tap.py``.
"""

from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.context import ROLE
from viabtc.gateway.service import GatewayService
from viabtc.log import install_role_logging
from viabtc.tap import RoleOptions


class Options(RoleOptions):
    """``--config FILE``: the gateway's JSON configuration (the seed's gateway.json is accepted)."""

    config_class = GatewayConfig
    longdesc = "Serves miners over Stratum, relays block candidates to the jobmaster, ships statistics."


def makeService(options, reactor=None):
    """The gateway ``MultiService`` for ``options.config``."""
    if reactor is None:
        from twisted.internet import reactor
    config = options.config
    if config.process is not None:
        config.process.apply()
    service = GatewayService(config, reactor)
    service.role_logging = install_role_logging(ROLE, config, reactor)
    return service
