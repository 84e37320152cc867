"""
The writer core with a real journal and a real redis-server; time from a
``task.Clock`` so the minute flush happens exactly where the test says.
"""

import hashlib
import itertools

from twisted.internet import defer, reactor, task
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.roles import redis_connection
from tests.stats.seedbodies import seed_body
from tests.support import redis_server
from viabtc.metawriter.journal import Journal
from viabtc.metawriter.store import BatchStore
from viabtc.metawriter.writer import MetaWriter
from viabtc.rpc.codec import Packet, PacketType
from viabtc.stats.records import EventRecord, MonitorIntRecord, ShareRecord, encode_bodies
from viabtc.stats.writer_agg import WriterAggregator

T = 1482252540  # a minute start


def counter_random():
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


RANDOM = counter_random()


def packet(command, recs, minute=None):
    [body] = encode_bodies(command, recs, random=RANDOM, minute=minute)
    return Packet(command, body, PacketType.REQUEST, sequence=5)


def hgetall(server, key):
    flat = server.command("HGETALL", key)
    return dict(zip(flat[::2], flat[1::2]))


class FakeBrother:
    """A fake link to a brother metawriter: records the packets it is given."""

    connected = True

    def __init__(self):
        self.sent = []

    def send(self, packet):
        self.sent.append(packet)
        return True


class Acks:
    """Counts the ACK calls for each packet name."""

    def __init__(self):
        self.counts = {}

    def __call__(self, name):
        return lambda: self.counts.__setitem__(name, self.counts.get(name, 0) + 1)


class WriterCase(unittest.TestCase):
    """A writer on a real journal and a real redis-server, on ``self.clock``."""

    def setUp(self):
        self.server = redis_server(self)
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.redis = redis_connection(self, self.server, "metawriter").handler
        self.journal_dir = self.mktemp()
        self.clock = task.Clock()
        self.clock.advance(T + 1)
        self.acks = Acks()

    def writer(self, brother=None):
        journal = Journal(self.journal_dir)
        self.addCleanup(journal.close)
        store = BatchStore(self.redis, reactor, journal.confirm, retry_interval=0.1)
        self.addCleanup(store.stop)
        writer = MetaWriter(WriterAggregator(), journal, store, self.clock, "mw-1", 3600, brother=brother)
        writer.recover()
        return writer

    def feed(self, writer, name, pkt, peer="10.0.0.1:5000"):
        writer.packet_received(pkt, self.acks(name), peer)

    def minute(self, writer):
        """Advance into the next minute and tick: the flush happens."""
        self.clock.advance(60)
        writer.tick()
        return writer.store.when_idle()


