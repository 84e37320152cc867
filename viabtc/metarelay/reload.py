# -*- test-case-name: tests.metarelay.test_reload -*-
"""
What a SIGHUP changes in a running metarelay (``viabtc.reload``): the
``trust`` list of its ``svr`` listeners, for new connections and datagrams.
Anything else that changed needs a restart.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes
from viabtc.rpc.protocol import TrustedHosts

RELOADABLE = frozenset({"trust"})


def _svr_listeners(service):
    """The factories and datagram protocols serving ``svr`` (they have a ``trust``)."""
    for child in service:
        target = getattr(child, "factory", None) or getattr(child, "protocol", None)
        if target is not None and hasattr(target, "trust"):
            yield target


def reload_metarelay(service, new):
    """Apply ``new`` (a ``MetaRelayConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    if "trust" in changed:
        trust = TrustedHosts(new.trust)
        for listener in _svr_listeners(service):
            listener.trust = trust
        service.config = attrs.evolve(old, trust=new.trust)
    return ReloadReport(changed, restart)
