# -*- test-case-name: tests.jobmaster.test_metrics -*-
"""
What a SIGHUP changes in a running jobmaster (``viabtc.reload``): the ban
list from ``bans`` (added and lifted at every gateway), the coinbase
message, and the gateway and hint trust lists.  Anything else that changed
(listen addresses, the node, payouts, the pool name...) is named as needing
a restart.
"""

import attrs

from viabtc.jobmaster.bans import BanUpdate
from viabtc.reload import ReloadReport, reloadable_changes
from viabtc.rpc.protocol import TrustedHosts

RELOADABLE = frozenset({"bans", "settings", "gateway_trust", "hint_trust"})


def _trust(entries):
    return None if entries is None else TrustedHosts(entries)


def apply_config_bans(service, bans, previous=()):
    """Ban ``bans`` at every gateway and lift ``previous`` entries no longer in it."""
    added = tuple(ip for ip in bans if ip not in previous)
    lifted = tuple(ip for ip in previous if ip not in bans)
    if added:
        service.apply_ban(BanUpdate("add", added, 0), "config")
    if lifted:
        service.apply_ban(BanUpdate("del", lifted), "config")


def reload_jobmaster(service, new):
    """Apply ``new`` (a ``JobmasterConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    applied, restart = [], list(restart)
    keep = {}
    if "bans" in changed:
        apply_config_bans(service, new.bans, old.bans)
        applied.append("bans")
        keep["bans"] = new.bans
    if "settings" in changed:
        settings = old.settings
        if new.settings.coinbase_message != settings.coinbase_message:
            service.set_coinbase_message(new.settings.coinbase_message)
            applied.append("coinbase_message")
            settings = attrs.evolve(settings, coinbase_message=new.settings.coinbase_message)
        others = [f.name for f in attrs.fields(type(settings))
                  if getattr(settings, f.name) != getattr(new.settings, f.name)]
        restart += others
        keep["settings"] = settings
    if "gateway_trust" in changed:
        service.factory.trust = _trust(new.gateway_trust)
        applied.append("gateway_trust")
        keep["gateway_trust"] = new.gateway_trust
    if "hint_trust" in changed:
        for listener in service.datagram_services:
            listener.protocol.trust = _trust(new.hint_trust)
        applied.append("hint_trust")
        keep["hint_trust"] = new.hint_trust
    # The running configuration: what was applied, the rest as before.
    service.config = attrs.evolve(old, **keep)
    return ReloadReport(tuple(applied), tuple(restart))
