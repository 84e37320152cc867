# -*- test-case-name: tests.metawriter.test_trust -*-
"""
The metawriter's trust file (ref §8.6): a JSON object ``{"<ip>": "<info>"}``
naming the hosts allowed to send statistics, reloadable at run time with the
CLI command ``loadtrust <path>``.

The seed checked it only for new TCP connections; our ``TrustTable`` is the
predicate given to the TCP factory *and* the UDP protocol (ref §12.2), and a
reload takes effect for the next connection or datagram.
"""

import ipaddress
import json

import attrs
from twisted.logger import Logger

# The seed's limits on an entry (``mw_receiver.c: load_trust()``).
MAX_IP_LEN = 15
MAX_INFO_LEN = 50


class TrustFileError(ValueError):
    """The trust file cannot be read or is not a JSON object; says why."""


@attrs.frozen
class TrustEntry:
    """One trusted source: its address as written and its description."""

    ip: str
    info: str


def _normalise(host):
    """The ``ip_address`` of ``host``, IPv4-mapped IPv6 folded to IPv4; None if not an IP."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def load_trust_file(path):
    """
    The entries of the trust file at ``path``, in file order.

    As in the seed, an entry whose key is empty or longer than 15 characters,
    or whose value is not a string of 1 to 50 characters, is skipped; we also
    skip keys that are not IP addresses (they could never match).  Skipped
    entries are returned second, as ``(key, reason)`` pairs, for the log.
    ``TrustFileError`` when the file is unreadable or not a JSON object.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise TrustFileError(f"cannot read {path}: {e}") from None
    except ValueError as e:
        raise TrustFileError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise TrustFileError(f"{path} must hold a JSON object of ip: description")
    entries, skipped = [], []
    for ip, info in data.items():
        if not 0 < len(ip) <= MAX_IP_LEN:
            skipped.append((ip, f"address longer than {MAX_IP_LEN} characters"))
        elif not isinstance(info, str) or not 0 < len(info) <= MAX_INFO_LEN:
            skipped.append((ip, f"description must be a string of 1 to {MAX_INFO_LEN} characters"))
        elif _normalise(ip) is None:
            skipped.append((ip, "not an IP address"))
        else:
            entries.append(TrustEntry(ip, info))
    return entries, skipped


class TrustTable:
    """
    The current trusted sources; call it with a host string.  ``load``
    replaces the whole table at once (a bad file leaves it unchanged).
    """

    _log = Logger()

    def __init__(self, entries=(), role="metawriter"):
        self._role = role
        self._entries = ()
        self._addresses = frozenset()
        self.replace(entries)

    def __call__(self, host):
        return _normalise(host) in self._addresses

    def __len__(self):
        return len(self._entries)

    @property
    def entries(self):
        return self._entries

    def replace(self, entries):
        self._entries = tuple(entries)
        self._addresses = frozenset(_normalise(e.ip) for e in self._entries)

    def load(self, path):
        """Replace the table with the file at ``path``; ``TrustFileError`` leaves it as it was."""
        entries, skipped = load_trust_file(path)
        for ip, reason in skipped:
            self._log.warn("trust file {path}: entry {ip!r} skipped: {reason}",
                           path=path, ip=ip, reason=reason, role=self._role)
        self.replace(entries)
        self._log.info("trust file {path} loaded: {count} trusted sources",
                       path=path, count=len(entries), role=self._role)
        return len(entries)

    def listing(self):
        """The seed's ``listtrust`` table: ``%-15s %-50s`` lines under an ``ip info`` header."""
        lines = ["%-15s %-50s" % ("ip", "info")]
        lines.extend("%-15s %-50s" % (e.ip, e.info) for e in self._entries)
        return "\n".join(lines) + "\n"
