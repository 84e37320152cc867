# -*- test-case-name: tests.bitpeer.test_tap -*-
"""
``twistd -n viabtc-bitpeer --config etc/bitpeer.json``: options and service
construction for the bitpeer role.
"""

from viabtc.bitpeer.config import BitpeerConfig
from viabtc.bitpeer.reload import reload_bitpeer
from viabtc.bitpeer.service import ROLE, BitpeerService
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: bitpeer's JSON configuration."""

    config_class = BitpeerConfig
    longdesc = "Relays blocks over Bitcoin P2P and hints new blocks to the jobmasters."


def build_service(config, reactor):
    """The ``BitpeerService`` for ``config``, its node client included, reloading on SIGHUP."""
    nodes = NodeGroup.from_configs([NodeConfig.from_entry(entry) for entry in config.coin.nodes],
                                   reactor)
    service = BitpeerService(config, reactor, nodes, install_signals=True)
    service.reload = lambda new: reload_bitpeer(service, new)
    return service


def makeService(options, reactor=None):
    """The bitpeer ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)


__all__ = ["Options", "makeService", "build_service"]
