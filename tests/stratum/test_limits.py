"""Tests for viabtc.stratum.limits and the limits as the server protocol applies them."""

import json

import attrs

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigError, ConfigReader
from viabtc.stratum.limits import Limits, Offenders
from viabtc.stratum.protocol import AUTHORIZED_LINES, StratumServerFactory
from viabtc.stratum.session import State

from tests.stratum.jobs import CURTIME, prepared_job
from tests.stratum.test_protocol import ServerTestCase


class LimitsConfigTests(TestCase):
    def test_absent_section_gives_defaults(self):
        self.assertEqual(Limits.from_reader(None), Limits())

    def test_section_values(self):
        reader = ConfigReader({"limits": {"max_connections_per_ip": 10, "request_rate": 5, "auth_timeout": 30}})
        limits = Limits.from_reader(reader.section("limits"))
        self.assertEqual(limits.max_connections_per_ip, 10)
        self.assertEqual(limits.request_rate, 5.0)
        self.assertEqual(limits.auth_timeout, 30.0)
        self.assertEqual(limits.max_connections, Limits().max_connections)
        self.assertEqual(reader.unused(), [])

    def test_bad_values_name_the_key(self):
        for data, key in [
            ({"max_connections": 0}, "limits.max_connections"),
            ({"request_burst": "many"}, "limits.request_burst"),
            ({"ban_time": 600, "ban_time_max": 60}, "limits.ban_time_max"),
        ]:
            reader = ConfigReader({"limits": data})
            e = self.assertRaises(ConfigError, Limits.from_reader, reader.section("limits"))
            self.assertEqual(e.key, key)

    def test_unknown_key_is_reported_unused(self):
        reader = ConfigReader({"limits": {"max_conections": 5}})
        Limits.from_reader(reader.section("limits"))
        self.assertEqual(reader.unused(), ["limits.max_conections"])


class OffenderTests(TestCase):
    limits = Limits(ban_strikes=3, ban_time=60, ban_time_max=400, ban_forget=1000, max_offenders=3)

    def test_bans_grow_from_the_third_strike(self):
        o = Offenders(self.limits)
        self.assertEqual([o.offend("1.1.1.1", t) for t in (0, 1)], [0, 0])
        self.assertFalse(o.banned("1.1.1.1", 2))
        self.assertEqual(o.offend("1.1.1.1", 2), 60)
        self.assertTrue(o.banned("1.1.1.1", 61))
        self.assertFalse(o.banned("1.1.1.1", 62))
        self.assertEqual([o.offend("1.1.1.1", t) for t in (100, 200, 300)], [120, 240, 400])
        self.assertFalse(o.banned("2.2.2.2", 300))

    def test_strikes_lapse(self):
        o = Offenders(self.limits)
        for t in (0, 1, 2):
            o.offend("1.1.1.1", t)
        self.assertEqual(o.offend("1.1.1.1", 2000), 0)

    def test_bounded_least_recent_forgotten(self):
        o = Offenders(self.limits)
        for t, host in enumerate(["a", "b", "c", "a", "d"]):
            o.offend(host, t)
        self.assertEqual(len(o), 3)
        self.assertEqual(o.offend("b", 10), 0)  # "b" was forgotten: a first strike again
        self.assertEqual(o.offend("a", 11), 60)  # "a" offended recently: kept, third strike

    def test_prune(self):
        o = Offenders(self.limits)
        for t in (0, 1, 2):
            o.offend("x", t)
        o.offend("y", 500)
        self.assertEqual(o.prune(1001), 0)
        self.assertEqual(o.prune(1003), 1)
        self.assertEqual(len(o), 1)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0, 10))))
    def test_never_over_bound_and_bans_within_cap(self, events):
        o = Offenders(self.limits)
        now = 0.0
        for host, step in events:
            now += step
            self.assertLessEqual(o.offend(host, now), self.limits.ban_time_max)
            self.assertLessEqual(len(o), self.limits.max_offenders)


