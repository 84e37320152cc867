"""Tests for viabtc.stratum.vardiff."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from viabtc.stratum.vardiff import IDLE_FACTOR, RETARGET_SHARES, VarDiff, VarDiffSettings


def knobs(**changes):
    values = dict(diff_min=0.0001, diff_max=65536, diff_default=1, target_time=4, retarget_time=120)
    values.update(changes)
    return VarDiffSettings(**values)


def mine(vardiff, clock, hashrate, seconds, step=0.1, idle_every=4.0):
    """
    A deterministic miner doing ``hashrate`` difficulty-1 shares per second:
    work accumulates and a share is found each time it reaches the current
    difficulty.  ``check_idle`` runs every ``idle_every`` seconds, as the
    server's housekeeping timer does.  Returns the difficulties set.
    """
    changes = []
    work = 0.0
    next_idle = clock.seconds() + idle_every
    end = clock.seconds() + seconds
    while clock.seconds() < end:
        clock.advance(step)
        work += hashrate * step
        if work >= vardiff.difficulty:
            work = 0.0
            new = vardiff.on_share(clock.seconds())
            if new is not None:
                changes.append(new)
                work = 0.0
        if clock.seconds() >= next_idle:
            next_idle += idle_every
            new = vardiff.check_idle(clock.seconds())
            if new is not None:
                changes.append(new)
                work = 0.0
    return changes


class SettingsTests(TestCase):
    def test_invalid(self):
        for change in (dict(diff_min=0), dict(diff_max=-1), dict(target_time=float("nan")),
                       dict(retarget_time=True), dict(diff_default=0.00001), dict(diff_default=10**6)):
            self.assertRaises(ValueError, knobs, **change)


class SeedRuleTests(TestCase):
    def test_doubles_after_30_fast_shares(self):
        vardiff = VarDiff(knobs(), 0)
        results = [vardiff.on_share(0.1 * i) for i in range(1, RETARGET_SHARES + 1)]
        self.assertEqual(results[:-1], [None] * (RETARGET_SHARES - 1))
        self.assertEqual(results[-1], 2)
        self.assertEqual((vardiff.difficulty, vardiff.previous), (2, 1))

    def test_halves_on_retarget_time_for_slow_shares(self):
        vardiff = VarDiff(knobs(diff_default=64), 0)
        self.assertIsNone(vardiff.on_share(60))
        self.assertEqual(vardiff.on_share(120), 32)

    def test_keeps_within_thresholds(self):
        for interval in (4 * 0.71, 4, 4 * 1.49):
            vardiff = VarDiff(knobs(), 0)
            results = [vardiff.on_share(interval * i) for i in range(1, RETARGET_SHARES + 1)]
            self.assertEqual(results, [None] * RETARGET_SHARES, interval)

    def test_clamped(self):
        vardiff = VarDiff(knobs(diff_max=1.5), 0)
        self.assertEqual([vardiff.on_share(0.1 * i) for i in range(1, 31)][-1], 1.5)
        vardiff = VarDiff(knobs(diff_min=0.75, diff_default=1), 0)
        self.assertEqual(vardiff.on_share(500), 0.75)
        self.assertIsNone(vardiff.on_share(1000))

    def test_set_clamps(self):
        vardiff = VarDiff(knobs(diff_max=100), 0)
        self.assertEqual(vardiff.set(1e9, 1), 100)
        self.assertEqual(vardiff.previous, 1)
        self.assertEqual(vardiff.set(100, 2), 100)


class ConvergenceTests(TestCase):
    def test_fast_miner_converges_up(self):
        """Shares every 0.1 s at difficulty 1 with a 4 s target: about 40 is right."""
        clock = Clock()
        vardiff = VarDiff(knobs(), clock.seconds())
        mine(vardiff, clock, hashrate=10, seconds=600)
        self.assertIn(vardiff.difficulty, (32, 64))
        # and it stays there
        self.assertFalse([d for d in mine(vardiff, clock, hashrate=10, seconds=600) if d not in (32, 64)])

    def test_slow_miner_converges_down(self):
        """Difficulty 1024 for a miner worth about 2.5: shares would take 400 s each."""
        clock = Clock()
        vardiff = VarDiff(knobs(diff_default=1024), clock.seconds())
        changes = mine(vardiff, clock, hashrate=0.625, seconds=300)
        self.assertIn(vardiff.difficulty, (1, 2, 4))
        self.assertTrue(all(b < a for a, b in zip([1024] + changes, changes[:3])))

    def test_comes_down_when_shares_stop(self):
        clock = Clock()
        vardiff = VarDiff(knobs(diff_default=16), clock.seconds())
        mine(vardiff, clock, hashrate=4, seconds=300)
        before = vardiff.difficulty
        self.assertGreaterEqual(before, 8)
        clock.advance(IDLE_FACTOR * 4 - 1)
        self.assertIsNone(vardiff.check_idle(clock.seconds()))
        clock.advance(1)
        lowered = vardiff.check_idle(clock.seconds())
        self.assertLessEqual(lowered, before / 6)
        self.assertEqual(vardiff.previous, before)
        for _ in range(20):
            clock.advance(IDLE_FACTOR * 4)
            vardiff.check_idle(clock.seconds())
        self.assertEqual(vardiff.difficulty, 0.0001)

    def test_idle_results_are_powers_of_two(self):
        vardiff = VarDiff(knobs(diff_default=1000), 0)
        new = vardiff.check_idle(100)
        self.assertEqual(new, 32)  # 1000 * 4 / 100 = 40 -> 32


class PropertyTests(TestCase):
    @given(st.lists(st.floats(min_value=0, max_value=1000), max_size=200), st.booleans())
    def test_always_within_bounds(self, gaps, idle):
        settings = knobs(diff_min=0.5, diff_max=64)
        vardiff = VarDiff(settings, 0)
        now = 0.0
        for gap in gaps:
            now += gap
            new = vardiff.check_idle(now) if idle else vardiff.on_share(now)
            if new is not None:
                self.assertTrue(0.5 <= new <= 64)
            self.assertTrue(0.5 <= vardiff.difficulty <= 64)
