# -*- test-case-name: tests.alertcenter.test_service -*-
"""
Delivery of alert entries to ``alert:message`` over one persistent Redis
connection, with a bounded queue for when Redis is away.

The seed opened a new Redis connection per alert and lost the alert when
Redis was down (ref §9, §12.5).  Here entries wait in a queue of at most
``limit`` (the oldest dropped first, counted, and reported in one entry once
Redis is back) and go out in order, up to ``batch`` per ``RPUSH``, one command
in flight at a time.  A command that fails (lost connection, timeout) is
retried after ``retry_delay``; an alert whose reply was lost may therefore
appear twice, which beats losing it.  With ``min_replicas`` (Redis behind
Sentinel) an ``RPUSH`` counts only once that many replicas hold it (Redis
``WAIT``, repeated while too few do), so a failover does not take
confirmed alerts away with the old master.
"""

from collections import deque

from twisted.internet.task import deferLater
from twisted.logger import Logger

from viabtc.stats.schema import ALERT_MESSAGE

#: Milliseconds an ``RPUSH``'s ``WAIT`` gives the replicas.
WAIT_TIMEOUT_MS = 1000


class RedisDelivery:
    """
    ``redis`` has txredisapi's ``rpush(key, values) -> Deferred`` (a lazy,
    reconnecting connection: commands issued while it is down wait for it);
    ``clock`` provides ``callLater``.
    """

    _log = Logger()

    def __init__(self, redis, clock, identity, limit=10000, batch=100, retry_delay=1.0, min_replicas=0):
        self._redis = redis
        self.min_replicas = min_replicas
        self._clock = clock
        self.identity = identity
        self.limit = limit
        self.batch = batch
        self.retry_delay = retry_delay
        self._queue = deque()
        self._inflight = None
        self._retry = None
        self.dropped = 0
        self.delivered = 0
        self._stopped = False

    def __len__(self):
        """Entries not yet confirmed by Redis (queued or in flight)."""
        return len(self._queue) + (len(self._inflight) if self._inflight else 0)

    def push(self, entry):
        """Queue one entry (bytes) for ``alert:message``."""
        self._queue.append(entry)
        if len(self) > self.limit and self._queue:
            self._queue.popleft()
            self.dropped += 1
        self._pump()

    def _pump(self):
        if self._inflight is not None or self._retry is not None or self._stopped:
            return
        if not self._queue and not self.dropped:
            return
        values = []
        while self._queue and len(values) < self.batch:
            values.append(self._queue.popleft())
        dropped = self.dropped
        if dropped:
            values.append(b"%s: %d alerts dropped while Redis was unreachable" % (self.identity, dropped))
        self._inflight = values
        d = self._redis.rpush(ALERT_MESSAGE, values)
        if self.min_replicas:
            d.addCallback(self._wait_replicas)
        d.addCallbacks(self._sent, self._failed, callbackArgs=(dropped,), errbackArgs=(dropped,))

    def _wait_replicas(self, length):
        """
        ``WAIT`` until enough replicas hold the push, on the same connection
        (the push is not repeated, so not doubled); a lost connection fails
        it, and the push is sent again wherever the master now is.
        """
        d = self._redis.execute_command("WAIT", self.min_replicas, WAIT_TIMEOUT_MS)

        def counted(count):
            if int(count) >= self.min_replicas or self._stopped:
                return length
            self._log.warn("{count} of {n} replicas hold the last alerts; waiting", count=count,
                           n=self.min_replicas)
            return deferLater(self._clock, self.retry_delay, self._wait_replicas, length)

        return d.addCallback(counted)

    def _sent(self, _length, dropped):
        self.delivered += len(self._inflight)
        self._inflight = None
        self.dropped -= dropped
        self._pump()

    def _failed(self, failure, dropped):
        values, self._inflight = self._inflight, None
        if dropped:
            values.pop()  # the drop note is rebuilt with the current count
        self._queue.extendleft(reversed(values))
        while len(self._queue) > self.limit:
            self._queue.popleft()
            self.dropped += 1
        if self._stopped:
            return
        self._log.warn("RPUSH {key} failed ({error}); {n} alerts waiting, retrying in {delay}s",
                       key=ALERT_MESSAGE, error=failure.getErrorMessage(), n=len(self), delay=self.retry_delay)
        self._retry = self._clock.callLater(self.retry_delay, self._retry_now)

    def _retry_now(self):
        self._retry = None
        self._pump()

    def stop(self):
        """Stop sending; returns how many entries were never confirmed."""
        self._stopped = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        return len(self)
