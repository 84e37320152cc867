"""Gateway per-minute aggregation: attribution, counters, zero entries, flushing."""

from twisted.trial import unittest

from viabtc.stats import records
from viabtc.stats.gateway_agg import MinuteAggregator, MinuteRecords
from viabtc.stats.records import MonitorFloatRecord, MonitorIntRecord, ShareRecord

T = 1482252540  # 12:49:00 UTC, a minute start


def agg():
    return MinuteAggregator("10.0.0.1", "btc")


def count(aggregator, user, worker, code, difficulty, goal, now):
    """One share as the seed's records name it: ``code`` 0 accepted, any other a reject of that code."""
    if code:
        aggregator.rejected(user, worker, code, now)
    else:
        aggregator.accepted(user, worker, difficulty, goal, now)


class CounterTests(unittest.TestCase):
    def test_valid_and_rejected_shares(self):
        """The counters of ref §4.9's table, for one minute."""
        a = agg()
        count(a, "alice", "rig1", 0, 1024, 0.25, T + 1)
        count(a, "alice", "rig1", 0, 2048, 0.5, T + 2)
        count(a, "alice", "rig2", 0, 16, 0.125, T + 3)
        count(a, "alice", "rig1", 23, 0, 0.0, T + 4)
        count(a, "bob", "x", 21, 0, 0.0, T + 5)
        count(a, "bob", "x", 23, 0, 0.0, T + 6)
        [minute] = a.flush(T + 60)
        H, C = "10.0.0.1", "btc"
        self.assertEqual(minute, MinuteRecords(
            T,
            (
                ShareRecord("alice", H, C, 3, 3088, 0.875),
                ShareRecord("alice:rig1", H, C, 2, 3072, 0.0),
                ShareRecord("alice:rig2", H, C, 1, 16, 0.0),
                ShareRecord("alice:reject", H, C, 1, 0, 0.0),
                ShareRecord("alice:rig1:reject", H, C, 1, 0, 0.0),
                ShareRecord("bob:reject", H, C, 2, 0, 0.0),
                ShareRecord("bob:x:reject", H, C, 2, 0, 0.0),
            ),
            (
                MonitorIntRecord("share", H, C, 3),
                MonitorIntRecord("pow", H, C, 3088),
                MonitorIntRecord("reject", H, C, 3),
                MonitorIntRecord("reject_23", H, C, 2),
                MonitorIntRecord("reject_21", H, C, 1),
            ),
            # pow_float: the same sum as pow, as a float (exact at fractional difficulties).
            (MonitorFloatRecord("goal", H, C, 0.875), MonitorFloatRecord("pow_float", H, C, 3088.0)),
        ))

    def test_exact_difficulty_goes_to_pow_float(self):
        a = agg()
        a.accepted("alice", "rig1", 0.001, 1e-9, T + 1)
        a.accepted("alice", "rig1", 0.001, 1e-9, T + 2)
        self.assertEqual(a.totals()[1]["pow_float"], 0.002)
        [minute] = a.flush(T + 60)
        floats = {r.key: r.sum for r in minute.monitor_floats}
        self.assertEqual(floats["pow_float"], 0.002)
        self.assertEqual(a.totals()[1]["pow_float"], 0.002)

    def test_fractions_carry_from_minute_to_minute(self):
        """A worker's fractional pow adds up over minutes; one without a share for a minute loses it."""
        a = agg()
        pows = []
        for minute in range(5):
            for second in range(3):
                a.accepted("alice", "rig1", 0.125, 0.0, T + 60 * minute + second)
                a.accepted("alice", "rig2", 0.5, 0.0, T + 60 * minute + second)
            a.accepted("bob", "x", 3, 0.0, T + 60 * minute)
            [records] = a.flush(T + 60 * minute + 60)
            pows.append({r.key: r.pow for r in records.shares})
        # rig1: 0.375 a minute, 1.875 after five, so 0, 0, 1, 0, 0; rig2: 1.5 a minute.
        self.assertEqual([p["alice:rig1"] for p in pows], [0, 0, 1, 0, 0])
        self.assertEqual([p["alice:rig2"] for p in pows], [1, 2, 1, 2, 1])
        self.assertEqual([p["alice"] for p in pows], [1, 2, 2, 2, 1])
        self.assertEqual([p["bob"] for p in pows], [3] * 5)
        a.accepted("alice", "rig1", 0.125, 0.0, T + 60 * 6)  # after a minute without: its 0.875 is gone
        [records] = a.flush(T + 60 * 7)
        self.assertEqual({r.key: r.pow for r in records.shares}, {"alice": 0, "alice:rig1": 0})
        self.assertEqual(a._carry, {("alice", "rig1"): (T + 360, 0.125)})

    def test_large_integral_pow_is_exact(self):
        a = agg()
        a.accepted("alice", "rig1", 2**60, 0.5, T)
        a.accepted("alice", "rig1", 3, 0.5, T)
        [minute] = a.flush(T + 60)
        self.assertEqual(minute.shares[0], ShareRecord("alice", "10.0.0.1", "btc", 2, 2**60 + 3, 1.0))

    def test_monitor_counters(self):
        a = agg()
        a.monitor("connection_new", 2, T)
        a.monitor("connection_new", 3, T + 30)
        a.monitor("share", 1, T + 30)  # merges with the share-derived counter
        a.monitor_float("temperature", 1.5, T + 30)
        [minute] = a.flush(T + 60)
        self.assertEqual(minute.monitor_ints, (
            MonitorIntRecord("share", "10.0.0.1", "btc", 1),
            MonitorIntRecord("connection_new", "10.0.0.1", "btc", 5),
        ))
        self.assertEqual(minute.monitor_floats, (MonitorFloatRecord("temperature", "10.0.0.1", "btc", 1.5),))

    def test_bad_monitor_value(self):
        self.assertRaises(ValueError, agg().monitor, "k", -1, T)
        self.assertRaises(ValueError, agg().monitor, "k", 1.5, T)
        for value in (float("nan"), float("inf"), float("-inf"), -0.5):
            self.assertRaises(ValueError, agg().monitor_float, "goal", value, T)

    def test_impossible_share_values_refused(self):
        """What the seed's gateway sends after a suggested difficulty below 1 cannot enter a minute (issue 17)."""
        a = agg()
        for difficulty, goal in ((1, float("inf")), (1, float("nan")), (1, -0.1), (-1, 0.5), (float("nan"), 0.5),
                                 (float("inf"), 0.5), (-0.5, 0.5)):
            self.assertRaises(ValueError, count, a, "alice", "rig1", 0, difficulty, goal, T)
        count(a, "alice", "rig1", 0, 0, 0.0, T)
        (minute,) = a.flush_all()
        self.assertEqual(minute.shares[0], ShareRecord("alice", "10.0.0.1", "btc", 1, 0, 0.0))

    def test_zero_entries_never_emitted(self):
        """Zero counters and a minute of only zeros produce no records."""
        a = agg()
        a.monitor("connections", 0, T)
        a.monitor_float("goal", 1e-16, T)
        count(a, "alice", "rig1", 0, 0, 0.0, T)  # a share of difficulty 0: counted, no pow
        [minute] = a.flush(T + 60)
        self.assertEqual(minute.shares, (
            ShareRecord("alice", "10.0.0.1", "btc", 1, 0, 0.0),
            ShareRecord("alice:rig1", "10.0.0.1", "btc", 1, 0, 0.0),
        ))
        self.assertEqual(minute.monitor_ints, (MonitorIntRecord("share", "10.0.0.1", "btc", 1),))
        self.assertEqual(minute.monitor_floats, ())


