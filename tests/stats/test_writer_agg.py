"""
Metawriter aggregation: scripted packets give exactly the seed's Redis commands
(ref §8.5), which are then applied to a real redis-server and read back.
"""

import hashlib
import itertools

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from tests.stats.seedbodies import seed_body
from tests.support import redis_server
from viabtc.stats import records
from viabtc.stats.records import (
    BlockRecord, EventRecord, MonitorFloatRecord, MonitorIntRecord, RecordError, ShareRecord,
    encode_bodies,
)
from viabtc.stats.writer_agg import APPLY_SCRIPT, Batch, WriterAggregator, once

T = 1482252540  # a minute start


def counter_random():
    """Distinct, predictable 'random' bytes: bodies never collide, ids are known."""
    counter = itertools.count(1)

    def random(n):
        return next(counter).to_bytes(n, "big")
    return random


def packet(command, recs, minute=None, random=None):
    [body] = encode_bodies(command, recs, random=random or counter_random(), minute=minute)
    return body


def apply(server, batch):
    """Apply one batch to a real Redis the way the metawriter does."""
    return server.command("EVAL", APPLY_SCRIPT, 1, batch.guard_key, *batch.script_args())


def hgetall(server, key):
    flat = server.command("HGETALL", key)
    return dict(zip(flat[::2], flat[1::2]))


def smembers(server, key):
    return set(server.command("SMEMBERS", key))


