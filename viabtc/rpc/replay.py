# -*- test-case-name: tests.rpc.test_replay -*-
"""
Freshness checks for authenticated packets (ref §12.1).

A valid HMAC tag only proves a packet was once sent by a holder of the
secret; without these checks a captured height hint (cmd 4) could be replayed
to push the pool onto empty blocks again.  A packet is fresh when its stamped
time is within ``window`` seconds of ours and its tag has not been seen
inside that window.  A tag only needs remembering until its timestamp falls
out of the window, which is at most ``2 * window`` after it arrived, so the
set of recent tags is kept in arrival order and pruned from the front.
"""

from collections import deque

from viabtc.rpc.codec import ProtocolError, parse_auth_ext


class ReplayGuard:
    """
    Remembers recent tags and rejects stale or repeated packets.

    One guard serves every connection of a server (a replay on a fresh
    connection is still a replay).  ``max_entries`` bounds memory: when that
    many tags are live, further packets are refused rather than let through
    unchecked.
    """

    def __init__(self, clock, window=30.0, max_entries=200_000):
        self._clock = clock
        self._window = window
        self._max_entries = max_entries
        self._tags = set()
        self._arrivals = deque()

    def check(self, packet):
        """Accept ``packet`` or raise ``ProtocolError`` saying why not."""
        stamp = parse_auth_ext(packet.ext)
        now = self._clock.seconds()
        skew = stamp.timestamp_ms / 1000.0 - now
        if abs(skew) > self._window:
            raise ProtocolError(
                f"timestamp {skew:+.1f} s from ours, outside ±{self._window:g} s"
            )
        self._prune(now)
        if stamp.tag in self._tags:
            raise ProtocolError("replayed packet")
        if len(self._tags) >= self._max_entries:
            raise ProtocolError("replay cache full")
        self._tags.add(stamp.tag)
        self._arrivals.append((now + 2 * self._window, stamp.tag))

    def _prune(self, now):
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= now:
            self._tags.discard(arrivals.popleft()[1])

    def __len__(self):
        return len(self._tags)
