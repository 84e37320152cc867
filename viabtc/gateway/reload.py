# -*- test-case-name: tests.gateway.test_reload -*-
"""
What a SIGHUP changes in a running gateway (``viabtc.reload``): the Stratum
settings and the abuse ``limits`` (``viabtc.stratum.reload``, shared with
the mineragent), for new sessions and for the connected ones.  Listen
addresses, links, ``worker_id``, ``coin`` and the rest need a restart and
are named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes
from viabtc.stratum.reload import STRATUM_RELOADABLE, apply_stratum

RELOADABLE = STRATUM_RELOADABLE


def reload_gateway(service, new):
    """Apply ``new`` (a ``GatewayConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    keep, more = apply_stratum(service.server, service.context, changed, old, new)
    service.config = attrs.evolve(old, **keep)
    return ReloadReport(tuple(keep), tuple(restart) + tuple(more))