class WriterTests(WriterCase):
    @defer.inlineCallbacks
    def test_flush_delay_lets_a_just_completed_minute_in(self):
        """With ``flush_delay`` the flush waits past the boundary for the minute a gateway ships then."""
        journal = Journal(self.journal_dir)
        self.addCleanup(journal.close)
        store = BatchStore(self.redis, reactor, journal.confirm, retry_interval=0.1)
        self.addCleanup(store.stop)
        writer = MetaWriter(WriterAggregator(), journal, store, self.clock, "mw-1", 3600, flush_delay=3)
        writer.recover()
        self.clock.advance(60)  # T + 61: the seed's writer would flush here
        writer.tick()
        self.feed(writer, "a", packet(102, [ShareRecord("alice", "gw", "btc", 2, 20, 0.5)], T))
        self.clock.advance(1)
        writer.tick()
        self.assertEqual(len(writer.store), 0)
        self.clock.advance(1)  # T + 63
        writer.tick()
        yield writer.store.when_idle()
        self.assertEqual(hgetall(self.server, "btc:s:alice"), {str(T): "2"})

    def test_ack_only_after_the_journal(self):
        writer = self.writer()
        self.feed(writer, "a", packet(102, [ShareRecord("alice", "gw", "btc", 1, 10, 0.0)], T))
        self.feed(writer, "b", packet(105, [MonitorIntRecord("pow", "gw", "btc", 10)], T))
        self.assertEqual(self.acks.counts, {})
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"a": 1, "b": 1})
        recovered = Journal(self.journal_dir).recover(T + 2, 3600).packets
        self.assertEqual([p.command for p in recovered], [102, 105])

    @defer.inlineCallbacks
    def test_retransmission_counted_once_and_acked_again(self):
        writer = self.writer()
        share = packet(102, [ShareRecord("alice", "gw", "btc", 2, 20, 0.5)], T)
        self.feed(writer, "a", share)
        self.feed(writer, "a", share)
        self.clock.advance(0)
        self.feed(writer, "a", Packet(102, share.body, sequence=99))
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"a": 3})
        yield self.minute(writer)
        self.assertEqual(hgetall(self.server, "btc:s:alice"), {str(T): "2"})
        self.assertEqual(hgetall(self.server, "btc:g:alice"), {str(T): "0.5"})
        self.assertEqual((writer.accepted, writer.duplicates), (1, 2))

    @defer.inlineCallbacks
    def test_malformed_and_foreign_packets_dropped_with_a_log_line(self):
        writer = self.writer()
        good = packet(102, [ShareRecord("bob", "gw", "btc", 1, 8, 0.0)], T)
        self.feed(writer, "short", Packet(102, b"too short"))
        self.feed(writer, "torn", Packet(102, good.body[:-3]))
        self.feed(writer, "job", Packet(1, b"{}"))
        self.feed(writer, "reply", Packet(102, good.body, PacketType.REPLY))
        self.feed(writer, "good", good)
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"short": 1, "torn": 1, "job": 1, "good": 1})
        yield self.minute(writer)
        self.assertEqual(hgetall(self.server, "btc:s:bob"), {str(T): "1"})
        self.assertEqual((writer.dropped, writer.torn), (3, 0))
        peers = [e.get("peer") for e in self.events if "dropped" in e.get("log_format", "")]
        self.assertEqual(peers, ["10.0.0.1:5000"] * 3)

    @defer.inlineCallbacks
    def test_brother_hashes_both_ways(self):
        brother = FakeBrother()
        writer = self.writer(brother)
        share = packet(102, [ShareRecord("carol", "gw", "btc", 1, 4, 0.0)], T)
        from_brother = packet(102, [ShareRecord("dave", "gw", "btc", 1, 4, 0.0)], T)
        self.feed(writer, "share", share)
        # The brother already counted this one and told us its digest.
        self.feed(writer, "hash", Packet(104, hashlib.sha256(from_brother.body).digest()))
        self.clock.advance(0)
        self.feed(writer, "dup", from_brother)
        self.clock.advance(0)
        self.assertEqual(brother.sent, [Packet(104, hashlib.sha256(share.body).digest(), PacketType.PUSH)])
        yield self.minute(writer)
        self.assertEqual(hgetall(self.server, "btc:s:carol"), {str(T): "1"})
        self.assertEqual(hgetall(self.server, "btc:s:dave"), {})
        self.assertEqual(self.acks.counts, {"share": 1, "hash": 1, "dup": 1})

    @defer.inlineCallbacks
    def test_kill_and_restart_loses_nothing_counts_nothing_twice(self):
        first = packet(102, [ShareRecord("alice", "gw", "btc", 3, 30, 0.25)], T)
        event = packet(101, [EventRecord("alice", "rig1", "btc", "10.0.0.9", "connected")])
        second = packet(102, [ShareRecord("alice", "gw", "btc", 1, 10, 0.25)], T + 60)
        writer = self.writer()
        self.feed(writer, "first", first)
        self.feed(writer, "event", event)
        self.clock.advance(0)
        yield self.minute(writer)
        self.feed(writer, "second", second)
        self.clock.advance(0)
        # kill -9: no flush, no stop; only the journal remains.
        writer.journal.close()
        writer.store.stop()
        restarted = self.writer()
        # The senders retransmit what they think may be lost: all three.
        for name, pkt in (("first", first), ("event", event), ("second", second)):
            self.feed(restarted, name, Packet(pkt.command, pkt.body, sequence=77))
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"first": 2, "event": 2, "second": 2})
        yield self.minute(restarted)
        self.assertEqual(hgetall(self.server, "btc:s:alice"), {str(T): "3", str(T + 60): "1"})
        self.assertEqual(hgetall(self.server, "btc:p:alice"), {str(T): "30", str(T + 60): "10"})
        self.assertEqual(hgetall(self.server, "btc:g:alice"), {str(T): "0.25", str(T + 60): "0.25"})
        self.assertEqual(len(self.server.command("LRANGE", "newevent", 0, -1)), 1)
        self.assertEqual(len(self.server.command("LRANGE", "newworker", 0, -1)), 1)

    @defer.inlineCallbacks
    def test_restart_after_a_flush_keeps_newworker_once_an_hour(self):
        """
        The journal no longer holds a worker's first ``connected`` once a
        flush covered it; after a restart her reconnect within the hour must
        still not write a second ``newworker`` entry.
        """
        writer = self.writer()
        self.feed(writer, "first", packet(101, [EventRecord("alice", "rig1", "btc", "10.0.0.9", "connected")]))
        self.clock.advance(0)
        yield self.minute(writer)
        writer.journal.close()
        writer.store.stop()
        restarted = self.writer()
        self.feed(restarted, "again", packet(101, [EventRecord("alice", "rig1", "btc", "10.0.0.9", "connected")]))
        self.clock.advance(0)
        yield self.minute(restarted)
        self.assertEqual(len(self.server.command("LRANGE", "newevent", 0, -1)), 2)
        self.assertEqual(self.server.command("LRANGE", "newworker", 0, -1),
                         ['{"user": "alice", "worker": "rig1", "coin": "btc"}'])

    @defer.inlineCallbacks
    def test_flush_cost_recorded_while_redis_waits(self):
        writer = self.writer()
        self.server.stop()
        self.feed(writer, "a", packet(102, [ShareRecord("erin", "gw", "btc", 1, 1, 0.0)], T))
        self.clock.advance(0)
        self.clock.advance(60)
        writer.tick()
        for _ in range(5):
            self.clock.advance(1)
            writer.tick()
        self.clock.advance(55)
        writer.tick()
        self.server.start()
        yield writer.store.when_idle()
        cost = hgetall(self.server, "job:m:meta_flush_cost")
        self.assertEqual(cost, {str(T + 60): "6"})
        self.assertEqual(hgetall(self.server, "job:mh:mw-1:meta_flush_cost"), cost)
        self.assertIn("job:m:meta_flush_cost", self.server.command("SMEMBERS", "monitor:keys"))
        self.assertEqual(hgetall(self.server, "btc:s:erin"), {str(T): "1"})