class ScriptedFlushTests(unittest.TestCase):
    """One minute of mixed seed (unstamped) and stamped packets."""

    def setUp(self):
        self.random = counter_random()
        self.writer = WriterAggregator(random=lambda n: b"\xab" * n)
        r = self.random
        w = self.writer
        now = T + 20
        # A C gateway's bodies: no stamp, filed under the minute before the flush (T).
        w.receive(records.META_SHARE, packet(records.META_SHARE, [
            ShareRecord("alice", "h1", "btc", 3, 3000, 0.5),
            ShareRecord("alice:rig1", "h1", "btc", 3, 3000, 0.0),
            ShareRecord("alice:reject", "h1", "btc", 1, 0, 0.0),
        ], random=r), now)
        w.receive(records.META_MONITOR_INT, packet(
            records.META_MONITOR_INT, [MonitorIntRecord("pow", "h1", "btc", 3000)], random=r), now)
        # Our gateway's bodies: stamped; bob's share is for the minute before.
        w.receive(records.META_SHARE, packet(
            records.META_SHARE, [ShareRecord("bob", "h2", "btc", 1, 16, 0.0)], T - 60, r), now)
        w.receive(records.META_SHARE, packet(
            records.META_SHARE, [ShareRecord("alice", "h2", "btc", 1, 100, 0.25)], T, r), now)
        w.receive(records.META_MONITOR_INT, packet(
            records.META_MONITOR_INT, [MonitorIntRecord("pow", "h2", "btc", 100)], T, r), now)
        w.receive(records.META_MONITOR_FLOAT, packet(
            records.META_MONITOR_FLOAT, [MonitorFloatRecord("goal", "h2", "btc", 0.25)], T, r), now)

    def expected(self):
        t, t0 = str(T), str(T - 60)
        return (
            ("SADD", "mining:keys", "btc:s:alice"), ("HINCRBY", "btc:s:alice", t, "4"),
            ("SADD", "mining:keys", "btc:p:alice"), ("HINCRBY", "btc:p:alice", t, "3100"),
            ("SADD", "mining:keys", "btc:g:alice"), ("HINCRBYFLOAT", "btc:g:alice", t, "0.75"),
            ("SADD", "mining:keys", "btc:s:alice:rig1"), ("HINCRBY", "btc:s:alice:rig1", t, "3"),
            ("SADD", "mining:keys", "btc:p:alice:rig1"), ("HINCRBY", "btc:p:alice:rig1", t, "3000"),
            ("SADD", "mining:keys", "btc:s:alice:reject"), ("HINCRBY", "btc:s:alice:reject", t, "1"),
            ("SADD", "mining:keys", "btc:s:bob"), ("HINCRBY", "btc:s:bob", t0, "1"),
            ("SADD", "mining:keys", "btc:p:bob"), ("HINCRBY", "btc:p:bob", t0, "16"),
            ("HINCRBY", "btc:m:pow", t, "3000"), ("HINCRBY", "btc:mh:h1:pow", t, "3000"),
            ("SADD", "btc:mk:pow", "h1"), ("SADD", "monitor:keys", "btc:m:pow"),
            ("HINCRBY", "btc:m:pow", t, "100"), ("HINCRBY", "btc:mh:h2:pow", t, "100"),
            ("SADD", "btc:mk:pow", "h2"), ("SADD", "monitor:keys", "btc:m:pow"),
            ("HINCRBYFLOAT", "btc:m:goal", t, "0.25"), ("HINCRBYFLOAT", "btc:mh:h2:goal", t, "0.25"),
            ("SADD", "btc:mk:goal", "h2"), ("SADD", "monitor:keys", "btc:m:goal"),
        )

    def test_exact_commands(self):
        [batch] = self.writer.flush(T + 61)
        self.assertEqual(batch, Batch("ab" * 16, self.expected()))
        self.assertEqual(self.writer.flush(T + 62), [])

    def test_applied_to_real_redis(self):
        server = redis_server(self)
        [batch] = self.writer.flush(T + 61)
        self.assertEqual(apply(server, batch), [1, 0, ""])
        t, t0 = str(T), str(T - 60)
        expected_hashes = {
            "btc:s:alice": {t: "4"}, "btc:p:alice": {t: "3100"}, "btc:g:alice": {t: "0.75"},
            "btc:s:alice:rig1": {t: "3"}, "btc:p:alice:rig1": {t: "3000"},
            "btc:s:alice:reject": {t: "1"}, "btc:s:bob": {t0: "1"}, "btc:p:bob": {t0: "16"},
            "btc:m:pow": {t: "3100"}, "btc:mh:h1:pow": {t: "3000"}, "btc:mh:h2:pow": {t: "100"},
            "btc:m:goal": {t: "0.25"}, "btc:mh:h2:goal": {t: "0.25"},
        }
        expected_sets = {
            "mining:keys": {"btc:s:alice", "btc:p:alice", "btc:g:alice", "btc:s:alice:rig1",
                            "btc:p:alice:rig1", "btc:s:alice:reject", "btc:s:bob", "btc:p:bob"},
            "monitor:keys": {"btc:m:pow", "btc:m:goal"},
            "btc:mk:pow": {"h1", "h2"}, "btc:mk:goal": {"h2"},
        }
        for key, value in expected_hashes.items():
            self.assertEqual(hgetall(server, key), value, key)
        for key, value in expected_sets.items():
            self.assertEqual(smembers(server, key), value, key)
        keys = set(server.command("KEYS", "*"))
        self.assertEqual(keys, set(expected_hashes) | set(expected_sets) | {batch.guard_key})
        self.assertEqual(server.command("TTL", "btc:s:alice"), -1)  # no retention by default

    def test_replay_counts_once(self):
        """Re-sending a batch after an unknown outcome changes nothing."""
        server = redis_server(self)
        [batch] = self.writer.flush(T + 61)
        apply(server, batch)
        self.assertEqual(apply(server, batch), [0, 0, ""])
        self.assertEqual(hgetall(server, "btc:s:alice"), {str(T): "4"})
        self.assertGreater(server.command("TTL", batch.guard_key), 0)

    def test_failing_command_does_not_stop_the_batch(self):
        server = redis_server(self)
        server.command("SET", "btc:s:alice", "not a hash")
        [batch] = self.writer.flush(T + 61)
        applied, errors, first = apply(server, batch)
        self.assertEqual((applied, errors), (1, 1))
        self.assertIn("WRONGTYPE", first)
        self.assertEqual(hgetall(server, "btc:p:alice"), {str(T): "3100"})


