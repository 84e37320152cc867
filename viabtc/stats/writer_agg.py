# -*- test-case-name: tests.stats.test_writer_agg -*-
"""
The metawriter's side of the statistics path (ref §8.3-8.5): drop
retransmitted packets, sum records per Redis minute field, and turn them into
the exact Redis commands the seed writes, grouped in replay-safe batches.

Minute field.  A body stamped by our gateways (``records.body_minute``) is
filed under its stamped minute, whenever it arrives.  A seed body carries no
minute and keeps the seed's rule: it is filed under the start of the minute
before the flush that writes it.

Replay safety.  The seed sends each command on its own and retries it
forever, so a command whose reply was lost may be counted twice.  Here the
commands of one flush (or of one block/event packet) form a ``Batch``,
produced once and applied as a unit by ``APPLY_SCRIPT``: one Lua script that
first does ``SET <guard> 1 NX EX <ttl>`` and runs the commands only if that
SET succeeded.  A script runs atomically, so re-sending the same batch after an
unknown outcome (timeout, dropped connection) applies it at most once, with no
read-then-write race between checking a marker and re-applying.  Large flushes
are cut into several batches, each with its own guard, so no single script
blocks Redis for long.

Once per hour.  The seed's ``newworker`` rule (one entry per worker per hour)
is kept in Redis too, by a guarded command inside the same script (``once``),
so a restart (the journal replays only what the last flush did not cover) or a
brother metawriter does not announce a known worker a second time.
"""

import hashlib
import os

import attrs

from viabtc.stats import records, schema
from viabtc.stats.gateway_agg import FLOAT_EPSILON, minute_start

DUP_TIMEOUT = 3600
KEY_EXPIRE = 3600
WORKER_SAVE_TIME = 3600
GUARD_TTL = 86400
MAX_BATCH_COMMANDS = 10000
DEDUPE_LIMIT = 2_000_000

ONCE = "@once"

APPLY_SCRIPT = """\
-- KEYS[1]: replay guard; ARGV[1]: guard ttl; then per command: argc, args...
-- A command '@once', key, ttl, args... runs args only if SET key 1 NX EX ttl succeeds.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return {0, 0, ''}
end
local errors, first = 0, ''
local function failed(reply)
  if type(reply) == 'table' and reply.err then
    errors = errors + 1
    if first == '' then first = reply.err end
    return true
  end
  return false
end
local i, n = 2, #ARGV
while i <= n do
  local start, stop = i + 1, i + tonumber(ARGV[i])
  local run = true
  if ARGV[start] == '@once' then
    local set = redis.pcall('SET', ARGV[start + 1], '1', 'NX', 'EX', ARGV[start + 2])
    run = set and not failed(set)
    start = start + 3
  end
  if run then
    failed(redis.pcall(unpack(ARGV, start, stop)))
  end
  i = stop + 1
end
return {1, errors, first}
"""
"""
Apply one ``Batch``: ``EVAL APPLY_SCRIPT 1 <guard_key> <script_args...>``.
Replies ``[1, errors, first_error]`` when applied, ``[0, 0, ""]`` when the
guard shows the batch was applied before.  A command that fails inside (e.g.
WRONGTYPE on a key someone else wrote) does not stop the others, exactly like
MULTI/EXEC; the count and first message are for the caller's log.

A command built by ``once`` is conditional: it runs only if its own key could
be set (``SET key 1 NX EX ttl``), in the same atomic script.  That is how a
rule such as "one ``newworker`` entry per worker per hour" holds across
metawriter restarts and brother metawriters: Redis, not one process's memory,
remembers the last entry.
"""


def once(key, ttl, command):
    """``command`` run only if ``SET key 1 NX EX ttl`` succeeds (see ``APPLY_SCRIPT``)."""
    return (ONCE, key, str(ttl)) + tuple(command)


@attrs.frozen
class Batch:
    """
    Redis commands applied together, at most once (see ``APPLY_SCRIPT``).
    Each command is a tuple of strings: a Redis command, or one built by
    ``once``.
    """

    batch_id: str
    commands: tuple
    guard_ttl: int = GUARD_TTL

    @property
    def guard_key(self):
        return schema.apply_guard_key(self.batch_id)

    def script_args(self):
        """ARGV for ``APPLY_SCRIPT``: the guard ttl, then argc and args per command."""
        args = [str(self.guard_ttl)]
        for command in self.commands:
            args.append(str(len(command)))
            args.extend(command)
        return args


@attrs.frozen
class Receipt:
    """
    What ``WriterAggregator.receive`` did with one packet.

    ``duplicate``: already seen, nothing done.  ``digest``: the SHA-256 of
    the body, to pass to a brother metawriter (cmd 104) when the packet was
    fresh and not itself a cmd 104.  ``batch``: block/event commands to write
    now, or ``None``.  ``faults``: the values (``records.Fault``) dropped
    from its records; ``error``: why the body ended before its last byte, or
    ``None`` (``records.read_body``); ``count``: the records counted.
    """

    digest: bytes
    duplicate: bool
    batch: Batch | None = None
    faults: tuple = ()
    error: str | None = None
    count: int = 0


