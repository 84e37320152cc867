# -*- test-case-name: tests.bitpeer.test_reload -*-
"""
What a SIGHUP changes in a running bitpeer (``viabtc.reload``): the peers
file is read again, as SIGUSR1 and the CLI's ``reload`` do (also when only
its content changed; a ``peer_config_path`` naming another file is read
instead), and the static ``jobmaster`` hint addresses are replaced.  A peers
file that does not read keeps the peers as they are (and the path as it
was).  Anything else that changed needs a restart and is named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes

RELOADABLE = frozenset({"peer_config_path", "jobmasters"})


def reload_bitpeer(service, new):
    """Apply ``new`` (a ``BitpeerConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    keep = {}
    applied = []
    if service.reload_peers(new.peer_config_path).startswith("ok"):
        keep["peer_config_path"] = new.peer_config_path
        applied.append("peer_config_path")
    if "jobmasters" in changed:
        service.jobmasters.set_static(new.jobmasters)
        keep["jobmasters"] = new.jobmasters
        applied.append("jobmasters")
    service.config = attrs.evolve(old, **keep)
    return ReloadReport(tuple(applied), restart)