class ThrottleAndRetentionTests(unittest.TestCase):
    def share_packet(self, random, minute=None, user="alice"):
        return packet(records.META_SHARE, [ShareRecord(user, "h", "btc", 1, 5, 0.0)], minute, random)

    def test_mining_keys_throttled_by_key_expire(self):
        r = counter_random()
        w = WriterAggregator(key_expire=3600, random=r)
        w.receive(records.META_SHARE, self.share_packet(r), T)
        first = w.flush(T + 60)[0].commands
        self.assertIn(("SADD", "mining:keys", "btc:s:alice"), first)
        w.receive(records.META_SHARE, self.share_packet(r), T + 70)
        self.assertEqual(w.flush(T + 120)[0].commands, (
            ("HINCRBY", "btc:s:alice", str(T + 60), "1"), ("HINCRBY", "btc:p:alice", str(T + 60), "5")))
        w.receive(records.META_SHARE, self.share_packet(r), T + 3700)
        again = w.flush(T + 3720)[0].commands
        self.assertEqual(again[0], ("SADD", "mining:keys", "btc:s:alice"))

    def test_retention_expires_written_keys(self):
        server = redis_server(self)
        r = counter_random()
        w = WriterAggregator(retention=7 * 86400, random=r)
        w.receive(records.META_SHARE, self.share_packet(r, T), T + 61)
        w.receive(records.META_MONITOR_INT, packet(
            records.META_MONITOR_INT, [MonitorIntRecord("share", "h", "btc", 1)], T, r), T + 61)
        [batch] = w.flush(T + 62)
        ttl = str(7 * 86400)
        self.assertEqual(batch.commands[-5:], (
            ("EXPIRE", "btc:s:alice", ttl), ("EXPIRE", "btc:p:alice", ttl),
            ("EXPIRE", "btc:m:share", ttl), ("EXPIRE", "btc:mh:h:share", ttl),
            ("EXPIRE", "btc:mk:share", ttl),
        ))
        apply(server, batch)
        for key in ("btc:s:alice", "btc:p:alice", "btc:m:share", "btc:mh:h:share", "btc:mk:share"):
            self.assertGreater(server.command("TTL", key), 7 * 86400 - 60, key)
        self.assertEqual(server.command("TTL", "mining:keys"), -1)
        self.assertEqual(server.command("TTL", "monitor:keys"), -1)

    def test_large_flush_split_into_guarded_batches(self):
        r = counter_random()
        w = WriterAggregator(max_batch_commands=100, random=r)
        recs = [ShareRecord("u%03d" % i, "h", "btc", 1, 0, 0.0) for i in range(120)]
        for body in encode_bodies(records.META_SHARE, recs, random=r, minute=T):
            w.receive(records.META_SHARE, body, T + 61)
        batches = w.flush(T + 62)
        self.assertEqual([len(b.commands) for b in batches], [100, 100, 40])
        self.assertEqual(len({b.guard_key for b in batches}), 3)

    def test_own_metric(self):
        """The writer's own meta_flush_cost goes through add()."""
        w = WriterAggregator(random=counter_random())
        w.add(MonitorIntRecord("meta_flush_cost", "mw1", "job", 3), T)
        [batch] = w.flush(T + 61)
        self.assertEqual(batch.commands[0], ("HINCRBY", "job:m:meta_flush_cost", str(T), "3"))
        self.assertRaises(RecordError, w.add, BlockRecord("a", "b", "c", "d"))


