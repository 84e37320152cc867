# -*- test-case-name: tests.poolbench.test_bench -*-
"""
What poolbench knows about the pools it watches, and the decisions made on
it: which ``mining.notify`` becomes a height hint, when our own pool lags,
and how long a pool mined empty blocks (ref §7).

No I/O: the service feeds jobs, connection changes and the time in, sends
the hint bodies ``observe`` returns, and calls ``check_lag`` on a timer.

Heights: ``best_height`` is the highest tip believed from any pool (for the
lag monitor, whatever the pool's ``is_notify``); ``hinted_height`` the
highest tip hinted.  A pool's tip is believed by the rule of
``viabtc.poolbench.hints.check_tip`` against ``reference(now)``: our own
pool's tip when an ``is_self`` pool reported within ``BASELINE_STALE``,
else ``best_height`` while some pool confirmed it within that time.  The
best height never stays more than ``MAX_HEIGHT_JUMP`` above a fresh
reference, and a stale one is forgotten, so one pool that lied before the
reference existed cannot silence the hints for good.
"""

import attrs
from twisted.logger import Logger

from viabtc.poolbench.hints import MAX_HEIGHT_JUMP, Sighting, SuspiciousTip, check_tip, hint_body
from viabtc.stratum.client import MalformedMessage

#: Seconds after which a height nobody reports any more is no reference:
#: longer than any usual gap between blocks, short enough that a lost
#: baseline (poolbench cut off, a lying first pool) heals within the hour.
BASELINE_STALE = 3600.0


@attrs.define
class PoolState:
    """One watched pool, as the CLI ``list`` shows it."""

    name: str
    is_notify: bool = True
    is_self: bool = False
    connected: bool = False
    #: height of the pool's latest believed job (None: none yet)
    height: int | None = None
    #: clock seconds of the latest ``mining.notify`` (None: none yet)
    last_notify: float | None = None
    #: tips refused as not believable (see ``check_tip``)
    refused: int = 0
    #: start (clock seconds) and height of the empty-block period under way
    empty_since: float | None = None
    empty_height: int | None = None
    #: the best height whose lag was alerted, and since when it lagged
    lag_alerted: int | None = None
    lag_since: float | None = None

    @property
    def tip(self):
        return None if self.height is None else self.height - 1


@attrs.frozen
class Lag:
    """Our pool ``name`` mines on ``tip`` while the network is at ``best`` for ``seconds``."""

    name: str
    tip: int
    best: int
    seconds: float


