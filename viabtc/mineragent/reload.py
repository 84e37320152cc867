# -*- test-case-name: tests.mineragent.test_reload -*-
"""
What a SIGHUP changes in a running mineragent (``viabtc.reload``): as in
the gateway (``viabtc.stratum.reload``), the vardiff keys (``diff_min``,
``diff_max``, ``diff_default``, ``target_time``, ``retarget_time``),
``client_max_idle_time`` and the miners' port ``limits``, for new miners
and the connected ones.  Without an ``agent_id`` key the running agent keeps
the id it drew at start.  The gateways, ports, protocol and queue need a
restart and are named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes
from viabtc.stratum.reload import STRATUM_RELOADABLE, apply_stratum

RELOADABLE = STRATUM_RELOADABLE


def keep_drawn_agent_id(old, new):
    """``new`` (a reloaded ``MinerAgentConfig``) with ``old``'s agent id when ``new`` names none."""
    if new.agent_id_chosen:
        return new
    return attrs.evolve(new, agent_id=old.agent_id, agent_id_chosen=old.agent_id_chosen)


def reload_mineragent(service, new):
    """Apply ``new`` (a ``MinerAgentConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    new = keep_drawn_agent_id(old, new)
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    keep, more = apply_stratum(service.server, service.context, changed, old, new)
    service.config = attrs.evolve(old, **keep)
    return ReloadReport(tuple(keep), tuple(restart) + tuple(more))
