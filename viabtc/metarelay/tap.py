# -*- test-case-name: tests.metarelay.test_tap -*-
"""
``twistd -n viabtc-metarelay --config etc/metarelay.json``: options and
service construction for the metarelay role.
"""

from viabtc.log import install_role_logging
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.service import ROLE, MetaRelayService
from viabtc.tap import RoleOptions


class Options(RoleOptions):
    """``--config FILE``: the metarelay's JSON configuration."""

    config_class = MetaRelayConfig


def makeService(options, reactor=None):
    """The metarelay ``MultiService`` for ``options.config``."""
    if reactor is None:
        from twisted.internet import reactor
    config = options.config
    if config.process is not None:
        config.process.apply()
    service = MetaRelayService(config, reactor)
    service.role_logging = install_role_logging(ROLE, config, reactor)
    return service
