# -*- test-case-name: tests.gateway.test_bans -*-
"""
The banned-IP list the jobmaster pushes to gateways (cmd 3, ref §3.10, §4.8).

The seed checked bans only when a connection arrived, so a miner banned
for abuse kept its session; ours closes existing sessions too (the service
does that with what ``apply`` returns).  Addresses are normalised to one
spelling (IPv4-mapped IPv6 as IPv4) so a ban cannot be dodged by writing
the same address differently.  A ban's ``limit`` (seconds, 0 = permanent)
is honoured here as well: the jobmaster broadcasts a ``del`` when it
expires, but a gateway that missed it while its link was down must not keep
the ban forever.

One bad entry costs only itself: an ``ip`` entry that is no address is left
out and the others are applied; a bad ``limit`` is left out, and the ban then
holds until the jobmaster's ``del``, as every ban does on the seed's
gateways, which never read ``limit``.  Only a body whose ``op`` or ``ip``
list cannot be read is refused whole.
"""

import ipaddress
import json

import attrs


class BadBanUpdate(ValueError):
    """A cmd 3 body that cannot be applied; the text names the field."""


@attrs.frozen
class BanUpdate:
    """
    ``op`` is "add" or "del"; ``limit`` seconds for "add" (0 = permanent);
    ``dropped`` names each part of the body left out, and why.
    """

    op: str
    ips: tuple
    limit: int = 0
    dropped: tuple = ()


def normalise_ip(text):
    """One spelling per address (IPv4-mapped IPv6 as IPv4), or ``None`` if not an IP."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def parse_ban_update(body):
    """
    Parse a cmd 3 body ``{"ip":[...],"op":"add"|"del"[,"limit":N]}``; bad
    entries and a bad limit are left out and named in ``dropped``.
    ``BadBanUpdate`` when the body, its ``op`` or its ``ip`` list is unreadable.
    """
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadBanUpdate(f"body is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise BadBanUpdate("body is not a JSON object")
    op = value.get("op")
    if op not in ("add", "del"):
        raise BadBanUpdate("'op' must be 'add' or 'del'")
    ips = value.get("ip")
    if not isinstance(ips, list):
        raise BadBanUpdate("'ip' must be an array")
    normalised = []
    dropped = []
    for entry in ips:
        ip = normalise_ip(entry) if isinstance(entry, str) else None
        if ip is None:
            dropped.append(f"'ip' entry {str(entry)[:64]!r} is not an IP address")
        else:
            normalised.append(ip)
    limit = 0
    if op == "add" and "limit" in value:
        limit = value["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**32:
            dropped.append(f"'limit' {str(limit)[:64]} is not a number of seconds; the ban holds until its 'del'")
            limit = 0
    return BanUpdate(op, tuple(normalised), limit, tuple(dropped))


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