class _LimitedCase(ServerTestCase):
    limits = Limits()

    def setUp(self):
        super().setUp()
        self.factory = StratumServerFactory(self.context, self.clock, limits=self.limits)
        self.factory.startFactory()
        self.addCleanup(self.factory.stopFactory)

    def lose(self, proto):
        """The transport reports the connection gone (StringTransport never does)."""
        proto.connectionLost(Failure(ConnectionDone()))

    def line(self, proto, text):
        proto.dataReceived(text if isinstance(text, bytes) else text.encode())


class ConnectionLimitTests(_LimitedCase):
    limits = Limits(max_connections=5, max_connections_per_ip=2)

    def test_per_ip(self):
        a, _ = self.connect("10.0.0.1")
        self.connect("10.0.0.1")
        refused, transport = self.connect("10.0.0.1")
        self.assertIsNone(refused.session)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.counts["limit_conn_ip"], 1)
        self.assertIsNotNone(self.connect("10.0.0.2")[0].session)
        self.lose(a)
        self.assertIsNotNone(self.connect("10.0.0.1")[0].session)
        refused.connectionLost(Failure(ConnectionDone()))  # a refused connection going away is harmless
        self.assertEqual(self.factory.connections, 3)

    def test_total(self):
        for i in range(5):
            self.connect(f"10.0.1.{i}")
        proto, transport = self.connect("10.0.2.1")
        self.assertIsNone(proto.session)
        self.assertEqual(self.factory.counts["limit_conn_total"], 1)
        self.assertEqual(self.factory.connections, 5)


class StaleSessionTests(_LimitedCase):
    """A farm back from an uplink failure while its old, dead connections still fill its limit."""

    limits = Limits(max_connections_per_ip=3, stale_after=100)

    def test_silent_sessions_make_room_for_new_connections(self):
        old = [self.miner(host="10.0.0.1") for _ in range(3)]
        self.clock.advance(50)
        self.call(*old[0], "mining.extranonce.subscribe", [])  # still alive
        self.clock.advance(51)
        new, new_transport = self.connect("10.0.0.1")
        self.assertIsNotNone(new.session)
        self.assertEqual(self.factory.counts["limit_stale_closed"], 2)
        self.assertEqual([t.disconnected for _, t in old], [False, True, True])
        self.assertEqual(self.factory.connections, 2)
        self.assertIsNotNone(self.connect("10.0.0.1")[0].session)
        # The address is full of live sessions again: refused, and no session is closed for it.
        refused, _ = self.connect("10.0.0.1")
        self.assertIsNone(refused.session)
        self.assertEqual(self.factory.counts["limit_conn_ip"], 1)
        self.assertEqual(self.factory.counts["limit_stale_closed"], 2)
        # Their ends, when the transport reports them, are not counted twice.
        for proto, _ in old[1:]:
            self.lose(proto)
        self.assertEqual(self.factory.connections, 3)
        self.assertEqual(self.factory._per_host, {"10.0.0.1": 3})

    def test_under_the_limit_nobody_is_closed(self):
        old, old_transport = self.miner(host="10.0.0.1")
        self.clock.advance(500)
        self.connect("10.0.0.1")
        self.assertFalse(old_transport.disconnected)
        self.assertNotIn("limit_stale_closed", self.factory.counts)


class StormLogTests(_LimitedCase):
    def test_authorized_lines_summed_up_in_a_storm(self):
        """Past ``AUTHORIZED_LINES`` a second, authorized workers are counted into one line."""
        with capturedLogs() as events:
            for i in range(AUTHORIZED_LINES + 10):
                self.miner(account=f"farm.rig{i}", host=f"10.0.{i // 200}.{i % 200}")
            self.clock.advance(1)
            self.miner(account="late.rig", host="10.9.0.1")
        one_by_one = [e["worker"] for e in events if "worker" in e and e["log_format"].startswith("authorized")]
        self.assertEqual(one_by_one, [f"rig{i}" for i in range(AUTHORIZED_LINES)] + ["rig"])
        (summary,) = [e for e in events if "count" in e]
        self.assertEqual(summary["count"], 10)
        self.assertEqual(self.context.events.count(("authorized", "farm", "rig59")), 1)