class DedupeTests(unittest.TestCase):
    def test_retransmission_dropped(self):
        w = WriterAggregator(random=counter_random())
        body = packet(records.META_SHARE, [ShareRecord("alice", "h", "btc", 1, 5, 0.0)], T)
        first = w.receive(records.META_SHARE, body, T + 61)
        self.assertEqual((first.duplicate, first.digest), (False, hashlib.sha256(body).digest()))
        self.assertTrue(w.receive(records.META_SHARE, body, T + 62).duplicate)
        [batch] = w.flush(T + 63)
        self.assertIn(("HINCRBY", "btc:s:alice", str(T), "1"), batch.commands)

    def test_expiry_after_dup_timeout(self):
        w = WriterAggregator(dup_timeout=3600, random=counter_random())
        body = packet(records.META_SHARE, [ShareRecord("alice", "h", "btc", 1, 5, 0.0)], T)
        w.receive(records.META_SHARE, body, T)
        w.flush(T + 3600)
        self.assertTrue(w.receive(records.META_SHARE, body, T + 3600).duplicate)
        w.flush(T + 3601)
        self.assertEqual(len(w.dedupe), 0)
        self.assertFalse(w.receive(records.META_SHARE, body, T + 3601).duplicate)

    def test_bounded(self):
        w = WriterAggregator(dedupe_limit=10, random=counter_random())
        r = counter_random()
        for i in range(25):
            w.receive(records.META_MONITOR_INT, packet(
                records.META_MONITOR_INT, [MonitorIntRecord("k", "h", "btc", 1)], random=r), T + i)
        self.assertEqual(len(w.dedupe), 10)

    def test_brother_hash(self):
        """A cmd 104 from the brother marks the body as done here without counting it."""
        w = WriterAggregator(random=counter_random())
        body = packet(records.META_BLOCK, [BlockRecord("a", "b", "BTC", "00")])
        w.receive(records.META_HASH, hashlib.sha256(body).digest(), T)
        self.assertTrue(w.receive(records.META_BLOCK, body, T).duplicate)
        self.assertRaises(RecordError, w.receive, records.META_HASH, b"short", T)

    def test_unreadable_not_remembered(self):
        w = WriterAggregator(random=counter_random())
        body = packet(records.META_SHARE, [ShareRecord("alice", "h", "btc", 1, 5, 0.0)])
        stamped = b"VBTCmin\x01" + (61).to_bytes(8, "little") + body[16:]
        for command, data in ((records.META_SHARE, body[:31]), (103, body), (records.META_SHARE, stamped)):
            self.assertRaises(RecordError, w.receive, command, data, T)
            self.assertRaises(RecordError, w.receive, command, data, T)
        self.assertEqual((len(w.dedupe), w.flush(T + 60)), (0, []))

    def test_torn_body_keeps_the_records_before(self):
        """A torn tail ends the body; what came before counts, once."""
        w = WriterAggregator(random=counter_random())
        body = packet(records.META_SHARE, [ShareRecord("alice", "h", "btc", 1, 5, 0.0)]) + b"\x05"
        receipt = w.receive(records.META_SHARE, body, T)
        self.assertEqual((receipt.count, receipt.error), (1, "truncated string at offset 55"))
        self.assertTrue(w.receive(records.META_SHARE, body, T).duplicate)
        [batch] = w.flush(T + 60)
        self.assertIn(("HINCRBY", "btc:s:alice", str(T), "1"), batch.commands)


class EventTests(unittest.TestCase):
    def test_block(self):
        w = WriterAggregator(random=counter_random())
        body = packet(records.META_BLOCK, [BlockRecord("alice", "rig1", "BTC", "00ff")])
        receipt = w.receive(records.META_BLOCK, body, T)
        self.assertEqual(receipt.batch, Batch(receipt.digest.hex(), (
            ("RPUSH", "newblock", '{"user": "alice", "worker": "rig1", "name": "BTC", "hash": "00ff"}'),
        )))

    def test_event_batch_replay_safe(self):
        server = redis_server(self)
        w = WriterAggregator(random=counter_random())
        body = packet(records.META_BLOCK, [BlockRecord("alice", "rig1", "BTC", "00ff")])
        batch = w.receive(records.META_BLOCK, body, T).batch
        apply(server, batch)
        apply(server, batch)
        self.assertEqual(server.command("LLEN", "newblock"), 1)


