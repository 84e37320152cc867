# -*- test-case-name: tests.rpc.test_bans -*-
"""
The banned-IP list body (cmd 3, ref §3.10, §4.8), read by gateways (from
their jobmaster) and by jobmasters (from gateways and brothers).

Addresses are normalised to one spelling (IPv4-mapped IPv6 as IPv4) so a ban
cannot be dodged by writing the same address differently.  A ban's
``limit`` is seconds, 0 = permanent.

One bad entry costs only itself: an ``ip`` entry that is no address is left
out and the others are applied; a bad ``limit`` is left out, and the ban then
holds until its ``del``, as every ban does on the seed's gateways, which
never read ``limit``.  Only a body whose ``op`` or ``ip`` list cannot be read
is refused whole.
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

    def to_json(self):
        """The seed's cmd 3 body."""
        body = {"ip": list(self.ips), "op": self.op}
        if self.op == "add":
            body["limit"] = self.limit
        return json.dumps(body, separators=(",", ":")).encode()


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


def parse_ips(values):
    """
    The operator's own list (an admin command): every entry normalised, or
    ``BadBanUpdate`` naming the first that is no IP address, since a typo
    there should be answered rather than skipped.
    """
    out = []
    for value in values:
        ip = normalise_ip(value) if isinstance(value, str) else None
        if ip is None:
            raise BadBanUpdate(f"'ip' entry {str(value)[:64]!r} is not an IP address")
        out.append(ip)
    return tuple(out)