class RateLimitTests(_LimitedCase):
    limits = Limits(request_rate=10, request_burst=20)

    def request(self, n=1):
        return b'{"id":1,"method":"mining.extranonce.subscribe","params":[]}\n' * n

    def test_burst_then_throttled(self):
        proto, transport = self.connect()
        self.line(proto, self.request(20))
        self.assertEqual(len(self.received(transport)), 20)
        self.line(proto, self.request(2))
        # Over the rate: not answered, not read, not closed.
        self.assertEqual(self.received(transport), [])
        self.assertEqual(transport.producerState, "paused")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.factory.counts["limit_throttle"], 1)
        self.assertNotIn("limit_rate", self.factory.counts)
        # Two tokens at 10/s: both lines are answered, reading goes on.
        self.clock.advance(0.2)
        self.assertEqual(len(self.received(transport)), 2)
        self.assertEqual(transport.producerState, "producing")

    def test_bytes_delivered_while_throttled_wait_in_order(self):
        proto, transport = self.connect()
        self.line(proto, self.request(21))
        self.received(transport)
        self.line(proto, b'{"id":2,"method":"mining.extranonce.subscribe","params":[]}\n')
        self.clock.advance(10)
        self.assertEqual([r["id"] for r in self.received(transport)], [1, 2])

    def test_sustained_rate_is_fine(self):
        proto, transport = self.miner()
        for _ in range(100):
            self.line(proto, self.request(10))
            self.clock.advance(1.0)
        self.assertFalse(transport.disconnecting)
        self.assertNotIn("limit_rate", self.factory.counts)

    def test_partial_lines_cost_nothing(self):
        proto, transport = self.connect()
        data = self.request(20)
        for i in range(len(data)):
            self.line(proto, data[i:i + 1])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.received(transport)), 20)


class DeadlineTests(_LimitedCase):
    limits = Limits(auth_timeout=30, close_timeout=5)

    def test_unauthorized_closed_at_deadline(self):
        slow, slow_transport = self.connect("10.0.0.1")
        self.call(slow, slow_transport, "mining.subscribe", [])
        miner, miner_transport = self.miner(host="10.0.0.2")
        self.clock.advance(29)
        self.assertFalse(slow_transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(slow_transport.disconnecting)
        self.assertFalse(miner_transport.disconnecting)
        self.assertEqual(self.factory.counts["limit_auth_timeout"], 1)

    def test_late_sweep_spares_the_authorize_still_unread(self):
        """
        After a stall longer than the deadline (a reconnect storm kept the
        reactor busy) the first sweep closes nobody: the session's
        authorize, waiting to be read, still counts.  One sweep later an
        unauthorized session is closed.
        """
        miner, miner_transport = self.connect("10.0.0.1")
        self.call(miner, miner_transport, "mining.subscribe", [])
        slow, slow_transport = self.connect("10.0.0.2")
        self.clock.advance(45)  # one late sweep
        self.assertFalse(slow_transport.disconnecting)
        self.call(miner, miner_transport, "mining.authorize", ["alice.rig1", "x"])
        self.clock.advance(1)
        self.assertFalse(miner_transport.disconnecting)
        self.assertTrue(slow_transport.disconnecting)
        self.assertEqual(self.factory.counts["limit_auth_timeout"], 1)

    def test_closed_peer_that_lingers_is_aborted(self):
        proto, transport = self.connect()
        self.line(proto, b"garbage\n")
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        self.clock.advance(6)
        self.assertTrue(transport.disconnected)  # StringTransport: aborted
        self.assertEqual(self.factory.counts["limit_close_timeout"], 1)

    def test_closed_peer_that_goes_is_not_aborted(self):
        proto, transport = self.connect()
        self.line(proto, b"garbage\n")
        self.lose(proto)
        self.clock.advance(6)
        self.assertNotIn("limit_close_timeout", self.factory.counts)

    def test_idle_counted(self):
        self.context.settings = attrs.evolve(self.context.settings, client_max_idle_time=100)
        self.factory = StratumServerFactory(self.context, self.clock, limits=self.limits,
                                            housekeeping_interval=10)
        self.factory.startFactory()
        self.addCleanup(self.factory.stopFactory)
        proto, transport = self.miner()
        self.clock.pump([10] * 11)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.counts["limit_idle"], 1)


