"""The Bench: which jobs become hints, our pool's lag, empty-block periods."""

import json
import struct

import attrs
from hypothesis import given, strategies as st
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase

from tests.tools.fakepool import make_job
from viabtc.poolbench.bench import BASELINE_STALE, Bench, Lag
from viabtc.poolbench.config import PoolEntry
from viabtc.poolbench.hints import MAX_HEIGHT_JUMP
from viabtc.stratum.client import StratumJob

T0 = 1_700_000_000.0


def entry(name, is_notify=True, is_self=False):
    return PoolEntry(name, "127.0.0.1", 3333, "watcher", "", is_notify, is_self)


def job(height, branch=2, clean=True, seed=0):
    fake = make_job("1", height, 0x1D00FFFF, branch_size=branch, seed=seed)
    return StratumJob.from_notify(fake.notify_params(clean))


def hint(body):
    return None if body is None else json.loads(body)["height"]


def warnings(events):
    return [e for e in events if e["log_level"] == LogLevel.warn]


class HintTests(TestCase):
    def bench(self, *entries, notify=True):
        return Bench(entries or (entry("rival"), entry("other")), notify=notify, max_delay=0.1)

    def test_one_hint_per_new_height(self):
        bench = self.bench()
        self.assertEqual(hint(bench.observe("rival", job(101), T0)), 100)
        self.assertIsNone(bench.observe("rival", job(101, seed=1), T0 + 1))
        self.assertIsNone(bench.observe("other", job(101), T0 + 2))
        self.assertEqual(hint(bench.observe("other", job(102), T0 + 3)), 101)
        self.assertIsNone(bench.observe("rival", job(102), T0 + 4))
        self.assertIsNone(bench.observe("rival", job(100), T0 + 5))
        self.assertEqual((bench.best_height, bench.hinted_height), (101, 101))

    def test_hint_body(self):
        body = json.loads(self.bench().observe("rival", job(101), T0 + 5))
        fake = make_job("1", 101, 0x1D00FFFF)
        self.assertEqual(body, {"height": 100, "curtime": int(T0 + 5),
                                "prevhash": fake.prev_hash[::-1].hex()})

    def test_global_notify_off(self):
        bench = self.bench(notify=False)
        self.assertIsNone(bench.observe("rival", job(101), T0))
        self.assertEqual((bench.best_height, bench.hinted_height), (100, 0))

    def test_pool_notify_off_still_counts_for_best(self):
        bench = self.bench(entry("quiet", is_notify=False), entry("rival"))
        self.assertIsNone(bench.observe("quiet", job(101), T0))
        self.assertEqual(bench.best_height, 100)
        self.assertEqual(hint(bench.observe("rival", job(101), T0 + 1)), 100)

    def test_jump_refused(self):
        bench = self.bench()
        bench.observe("rival", job(101), T0)
        with capturedLogs() as events:
            self.assertIsNone(bench.observe("other", job(101 + MAX_HEIGHT_JUMP + 1), T0 + 1))
        self.assertIn("not believed", warnings(events)[0]["log_format"])
        self.assertEqual((bench.best_height, bench.pools["other"].refused), (100, 1))
        self.assertIsNone(bench.pools["other"].height)
        self.assertEqual(hint(bench.observe("other", job(101 + MAX_HEIGHT_JUMP), T0 + 2)),
                         100 + MAX_HEIGHT_JUMP)

    def test_garbage_coinbase_ignored(self):
        bench = self.bench()
        bad = attrs.evolve(job(101), coinbase1=struct.pack("<I", 1) + b"\x01")
        with capturedLogs() as events:
            self.assertIsNone(bench.observe("rival", bad, T0))
        self.assertEqual(len(warnings(events)), 1)
        self.assertEqual(bench.best_height, 0)

    def test_our_pool_is_the_reference(self):
        bench = self.bench(entry("ours", is_self=True), entry("rival"))
        # A lying pool answers first, before any reference exists ...
        self.assertEqual(hint(bench.observe("rival", job(10**6), T0)), 10**6 - 1)
        # ... our own pool is trusted, and the lie is forgotten on the next job.
        bench.observe("ours", job(101), T0 + 1)
        self.assertEqual(hint(bench.observe("rival", job(102), T0 + 2)), 101)
        self.assertIsNone(bench.observe("rival", job(10**6), T0 + 3))
        self.assertEqual(bench.best_height, 101)

    def test_stale_baseline_forgotten(self):
        bench = self.bench()
        bench.observe("rival", job(10**6), T0)
        self.assertIsNone(bench.observe("other", job(101), T0 + 10))
        self.assertEqual(hint(bench.observe("other", job(101), T0 + BASELINE_STALE + 1)), 100)
        self.assertEqual(bench.best_height, 100)

    @given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(2, 10**7)),
                    max_size=40))
    def test_hints_increase_unless_our_pool_disproves(self, reports):
        bench = Bench([entry("a"), entry("b", is_self=True), entry("c")], max_delay=0.1)
        last_hint, ours = None, None
        for i, (name, height) in enumerate(reports):
            body = bench.observe(name, job(height), T0 + i)
            if body is not None:
                if last_hint is not None and hint(body) <= last_hint:
                    # Only our own pool's earlier tip can show a hint was a lie.
                    self.assertGreater(last_hint, ours + MAX_HEIGHT_JUMP)
                if ours is not None and name != "b":
                    self.assertLessEqual(hint(body), ours + MAX_HEIGHT_JUMP)
                last_hint = hint(body)
            if name == "b":
                ours = height - 1


