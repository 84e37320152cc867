# -*- test-case-name: tests.blockmaster.test_tap -*-
"""
``twistd -n viabtc-blockmaster --config etc/blockmaster.json``: options and
service construction for the blockmaster role.
"""

from viabtc.blockmaster.config import BlockmasterConfig
from viabtc.blockmaster.reload import reload_blockmaster
from viabtc.blockmaster.service import ROLE, BlockmasterService
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: blockmaster's JSON configuration."""

    config_class = BlockmasterConfig
    longdesc = "Relays the pool's and foreign blocks between regions as thin blocks."


def build_service(config, reactor):
    """The ``BlockmasterService`` for ``config``, reloading on SIGHUP."""
    service = BlockmasterService(config, reactor)
    service.reload = lambda new: reload_blockmaster(service, new)
    return service


def makeService(options, reactor=None):
    """The blockmaster ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)