class Bench:
    """
    The watched pools (``entries``: objects with ``name``, ``is_notify``,
    ``is_self``), the global ``notify`` switch and ``max_delay`` (seconds
    our pool may trail the best height before a critical log).
    """

    _log = Logger()

    def __init__(self, entries, *, notify=True, max_delay=0.1):
        self.pools = {e.name: PoolState(e.name, e.is_notify, e.is_self) for e in entries}
        self.notify = notify
        self.max_delay = max_delay
        self.best_height = 0
        #: when best_height reached its value, and when a pool last reported it
        self.best_time = None
        self.best_seen = None
        self.hinted_height = 0

    def set_connected(self, name, connected):
        pool = self.pools.get(name)
        if pool is not None:  # a pool a reload dropped may still report its connection's end
            pool.connected = connected

    def update_pools(self, entries):
        """
        Watch ``entries`` from now on (a reload): pools new by name start
        unknown, dropped ones are forgotten, the others keep what was seen
        of them and take their new ``is_notify``/``is_self``.
        """
        pools = {}
        for entry in entries:
            pool = self.pools.get(entry.name) or PoolState(entry.name)
            pool.is_notify, pool.is_self = entry.is_notify, entry.is_self
            pools[entry.name] = pool
        self.pools = pools

    def reference(self, now):
        """The height tips are checked against (see the module docstring), or None."""
        own = [p.tip for p in self.pools.values()
               if p.is_self and p.tip is not None and now - p.last_notify < BASELINE_STALE]
        if own:
            return max(own)
        if self.best_height and now - self.best_seen < BASELINE_STALE:
            return self.best_height
        return None

    def observe(self, name, job, now):
        """
        Pool ``name`` sent ``job`` (a ``StratumJob``) at clock ``now``.
        Returns the cmd 4 body to send to every jobmaster, or None.
        """
        pool = self.pools[name]
        pool.last_notify = now
        self._track_empty(pool, job, now)
        try:
            sighting = Sighting.from_job(job)
        except MalformedMessage as e:
            self._log.warn("pool {pool}: job {job_id} ignored: {error}", pool=name,
                           job_id=job.job_id, error=str(e), role="poolbench")
            return None
        reference = self._rebase(now)
        try:
            check_tip(sighting.tip, reference, trusted=pool.is_self)
        except SuspiciousTip as e:
            pool.refused += 1
            self._log.warn("pool {pool}: job {job_id} not believed: {error}", pool=name,
                           job_id=job.job_id, error=str(e), role="poolbench")
            return None
        pool.height = sighting.tip + 1
        if sighting.tip > self.best_height:
            self.best_height = sighting.tip
            self.best_time = now
        if sighting.tip == self.best_height:
            self.best_seen = now
        if not (self.notify and pool.is_notify and sighting.tip > self.hinted_height):
            return None
        self.hinted_height = sighting.tip
        return hint_body(sighting, now)

    def _rebase(self, now):
        """``reference(now)``, after forgetting best heights it no longer supports."""
        reference = self.reference(now)
        if reference is None:
            if self.best_height:
                self._log.warn("best height {best} not reported for {stale:g} s; forgotten",
                               best=self.best_height, stale=BASELINE_STALE, role="poolbench")
            self.best_height = self.hinted_height = 0
        elif self.best_height > reference + MAX_HEIGHT_JUMP:
            self._log.warn("best height {best} is too far above our pool's {reference}; "
                           "lowered to it", best=self.best_height, reference=reference,
                           role="poolbench")
            self.best_height = reference
            self.best_time = self.best_seen = now
            self.hinted_height = min(self.hinted_height, reference)
        return reference

    def _track_empty(self, pool, job, now):
        """
        A clean job without transactions starts an empty-block period; the
        first job with transactions ends it, and its length is logged.
        """
        if not job.branch:
            if job.clean and pool.empty_since is None:
                pool.empty_since = now
                pool.empty_height = _height_or_none(job)
            return
        if pool.empty_since is not None:
            self._log.info("pool {pool} mined empty blocks for {seconds:.3f} s from height {height}",
                           pool=pool.name, seconds=now - pool.empty_since,
                           height=pool.empty_height, role="poolbench")
            pool.empty_since = pool.empty_height = None

    def check_lag(self, now):
        """
        The ``is_self`` pools trailing ``best_height`` for more than
        ``max_delay``; each lag is logged critical once per best height
        (an alert), and its end at info.
        """
        lags = []
        for pool in self.pools.values():
            if not pool.is_self or pool.tip is None:
                continue
            if pool.tip >= self.best_height:
                if pool.lag_alerted is not None:
                    self._log.info("our pool {pool} caught up with height {best} after {seconds:.3f} s",
                                   pool=pool.name, best=pool.tip, seconds=now - pool.lag_since,
                                   role="poolbench")
                    pool.lag_alerted = pool.lag_since = None
                continue
            delay = now - self.best_time
            if delay <= self.max_delay:
                continue
            lags.append(Lag(pool.name, pool.tip, self.best_height, delay))
            if pool.lag_alerted != self.best_height:
                if pool.lag_since is None:
                    pool.lag_since = self.best_time
                pool.lag_alerted = self.best_height
                self._log.critical(
                    "our pool {pool} still mines on height {tip} {seconds:.3f} s after the "
                    "network reached {best}{offline}", pool=pool.name, tip=pool.tip,
                    seconds=delay, best=self.best_height,
                    offline="" if pool.connected else " (not connected)", role="poolbench")
        return lags


def _height_or_none(job):
    try:
        return job.coinbase_height()
    except MalformedMessage:
        return None
