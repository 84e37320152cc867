# -*- test-case-name: tests.alertcenter.test_reload -*-
"""
What a SIGHUP changes in a running alertcenter (``viabtc.reload``): the
``limit`` block (rates, bursts, the Redis-down queue).  The rate limiter
starts afresh with the new rates; alerts already queued stay queued.
Anything else that changed needs a restart.
"""

import attrs

from viabtc.alertcenter.limiter import AlertLimiter
from viabtc.reload import ReloadReport, reloadable_changes

RELOADABLE = frozenset({"limit"})


def reload_alertcenter(service, new):
    """Apply ``new`` (an ``AlertCenterConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    if "limit" in changed and service.center is not None:
        limit = new.limit
        service.center.limiter = AlertLimiter(service.reactor, limit.rate, limit.burst, limit.total_rate,
                                              limit.total_burst, limit.similar_prefix, limit.max_groups)
        service.center.delivery.limit = limit.queue
        service.config = attrs.evolve(old, limit=limit)
    elif "limit" in changed:
        changed, restart = (), restart + ("limit",)
    return ReloadReport(changed, restart)
