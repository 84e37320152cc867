# -*- test-case-name: tests.gateway.test_reload -*-
"""
What a SIGHUP may change in a running Stratum server (``viabtc.reload``),
shared by the roles that serve miners (gateway, mineragent): the Stratum
settings (difficulty bounds, default difficulty, target and retarget times,
idle timeout) and the abuse ``limits``, for new sessions and for the
connected ones (their difficulty is clamped into new bounds at its next
retarget; the strike rules of IPs already on record stay as they were).
The line limit (``svr.max_pkg_size``) is read when a session starts, so a
change of it waits for a restart.
"""

import attrs

#: The config fields (``stratum``: ``StratumSettings``, ``limits``: ``Limits``) applied here.
STRATUM_RELOADABLE = frozenset({"stratum", "limits"})


def apply_stratum(server, context, changed, old, new):
    """
    Apply the ``changed`` fields among ``STRATUM_RELOADABLE`` of ``new`` (a
    role config) to ``server`` (a ``StratumServerFactory``) and ``context``
    (whose ``settings`` new sessions take).  ``(applied values by field,
    names needing a restart)``.
    """
    keep, restart = {}, []
    if "stratum" in changed:
        settings = new.stratum
        if settings.max_pkg_size != old.stratum.max_pkg_size:
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
    return keep, restart
