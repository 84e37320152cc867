# -*- test-case-name: tests.metarelay.test_tap -*-
"""
``twistd -n viabtc-metarelay --config etc/metarelay.json``: options and
service construction for the metarelay role.
"""

from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.metrics import metarelay_metrics
from viabtc.metarelay.reload import reload_metarelay
from viabtc.metarelay.service import ROLE, MetaRelayService
from viabtc.metrics import RoleMetrics
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the metarelay's JSON configuration."""

    config_class = MetaRelayConfig


def build_service(config, reactor):
    """The ``MetaRelayService`` for ``config``, with its metrics."""
    service = MetaRelayService(config, reactor)
    service.metrics = RoleMetrics(ROLE)
    service.metrics.add(metarelay_metrics(service))
    service.reload = lambda new: reload_metarelay(service, new)
    return service


def makeService(options, reactor=None):
    """The metarelay ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)
