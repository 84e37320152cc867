"""The dashboard's figures from known Redis contents."""

import json

from twisted.trial import unittest

from viabtc.dashboard.snapshot import (
    KeyStats,
    RawStats,
    assign_block_minutes,
    build,
    mark_seen,
    recent,
    reject_reason,
    window,
    written_minutes,
)
from viabtc.stats.schema import block_json

START = 1_699_999_980  # a minute start
NOW = START + 30
MINUTES = window(NOW, 5)
T = MINUTES[-1]
BLOCK_DIFF = 4.656542373906925e-10  # regtest


def regtest_raw():
    """One user, two workers at difficulty 0.001 and 0.002: pow 0 everywhere, pow_float exact."""
    a_shares, b_shares = 30, 10
    a_diff, b_diff = a_shares * 0.001, b_shares * 0.002
    pool = a_diff + b_diff
    return RawStats(
        now=NOW, coin="btc", minutes=MINUTES, worker_minutes=MINUTES[-3:],
        monitor={
            "share": {T: a_shares + b_shares},
            "pow_float": {T: pool},
            "goal": {T: pool / BLOCK_DIFF},
            "reject": {T: 4},
            "reject_23": {T: 3},
            "reject_22": {T: 1},
            "connections": {T - 60: 1, T: 2},
            "block": {T - 120: 1, T: 1},
        },
        users={"alice": KeyStats(shares={T: 40}, goal={T: pool / BLOCK_DIFF}, rejects={T: 4})},
        workers={("alice", "a"): KeyStats(shares={T: a_shares}, rejects={T: 4}),
                 ("alice", "b"): KeyStats(shares={T: b_shares})},
        blocks=(block_json("alice", "a", "BTC", "00aa"), block_json("alice", "b", "BTC", "00bb")),
        workers_total=2,
    )


class BuildTests(unittest.TestCase):
    def test_window(self):
        self.assertEqual(window(NOW, 2), (START - 120, START - 60))

    def test_regtest_hashrates_are_not_zero(self):
        snap = build(regtest_raw())
        pool_rate = dict(snap.pool_series)[T]
        self.assertAlmostEqual(pool_rate, 0.05 * 2**32 / 60)
        user = snap.users[0]
        self.assertAlmostEqual(dict(user.series)[T], 0.05 * 2**32 / 60)
        rates = {w.worker: dict(w.series)[T] for w in user.workers}
        # Workers split the user's exact sum by share count (mean difficulty 0.00125).
        self.assertAlmostEqual(rates["a"], 30 * 0.00125 * 2**32 / 60)
        self.assertAlmostEqual(rates["b"], 10 * 0.00125 * 2**32 / 60)
        self.assertAlmostEqual(sum(rates.values()), pool_rate)
        self.assertEqual([w.worker for w in snap.workers], ["a", "b"])

    def test_counts(self):
        snap = build(regtest_raw())
        self.assertEqual((snap.shares, snap.rejects), (40, 4))
        self.assertEqual(snap.rejects_by_reason, (("23 Low difficulty share", 3), ("22 Duplicate share", 1)))
        self.assertEqual(snap.connections, 2)
        self.assertAlmostEqual(snap.reject_percent, 100 * 4 / 44)
        self.assertEqual(snap.users[0].workers[0].last_minute, T)

    def test_mainnet_pow_is_used_as_is(self):
        raw = RawStats(now=NOW, coin="btc", minutes=MINUTES, worker_minutes=MINUTES,
                       monitor={"share": {T: 2}, "pow": {T: 131072}},
                       users={"bob": KeyStats(shares={T: 2}, pow={T: 131072})},
                       workers={("bob", "r"): KeyStats(shares={T: 2}, pow={T: 131072})})
        snap = build(raw)
        rate = 131072 * 2**32 / 60
        self.assertEqual(dict(snap.pool_series)[T], rate)
        self.assertEqual(dict(snap.users[0].series)[T], rate)
        self.assertEqual(dict(snap.users[0].workers[0].series)[T], rate)

    def test_current_rate_since_the_start_at_most_ten_minutes(self):
        snap = build(regtest_raw())
        # The pool only mined in the last minute: its rate, not a fifth of it.
        self.assertAlmostEqual(snap.pool_rate, 0.05 * 2**32 / 60)
        self.assertEqual((snap.blocks_counted, snap.aux_blocks_counted), (2, 0))
        self.assertEqual(recent(MINUTES, {}), MINUTES)
        self.assertEqual(recent(MINUTES, {MINUTES[1]: 1}), MINUTES[1:])

    def test_empty(self):
        snap = build(RawStats(now=NOW, coin="btc", minutes=MINUTES, worker_minutes=MINUTES))
        self.assertEqual((snap.pool_rate, snap.connections, snap.users, snap.blocks), (0.0, None, (), ()))


class WrittenMinutesTests(unittest.TestCase):
    def test_unwritten_newest_minutes_left_out(self):
        minutes = window(NOW, 5)
        self.assertEqual(written_minutes(minutes, {"share": {minutes[2]: 1}}), minutes[:3])
        self.assertEqual(written_minutes(minutes, {"share": {minutes[-1]: 1}}), minutes)

    def test_a_stopped_pool_shows_its_zeros_after_the_lag(self):
        minutes = window(NOW, 5)
        self.assertEqual(written_minutes(minutes, {"share": {minutes[0]: 1}}), minutes[:3])
        self.assertEqual(written_minutes(minutes, {}), minutes)


class BlockTests(unittest.TestCase):
    def test_minutes_matched_from_the_newest(self):
        entries = [block_json("u", "w", "BTC", "h%d" % i) for i in range(3)]
        entries.insert(1, block_json("u", "w", "NMC", "aux1"))
        blocks = assign_block_minutes(entries, {100: 1, 160: 1}, {100: 1}, "BTC")
        self.assertEqual([(b.hash, b.minute, b.aux) for b in blocks],
                         [("h2", 160, False), ("h1", 100, False), ("aux1", 100, True), ("h0", None, False)])

    def test_seen_times(self):
        blocks = assign_block_minutes([block_json("u", "w", "BTC", "a")], {}, {}, "BTC")
        seen = {}
        self.assertIsNone(mark_seen(blocks, seen, 100.0, first=True)[0].seen)
        later = assign_block_minutes([block_json("u", "w", "BTC", h) for h in "ab"], {}, {}, "BTC")
        self.assertEqual([b.seen for b in mark_seen(later, seen, 130.0, first=False)], [130.0, None])
        self.assertEqual([b.seen for b in mark_seen(later, seen, 160.0, first=False)], [130.0, None])
        mark_seen(later[1:], seen, 190.0, first=False)
        self.assertEqual(seen, {"a": None})

    def test_garbage_entries_skipped(self):
        blocks = assign_block_minutes(["not json", json.dumps([1]), block_json("u", "w", "BTC", "h")], {}, {}, "BTC")
        self.assertEqual([b.hash for b in blocks], ["h"])

    def test_reject_reason(self):
        self.assertEqual(reject_reason("21"), "21 Job not found")
        self.assertEqual(reject_reason("99"), "99")
        self.assertEqual(reject_reason("x"), "x")