class SeedGatewayBodyTests(WriterCase):
    """
    Bodies as the seed's C gateway sends them, impossible values included
    (issue 17): one bad value costs that value, never the other records.
    """

    def warnings(self):
        return [e for e in self.events if "impossible values" in e.get("log_format", "")]

    @defer.inlineCallbacks
    def test_infinite_goal_costs_only_that_goal(self):
        writer = self.writer()
        body = seed_body(102, [
            ("alice", "c-gw", "btc", 3, 48, 0.5),
            ("bob", "c-gw", "btc", 2, 0, float("inf")),
            ("carol", "c-gw", "btc", 1, 16, 0.25),
        ])
        self.feed(writer, "mixed", Packet(102, body, sequence=8))
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"mixed": 1})
        [warning] = self.warnings()
        self.assertEqual((warning["host"], warning["keys"], warning["peer"]), ("c-gw", ["bob"], "10.0.0.1:5000"))
        self.assertIn("gateway 'c-gw' key 'bob' goal inf (not finite)", warning["details"])
        yield self.minute(writer)
        field = str(T)
        self.assertEqual([hgetall(self.server, f"btc:s:{u}") for u in ("alice", "bob", "carol")],
                         [{field: "3"}, {field: "2"}, {field: "1"}])
        self.assertEqual([hgetall(self.server, f"btc:p:{u}") for u in ("alice", "bob", "carol")],
                         [{field: "48"}, {}, {field: "16"}])
        self.assertEqual([hgetall(self.server, f"btc:g:{u}") for u in ("alice", "bob", "carol")],
                         [{field: "0.5"}, {}, {field: "0.25"}])
        self.assertEqual((writer.accepted, writer.dropped, writer.faults), (1, 0, 1))

    @defer.inlineCallbacks
    def test_torn_last_record_keeps_the_records_before(self):
        writer = self.writer()
        body = seed_body(102, [("alice", "c-gw", "btc", 3, 48, 0.5), ("bob", "c-gw", "btc", 2, 32, 0.5)])
        self.feed(writer, "torn", Packet(102, body[:-5], sequence=9))
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"torn": 1})
        [warning] = self.warnings()
        self.assertIn("body torn (truncated double at offset", warning["details"])
        self.assertEqual(warning["count"], 1)
        yield self.minute(writer)
        self.assertEqual(hgetall(self.server, "btc:s:alice"), {str(T): "3"})
        self.assertEqual(hgetall(self.server, "btc:p:alice"), {str(T): "48"})
        self.assertEqual(hgetall(self.server, "btc:s:bob"), {})
        self.assertEqual((writer.accepted, writer.torn), (1, 1))

    @defer.inlineCallbacks
    def test_bad_brother_hash_costs_only_itself(self):
        """A cmd 104 that is no hash is dropped alone; the hashes and packets of its turn count."""
        writer = self.writer()
        known = packet(102, [ShareRecord("dave", "gw", "btc", 1, 4, 0.0)], T)
        self.feed(writer, "long", Packet(104, bytes(64)))
        self.feed(writer, "hash", Packet(104, hashlib.sha256(known.body).digest()))
        self.feed(writer, "share", packet(102, [ShareRecord("erin", "gw", "btc", 1, 4, 0.0)], T))
        self.clock.advance(0)
        self.feed(writer, "known", known)
        self.clock.advance(0)
        self.assertEqual(self.acks.counts, {"long": 1, "hash": 1, "share": 1, "known": 1})
        yield self.minute(writer)
        self.assertEqual(hgetall(self.server, "btc:s:erin"), {str(T): "1"})
        self.assertEqual(hgetall(self.server, "btc:s:dave"), {})
        self.assertEqual((writer.accepted, writer.duplicates, writer.dropped), (1, 1, 1))

    @defer.inlineCallbacks
    def test_replayed_after_a_crash_counted_once_and_not_logged_again(self):
        body = seed_body(105, [("share", "c-gw", "btc", -1), ("pow", "c-gw", "btc", 64)])
        writer = self.writer()
        self.feed(writer, "monitor", Packet(105, body, sequence=3))
        self.clock.advance(0)
        writer.journal.close()
        writer.store.stop()
        restarted = self.writer()
        yield self.minute(restarted)
        self.assertEqual(hgetall(self.server, "btc:m:pow"), {str(T): "64"})
        self.assertEqual(hgetall(self.server, "btc:m:share"), {})
        self.assertEqual(len(self.warnings()), 1)
