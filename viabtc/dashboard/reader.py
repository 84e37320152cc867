# -*- test-case-name: tests.dashboard.test_service -*-
"""
One read of the pool's statistics from Redis, as the seed's keys hold them
(``docs/redis.md``), into a ``snapshot.RawStats``.

Which keys exist is found the way the seed meant external readers to find
them: ``monitor:keys`` lists the pool-wide monitor hashes, ``mining:keys``
the share hashes.  Only the window's minute fields are fetched (``HMGET``),
never a whole hash (they grow forever, ref §8.5), except the block counters
(one field per minute that found a block).  All commands of a read go out
at once on the one connection (txredisapi pipelines them).
"""

from twisted.internet import defer

from viabtc.dashboard.snapshot import BLOCK, BLOCK_AUX, KeyStats, RawStats, window
from viabtc.stats import schema

_REJECT = ":reject"


def parse_record_key(record_key):
    """
    ``user`` / ``user:worker`` / ``user:reject`` / ``user:worker:reject`` →
    ``(user, worker or None, reject)``; None for anything else.  Names are
    letters and digits (ref §4.2), so a worker called ``reject`` is read as
    the user's reject key, as every reader of the seed's keys must.
    """
    reject = record_key.endswith(_REJECT)
    if reject:
        record_key = record_key[: -len(_REJECT)]
    parts = record_key.split(":")
    if len(parts) == 1 and parts[0]:
        return parts[0], None, reject
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1], reject
    return None


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _numbers(fields, values):
    """``HMGET`` reply → minute → float, skipping missing and malformed fields."""
    result = {}
    for field, value in zip(fields, values or ()):
        if value is None:
            continue
        try:
            result[field] = float(_text(value))
        except ValueError:
            continue
    return result


def _field_map(reply):
    """``HGETALL`` reply (a dict or a flat list) → minute → float."""
    if isinstance(reply, dict):
        items = reply.items()
    else:
        reply = list(reply or ())
        items = zip(reply[::2], reply[1::2])
    result = {}
    for field, value in items:
        try:
            result[int(_text(field))] = float(_text(value))
        except ValueError:
            continue
    return result


class StatsReader:
    """
    Reads ``coin``'s statistics through ``redis`` (a txredisapi handler):
    ``read(now)`` fires with a ``RawStats``.
    """

    def __init__(self, redis, coin, *, history_minutes, worker_minutes, max_workers, max_blocks,
                 main_chain):
        self._redis = redis
        self.coin = coin
        self.history_minutes = history_minutes
        self.worker_minutes = worker_minutes
        self.max_workers = max_workers
        self.max_blocks = max_blocks
        self.main_chain = main_chain

    def _hmget(self, key, minutes):
        fields = [str(t) for t in minutes]
        d = self._redis.execute_command("HMGET", key, *fields)
        return d.addCallback(lambda values: _numbers(minutes, values))

    @defer.inlineCallbacks
    def read(self, now):
        coin = self.coin
        minutes = window(now, self.history_minutes)
        wminutes = minutes[-self.worker_minutes:]
        monitor_keys, mining_keys, blocks = yield defer.gatherResults([
            self._redis.execute_command("SMEMBERS", schema.MONITOR_KEYS),
            self._redis.execute_command("SMEMBERS", schema.MINING_KEYS),
            self._redis.execute_command("LRANGE", schema.NEWBLOCK, -self.max_blocks, -1),
        ], consumeErrors=True)

        prefix = schema.monitor_key(coin, "")
        names = sorted({_text(k)[len(prefix):] for k in monitor_keys or ()
                        if _text(k).startswith(prefix)} - {BLOCK, BLOCK_AUX})
        share_prefix = schema.share_hash_key(coin, schema.SHARE_COUNT, "")
        users, workers = set(), set()
        for key in mining_keys or ():
            key = _text(key)
            if not key.startswith(share_prefix):
                continue
            parsed = parse_record_key(key[len(share_prefix):])
            if parsed is None:
                continue
            user, worker, _reject = parsed
            users.add(user)
            if worker is not None:
                workers.add((user, worker))
        workers_total = len(workers)
        workers = sorted(workers)[: self.max_workers]

        calls = [self._hmget(schema.monitor_key(coin, name), minutes) for name in names]
        calls += [self._redis.execute_command("HGETALL", schema.monitor_key(coin, name)).addCallback(_field_map)
                  for name in (BLOCK, BLOCK_AUX)]

        def key_calls(user, worker, goal):
            out = [self._hmget(schema.share_key(coin, schema.SHARE_COUNT, user, worker), wminutes),
                   self._hmget(schema.share_key(coin, schema.SHARE_POW, user, worker), wminutes),
                   self._hmget(schema.share_key(coin, schema.SHARE_COUNT, user, worker, reject=True), wminutes)]
            if goal:
                out.append(self._hmget(schema.share_key(coin, schema.SHARE_GOAL, user), wminutes))
            return out

        users = sorted(users)
        for user in users:
            calls += key_calls(user, None, True)
        for user, worker in workers:
            calls += key_calls(user, worker, False)
        replies = yield defer.gatherResults(calls, consumeErrors=True)

        replies = iter(replies)
        monitor = {name: next(replies) for name in names}
        monitor[BLOCK] = next(replies)
        monitor[BLOCK_AUX] = next(replies)
        user_stats = {}
        for user in users:
            s, p, r, g = next(replies), next(replies), next(replies), next(replies)
            user_stats[user] = KeyStats(shares=s, pow=p, goal=g, rejects=r)
        worker_stats = {}
        for key in workers:
            s, p, r = next(replies), next(replies), next(replies)
            worker_stats[key] = KeyStats(shares=s, pow=p, rejects=r)
        return RawStats(
            now=now, coin=coin, minutes=minutes, worker_minutes=wminutes, monitor=monitor,
            users=user_stats, workers=worker_stats, blocks=tuple(_text(b) for b in blocks or ()),
            main_chain=self.main_chain, workers_total=workers_total,
        )