NEWWORKER = '{"user": "alice", "worker": "rig1", "coin": "btc"}'
GUARD = "viabtc:newworker:btc:alice:rig1"


def connected_json(user="alice", worker="rig1", coin="btc", event="connected"):
    return ('{"user": "%s", "worker": "%s", "coin": "%s", "peer": "1.2.3.4", "event": "%s"}'
            % (user, worker, coin, event))


class NewworkerTests(unittest.TestCase):
    """
    One ``newworker`` entry per (user, worker, coin) per hour, kept by a guard
    key in a real Redis: it holds for a fresh aggregator (a restarted
    metawriter) and between brother metawriters as well as within one.
    Redis's clock cannot be moved, so an hour passing in Redis is played by
    deleting the guard key, which is what its expiry does.
    """

    def setUp(self):
        self.server = redis_server(self)
        self.random = counter_random()

    def aggregator(self, **kw):
        return WriterAggregator(random=self.random, **kw)

    def event(self, w, now, kind="connected", user="alice", worker="rig1", coin="btc"):
        """One cmd-101 packet through ``w``, its batch applied; returns the batch's commands."""
        body = packet(records.META_EVENT, [EventRecord(user, worker, coin, "1.2.3.4", kind)], random=self.random)
        batch = w.receive(records.META_EVENT, body, now).batch
        apply(self.server, batch)
        return batch.commands

    def lists(self):
        return (self.server.command("LRANGE", "newworker", 0, -1),
                self.server.command("LLEN", "newevent"))

    def test_commands_guard_the_entry_in_redis(self):
        w = self.aggregator()
        self.assertEqual(self.event(w, T), (
            ("@once", GUARD, "3600", "RPUSH", "newworker", NEWWORKER),
            ("RPUSH", "newevent", connected_json()),
        ))
        self.assertEqual(self.server.command("GET", GUARD), "1")
        self.assertTrue(3590 <= self.server.command("TTL", GUARD) <= 3600)
        self.assertEqual(self.lists(), ([NEWWORKER], 1))

    def test_newworker_at_most_hourly(self):
        w = self.aggregator()
        self.assertEqual(len(self.event(w, T)), 2)
        self.assertEqual(self.event(w, T + 10, "disconnected")[0][1], "newevent")
        # Within the hour the in-memory pre-filter spares Redis the guarded command.
        self.assertEqual(self.event(w, T + 20), (("RPUSH", "newevent", connected_json()),))
        self.assertEqual(len(self.event(w, T + 30, worker="rig2")), 2)
        w.flush(T + 3599)
        self.assertEqual(len(self.event(w, T + 3599)), 1)
        w.flush(T + 3601)  # forgets workers not announced for an hour
        self.server.command("DEL", GUARD)  # and so does Redis
        self.assertEqual(len(self.event(w, T + 3601)), 2)
        self.assertEqual(self.lists(), (
            [NEWWORKER, '{"user": "alice", "worker": "rig2", "coin": "btc"}', NEWWORKER], 6))

    def test_restarted_aggregator_does_not_announce_a_known_worker_again(self):
        before = self.aggregator()
        self.event(before, T)
        before.flush(T + 60)
        # The metawriter restarts: a fresh aggregator, the same Redis.
        after = self.aggregator()
        commands = self.event(after, T + 1800)
        self.assertEqual(commands[0][:2], ("@once", GUARD))
        self.assertEqual(self.lists(), ([NEWWORKER], 2))
        # The refused guard was not renewed: it still ends an hour after the entry.
        self.assertLessEqual(self.server.command("TTL", GUARD), 3600)
        # Another worker of the same user is new, after the restart as before.
        self.event(after, T + 1801, worker="rig2")
        self.assertEqual(self.lists()[0], [NEWWORKER, '{"user": "alice", "worker": "rig2", "coin": "btc"}'])

    def test_restarted_aggregator_announces_again_after_the_hour(self):
        self.event(self.aggregator(), T)
        self.server.command("DEL", GUARD)
        self.event(self.aggregator(), T + 3700)
        self.assertEqual(self.lists(), ([NEWWORKER, NEWWORKER], 2))

    def test_brothers_share_the_rule(self):
        a, b = self.aggregator(), self.aggregator()
        self.event(a, T)
        self.event(b, T + 5)
        self.event(a, T + 6, worker="rig2")
        self.event(b, T + 7, worker="rig2")
        # The same worker on another coin is another worker.
        self.event(b, T + 8, coin="bch")
        self.assertEqual(self.lists(), ([
            NEWWORKER, '{"user": "alice", "worker": "rig2", "coin": "btc"}',
            '{"user": "alice", "worker": "rig1", "coin": "bch"}'], 5))

    def test_replayed_event_batch_sets_nothing_twice(self):
        w = self.aggregator()
        body = packet(records.META_EVENT, [EventRecord("alice", "rig1", "btc", "1.2.3.4", "connected")],
                      random=self.random)
        batch = w.receive(records.META_EVENT, body, T).batch
        self.assertEqual([int(x) for x in apply(self.server, batch)[:2]], [1, 0])
        self.server.command("DEL", GUARD)
        # The batch guard alone stops a re-sent batch, guarded commands included.
        self.assertEqual([int(x) for x in apply(self.server, batch)[:2]], [0, 0])
        self.assertEqual(self.lists(), ([NEWWORKER], 1))

    def test_failing_guard_skips_its_command_and_is_counted(self):
        batch = Batch("cd" * 16, (
            once(GUARD, "not-a-number", ("RPUSH", "newworker", NEWWORKER)),
            ("RPUSH", "newevent", connected_json()),
        ))
        applied, errors, first = apply(self.server, batch)
        self.assertEqual((int(applied), int(errors)), (1, 1))
        self.assertIn("not an integer", first)
        self.assertEqual(self.lists(), ([], 1))

    def test_worker_save_time_is_whole_seconds(self):
        for bad in (0, -1, 3600.0, "3600", None):
            self.assertRaises(ValueError, WriterAggregator, worker_save_time=bad)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.tuples(
        st.integers(0, 2),  # which writer: 0 and 1 are brothers; 2 restarts the first
        st.sampled_from([("alice", "rig1", "btc"), ("alice", "rig2", "btc"), ("bob", "rig1", "btc"),
                         ("alice", "rig1", "bch")]),
        st.sampled_from(["connected", "disconnected"]),
        st.integers(0, 60),  # seconds since the previous event
    ), max_size=30))
    def test_one_entry_per_worker_within_the_hour_whatever_restarts(self, steps):
        """
        Events within one hour, spread over two brother writers, one of
        which restarts at random: each worker that connected has exactly one
        ``newworker`` entry, in the order of first connection, and every
        event has its ``newevent`` entry.
        """
        self.server.command("FLUSHALL")
        writers = [self.aggregator(), self.aggregator()]
        now = T
        first_seen = []
        for which, (user, worker, coin), kind, gap in steps:
            now += gap
            if which == 2:
                writers[0] = self.aggregator()
                which = 0
            self.event(writers[which], now, kind, user, worker, coin)
            if kind == "connected" and (user, worker, coin) not in first_seen:
                first_seen.append((user, worker, coin))
        self.assertEqual(self.lists(), (
            ['{"user": "%s", "worker": "%s", "coin": "%s"}' % ident for ident in first_seen], len(steps)))


