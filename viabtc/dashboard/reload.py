# -*- test-case-name: tests.dashboard.test_reload -*-
"""
What a SIGHUP changes in a running dashboard (``viabtc.reload``): how often
Redis is read (``refresh``, also the pages' own refresh), how much is read
(``history_minutes``, ``worker_minutes``, ``max_workers``, ``max_blocks``),
``main_chain``, and the optional height lookups (``node``,
``node_timeout``); all from the next read on.  Redis, ``coin``, the
listeners and the rest need a restart and are named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes

READER_FIELDS = ("history_minutes", "worker_minutes", "max_workers", "max_blocks", "main_chain")
RELOADABLE = frozenset({"refresh", "node", "node_timeout", *READER_FIELDS})


def reload_dashboard(service, new):
    """Apply ``new`` (a ``DashboardConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    if service.running:
        for name in READER_FIELDS:
            setattr(service.reader, name, getattr(new, name))
        if "refresh" in changed:
            service.set_refresh(new.refresh)
        if {"node", "node_timeout"} & set(changed):
            service.set_node(new.node, new.node_timeout, new.max_blocks)
    service.config = attrs.evolve(old, **{name: getattr(new, name) for name in changed})
    return ReloadReport(changed, restart)