class Deduper:
    """
    SHA-256 digests of processed bodies, each kept ``timeout`` seconds and at
    most ``limit`` of them (the oldest go first), so memory stays bounded under
    any packet rate.
    """

    def __init__(self, timeout=DUP_TIMEOUT, limit=DEDUPE_LIMIT):
        self.timeout = timeout
        self.limit = limit
        self._seen = {}

    def __len__(self):
        return len(self._seen)

    def __contains__(self, digest):
        return digest in self._seen

    def add(self, digest, now):
        seen = self._seen
        seen[digest] = now
        while len(seen) > self.limit:
            del seen[next(iter(seen))]

    def expire(self, now):
        """Forget digests older than ``timeout`` (oldest are first in the dict)."""
        seen = self._seen
        deadline = now - self.timeout
        while seen:
            digest = next(iter(seen))
            if seen[digest] >= deadline:
                break
            del seen[digest]


def _nonzero_float(value):
    """The seed's test for a float worth writing."""
    return abs(value) > FLOAT_EPSILON


class WriterAggregator:
    """
    The metawriter's aggregation state.  Feed packets to ``receive`` (or own
    records to ``add``); call ``flush`` once a minute, soon after the minute
    starts, and apply its batches in order.

    ``retention``: seconds after the last write at which stats keys expire
    (``EXPIRE``), or ``None`` to keep them forever as the seed does.
    """

    def __init__(self, key_expire=KEY_EXPIRE, dup_timeout=DUP_TIMEOUT, retention=None,
                 guard_ttl=GUARD_TTL, worker_save_time=WORKER_SAVE_TIME,
                 max_batch_commands=MAX_BATCH_COMMANDS, dedupe_limit=DEDUPE_LIMIT,
                 random=os.urandom):
        if type(worker_save_time) is not int or worker_save_time <= 0:
            # It becomes a Redis EX argument, which takes whole seconds only.
            raise ValueError("worker_save_time must be a positive integer, got %r" % (worker_save_time,))
        self.key_expire = key_expire
        self.retention = retention
        self.guard_ttl = guard_ttl
        self.worker_save_time = worker_save_time
        self.max_batch_commands = max_batch_commands
        self.dedupe = Deduper(dup_timeout, dedupe_limit)
        self._random = random
        # (minute or None, coin, key) -> [num, pow, goal]
        self._shares = {}
        # (minute or None, coin, host, key) -> sum
        self._ints = {}
        self._floats = {}
        # mining:keys member -> time of its last SADD
        self._mining_keys = {}
        # (user, worker, coin) -> time of its last guarded newworker command
        self._workers = {}

    def receive(self, command, body, now):
        """
        Process one stats packet body, record by record (``records.read_body``):
        an impossible value costs only itself, broken framing only what
        follows it, and the receipt says what was dropped.  Raises
        ``records.RecordError`` for an unknown command, a body shorter than
        its prefix or torn before its first record, an impossible minute
        stamp or a cmd 104 that is not a hash; such a body is not remembered,
        so nothing of it was counted.
        """
        body = bytes(body)
        if command == records.META_HASH:
            if len(body) != 32:
                raise records.RecordError("cmd 104 body must be a 32-byte hash, got %d bytes" % len(body))
            self.dedupe.add(body, now)
            return Receipt(body, False)
        digest = hashlib.sha256(body).digest()
        if digest in self.dedupe:
            return Receipt(digest, True)
        read = records.read_body(command, body)
        if read.error is not None and not read.records:
            raise records.RecordError(read.error)
        recs = read.records
        batch = None
        if command == records.META_BLOCK:
            batch = self._batch(digest.hex(), [
                ("RPUSH", schema.NEWBLOCK, schema.block_json(r.user, r.worker, r.name, r.hash))
                for r in recs
            ])
        elif command == records.META_EVENT:
            batch = self._batch(digest.hex(), self._event_commands(recs, now))
        else:
            minute = records.body_minute(body)
            for record in recs:
                self.add(record, minute)
        self.dedupe.add(digest, now)
        return Receipt(digest, False, batch, read.faults, read.error, len(recs))

    def _event_commands(self, recs, now):
        """
        ``newevent`` for each record, and for a ``connected`` one a
        ``newworker`` entry guarded in Redis (``once``): the guard key lives
        ``worker_save_time`` seconds, so a worker announced by this process
        before a restart, or by a brother metawriter, is not announced again
        within that time.  ``_workers`` is only a pre-filter that spares
        Redis the guarded command when this process itself sent one less
        than ``worker_save_time`` ago; it can only suppress entries the
        guard would refuse, or delay one to at most ``worker_save_time``
        after this process's last try.
        """
        commands = []
        workers = self._workers
        for r in recs:
            if r.event == "connected":
                ident = (r.user, r.worker, r.coin)
                last = workers.get(ident)
                if last is None or now - last >= self.worker_save_time:
                    workers[ident] = now
                    commands.append(once(
                        schema.newworker_guard_key(r.coin, r.user, r.worker), self.worker_save_time,
                        ("RPUSH", schema.NEWWORKER, schema.worker_json(r.user, r.worker, r.coin))))
            commands.append(("RPUSH", schema.NEWEVENT,
                             schema.event_json(r.user, r.worker, r.coin, r.peer, r.event)))
        return commands

    def add(self, record, minute=None):
        """
        Count one share or monitor record under ``minute`` (a minute start),
        or, with ``None``, under the minute before the next flush.
        """
        if type(record) is records.ShareRecord:
            ident = (minute, record.coin, record.key)
            entry = self._shares.get(ident)
            if entry is None:
                self._shares[ident] = [record.num, record.pow, record.goal]
            else:
                entry[0] += record.num
                entry[1] += record.pow
                entry[2] += record.goal
        elif type(record) is records.MonitorIntRecord:
            ident = (minute, record.coin, record.host, record.key)
            self._ints[ident] = self._ints.get(ident, 0) + record.sum
        elif type(record) is records.MonitorFloatRecord:
            ident = (minute, record.coin, record.host, record.key)
            self._floats[ident] = self._floats.get(ident, 0.0) + record.sum
        else:
            raise records.RecordError("not a share or monitor record: %r" % (record,))

    def flush(self, now):
        """
        Every count held so far as Redis commands (ref §8.5), cut into
        batches of at most ``max_batch_commands``; the counts are forgotten.
        Also expires old dedupe digests and throttling entries.
        """
        field_now = minute_start(now) - 60
        commands = []
        written = {}
        self._flush_shares(commands, written, field_now, now)
        self._flush_monitors(commands, written, field_now)
        if self.retention is not None:
            ttl = str(self.retention)
            commands.extend(("EXPIRE", key, ttl) for key in written)
        self._expire(now)
        step = self.max_batch_commands
        return [
            self._batch(self._random(16).hex(), commands[i:i + step])
            for i in range(0, len(commands), step)
        ]

    def _batch(self, batch_id, commands):
        if not commands:
            return None
        return Batch(batch_id, tuple(commands), self.guard_ttl)

    def _sadd_mining_key(self, commands, key, now):
        last = self._mining_keys.get(key)
        if last is None or now - last > self.key_expire:
            self._mining_keys[key] = now
            commands.append(("SADD", schema.MINING_KEYS, key))

    def _flush_shares(self, commands, written, field_now, now):
        merged = {}
        for (minute, coin, key), (num, pow_, goal) in self._shares.items():
            ident = (field_now if minute is None else minute, coin, key)
            entry = merged.get(ident)
            if entry is None:
                merged[ident] = [num, pow_, goal]
            else:
                entry[0] += num
                entry[1] += pow_
                entry[2] += goal
        self._shares = {}
        for (field, coin, key), (num, pow_, goal) in merged.items():
            field = str(field)
            if num:
                hkey = schema.share_hash_key(coin, schema.SHARE_COUNT, key)
                self._sadd_mining_key(commands, hkey, now)
                commands.append(("HINCRBY", hkey, field, str(num)))
                written[hkey] = None
            # Without a count only when a record's count was dropped
            # (``records.check_record``): its pow and goal still count.
            if pow_:
                hkey = schema.share_hash_key(coin, schema.SHARE_POW, key)
                self._sadd_mining_key(commands, hkey, now)
                commands.append(("HINCRBY", hkey, field, str(pow_)))
                written[hkey] = None
            if abs(goal) > FLOAT_EPSILON:
                hkey = schema.share_hash_key(coin, schema.SHARE_GOAL, key)
                self._sadd_mining_key(commands, hkey, now)
                commands.append(("HINCRBYFLOAT", hkey, field, schema.format_float(goal)))
                written[hkey] = None

    def _flush_monitors(self, commands, written, field_now):
        for values, verb, keep, fmt in (
            (self._ints, "HINCRBY", bool, str),
            (self._floats, "HINCRBYFLOAT", _nonzero_float, schema.format_float),
        ):
            merged = {}
            for (minute, coin, host, key), value in values.items():
                ident = (field_now if minute is None else minute, coin, host, key)
                merged[ident] = merged.get(ident, 0) + value
            values.clear()
            for (field, coin, host, key), value in merged.items():
                if not keep(value):
                    continue
                field = str(field)
                total = schema.monitor_key(coin, key)
                per_host = schema.monitor_host_key(coin, host, key)
                hosts = schema.monitor_hosts_key(coin, key)
                text = fmt(value)
                commands.append((verb, total, field, text))
                commands.append((verb, per_host, field, text))
                commands.append(("SADD", hosts, host))
                commands.append(("SADD", schema.MONITOR_KEYS, total))
                written[total] = written[per_host] = written[hosts] = None

    def _expire(self, now):
        self.dedupe.expire(now)
        for table, age in ((self._mining_keys, self.key_expire), (self._workers, self.worker_save_time)):
            stale = [k for k, t in table.items() if now - t > age]
            for k in stale:
                del table[k]
