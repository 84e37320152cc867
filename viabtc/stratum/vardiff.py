# -*- test-case-name: tests.stratum.test_vardiff -*-
"""
Variable difficulty: keep each miner near one share per ``target_time``.

The seed's rule (ref §4.6), kept because operators tuned pools with it:
record the interval between valid shares in a 90-entry ring; every 30
shares or ``retarget_time`` seconds, compare the mean interval with
``target_time`` and halve the difficulty above 1.5 times it, double it below
0.7 times it, clamped to ``[diff_min, diff_max]``.

Two changes.  Difficulties are floats, because a CPU miner on regtest needs
0.0001.  And a miner whose difficulty is too high to find any share is no
longer stuck (ref §12.18): ``check_idle`` lowers it when no share has come
for ``IDLE_FACTOR`` target times.  At the right difficulty such a gap has a
probability of e**-6 (0.25 %), so it is strong evidence; the new difficulty
is the current one scaled by ``target_time / gap`` — the most the miner can
be doing — rounded down to a power of two, so a miner at 1024 times its
proper difficulty is back in range after three or four idle periods.
"""

import collections
import math

import attrs

#: Evaluate after this many valid shares (or ``retarget_time`` seconds).
RETARGET_SHARES = 30
#: The ring of share intervals.
INTERVALS = RETARGET_SHARES * 3
#: No share for this many target times lowers the difficulty.
IDLE_FACTOR = 6


def _positive(instance, attribute, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name}: must be a finite number > 0, got {value!r}")


@attrs.frozen
class VarDiffSettings:
    """The seed's vardiff keys (gateway and mineragent configs)."""

    diff_min: float = attrs.field(validator=_positive)
    diff_max: float = attrs.field(validator=_positive)
    diff_default: float = attrs.field(validator=_positive)
    #: seconds per share aimed at
    target_time: float = attrs.field(validator=_positive)
    #: seconds between evaluations when shares are few
    retarget_time: float = attrs.field(validator=_positive)

    def __attrs_post_init__(self):
        if not self.diff_min <= self.diff_default <= self.diff_max:
            raise ValueError(
                f"diff_default: {self.diff_default} is not within diff_min {self.diff_min}"
                f" .. diff_max {self.diff_max}"
            )

    def clamp(self, difficulty):
        return min(max(difficulty, self.diff_min), self.diff_max)


def _power_of_two_below(value):
    """The largest power of two not above ``value`` (> 0): a "nice" difficulty."""
    _, exponent = math.frexp(value)
    return math.ldexp(1.0, exponent - 1)


class VarDiff:
    """
    One session's vardiff state.  Feed it ``on_share(now)`` for every valid
    share and ``check_idle(now)`` from a timer; both return the new
    difficulty when it changes, else ``None``.  ``previous`` is the
    difficulty before the last change, for the share check's grace.
    """

    __slots__ = (
        "settings",
        "difficulty",
        "previous",
        "_intervals",
        "_last_share",
        "_last_change",
        "_last_retarget",
        "_shares",
    )

    def __init__(self, settings, now, difficulty=None):
        self.settings = settings
        self.difficulty = settings.clamp(settings.diff_default if difficulty is None else difficulty)
        self.previous = self.difficulty
        self._intervals = collections.deque(maxlen=INTERVALS)
        self._last_share = now
        self._last_change = now
        self._last_retarget = now
        self._shares = 0

    def on_share(self, now):
        # An interval straddling a change measures the old difficulty, so
        # intervals start at the later of the last share and the last change.
        self._intervals.append(now - max(self._last_share, self._last_change))
        self._last_share = now
        self._shares += 1
        if self._shares < RETARGET_SHARES and now - self._last_retarget < self.settings.retarget_time:
            return None
        self._last_retarget = now
        self._shares = 0
        ratio = sum(self._intervals) / len(self._intervals) / self.settings.target_time
        if ratio > 1.5:
            new = self.difficulty / 2
        elif ratio < 0.7:
            new = self.difficulty * 2
        else:
            return None
        return self._change(new, now)

    def check_idle(self, now):
        quiet = now - max(self._last_share, self._last_change)
        if quiet < IDLE_FACTOR * self.settings.target_time:
            return None
        new = _power_of_two_below(self.difficulty * self.settings.target_time / quiet)
        return self._change(new, now)

    def set(self, difficulty, now):
        """Impose a difficulty (a miner's suggestion); returns it clamped."""
        return self._change(difficulty, now) or self.difficulty

    def _change(self, new, now):
        new = self.settings.clamp(new)
        self._last_change = now
        if new == self.difficulty:
            return None
        self.previous = self.difficulty
        self.difficulty = new
        self._intervals.clear()
        self._shares = 0
        self._last_retarget = now
        return new
