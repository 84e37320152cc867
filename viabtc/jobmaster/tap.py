# -*- test-case-name: tests.jobmaster.test_tap -*-
"""
``twistd -n viabtc-jobmaster --config etc/jobmaster.json``: the jobmaster's
command line and service, in the shape of Twisted's ``twisted/names/tap.py``.
"""

from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.service import JobmasterService
from viabtc.log import install_role_logging
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.node.submit import BlockSubmitter
from viabtc.node.template import TemplateSource
from viabtc.tap import RoleOptions


class Options(RoleOptions):
    """Options of ``twistd viabtc-jobmaster``."""

    config_class = JobmasterConfig
    longdesc = "Builds mining jobs from the node's templates and submits found blocks."


def build_service(config, reactor):
    """The ``JobmasterService`` for ``config``, its node clients included."""
    nodes = NodeGroup.from_configs(
        [NodeConfig.from_entry(entry) for entry in config.main_coin.nodes], reactor)
    templates = TemplateSource(nodes, reactor)
    return JobmasterService(config, reactor, nodes, templates, BlockSubmitter(nodes))


def makeService(options, reactor=None):
    if reactor is None:
        from twisted.internet import reactor
    config = options.config
    if config.process is not None:
        config.process.apply()
    install_role_logging("jobmaster", config, reactor)
    return build_service(config, reactor)


__all__ = ["Options", "makeService", "build_service"]