class MinuteTests(unittest.TestCase):
    def test_attribution_across_boundary(self):
        """A share at hh:mm:59.9 counts for hh:mm; one at hh:(mm+1):00.0 for the next minute."""
        a = agg()
        count(a, "alice", "w", 0, 1, 0.0, T + 59.9)
        count(a, "alice", "w", 0, 2, 0.0, T + 60.0)
        self.assertEqual(a.flush(T + 59.99), [])
        [first] = a.flush(T + 60)
        self.assertEqual(first.minute, T)
        self.assertEqual(first.shares[0], ShareRecord("alice", "10.0.0.1", "btc", 1, 1, 0.0))
        self.assertEqual(a.flush(T + 119), [])
        [second] = a.flush(T + 120)
        self.assertEqual(second.minute, T + 60)
        self.assertEqual(second.shares[0], ShareRecord("alice", "10.0.0.1", "btc", 1, 2, 0.0))

    def test_flush_returns_each_minute_once_oldest_first(self):
        a = agg()
        for k in (2, 0, 1):
            count(a, "u", "w", 0, k + 1, 0.0, T + 60 * k)
        got = a.flush(T + 180)
        self.assertEqual([m.minute for m in got], [T, T + 60, T + 120])
        self.assertEqual(a.flush(T + 180), [])
        self.assertEqual(a.flush_all(), [])

    def test_late_event_for_flushed_minute(self):
        """Something reported late for an already flushed minute is still filed under its minute."""
        a = agg()
        count(a, "u", "w", 0, 1, 0.0, T + 10)
        a.flush(T + 60)
        a.monitor("block", 1, T + 20)
        [late] = a.flush(T + 61)
        self.assertEqual((late.minute, late.monitor_ints), (T, (MonitorIntRecord("block", "10.0.0.1", "btc", 1),)))

    def test_flush_all_includes_current_minute(self):
        a = agg()
        count(a, "u", "w", 0, 1, 0.0, T + 10)
        count(a, "u", "w", 0, 1, 0.0, T + 70)
        self.assertEqual([m.minute for m in a.flush_all()], [T, T + 60])
        self.assertEqual(a.flush_all(), [])
        count(a, "u", "w", 0, 5, 0.0, T + 75)  # the cached current bucket was released
        [m] = a.flush_all()
        self.assertEqual(m.shares[0].pow, 5)

    def test_bodies_are_stamped(self):
        a = agg()
        for i in range(200):
            count(a, "user%03d" % i, "worker", 0, 1000, 0.001, T + 5)
        [minute] = a.flush(T + 60)
        bodies = minute.bodies()
        commands = [c for c, _ in bodies]
        self.assertEqual(set(commands), {records.META_SHARE, records.META_MONITOR_INT, records.META_MONITOR_FLOAT})
        shares = []
        for command, body in bodies:
            self.assertLessEqual(len(body), records.MAX_BODY)
            self.assertEqual(records.body_minute(body), T)
            if command == records.META_SHARE:
                shares.extend(records.decode_body(command, body))
        self.assertEqual(tuple(shares), minute.shares)
        self.assertGreater(commands.count(records.META_SHARE), 1)
