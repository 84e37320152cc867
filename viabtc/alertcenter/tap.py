# -*- test-case-name: tests.alertcenter.test_tap -*-
"""
``twistd -n viabtc-alertcenter --config etc/alertcenter.json``: options and
service construction for the alertcenter role.
"""

from viabtc.alertcenter.config import AlertCenterConfig
from viabtc.alertcenter.service import ROLE, AlertCenterService
from viabtc.log import install_role_logging
from viabtc.tap import RoleOptions


class Options(RoleOptions):
    """``--config FILE``: the alertcenter's JSON configuration."""

    config_class = AlertCenterConfig


def makeService(options, reactor=None):
    """The alertcenter ``MultiService`` for ``options.config``."""
    if reactor is None:
        from twisted.internet import reactor
    config = options.config
    if config.process is not None:
        config.process.apply()
    service = AlertCenterService(config, reactor)
    service.role_logging = install_role_logging(ROLE, config, reactor)
    return service
