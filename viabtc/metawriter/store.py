# -*- test-case-name: tests.metawriter.test_store -*-
"""
Applying the metawriter's write batches to Redis, in order, until each is
confirmed, over ONE persistent reconnecting connection.

The seed ran 50 threads, each retrying one command forever, so a command
whose reply was lost was applied twice and order was not kept (ref §2.8,
§8.5).  Here every ``writer_agg.Batch`` is sent as one
``EVAL APPLY_SCRIPT``: an atomic unit (like MULTI/EXEC) that first sets the
batch's replay guard, so re-sending it after an unknown outcome is harmless.
All waiting batches go out back to back on the one connection (a pipeline);
a batch that fails (connection lost, reply timeout, Redis error) is sent
again after ``retry_interval``, and nothing is ever dropped.  While batches
wait longer than ``alert_after`` seconds a critical event (an alert) is
logged once per ``alert_after``.

With ``min_replicas`` (Redis behind Sentinel, ``RedisBlock.min_replicas``)
each round ends with ``WAIT min_replicas``: a round is confirmed (and its
journal generation let go) only once that many replicas hold it, else it
is sent again like a failed one.  A failover to a replica therefore loses
no confirmed batch, and the batches it had not confirmed go to the new
master, where the replay guards of those the replica already holds make
them no-ops: nothing lost, nothing doubled.
"""

from collections import deque

from twisted.internet import defer
from twisted.logger import Logger

from viabtc.stats.writer_agg import APPLY_SCRIPT

# Batches sent in one pipelined round.
ROUND_SIZE = 200
#: Milliseconds a round's ``WAIT`` gives the replicas.
WAIT_TIMEOUT_MS = 1000


class TooFewReplicas(Exception):
    """Fewer replicas than ``min_replicas`` acknowledged a round within ``WAIT_TIMEOUT_MS``."""


class _Entry:
    """A batch waiting for Redis, and the journal generation it is filed under (None: not yet)."""

    __slots__ = ("batch", "generation", "done")

    def __init__(self, batch, generation):
        self.batch = batch
        self.generation = generation
        self.done = False


class BatchStore:
    """
    Batches waiting for Redis, applied in order.  ``redis`` is a txredisapi
    handler (``execute_command`` returning a Deferred); ``clock`` provides
    ``seconds`` and ``callLater``.  ``on_generation_done(g)`` is called when
    every batch filed under journal generation ``g`` is confirmed.
    """

    _log = Logger()

    def __init__(self, redis, clock, on_generation_done, retry_interval=1.0,
                 alert_after=60.0, role="metawriter", min_replicas=0):
        self._redis = redis
        self.min_replicas = min_replicas
        self._clock = clock
        self._on_generation_done = on_generation_done
        self.retry_interval = retry_interval
        self.alert_after = alert_after
        self._role = role
        self._queue = deque()
        self._per_generation = {}
        self._round = None
        self._retry = None
        self._waiting_since = None
        self._last_alert = None
        self._stopped = False
        self._idle_waiters = []
        self.applied = 0
        self.replayed = 0

    def __len__(self):
        """Batches not yet confirmed by Redis."""
        return len(self._queue)

    def waited(self):
        """Seconds the oldest unconfirmed batch has waited for Redis (0 when none waits)."""
        return self._clock.seconds() - self._waiting_since if self._queue else 0.0

    def add(self, batches, generation=None):
        """Queue ``batches`` (filed under journal ``generation``, or not yet filed)."""
        if not batches:
            return
        if not self._queue:
            self._waiting_since = self._clock.seconds()
        for batch in batches:
            self._queue.append(_Entry(batch, generation))
        if generation is not None:
            self._per_generation[generation] = self._per_generation.get(generation, 0) + len(batches)
        self._pump()

    def unfiled(self):
        """The waiting batches not yet in any journal generation, in order."""
        return [e.batch for e in self._queue if e.generation is None]

    def file_unfiled(self, generation):
        """Record that every unfiled waiting batch is now filed under ``generation``."""
        count = 0
        for entry in self._queue:
            if entry.generation is None:
                entry.generation = generation
                count += 1
        if count:
            self._per_generation[generation] = self._per_generation.get(generation, 0) + count

    def when_idle(self):
        """A Deferred firing once nothing waits for Redis."""
        if not self._queue:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    def check(self):
        """Called once a second: alert when batches have waited too long."""
        if not self._queue:
            return
        now = self._clock.seconds()
        waited = now - self._waiting_since
        if waited >= self.alert_after and (
                self._last_alert is None or now - self._last_alert >= self.alert_after):
            self._last_alert = now
            self._log.critical("Redis writes failing for {seconds:.0f} s; {count} batches waiting",
                               seconds=waited, count=len(self._queue), role=self._role)

    def stop(self):
        """Send nothing more (what waits stays in the journal for the next start)."""
        self._stopped = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _pump(self):
        if self._round is not None or self._retry is not None or self._stopped or not self._queue:
            return
        entries = []
        for entry in self._queue:
            entries.append(entry)
            if len(entries) >= ROUND_SIZE:
                break
        calls = [defer.maybeDeferred(
            self._redis.execute_command, "EVAL", APPLY_SCRIPT, 1, e.batch.guard_key,
            *e.batch.script_args()) for e in entries]
        if self.min_replicas:
            calls.append(defer.maybeDeferred(
                self._redis.execute_command, "WAIT", self.min_replicas, WAIT_TIMEOUT_MS).addCallback(self._replicated))
        self._round = defer.DeferredList(calls, consumeErrors=True)
        self._round.addCallback(self._finished, entries)

    def _replicated(self, count):
        if int(count) < self.min_replicas:
            raise TooFewReplicas(f"{count} of {self.min_replicas} replicas acknowledged the writes")
        return count

    def _finished(self, results, entries):
        self._round = None
        failure = None
        if self.min_replicas:
            ok, result = results.pop()
            if not ok:
                # Not on enough replicas: as if every batch of the round failed.
                results = [(False, result)] * len(results)
        for entry, (ok, result) in zip(entries, results):
            if ok:
                self._confirm(entry, result)
            elif failure is None:
                failure = result
        self._queue = deque(e for e in self._queue if not e.done)
        if not self._queue:
            self._waiting_since = None
            self._last_alert = None
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        if failure is not None and not self._stopped:
            self._log.warn("Redis write failed ({error}); {count} batches waiting, retrying in {delay} s",
                           error=failure.getErrorMessage(), count=len(self._queue),
                           delay=self.retry_interval, role=self._role)
            self._retry = self._clock.callLater(self.retry_interval, self._retry_now)
            return
        self._pump()

    def _retry_now(self):
        self._retry = None
        self._pump()

    def _confirm(self, entry, reply):
        entry.done = True
        self._waiting_since = self._clock.seconds()
        try:
            applied, errors, first = int(reply[0]), int(reply[1]), reply[2]
        except (TypeError, ValueError, IndexError):
            applied, errors, first = 1, 0, ""
            self._log.error("unexpected reply {reply!r} to batch {batch}", reply=reply,
                            batch=entry.batch.batch_id, role=self._role)
        if applied:
            self.applied += 1
        else:
            self.replayed += 1
        if errors:
            self._log.error("batch {batch}: {errors} Redis commands failed, first: {first}",
                            batch=entry.batch.batch_id, errors=errors, first=first, role=self._role)
        generation = entry.generation
        if generation is not None:
            left = self._per_generation[generation] - 1
            if left:
                self._per_generation[generation] = left
            else:
                del self._per_generation[generation]
                self._on_generation_done(generation)
