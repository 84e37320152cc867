# -*- test-case-name: tests.stats.test_gateway_agg -*-
"""
The gateway's per-minute statistics (ref §4.9), bucketed by the minute in
which each share or sample happened.

The seed sums everything since its last flush at about hh:mm:30 and lets the
metawriter guess the minute, so each Redis minute mixes two real minutes and
its dictionaries keep every key forever with zero values (ref §12.17, §12.26).
Here every event lands in the bucket of its own minute start (a share at
12:00:59.9 counts for 12:00), a completed bucket is handed out once, stamped
with its minute (``viabtc.stats.records``), and then forgotten.

Blocks and events are not aggregated: the gateway sends them at once
(``records.BlockRecord`` / ``records.EventRecord``).

``accepted`` is on the hot path (every share): it touches one worker's
counters and allocates nothing once a user and worker have been seen in
the current minute; the user's and the minute's sums, the integral pow and
the record keys are made at flush.

Pow on the wire is an integer (the seed's varint) while difficulties are
floats (a CPU miner on regtest works at 0.001).  A worker's fractional
difficulties are summed over the minute, and at flush its integral part is
the minute's pow and the fraction is carried into the worker's next minute
(dropped after a minute without its shares: less than one pow unit when it
stops).  Integral difficulties (every mainnet one) are summed as integers.
The exact sum also goes out as the float monitor counter ``pow_float``
(our addition), so the hashrate reads right at regtest's difficulties
(``viabtc.stats.hashrate``).
"""

import math
import os

import attrs

from viabtc.stats import records
from viabtc.stats.schema import share_record_key

# Monitor counter names the aggregator fills from shares (ref §4.9).
SHARE = "share"
POW = "pow"
REJECT = "reject"
GOAL = "goal"
# Our addition (a float monitor counter): the same sum as ``pow``, exact at
# fractional difficulties, for ``viabtc.stats.hashrate``.
POW_FLOAT = "pow_float"
REJECT_CODE = "reject_%d"

# Seed rule for float monitors: smaller magnitudes are not worth a write.
FLOAT_EPSILON = 1e-15


