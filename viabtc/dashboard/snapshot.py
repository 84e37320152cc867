# -*- test-case-name: tests.dashboard.test_snapshot -*-
"""
What the dashboard shows, computed from what it read from Redis.

``reader.py`` fetches raw hashes and lists into a ``RawStats``; ``build``
turns them into a ``Snapshot`` of plain values the pages render.  Pure: no
Redis, no clock (the time of the read is part of ``RawStats``), so every
figure an operator sees is tested from known inputs.

Minutes: ``RawStats.minutes`` are the completed minutes of the window,
oldest first.  The gateway ships a minute once it is over, so the newest
complete minute is the one before ``now``'s.
"""

import json

import attrs

from viabtc.stats import hashrate as hr
from viabtc.stats.gateway_agg import GOAL, POW, POW_FLOAT, REJECT, SHARE
from viabtc.stratum.share import Reject

#: Monitor counter names the dashboard reads besides the share ones.
CONNECTIONS = "connections"
BLOCK = "block"
BLOCK_AUX = "block_aux"
REJECT_PREFIX = "reject_"
#: Minutes over which "current" hashrates are averaged.
CURRENT_MINUTES = 10
#: Minutes a completed minute may take to reach Redis.
WRITE_LAG = 2


def window(now, minutes):
    """The last ``minutes`` completed minute starts before ``now``, oldest first."""
    current = int(now // 60) * 60
    return tuple(range(current - 60 * minutes, current, 60))


def reject_reason(code_text):
    """``"23"`` → ``"23 Low difficulty share"``; unknown codes keep their number."""
    try:
        return "%s %s" % (code_text, Reject(int(code_text)).message)
    except ValueError:
        return code_text


@attrs.frozen
class KeyStats:
    """One user's or worker's minute hashes: share counts, pow, goal, reject counts."""

    shares: dict = attrs.Factory(dict)
    pow: dict = attrs.Factory(dict)
    goal: dict = attrs.Factory(dict)
    rejects: dict = attrs.Factory(dict)


@attrs.frozen
class RawStats:
    """
    Everything one refresh read.  ``monitor``: counter name → minute →
    value (pool-wide ``C:m:*``); ``users``: user → ``KeyStats``;
    ``workers``: (user, worker) → ``KeyStats``; ``blocks``: the ``newblock``
    entries (JSON text), oldest first; ``worker_minutes``: the minutes read
    for users and workers (the newest of ``minutes``).
    """

    now: float
    coin: str
    minutes: tuple
    worker_minutes: tuple
    monitor: dict = attrs.Factory(dict)
    users: dict = attrs.Factory(dict)
    workers: dict = attrs.Factory(dict)
    blocks: tuple = ()
    main_chain: str = "BTC"
    workers_total: int = 0


@attrs.frozen
class Block:
    """
    A found block: chain name, hash, finder, aux or main; ``seen`` when the
    dashboard saw it appear (None: it was there at the dashboard's start),
    ``minute`` the counted minute it was matched to (an estimate, or None);
    ``height`` and ``time`` (the header's) from the optional node
    (``heights.py``), None until known.
    """

    name: str
    hash: str
    user: str
    worker: str
    minute: int | None
    aux: bool
    seen: float | None = None
    height: int | None = None
    time: int | None = None


def mark_seen(blocks, seen, now, first):
    """
    ``blocks`` with their ``seen`` times from ``seen`` (hash → time or
    None, updated here): an entry not known before is stamped ``now``,
    unless this is the ``first`` read (entries already there have no known
    time, None).  Hashes no longer listed are forgotten.
    """
    listed = {b.hash for b in blocks}
    for stale in [h for h in seen if h not in listed]:
        del seen[stale]
    for block in blocks:
        seen.setdefault(block.hash, None if first else now)
    return tuple(attrs.evolve(b, seen=seen.get(b.hash)) for b in blocks)


@attrs.frozen
class WorkerRow:
    """One worker: current hashrate (H/s), shares and rejects in the window, its rate series."""

    user: str
    worker: str
    rate: float
    shares: int
    rejects: int
    series: tuple  # ((minute, H/s), ...)
    last_minute: int | None


@attrs.frozen
class UserRow:
    """One user and its workers, like ``WorkerRow``."""

    user: str
    rate: float
    shares: int
    rejects: int
    series: tuple
    workers: tuple


@attrs.frozen
class Snapshot:
    """What the pages show (see the module docstring)."""

    updated: float
    coin: str
    pool_series: tuple  # ((minute, H/s), ...) over the history window
    pool_rate: float  # mean H/s over ``recent`` minutes
    blocks_counted: int  # main-chain blocks counted in the window (monitor ``block``)
    aux_blocks_counted: int
    shares: int  # accepted, history window
    rejects: int
    rejects_by_reason: tuple  # ((reason, count), ...), most first
    share_series: tuple  # ((minute, accepted), ...)
    reject_series: tuple  # ((minute, rejected), ...)
    connections: int | None
    connection_series: tuple
    blocks: tuple  # Block, newest first
    users: tuple  # UserRow, fastest first
    workers_total: int
    history_minutes: int
    worker_minutes: int

    @property
    def workers(self):
        """Every WorkerRow, fastest first."""
        rows = [w for u in self.users for w in u.workers]
        return tuple(sorted(rows, key=lambda w: (-w.rate, w.user, w.worker)))

    @property
    def reject_percent(self):
        total = self.shares + self.rejects
        return 100.0 * self.rejects / total if total else 0.0


def recent(minutes, active):
    """
    The minutes a "current" hashrate averages: the last ``CURRENT_MINUTES``
    of ``minutes``, but none before the first in which ``active`` (minute →
    value) has something, so a pool or worker that started two minutes ago
    shows its rate, not a fifth of it.
    """
    last = minutes[-CURRENT_MINUTES:]
    started = [t for t in last if active.get(t)]
    return tuple(t for t in last if t >= started[0]) if started else last


def _series(values, minutes):
    return tuple((t, values.get(t, 0.0)) for t in minutes)


def _total(values, minutes):
    return int(sum(values.get(t, 0) for t in minutes))


def assign_block_minutes(entries, main_minutes, aux_minutes, main_chain):
    """
    ``Block`` values for the ``newblock`` JSON ``entries`` (oldest first).

    ``newblock`` carries no time, but every found block is also counted in
    the monitor counter ``block`` (``block_aux`` for aux chains) of its
    minute.  Consumers may pop old entries off the list, so entries and
    counts are matched from the newest back: the last main-chain entry is
    the last counted main block, and so on; entries older than the counts
    get no minute.  Only an estimate: an entry is listed at once while its
    minute is counted when the minute is written, so blocks of the newest
    minutes shift the match (``mark_seen`` gives exact times from the
    dashboard's own reads).
    """
    def expand(counts):
        stamps = []
        for minute in sorted(counts):
            stamps.extend([minute] * int(counts[minute]))
        return stamps

    stamps = {False: expand(main_minutes), True: expand(aux_minutes)}
    parsed = []
    for text in entries:
        try:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
        except ValueError:
            continue
        name = str(value.get("name", ""))
        parsed.append((value, name, name != main_chain))
    blocks = []
    for value, name, aux in reversed(parsed):
        minute = stamps[aux].pop() if stamps[aux] else None
        blocks.append(Block(name=name, hash=str(value.get("hash", "")), user=str(value.get("user", "")),
                            worker=str(value.get("worker", "")), minute=minute, aux=aux))
    return tuple(blocks)


def written_minutes(minutes, monitor):
    """
    ``minutes`` without the newest ones the metawriter has not written yet.

    A minute reaches Redis up to ``WRITE_LAG`` minutes after it ends (the
    gateway ships it once over, the metawriter files it at its next
    once-a-minute flush), so the window's last minutes are often still
    empty: charting them as 0 would show every live pool collapsing.  They
    are left out while newer than the newest minute any counter has; a pool
    that really stopped shows its zeros once they are older than the lag.
    """
    window_set = set(minutes)
    written = [t for values in monitor.values() for t in values if t in window_set]
    newest = max(written) if written else None
    if newest is None:
        return minutes
    lag_start = minutes[-1] - 60 * (WRITE_LAG - 1)
    return tuple(t for t in minutes if t <= newest or t < lag_start)


def build(raw):
    """The ``Snapshot`` for ``raw`` (a ``RawStats``)."""
    minutes = written_minutes(raw.minutes, raw.monitor)
    kept = set(minutes)
    wminutes = tuple(t for t in raw.worker_minutes if t in kept)
    monitor = raw.monitor
    shares = monitor.get(SHARE, {})
    pool_goal = monitor.get(GOAL, {})
    pool_diff = hr.pool_difficulty(monitor.get(POW, {}), monitor.get(POW_FLOAT, {}))
    current = recent(minutes, pool_diff)
    pool_mean = hr.mean_per_share(pool_diff, shares)
    pool_rates = hr.rates(pool_diff)

    reasons = []
    for name, values in monitor.items():
        if name.startswith(REJECT_PREFIX):
            count = _total(values, minutes)
            if count:
                reasons.append((reject_reason(name[len(REJECT_PREFIX):]), count))
    reasons.sort(key=lambda r: (-r[1], r[0]))

    connections = monitor.get(CONNECTIONS, {})
    known = [t for t in minutes if t in connections]

    by_user = {}
    for (wuser, worker), wstats in raw.workers.items():
        by_user.setdefault(wuser, []).append((worker, wstats))
    users = []
    for user, stats in raw.users.items():
        exact = hr.user_exact(stats.goal, pool_diff, pool_goal)
        udiff = hr.key_difficulty(stats.shares, stats.pow, exact=exact, mean=pool_mean)
        umean = hr.mean_per_share(udiff, stats.shares)
        workers = []
        for worker, wstats in by_user.get(user, ()):
            wdiff = hr.key_difficulty(wstats.shares, wstats.pow, mean=umean)
            active = [t for t in wminutes if wstats.shares.get(t)]
            workers.append(WorkerRow(
                user=user, worker=worker,
                rate=hr.average_rate(wdiff, recent(wminutes, wstats.shares)),
                shares=_total(wstats.shares, wminutes), rejects=_total(wstats.rejects, wminutes),
                series=_series(hr.rates(wdiff), wminutes),
                last_minute=active[-1] if active else None,
            ))
        workers.sort(key=lambda w: (-w.rate, w.worker))
        users.append(UserRow(
            user=user, rate=hr.average_rate(udiff, recent(wminutes, stats.shares)),
            shares=_total(stats.shares, wminutes), rejects=_total(stats.rejects, wminutes),
            series=_series(hr.rates(udiff), wminutes), workers=tuple(workers),
        ))
    users.sort(key=lambda u: (-u.rate, u.user))

    return Snapshot(
        updated=raw.now,
        coin=raw.coin,
        pool_series=_series(pool_rates, minutes),
        pool_rate=hr.average_rate(pool_diff, current),
        blocks_counted=_total(monitor.get(BLOCK, {}), minutes),
        aux_blocks_counted=_total(monitor.get(BLOCK_AUX, {}), minutes),
        shares=_total(shares, minutes),
        rejects=_total(monitor.get(REJECT, {}), minutes),
        rejects_by_reason=tuple(reasons),
        share_series=_series(shares, minutes),
        reject_series=_series(monitor.get(REJECT, {}), minutes),
        connections=int(connections[known[-1]]) if known else None,
        connection_series=_series(connections, minutes),
        blocks=assign_block_minutes(raw.blocks, monitor.get(BLOCK, {}), monitor.get(BLOCK_AUX, {}),
                                    raw.main_chain),
        users=tuple(users),
        workers_total=raw.workers_total,
        history_minutes=len(raw.minutes),
        worker_minutes=len(raw.worker_minutes),
    )
