"""Rate limiting of similar alerts, with summaries and bounded memory."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from viabtc.alertcenter.limiter import AlertLimiter


def limiter(clock, **kw):
    params = dict(rate=0.5, burst=3, total_rate=100.0, total_burst=100, similar_prefix=8, max_groups=50)
    params.update(kw)
    return AlertLimiter(clock, **params)


class LimiterTests(unittest.TestCase):
    def test_burst_then_summary(self):
        clock = Clock()
        lim = limiter(clock)
        got = [lim.offer(b"h", b"[fatal]a.c:1 boom %d" % i) for i in range(10)]
        self.assertEqual(got, [True] * 3 + [False] * 7)
        self.assertEqual(lim.summaries(b"ac"), [])  # no token yet
        clock.advance(2.0)  # one token back at 0.5/s
        self.assertEqual(lim.summaries(b"ac"), [b"h: 7 similar alerts suppressed; last: [fatal]a.c:1 boom 9"])
        self.assertEqual(lim.summaries(b"ac"), [])
        clock.advance(2.0)
        self.assertTrue(lim.offer(b"h", b"[fatal]a.c:1 boom again"))

    def test_pending_summary_goes_first(self):
        clock = Clock()
        lim = limiter(clock)
        for i in range(4):
            lim.offer(b"h", b"[fatal]a.c:1 boom")
        clock.advance(2.0)
        self.assertFalse(lim.offer(b"h", b"[fatal]a.c:1 boom"))  # the summary has the token
        self.assertEqual(lim.summaries(b"ac"), [b"h: 2 similar alerts suppressed; last: [fatal]a.c:1 boom"])

    def test_groups_by_host_and_prefix(self):
        clock = Clock()
        lim = limiter(clock, burst=1)
        self.assertTrue(lim.offer(b"h1", b"[fatal]a.c:1 x"))
        self.assertFalse(lim.offer(b"h1", b"[fatal]a.c:9 y"))  # same 8-byte prefix
        self.assertTrue(lim.offer(b"h2", b"[fatal]a.c:1 x"))  # other host
        self.assertTrue(lim.offer(b"h1", b"[error]b.c:1 x"))  # other prefix

    def test_total_rate_bounds_distinct_alerts(self):
        clock = Clock()
        lim = limiter(clock, total_rate=1.0, total_burst=5, max_groups=100000)
        accepted = sum(lim.offer(b"h", b"%c%c distinct" % (65 + i // 26 % 26, 65 + i % 26)) for i in range(600))
        self.assertEqual(accepted, 5)
        # The refused ones are counted pool-wide, in one entry once a token is back.
        self.assertEqual(lim.summaries(b"ac"), [])
        clock.advance(1.0)
        self.assertEqual(lim.summaries(b"ac"), [b"ac: 595 alerts suppressed (over the total alert rate)"])
        # The flood's groups owe no summaries, so the next token serves a new kind of alert.
        clock.advance(1.0)
        self.assertEqual(lim.summaries(b"ac"), [])
        self.assertTrue(lim.offer(b"h2", b"something else"))

    def test_digits_do_not_split_groups(self):
        clock = Clock()
        lim = limiter(clock, burst=1, similar_prefix=64)
        self.assertTrue(lim.offer(b"h", b"[fatal]gw.c:99(loop): retry 9 of 100"))
        self.assertFalse(lim.offer(b"h", b"[fatal]gw.c:99(loop): retry 10 of 100"))
        self.assertTrue(lim.offer(b"h", b"[fatal]gw.c:99(loop): other text"))

    def test_idle_groups_forgotten(self):
        clock = Clock()
        lim = limiter(clock)
        for i in range(20):
            lim.offer(b"h", b"x%c" % (65 + i))
        self.assertEqual(len(lim), 20)
        clock.advance(1.0)
        lim.summaries(b"ac")
        self.assertEqual(len(lim), 20)  # buckets not full yet
        clock.advance(10.0)
        lim.summaries(b"ac")
        self.assertEqual(len(lim), 0)

    def test_max_groups(self):
        clock = Clock()
        lim = limiter(clock, max_groups=10)
        accepted = sum(lim.offer(b"h", b"x%c" % (65 + i)) for i in range(15))
        self.assertEqual((accepted, len(lim)), (10, 10))
        self.assertEqual(lim.summaries(b"ac"), [b"ac: 5 alerts suppressed (over the total alert rate)"])
