# -*- test-case-name: tests.alertcenter.test_tap -*-
"""
``twistd -n viabtc-alertcenter --config etc/alertcenter.json``: options and
service construction for the alertcenter role.
"""

from viabtc.alertcenter.config import AlertCenterConfig
from viabtc.alertcenter.metrics import alertcenter_metrics
from viabtc.alertcenter.reload import reload_alertcenter
from viabtc.alertcenter.service import ROLE, AlertCenterService
from viabtc.metrics import RoleMetrics
from viabtc.tap import RoleOptions, make_role_service


class Options(RoleOptions):
    """``--config FILE``: the alertcenter's JSON configuration."""

    config_class = AlertCenterConfig


def build_service(config, reactor):
    """The ``AlertCenterService`` for ``config``, with its metrics."""
    service = AlertCenterService(config, reactor)
    service.metrics = RoleMetrics(ROLE)
    service.metrics.add(alertcenter_metrics(service))
    service.reload = lambda new: reload_alertcenter(service, new)
    return service


def makeService(options, reactor=None):
    """The alertcenter ``MultiService`` for ``options.config``."""
    return make_role_service(ROLE, options, build_service, reactor)
