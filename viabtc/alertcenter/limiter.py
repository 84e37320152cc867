# -*- test-case-name: tests.alertcenter.test_limiter -*-
"""
Rate limiting of alerts, so a flapping fatal log cannot flood ``alert:message``
(and the mailboxes behind it) as it does with the seed (ref §12.5).

Alerts are grouped as "similar" by sending host and the first
``similar_prefix`` bytes of the message with every run of digits read as one
``#`` (the seed's messages start with ``[fatal]file:line(func)``, and the
changing part of a flapping message is usually a number, so a group is
roughly one call site).  Each group has a token bucket (``burst`` alerts, then
``rate`` per second); what a group drops is counted and reported in one
``"<host>: N similar alerts suppressed; last: ..."`` entry as soon as the group
has a token again.

All groups share a total bucket (``total_burst``, then ``total_rate`` per
second), so even a flood of distinct messages adds a bounded number of entries
to the list.  Alerts refused by the total bucket are counted pool-wide, not in
their group, and reported in one entry: a group only owes a summary after it
had ``burst`` alerts accepted, so summaries take a small share of the total
budget and never starve new kinds of alert.

Memory is bounded: a group whose bucket has refilled with nothing pending is
forgotten (a new group starts full, so forgetting changes nothing), and beyond
``max_groups`` no new group is created; such alerts join the pool-wide count.
"""

import re

_TOKENS, _STAMP, _SUPPRESSED, _LAST = range(4)
_DIGITS = re.compile(rb"[0-9]+")


class AlertLimiter:
    """
    Decides which alerts go to Redis.  ``clock`` provides ``seconds()``
    (the reactor, or a ``task.Clock`` in tests).
    """

    def __init__(self, clock, rate=0.2, burst=10, total_rate=10.0, total_burst=100,
                 similar_prefix=64, max_groups=10000):
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self.total_rate = total_rate
        self.total_burst = total_burst
        self.similar_prefix = similar_prefix
        self.max_groups = max_groups
        self._groups = {}
        self._total = [float(total_burst), clock.seconds()]
        self._overflow = 0

    def __len__(self):
        """Number of groups currently tracked."""
        return len(self._groups)

    def _refill(self, group, now):
        group[_TOKENS] = min(self.burst, group[_TOKENS] + (now - group[_STAMP]) * self.rate)
        group[_STAMP] = now

    def _take_total(self, now):
        total = self._total
        total[0] = min(self.total_burst, total[0] + (now - total[1]) * self.total_rate)
        total[1] = now
        if total[0] >= 1.0:
            total[0] -= 1.0
            return True
        return False

    def offer(self, host, message):
        """True when the alert ``host: message`` (bytes) may be pushed now."""
        now = self._clock.seconds()
        key = (host, _DIGITS.sub(b"#", message[:self.similar_prefix]))
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                self._overflow += 1
                return False
            group = self._groups[key] = [float(self.burst), now, 0, None]
        else:
            self._refill(group, now)
        # A group with a pending summary waits for it to go out first.
        if group[_SUPPRESSED] or group[_TOKENS] < 1.0:
            group[_SUPPRESSED] += 1
            group[_LAST] = message
            return False
        if not self._take_total(now):
            self._overflow += 1
            return False
        group[_TOKENS] -= 1.0
        return True

    def summaries(self, identity):
        """
        Summary entries due now (call about once a second); forgets idle
        groups.  ``identity`` (bytes) is the host named in the pool-wide
        entry for alerts over the total rate or beyond ``max_groups``.
        """
        now = self._clock.seconds()
        out = []
        idle = []
        for key, group in self._groups.items():
            self._refill(group, now)
            count = group[_SUPPRESSED]
            if count:
                if group[_TOKENS] >= 1.0 and self._take_total(now):
                    group[_TOKENS] -= 1.0
                    out.append(b"%s: %d similar alerts suppressed; last: %s" % (key[0], count, group[_LAST]))
                    group[_SUPPRESSED] = 0
                    group[_LAST] = None
            elif group[_TOKENS] >= self.burst:
                idle.append(key)
        for key in idle:
            del self._groups[key]
        if self._overflow and self._take_total(now):
            out.append(b"%s: %d alerts suppressed (over the total alert rate)" % (identity, self._overflow))
            self._overflow = 0
        return out
