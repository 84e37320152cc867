# -*- test-case-name: tests.metawriter.test_tap -*-
"""
``twistd -n viabtc-metawriter --config etc/metawriter.json``: options and
service construction for the metawriter role.
"""

from viabtc.log import install_role_logging
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.service import ROLE, MetaWriterService
from viabtc.tap import RoleOptions


class Options(RoleOptions):
    """``--config FILE``: the metawriter's JSON configuration."""

    config_class = MetaWriterConfig


def makeService(options, reactor=None):
    """The metawriter ``MultiService`` for ``options.config``."""
    if reactor is None:
        from twisted.internet import reactor
    config = options.config
    if config.process is not None:
        config.process.apply()
    service = MetaWriterService(config, reactor)
    service.role_logging = install_role_logging(ROLE, config, reactor)
    return service
