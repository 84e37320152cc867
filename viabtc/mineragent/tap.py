# -*- test-case-name: tests.mineragent.test_tap -*-
"""
``twistd -n viabtc-mineragent --config etc/mineragent.json``: the
mineragent's command line and service, in the shape of Twisted's
``twisted/names/tap.py``.
"""

from viabtc.mineragent.config import MinerAgentConfig
from viabtc.mineragent.context import ROLE
from viabtc.mineragent.reload import reload_mineragent
from viabtc.mineragent.service import MinerAgentService
from viabtc.mineragent.workers import check_worker_addresses, parent_service
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the mineragent's JSON configuration (the seed's mineragent.json is accepted)."""

    config_class = MinerAgentConfig
    longdesc = "Serves a farm's miners over Stratum and carries them to a gateway over one agent connection."

    #: With ``worker_num`` above 1: the ``metrics`` addresses, served by the workers (port + index).
    worker_metrics_binds = ()

    def parse_metrics(self, path, config):
        binds = super().parse_metrics(path, config)
        if config.worker_num > 1:
            check_worker_addresses(config, binds)
            self.worker_metrics_binds = binds
            return ()
        return binds


def build_service(config, reactor):
    """The ``MinerAgentService`` for ``config``, reloading on SIGHUP."""
    service = MinerAgentService(config, reactor)
    service.reload = lambda new: reload_mineragent(service, new)
    return service


def makeService(options, reactor=None):
    """The mineragent ``MultiService`` for ``options.config`` (the parent of its workers when ``worker_num`` > 1)."""
    if options.config.worker_num > 1:
        return make_role_service(ROLE, options, parent_service(options), reactor)
    return make_role_service(ROLE, options, build_service, reactor)