# Values a C gateway can put in a record (issue 17): huge varints are its
# negative int64 counts; doubles NaN, infinite, negative or beyond any count.
BAD_COUNTS = st.integers(min_value=2**63, max_value=2**64 - 1)
BAD_DOUBLES = st.sampled_from([float("nan"), float("inf"), float("-inf")]) | st.floats(
    min_value=-1e300, max_value=-1e-300) | st.floats(min_value=1e97, max_value=1e300)
GOOD_COUNTS = st.integers(min_value=1, max_value=2**40)
GOOD_DOUBLES = st.floats(min_value=1e-6, max_value=1e12)


@st.composite
def seed_rows(draw):
    """
    ``(command, rows, expected)``: records of one command, good and bad side
    by side under distinct keys, and what each must leave in Redis
    (``{field name: value}``, the bad values and zeros absent).
    """
    command = draw(st.sampled_from([records.META_SHARE, records.META_MONITOR_INT, records.META_MONITOR_FLOAT]))
    rows, expected = [], []
    for i in range(draw(st.integers(min_value=1, max_value=12))):
        bad = draw(st.booleans())
        key = f"u{i}"
        if command == records.META_SHARE:
            values = {"num": draw(GOOD_COUNTS), "pow": draw(GOOD_COUNTS), "goal": draw(GOOD_DOUBLES)}
            spoilt = draw(st.sets(st.sampled_from(sorted(values)), min_size=1)) if bad else set()
            wire = dict(values)
            for name in spoilt:
                wire[name] = draw(BAD_DOUBLES if name == "goal" else BAD_COUNTS)
            rows.append((key, "c-gw", "btc", wire["num"], wire["pow"], wire["goal"]))
        else:
            values = {"sum": draw(GOOD_COUNTS if command == records.META_MONITOR_INT else GOOD_DOUBLES)}
            spoilt = {"sum"} if bad else set()
            wire = {"sum": draw(BAD_COUNTS if command == records.META_MONITOR_INT else BAD_DOUBLES)} if bad else values
            rows.append((key, "c-gw", "btc", wire["sum"]))
        expected.append((key, {name: v for name, v in values.items() if name not in spoilt}))
    return command, rows, expected