class SlowReaderTests(_LimitedCase):
    limits = Limits(max_send_buffer=10_000)

    def test_paused_peer_dropped_past_bound(self):
        proto, transport = self.miner()
        other, other_transport = self.miner(host="10.0.0.9")
        transport.producer.pauseProducing()  # what TCP does when its buffer is full
        for i in range(40):
            prepared = prepared_job(job_id=f"{i + 1:x}", clean_jobs=False)
            self.context.jobs.add(prepared)
            self.factory.broadcast_job(prepared)
        self.assertTrue(transport.disconnected)
        self.assertLess(len(transport.value()), 10_000)
        self.assertEqual(self.factory.counts["limit_slow_reader"], 1)
        self.assertFalse(other_transport.disconnecting)
        self.assertEqual(len(other_transport.value().splitlines()), 40)

    def test_resume_resets(self):
        proto, transport = self.miner()
        for i in range(40):
            transport.producer.pauseProducing()
            prepared = prepared_job(job_id=f"{i + 1:x}", clean_jobs=False)
            self.context.jobs.add(prepared)
            self.factory.broadcast_job(prepared)
            transport.producer.resumeProducing()  # the peer read it all
        self.assertFalse(transport.disconnecting)
        self.assertNotIn("limit_slow_reader", self.factory.counts)

    def test_registered_as_streaming_producer(self):
        proto, transport = self.connect()
        self.assertIs(transport.producer, proto)
        self.assertTrue(transport.streaming)


class BanEscalationTests(_LimitedCase):
    limits = Limits(ban_strikes=3, ban_time=60, ban_time_max=1000)

    def abuse(self, host="10.6.6.6"):
        proto, transport = self.connect(host)
        if proto.session is None:
            return False
        self.line(proto, b"\x00\xffnot json\n")
        self.assertTrue(transport.disconnecting)
        self.lose(proto)
        return True

    def test_repeat_offender_refused_for_growing_time(self):
        self.assertTrue(all(self.abuse() for _ in range(3)))
        self.assertEqual(self.factory.counts["limit_ban"], 1)
        self.assertFalse(self.abuse())
        self.assertEqual(self.factory.counts["limit_banned"], 1)
        self.assertTrue(self.abuse("10.6.6.7"))  # others are not affected
        self.clock.advance(61)
        self.assertTrue(self.abuse())  # fourth strike: 120 s
        self.clock.advance(61)
        self.assertFalse(self.abuse())
        self.clock.advance(60)
        self.assertTrue(self.abuse())

    def test_honest_miner_never_struck(self):
        self.add_job()
        for _ in range(10):
            proto, transport = self.miner()
            self.submit(proto, transport)
            proto.close()
            self.lose(proto)
        self.assertEqual(len(self.factory.offenders), 0)

    def test_every_abuse_close_strikes(self):
        # line too long
        proto, transport = self.connect("10.7.0.1")
        self.line(proto, b"x" * 20000)
        self.assertEqual(self.factory.counts["limit_line"], 1)
        # invalid-share ratio
        self.add_job()
        proto, transport = self.miner(host="10.7.0.2")
        bad = {"id": 1, "method": "mining.submit", "params": ["alice.rig1", "1a", "zz", "00", "00"]}
        proto.dataReceived((json.dumps(bad) + "\n").encode() * 300)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.counts["limit_invalid_ratio"], 1)
        self.assertEqual(len(self.factory.offenders), 2)


