# -*- test-case-name: tests.metawriter.test_tap -*-
"""
``twistd -n viabtc-metawriter --config etc/metawriter.json``: options and
service construction for the metawriter role.
"""

from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.metrics import metawriter_metrics
from viabtc.metawriter.reload import reload_metawriter
from viabtc.metawriter.service import ROLE, MetaWriterService
from viabtc.metrics import RoleMetrics
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the metawriter's JSON configuration."""

    config_class = MetaWriterConfig


def build_service(config, reactor):
    """The ``MetaWriterService`` for ``config``, with its metrics."""
    service = MetaWriterService(config, reactor)
    service.metrics = RoleMetrics(ROLE)
    service.metrics.add(metawriter_metrics(service))
    service.reload = lambda new: reload_metawriter(service, new)
    return service


def makeService(options, reactor=None):
    """The metawriter ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)
