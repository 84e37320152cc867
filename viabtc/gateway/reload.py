# -*- test-case-name: tests.gateway.test_reload -*-
"""
What a SIGHUP changes in a running gateway (``viabtc.reload``): the Stratum
settings (difficulty bounds, default difficulty, target and retarget times,
idle timeout) and the abuse ``limits``, for new sessions and for the
connected ones (their difficulty is clamped into new bounds at its next
retarget; the strike rules of IPs already on record stay as they were).
Listen addresses, links, ``worker_id``, ``coin`` and the rest
need a restart and are named.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes

RELOADABLE = frozenset({"stratum", "limits"})


def reload_gateway(service, new):
    """Apply ``new`` (a ``GatewayConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    server, context = service.server, service.context
    keep = {}
    restart = list(restart)
    if "stratum" in changed:
        settings = new.stratum
        if settings.max_pkg_size != old.stratum.max_pkg_size:
            # The line limit is the svr block's, read when a session starts.
            settings = attrs.evolve(settings, max_pkg_size=old.stratum.max_pkg_size)
            restart.append("svr.max_pkg_size")
        context.settings = settings
        for proto in list(server.sessions):
            proto.settings = settings
            session = getattr(proto, "session", None)
            if session is not None and getattr(session, "vardiff", None) is not None:
                session.vardiff.settings = settings.vardiff
        keep["stratum"] = settings
    if "limits" in changed:
        server.limits = new.limits
        for proto in list(server.sessions):
            proto.limits = new.limits
        keep["limits"] = new.limits
    service.config = attrs.evolve(old, **keep)
    return ReloadReport(tuple(keep), tuple(restart))
