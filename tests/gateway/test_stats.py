"""
The gateway's statistics on a ``task.Clock``, shipped through the real
journal and a real UDP socket: exact minutes, integral pow from fractional
difficulties, events and blocks at once.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from viabtc.stats import records

from tests.gateway.support import stats_pipeline, wait_for

T = 1_700_000_040  # a minute start


class GatewayStatsTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(T)
        self.stats, self.writer = stats_pipeline(self, self.clock)
        self.stats.start()
        self.addCleanup(lambda: self.stats._timer.running and self.stats._timer.stop())

    def at(self, seconds):
        self.clock.advance(T + seconds - self.clock.seconds())

    async def test_each_share_counts_in_its_own_minute(self):
        self.stats.share("alice", "rig1", 4, 0.5, T + 10)
        self.stats.share("alice", "rig1", 4, 0.5, T + 59.9)
        self.stats.share("bob", "x", 2, 0.25, T + 60.1)
        self.at(61)
        await wait_for(lambda: self.writer.records(records.META_SHARE), what="minute T")
        shares = {(m, r.key): (r.num, r.pow, r.goal) for m, r in self.writer.records(records.META_SHARE)}
        self.assertEqual(shares, {(T, "alice"): (2, 8, 1.0), (T, "alice:rig1"): (2, 8, 0.0)})
        self.stats.stop()
        await wait_for(lambda: any(m == T + 60 for m, _ in self.writer.records(records.META_SHARE)),
                       what="the current minute at stop")
        later = {r.key: r.num for m, r in self.writer.records(records.META_SHARE) if m == T + 60}
        self.assertEqual(later, {"bob": 1, "bob:x": 1})

    def test_fractional_difficulties_carry_into_integral_pow(self):
        for _ in range(5):
            self.stats.share("alice", "rig1", 0.4, 0.0, T + 1)
        (minute,) = self.stats.aggregator.flush_all()
        pows = {r.key: r.pow for r in minute.shares}
        self.assertEqual(pows, {"alice": 2, "alice:rig1": 2})
        floats = {r.key: r.sum for r in minute.monitor_floats}
        self.assertAlmostEqual(floats["pow_float"], 2.0)
        self.stats.share("alice", "rig1", 0.4, 0.0, T + 62)
        (minute,) = self.stats.aggregator.flush_all()
        self.assertEqual({r.key: r.pow for r in minute.shares}, {"alice": 0, "alice:rig1": 0})
        # The exact sum goes out as the float monitor counter pow_float.
        self.assertEqual({r.key: r.sum for r in minute.monitor_floats}, {"pow_float": 0.4})

    def test_rejects_without_a_user_count_only_the_monitor(self):
        self.stats.reject("", "", 25, T + 1)
        self.stats.reject("alice", "rig1", 21, T + 1)
        (minute,) = self.stats.aggregator.flush_all()
        ints = {r.key: r.sum for r in minute.monitor_ints}
        self.assertEqual((ints["reject"], ints["reject_25"], ints["reject_21"]), (2, 1, 1))
        self.assertEqual({r.key for r in minute.shares}, {"alice:reject", "alice:rig1:reject"})

    async def test_events_and_blocks_go_at_once_stamped(self):
        """At the end of the reactor turn they happened in, together: one journal write for a burst."""
        self.at(30)
        journal = self.stats._sender._queue
        writes = []
        real_append = journal.append
        journal.append = lambda payloads: (writes.append(len(payloads)), real_append(payloads))[1]
        self.stats.event("alice", "rig1", "10.0.0.1", "connected", T + 30)
        self.stats.block("alice", "rig1", "BTC", "00" * 32, T + 30)
        self.assertEqual(writes, [])
        self.clock.advance(0)
        self.assertEqual(writes, [2])
        await wait_for(lambda: self.writer.records(records.META_BLOCK), what="the block record")
        await wait_for(lambda: self.writer.records(records.META_EVENT), what="the event record")
        self.assertEqual(self.writer.records(records.META_EVENT),
                         [(T, records.EventRecord("alice", "rig1", "btc", "10.0.0.1", "connected"))])
        self.assertEqual(self.writer.records(records.META_BLOCK),
                         [(T, records.BlockRecord("alice", "rig1", "BTC", "00" * 32))])
        (minute,) = self.stats.aggregator.flush_all()
        self.assertIn(records.MonitorIntRecord("block", "gw-test", "btc", 1), minute.monitor_ints)

    async def test_a_storm_of_events_packs_into_few_packets(self):
        """A thousand miners connecting in one turn: a handful of cmd 101 packets, every record kept."""
        self.at(30)
        journal = self.stats._sender._queue
        writes = []
        real_append = journal.append
        journal.append = lambda payloads: (writes.append(len(payloads)), real_append(payloads))[1]
        for i in range(1000):
            self.stats.event("alice", f"rig{i}", "10.0.0.1", "connected", T + 30)
        # A record that cannot be encoded (a name longer than any body) costs only itself.
        self.stats.event("alice", "x" * 2000, "10.0.0.1", "connected", T + 30)
        self.clock.advance(0)
        [packets] = writes
        self.assertLess(packets, 1000 // 10)
        await wait_for(lambda: len(self.writer.records(records.META_EVENT)) == 1000, what="1,000 event records")
        self.assertEqual(sorted(r.worker for _, r in self.writer.records(records.META_EVENT)),
                         sorted(f"rig{i}" for i in range(1000)))

    def test_connections_sampled_once_a_minute(self):
        """One sample per minute: the count is a count, not a sum of samples (ref §12.26)."""
        self.stats._timer.stop()
        count = [3]
        self.stats._connections = lambda: count[0]
        self.stats._sampled_minute = None
        for seconds in (1, 30, 59):
            self.at(seconds)
            self.stats._sample(self.clock.seconds())
        count[0] = 5
        self.at(60)
        self.stats._sample(self.clock.seconds())
        minutes = self.stats.aggregator.flush_all()
        self.assertEqual([{r.key: r.sum for r in m.monitor_ints}.get("connections") for m in minutes], [3, 5])
