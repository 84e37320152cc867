# -*- test-case-name: tests.stats.test_hashrate -*-
"""
Hashrate from the per-minute statistics in Redis, right at every scale.

The seed's contract keeps ``pow`` (the sum of share difficulties) an
integer (ref §8.5).  Mainnet difficulties are integers, so ``pow × 2^32 /
60`` is exact there; a regtest CPU miner works at difficulty 0.001, and the
gateway credits such fractions through a carry (``viabtc.gateway.stats``):
a thousand shares add one unit of pow, so a minute's pow reads 0 while
blocks are being found.  Reading ``pow`` alone tells a newcomer the pool is
broken.

What else Redis holds, without changing the seed's keys:

- ``C:m:pow_float`` (our gateways' addition, a monitor-float counter): the
  same sum as ``pow``, exact at any difficulty.  A C gateway does not write
  it, so the pool figure is the larger of the two.
- ``C:g:user`` and ``C:m:goal`` (the seed's): a share's goal is its
  difficulty over the block difficulty, so within a minute
  ``pool_difficulty / pool_goal`` is the block difficulty and a user's
  difficulty sum is ``g × that``.
- share counts ``s`` per user and worker: a worker's difficulty sum is its
  share count times its user's mean share difficulty in that minute (or its
  own long-run mean ``Σp/Σs`` where that is all there is).

Every function here is pure: dicts from minute (unix seconds, a multiple of
60) to numbers in, the same out.  ``difficulty`` values are sums of share
difficulties (hashes = difficulty × 2^32).
"""

#: Hashes per unit of share difficulty.
HASHES_PER_DIFFICULTY = 2**32
#: Seconds per statistics minute.
MINUTE = 60

_UNITS = ("H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s")


def pool_difficulty(pow_units, pow_float):
    """
    The pool's difficulty sum per minute from ``C:m:pow`` (ints) and
    ``C:m:pow_float`` (floats, possibly empty): the larger of the two, so a
    pool of C gateways (no ``pow_float``) keeps its exact integer pow.
    """
    minutes = set(pow_units) | set(pow_float)
    return {t: max(float(pow_units.get(t, 0)), float(pow_float.get(t, 0.0))) for t in minutes}


def _mean_difficulty(shares, pow_units):
    """``Σp / Σs`` over the minutes given, or None when pow says nothing yet."""
    total_shares = sum(shares.values())
    total_pow = sum(pow_units.values())
    if total_shares <= 0 or total_pow <= 0:
        return None
    return total_pow / total_shares


def _integral(shares, pow_units):
    """True when the shares' mean difficulty is at least 1: ``pow`` is then exact enough."""
    mean = _mean_difficulty(shares, pow_units)
    return mean is not None and mean >= 1.0


def key_difficulty(shares, pow_units, exact=None, mean=None):
    """
    A user's or worker's difficulty sum per minute of ``shares``.

    ``exact`` (minute → difficulty, may be partial) wins where it has the
    minute; else ``pow_units`` when the key's shares average difficulty 1 or
    more (integral difficulties, pow exact); else shares × a mean share
    difficulty: ``mean`` (minute → mean) where given, else the key's own
    ``Σp/Σs``; else 0.
    """
    exact = exact or {}
    mean = mean or {}
    integral = _integral(shares, pow_units)
    own_mean = _mean_difficulty(shares, pow_units)
    result = {}
    for t, count in shares.items():
        if t in exact:
            result[t] = float(exact[t])
        elif integral:
            result[t] = float(pow_units.get(t, 0))
        elif t in mean:
            result[t] = count * mean[t]
        elif own_mean is not None:
            result[t] = count * own_mean
        else:
            result[t] = 0.0
    return result


def user_exact(goal, pool_diff, pool_goal):
    """
    A user's exact difficulty sum per minute from its goal ``C:g:user``:
    ``g × pool_difficulty / pool_goal`` (the block difficulty of that
    minute), where all three are there.
    """
    result = {}
    for t, g in goal.items():
        d, pg = pool_diff.get(t, 0.0), pool_goal.get(t, 0.0)
        if g > 0 and d > 0 and pg > 0:
            result[t] = g * d / pg
    return result


def mean_per_share(difficulty, shares):
    """Minute → mean share difficulty, where both are known and positive."""
    return {t: d / shares[t] for t, d in difficulty.items() if d > 0 and shares.get(t, 0) > 0}


def hashrate(difficulty, seconds=MINUTE):
    """Hashes per second of a difficulty sum done in ``seconds``."""
    return difficulty * HASHES_PER_DIFFICULTY / seconds if seconds > 0 else 0.0


def rates(difficulty):
    """Minute → hashes per second, for a minute → difficulty-sum dict."""
    return {t: hashrate(d) for t, d in difficulty.items()}


def average_rate(difficulty, minutes):
    """
    Mean hashes per second over the ``minutes`` (an iterable of minute
    starts) of ``difficulty``; minutes without shares count as 0.
    """
    minutes = list(minutes)
    if not minutes:
        return 0.0
    return hashrate(sum(difficulty.get(t, 0.0) for t in minutes), MINUTE * len(minutes))


def format_hashrate(rate):
    """``rate`` (H/s) with an SI unit and three significant digits: ``"1.23 MH/s"``."""
    if rate <= 0:
        return "0 H/s"
    unit = 0
    while rate >= 1000 and unit < len(_UNITS) - 1:
        rate /= 1000.0
        unit += 1
    if rate >= 100:
        text = "%.0f" % rate
    elif rate >= 10:
        text = "%.1f" % rate
    else:
        text = "%.2f" % rate
    return "%s %s" % (text, _UNITS[unit])
