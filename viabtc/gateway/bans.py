# -*- test-case-name: tests.gateway.test_bans -*-
"""
The gateway's banned-IP list, fed by the jobmaster's cmd 3 bodies
(``viabtc.rpc.bans``).

The seed checked bans only when a connection arrived, so a miner banned
for abuse kept its session; ours closes existing sessions too (the service
does that with what ``apply`` returns).  A ban's ``limit`` (seconds, 0 =
permanent) is honoured here as well: the jobmaster broadcasts a ``del`` when
it expires, but a gateway that missed it while its link was down must not
keep the ban forever.
"""

from viabtc.rpc.bans import normalise_ip


class BanList:
    """Banned addresses with their expiry (``None`` = permanent); time from ``clock``."""

    def __init__(self, clock):
        self._clock = clock
        self._until = {}

    def __len__(self):
        return len(self._until)

    def is_banned(self, host):
        """True while ``host`` (any spelling) is banned."""
        if not self._until:
            return False
        ip = normalise_ip(host)
        if ip not in self._until:
            return False
        until = self._until[ip]
        if until is not None and self._clock.seconds() >= until:
            del self._until[ip]
            return False
        return True

    def apply(self, update):
        """Apply a ``BanUpdate``; returns the addresses newly banned (or re-banned) by it."""
        if update.op == "del":
            for ip in update.ips:
                self._until.pop(ip, None)
            return frozenset()
        until = None if update.limit == 0 else self._clock.seconds() + update.limit
        for ip in update.ips:
            self._until[ip] = until
        return frozenset(update.ips)

    def clear(self):
        """Forget every ban (a new jobmaster link sends its whole list)."""
        self._until.clear()