def minute_start(now):
    """The unix start of the minute containing ``now`` (seconds)."""
    return int(now // 60) * 60


@attrs.frozen
class MinuteRecords:
    """All records of one completed minute, ready to stamp and send."""

    minute: int
    shares: tuple
    monitor_ints: tuple
    monitor_floats: tuple

    def bodies(self, max_body=records.MAX_BODY, random=os.urandom):
        """``[(command, body), ...]`` for this minute, each body stamped."""
        out = []
        for command, recs in (
            (records.META_SHARE, self.shares),
            (records.META_MONITOR_INT, self.monitor_ints),
            (records.META_MONITOR_FLOAT, self.monitor_floats),
        ):
            for body in records.encode_bodies(command, recs, max_body, random, self.minute):
                out.append((command, body))
        return out


# A worker's counters in a minute: [num, pow, goal, exact, fraction, rejects]
# (pow: the integral difficulties' sum; fraction: the others').
_NUM, _POW, _GOAL, _EXACT, _FRACTION, _REJECTS = range(6)


class _Bucket:
    """Mutable counters of one minute; lives only until that minute is flushed."""

    __slots__ = ("users", "reject_codes", "ints", "floats")

    def __init__(self):
        # user -> {worker: [num, pow, goal, exact, fraction, rejects]}
        self.users = {}
        self.reject_codes = {}
        self.ints = {}
        self.floats = {}


class MinuteAggregator:
    """
    Per-minute counters of one gateway.  ``host`` is its ``alert.host``
    identity and ``coin`` its stats coin prefix (e.g. "btc"), both written into
    every record as the seed does.
    """

    def __init__(self, host, coin):
        self.host = host
        self.coin = coin
        self._buckets = {}
        self._minute = None
        self._minute_end = None
        self._bucket = None
        # (user, worker) -> (minute, the fraction of a pow unit that minute left over)
        self._carry = {}
        # Monitor sums of every minute handed out so far (for /metrics).
        self._sent_ints = {}
        self._sent_floats = {}

    def _bucket_for(self, now):
        minute = int(now // 60) * 60
        if minute == self._minute:
            return self._bucket
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = _Bucket()
        self._minute = minute
        self._minute_end = minute + 60
        self._bucket = bucket
        return bucket

    def _worker(self, user, worker, now):
        """The minute's bucket and ``worker``'s counters in it (made when new)."""
        minute = self._minute
        if minute is not None and minute <= now < self._minute_end:
            bucket = self._bucket
        else:
            bucket = self._bucket_for(now)
        workers = bucket.users.get(user)
        if workers is None:
            workers = bucket.users[user] = {}
        entry = workers.get(worker)
        if entry is None:
            entry = workers[worker] = [0, 0, 0.0, 0.0, 0.0, 0]
        return bucket, entry

    def accepted(self, user, worker, difficulty, goal, now):
        """
        An accepted share credited at ``difficulty`` (a number, the share's
        pow) worth ``goal`` of a block.  A negative or non-finite pow or
        goal is refused here (``ValueError``): a metawriter would drop it,
        and the seed's would spoil the user's Redis goal (issue 17).
        Called for every share: the minute's bucket is found with two
        compares and one worker's counters change.
        """
        if not (0.0 <= difficulty < math.inf and 0.0 <= goal < math.inf):
            raise ValueError("share of %r: impossible pow %r or goal %r" % (user, difficulty, goal))
        entry = self._worker(user, worker, now)[1]
        # Literal indices (_NUM, _POW, _FRACTION, _GOAL, _EXACT): no global lookups per share.
        entry[0] += 1
        whole = int(difficulty)
        if whole == difficulty:
            entry[1] += whole
        else:
            entry[4] += difficulty
        entry[2] += goal
        entry[3] += difficulty

    def rejected(self, user, worker, code, now):
        """A share rejected with ``code`` (non-zero)."""
        bucket, entry = self._worker(user, worker, now)
        codes = bucket.reject_codes
        codes[code] = codes.get(code, 0) + 1
        entry[_REJECTS] += 1

    def monitor(self, key, value, now):
        """
        Add ``value`` to integer monitor counter ``key`` (e.g.
        ``connection_new``).  Counters only grow on the wire (a varint), so a
        negative value is refused here rather than spoiling the whole minute
        at flush.
        """
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("monitor %r: value must be a non-negative int, got %r" % (key, value))
        ints = self._bucket_for(now).ints
        ints[key] = ints.get(key, 0) + value

    def monitor_float(self, key, value, now):
        """Add ``value`` to float monitor counter ``key``; a negative or non-finite one is a ``ValueError``."""
        if not 0.0 <= value < math.inf:
            raise ValueError("monitor %r: value must be a finite number >= 0, got %r" % (key, value))
        floats = self._bucket_for(now).floats
        floats[key] = floats.get(key, 0.0) + value

    def totals(self):
        """
        ``(ints, floats)``: every monitor counter summed since start, the
        minutes still held included (``viabtc.metrics`` reads this at
        scrape time, so shares pay nothing for it).
        """
        ints, floats = dict(self._sent_ints), dict(self._sent_floats)
        for bucket in self._buckets.values():
            bucket_ints, bucket_floats = _monitor_sums(bucket)
            _add_into(ints, bucket_ints)
            _add_into(floats, bucket_floats)
        return ints, floats

    def flush(self, now):
        """
        The records of every minute that ended at or before ``now``, oldest
        first; those minutes are forgotten.
        """
        current = minute_start(now)
        done = sorted(m for m in self._buckets if m < current)
        return [self._take(m) for m in done]

    def flush_all(self):
        """Every minute still held, the current one included (for shutdown)."""
        return [self._take(m) for m in sorted(self._buckets)]

    def _carry_pow(self, minute, bucket):
        """
        Fold each worker's fractional difficulties into its integral pow:
        the carry from its last minute plus this minute's fractions, whose
        integral part is added and whose rest is carried to its next
        minute.  A worker without shares this minute loses its carry.
        """
        carried, self._carry = self._carry, {}
        previous = minute - 60
        for user, workers in bucket.users.items():
            for worker, entry in workers.items():
                total = entry[_FRACTION]
                carry = carried.get((user, worker))
                if carry is not None and carry[0] == previous:
                    total += carry[1]
                whole = int(total)
                entry[_POW] += whole
                if total != whole:
                    self._carry[user, worker] = (minute, total - whole)

    def _take(self, minute):
        bucket = self._buckets.pop(minute)
        if minute == self._minute:
            self._minute = self._bucket = None
        self._carry_pow(minute, bucket)
        host, coin = self.host, self.coin
        shares = []
        for user, workers in bucket.users.items():
            num = sum(entry[_NUM] for entry in workers.values())
            if num:
                pow_ = sum(entry[_POW] for entry in workers.values())
                goal = sum(entry[_GOAL] for entry in workers.values())
                shares.append(records.ShareRecord(user, host, coin, num, pow_, goal))
            for worker, entry in workers.items():
                if entry[_NUM]:
                    shares.append(records.ShareRecord(
                        share_record_key(user, worker), host, coin, entry[_NUM], entry[_POW], 0.0))
            rejects = sum(entry[_REJECTS] for entry in workers.values())
            if rejects:
                shares.append(records.ShareRecord(
                    share_record_key(user, reject=True), host, coin, rejects, 0, 0.0))
            for worker, entry in workers.items():
                if entry[_REJECTS]:
                    shares.append(records.ShareRecord(
                        share_record_key(user, worker, reject=True), host, coin, entry[_REJECTS], 0, 0.0))
        ints, floats = _monitor_sums(bucket)
        _add_into(self._sent_ints, ints)
        _add_into(self._sent_floats, floats)
        monitor_ints = tuple(
            records.MonitorIntRecord(key, host, coin, value) for key, value in ints.items() if value
        )
        monitor_floats = tuple(
            records.MonitorFloatRecord(key, host, coin, value)
            for key, value in floats.items() if abs(value) > FLOAT_EPSILON
        )
        return MinuteRecords(minute, tuple(shares), monitor_ints, monitor_floats)


def _monitor_sums(bucket):
    """The monitor counters of one minute's bucket: ``(ints, floats)``."""
    entries = [entry for workers in bucket.users.values() for entry in workers.values()]
    ints = {
        SHARE: sum(entry[_NUM] for entry in entries),
        POW: sum(entry[_POW] for entry in entries),
        REJECT: sum(entry[_REJECTS] for entry in entries),
    }
    for code, n in bucket.reject_codes.items():
        ints[REJECT_CODE % code] = n
    for key, value in bucket.ints.items():
        ints[key] = ints.get(key, 0) + value
    floats = {GOAL: sum(entry[_GOAL] for entry in entries), POW_FLOAT: sum(entry[_EXACT] for entry in entries)}
    for key, value in bucket.floats.items():
        floats[key] = floats.get(key, 0.0) + value
    return ints, floats


def _add_into(total, values):
    for key, value in values.items():
        total[key] = total.get(key, 0) + value