class SeedBodyTests(unittest.TestCase):
    """A C gateway's bodies with impossible values beside good ones, applied to a real Redis."""

    def setUp(self):
        self.server = redis_server(self)

    def stored(self, command, key):
        """What Redis holds for record ``key`` under minute T, by record field name."""
        if command == records.META_SHARE:
            names = {"num": "btc:s:", "pow": "btc:p:", "goal": "btc:g:"}
        else:
            names = {"sum": "btc:m:"}
        out = {}
        for name, prefix in names.items():
            value = hgetall(self.server, prefix + key).pop(str(T), None)
            if value is not None:
                out[name] = value
        if command != records.META_SHARE:
            self.assertEqual(hgetall(self.server, "btc:mh:c-gw:" + key).get(str(T)), out.get("sum"))
        return out

    @given(seed_rows(), st.integers(min_value=0, max_value=3))
    @settings(max_examples=60, deadline=None)
    def test_every_good_value_applied_exactly_once(self, case, resends):
        command, rows, expected = case
        self.server.command("FLUSHDB")
        w = WriterAggregator(random=counter_random())
        body = seed_body(command, rows, prefix=bytes(32))
        receipts = [w.receive(command, body, T + 20 + i) for i in range(1 + resends)]
        self.assertEqual([r.duplicate for r in receipts], [False] + [True] * resends)
        spoilt = len(rows) * (3 if command == records.META_SHARE else 1) - sum(len(v) for _, v in expected)
        self.assertEqual((receipts[0].count, len(receipts[0].faults)), (len(rows), spoilt))
        for batch in w.flush(T + 61):
            self.assertEqual(apply(self.server, batch), [1, 0, ""])
        for key, values in expected:
            stored = self.stored(command, key)
            self.assertEqual(set(stored), set(values), key)
            for name, value in values.items():
                if isinstance(value, float):
                    self.assertAlmostEqual(float(stored[name]) / value, 1.0, places=12)
                else:
                    self.assertEqual(stored[name], str(value))
