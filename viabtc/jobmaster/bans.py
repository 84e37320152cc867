# -*- test-case-name: tests.jobmaster.test_bans -*-
"""
The banned-IP list the jobmaster owns and pushes to every gateway (ref §3.10).

Gateways refuse new connections from a banned IP.  The jobmaster keeps each
ban with its start and duration so that it can expire it (the seed removed
expired bans every 60 s and told the gateways with a ``del``) and so that a
gateway connecting later still gets every ban with its remaining time.
"""

import math

import attrs

from viabtc.rpc.bans import BanUpdate


@attrs.frozen
class Ban:
    """One banned IP: banned at ``start`` for ``limit`` seconds (0 = forever)."""

    start: float
    limit: int

    def expired(self, now):
        return self.limit != 0 and now >= self.start + self.limit

    def remaining(self, now):
        """Seconds left, rounded up, for telling a gateway; 0 = permanent."""
        if self.limit == 0:
            return 0
        return max(1, math.ceil(self.start + self.limit - now))


class BanList:
    """The set of bans, keyed by the normalised IP string."""

    def __init__(self):
        self._bans = {}

    def __len__(self):
        return len(self._bans)

    def __contains__(self, ip):
        return ip in self._bans

    def apply(self, update, now):
        """Apply a ``BanUpdate`` (``add`` restarts an existing ban's clock)."""
        if update.op == "add":
            ban = Ban(now, update.limit)
            for ip in update.ips:
                self._bans[ip] = ban
        else:
            for ip in update.ips:
                self._bans.pop(ip, None)

    def expire(self, now):
        """Remove expired bans; return the ``del`` update that announces it."""
        gone = tuple(ip for ip, ban in self._bans.items() if ban.expired(now))
        for ip in gone:
            del self._bans[ip]
        return BanUpdate("del", gone)

    def snapshot(self, now):
        """
        The whole list as ``add`` updates (one per remaining duration), for a
        gateway that has just connected.
        """
        by_limit = {}
        for ip, ban in self._bans.items():
            if not ban.expired(now):
                by_limit.setdefault(ban.remaining(now), []).append(ip)
        return [BanUpdate("add", tuple(ips), limit) for limit, ips in sorted(by_limit.items())]

    def describe(self, now):
        """One line per ban for the CLI's ``listban``."""
        lines = []
        for ip, ban in sorted(self._bans.items()):
            if ban.expired(now):
                continue
            left = "permanent" if ban.limit == 0 else f"{ban.remaining(now)}s left"
            lines.append(f"{ip} {left}")
        return lines
