# -*- test-case-name: tests.poolbench.test_reload -*-
"""
What a SIGHUP changes in a running poolbench (``viabtc.reload``): the
watched pools (``pool_list``: new ones are watched, dropped ones let go,
a pool whose host, port, user or password changed reconnects, the others
keep their connection and what was seen of them), ``is_notify``,
``max_delay`` and the static ``jobmaster`` hint addresses.  The HTTP
jobmaster list, ``secret`` and the rest need a restart and are named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes

RELOADABLE = frozenset({"pools", "notify", "max_delay", "jobmasters"})


def reload_poolbench(service, new):
    """Apply ``new`` (a ``PoolbenchConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    if "pools" in changed:
        service.set_pools(new.pools)
    if "notify" in changed:
        service.bench.notify = new.notify
    if "max_delay" in changed:
        service.bench.max_delay = new.max_delay
    if "jobmasters" in changed:
        service.jobmasters.set_static(new.jobmasters)
    service.config = attrs.evolve(old, **{name: getattr(new, name) for name in changed})
    return ReloadReport(changed, restart)