class BoundedTablesTests(_LimitedCase):
    limits = Limits(max_connections=50, max_connections_per_ip=50, auth_timeout=5)

    def test_tables_drain(self):
        protos = [self.connect(f"10.1.{i // 250}.{i % 250}")[0] for i in range(80)]
        self.assertEqual(self.factory.connections, 50)
        self.clock.pump([1] * 6)
        for proto in protos:
            if proto.session is not None:
                self.lose(proto)
        self.assertEqual(self.factory.connections, 0)
        self.assertEqual(self.factory._per_host, {})
        self.assertEqual(self.factory._auth_deadlines, {})
        self.assertEqual(self.factory._close_deadlines, {})
        self.assertEqual(self.factory.counts["limit_auth_timeout"], 50)



class LineSender:
    """
    A peer offering ``rate`` lines a second for ``seconds`` (``line(i)``
    makes the i-th) to a protocol on a ``StringTransport`` and a
    ``task.Clock``: it delivers only while the transport reads (the
    protocol's ``pauseProducing`` holds it back, as TCP would), at most
    ``chunk`` bytes a read, a step of ``step`` seconds at a time.
    """

    def __init__(self, proto, transport, clock, rate, seconds, line, chunk=65536, step=0.01):
        self.proto, self.transport, self.clock = proto, transport, clock
        self.rate, self.seconds, self.line = rate, seconds, line
        self.chunk, self.step = chunk, step
        self.start = clock.seconds()
        self.total = int(rate * seconds)
        self.sent = 0

    def offered(self):
        elapsed = min(self.clock.seconds() - self.start, self.seconds)
        return min(int(elapsed * self.rate), self.total)

    def run(self, until, done=lambda: False):
        """Advance the clock to ``until`` seconds from the start, or until ``done()``."""
        while self.clock.seconds() - self.start < until and not done():
            if self.transport.producerState == "producing" and not self.transport.disconnecting:
                data, size = [], 0
                while self.sent < self.offered() and size < self.chunk:
                    line = self.line(self.sent)
                    data.append(line)
                    size += len(line)
                    self.sent += 1
                if data:
                    self.proto.dataReceived(b"".join(data))
            self.clock.advance(self.step)


class ThrottleTests(_LimitedCase):
    """The default rate (100 lines/s, burst 1000) against a farm proxy and a flood."""

    limits = Limits()

    def share(self, i):
        return (b'{"id":%d,"method":"mining.submit","params":["alice.rig1","1a","%016x","%08x",'
                b'"00000000"]}\n' % (i, i, CURTIME))

    def test_farm_proxy_is_throttled_and_every_share_counts(self):
        self.add_job()
        proto, transport = self.miner()
        sender = LineSender(proto, transport, self.clock, 1_000, 10, self.share)
        accepted = lambda: sum(1 for e in self.context.events if e[0] == "accepted")
        sender.run(until=600, done=lambda: accepted() == sender.total)
        self.assertEqual(accepted(), 10_000)
        replies = [json.loads(line) for line in transport.value().splitlines()]
        self.assertEqual([r["result"] for r in replies], [True] * 10_000)
        self.assertFalse(transport.disconnecting)
        self.assertGreater(self.factory.counts["limit_throttle"], 0)
        self.assertNotIn("limit_rate", self.factory.counts)

    def test_flood_is_dropped(self):
        self.add_job()
        proto, transport = self.miner()
        sender = LineSender(proto, transport, self.clock, 100_000, 10, self.share)
        sender.run(until=600, done=lambda: transport.disconnecting)
        self.assertTrue(transport.disconnecting)
        self.assertIs(proto.session.state, State.CLOSING)
        self.assertEqual(self.factory.counts["limit_rate"], 1)
        self.assertGreater(self.factory.counts["limit_throttle"], 0)
        last = json.loads(transport.value().splitlines()[-1])
        self.assertEqual(last["error"][:2], [20, "Rate limit exceeded"])
        # Held back the whole time: at most the burst and the rate were read.
        self.assertLess(sender.sent, 1_000 + 100 * Limits().throttle_time + 1_000)
