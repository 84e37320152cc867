# -*- test-case-name: tests.blockmaster.test_reload -*-
"""
What a SIGHUP changes in a running blockmaster (``viabtc.reload``): the
static ``blockmaster`` list (links to peers no longer listed close, new
ones connect; the HTTP list's addresses stay), the ``bitpeer`` links the
same way, and ``trust`` (for connections made from then on; open ones
stay).  Anything else that changed needs a restart and is named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes
from viabtc.rpc.protocol import TrustedHosts

RELOADABLE = frozenset({"blockmasters", "bitpeers", "trust"})


def reload_blockmaster(service, new):
    """Apply ``new`` (a ``BlockmasterConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    if "blockmasters" in changed:
        service.peer_list.set_static(new.blockmasters)
    if "bitpeers" in changed:
        service.set_bitpeers(new.bitpeers)
    if "trust" in changed:
        service.trusted = None if new.trust is None else TrustedHosts(new.trust)
    service.config = attrs.evolve(old, **{name: getattr(new, name) for name in changed})
    return ReloadReport(changed, restart)
