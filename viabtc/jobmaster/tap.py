# -*- test-case-name: tests.jobmaster.test_tap -*-
"""
``twistd -n viabtc-jobmaster --config etc/jobmaster.json``: the jobmaster's
command line and service, in the shape of Twisted's ``twisted/names/tap.py``.
"""

from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.metrics import CountingSubmitter, TimedNodes, jobmaster_metrics
from viabtc.jobmaster.reload import apply_config_bans, reload_jobmaster
from viabtc.jobmaster.service import JobmasterService
from viabtc.metrics import RoleMetrics
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.node.submit import BlockSubmitter
from viabtc.node.template import TemplateSource
from viabtc.tap import RoleOptions, make_role_service

ROLE = "jobmaster"


class Options(RoleOptions):
    """Options of ``twistd viabtc-jobmaster``."""

    config_class = JobmasterConfig
    longdesc = "Builds mining jobs from the node's templates and submits found blocks."


def build_service(config, reactor):
    """The ``JobmasterService`` for ``config``, its node clients included."""
    nodes = NodeGroup.from_configs(
        [NodeConfig.from_entry(entry) for entry in config.main_coin.nodes], reactor)
    timed = TimedNodes(nodes, reactor)
    templates = TemplateSource(timed, reactor)
    submitter = CountingSubmitter(BlockSubmitter(nodes))
    service = JobmasterService(config, reactor, timed, templates, submitter)
    service.metrics = RoleMetrics(ROLE)
    service.metrics.add(jobmaster_metrics(service, timed, submitter))
    apply_config_bans(service, config.bans)
    service.reload = lambda new: reload_jobmaster(service, new)
    return service


def makeService(options, reactor=None):
    """The jobmaster ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)


__all__ = ["Options", "makeService", "build_service"]