class LagTests(TestCase):
    def setUp(self):
        self.bench = Bench([entry("ours", is_self=True), entry("rival")], max_delay=0.1)
        self.bench.set_connected("ours", True)
        self.bench.observe("ours", job(101), T0)

    def test_lag_alerted_once_then_caught_up(self):
        self.bench.observe("rival", job(102), T0 + 1)
        self.assertEqual(self.bench.check_lag(T0 + 1.05), [])
        with capturedLogs() as events:
            lags = self.bench.check_lag(T0 + 1.2)
            self.bench.check_lag(T0 + 1.3)
        self.assertEqual(len(lags), 1)
        self.assertEqual((lags[0].name, lags[0].tip, lags[0].best), ("ours", 100, 101))
        self.assertAlmostEqual(lags[0].seconds, 0.2)
        critical = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(len(critical), 1)
        self.assertEqual(critical[0]["pool"], "ours")
        with capturedLogs() as events:
            self.bench.observe("ours", job(102), T0 + 2)
            self.assertEqual(self.bench.check_lag(T0 + 2), [])
        [caught] = [e for e in events if e["log_level"] == LogLevel.info]
        self.assertAlmostEqual(caught["seconds"], 1.0)

    def test_new_best_alerts_again(self):
        self.bench.observe("rival", job(102), T0 + 1)
        self.bench.check_lag(T0 + 2)
        self.bench.observe("rival", job(103), T0 + 3)
        with capturedLogs() as events:
            self.assertEqual(self.bench.check_lag(T0 + 4), [Lag("ours", 100, 102, 1.0)])
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.critical]), 1)

    def test_no_lag_when_level(self):
        self.bench.observe("rival", job(101), T0 + 1)
        self.assertEqual(self.bench.check_lag(T0 + 100), [])


class EmptyBlockTests(TestCase):
    def test_empty_period_logged(self):
        bench = Bench([entry("rival")], max_delay=0.1)
        bench.observe("rival", job(101), T0)
        with capturedLogs() as events:
            bench.observe("rival", job(102, branch=0), T0 + 1)
            bench.observe("rival", job(102, branch=0, clean=False), T0 + 10)
            bench.observe("rival", job(103, branch=0), T0 + 20)
            self.assertEqual(events, [])
            bench.observe("rival", job(103, branch=1, clean=False), T0 + 31.5)
        [event] = events
        self.assertEqual((event["pool"], event["seconds"], event["height"]), ("rival", 30.5, 102))
        self.assertIsNone(bench.pools["rival"].empty_since)

    def test_unclean_empty_job_starts_nothing(self):
        bench = Bench([entry("rival")], max_delay=0.1)
        with capturedLogs() as events:
            bench.observe("rival", job(102, branch=0, clean=False), T0)
            bench.observe("rival", job(102, branch=1, clean=False), T0 + 1)
        self.assertEqual(events, [])
