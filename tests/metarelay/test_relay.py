"""The relay intake with a real ReliableSender and file queue: ACK only once durable."""

from twisted.internet import task
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.metarelay.relay import Relay
from viabtc.rpc.client import DatagramSender
from viabtc.rpc.codec import Packet, PacketType
from viabtc.rpc.filequeue import FileQueue
from viabtc.rpc.reliable import ReliableSender
from viabtc.stats.records import ShareRecord, encode_bodies

from tests.stats.seedbodies import seed_body


def share(user):
    [body] = encode_bodies(102, [ShareRecord(user, "gw", "btc", 1, 1, 0.0)], minute=60)
    return Packet(102, body, PacketType.REQUEST, sequence=9)


class RelayTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.clock = task.Clock()
        self.queue_dir = self.mktemp()
        link = DatagramSender([("127.0.0.1", 9)], max_size=65536, reactor=self.clock)
        self.sender = ReliableSender(link, self.queue_dir, reactor=self.clock)
        self.relay = Relay(self.sender, self.clock)
        self.acked = []

    def ack(self, name):
        return lambda: self.acked.append(name)

    def test_acked_once_durable(self):
        self.sender.startService()
        self.relay.packet_received(share("a"), self.ack("a"), "p")
        self.relay.packet_received(share("b"), self.ack("b"), "p")
        self.assertEqual(self.acked, [])
        self.clock.advance(0)
        self.assertEqual(self.acked, ["a", "b"])
        self.sender.stopService()
        queue = FileQueue(self.queue_dir)
        self.addCleanup(queue.close)
        self.assertEqual(len(queue), 2)

    def test_refused_by_the_queue_not_acked(self):
        self.sender.startService()
        self.sender.stopService()
        self.relay.packet_received(share("a"), self.ack("a"), "p")
        self.clock.advance(0)
        self.assertEqual(self.acked, [])

    def test_malformed_and_foreign_dropped_with_a_log_line(self):
        self.relay.packet_received(Packet(102, b"short", sequence=1), self.ack("short"), "10.0.0.1:1")
        self.relay.packet_received(Packet(3, b"{}", sequence=1), self.ack("ban"), "10.0.0.1:1")
        self.relay.packet_received(Packet(102, share("x").body, PacketType.REPLY), self.ack("reply"), "p")
        self.clock.advance(0)
        self.assertEqual(self.acked, ["short", "ban"])
        self.assertEqual(self.sender.pending_count(), 0)
        self.assertEqual(len([e for e in self.events if e.get("peer") == "10.0.0.1:1"]), 2)

    def test_seed_body_with_an_impossible_value_forwarded_unchanged(self):
        """The writer drops the bad value alone, so the relay must not drop the body (issue 17)."""
        self.sender.startService()
        body = seed_body(102, [("alice", "c-gw", "btc", 1, 16, 0.5), ("bob", "c-gw", "btc", 1, 0, float("inf")),
                               ("carol", "c-gw", "btc", -1, 16, 0.5)])
        torn = seed_body(102, [("dave", "c-gw", "btc", 1, 16, 0.5), ("erin", "c-gw", "btc", 1, 16, 0.5)])
        self.relay.packet_received(Packet(102, body, sequence=1), self.ack("bad values"), "10.0.0.7:1")
        self.relay.packet_received(Packet(102, torn[:-1], sequence=2), self.ack("torn tail"), "10.0.0.7:1")
        self.relay.packet_received(Packet(102, torn[:40], sequence=3), self.ack("torn first"), "10.0.0.7:1")
        self.clock.advance(0)
        self.assertEqual(self.acked, ["torn first", "bad values", "torn tail"])
        self.sender.stopService()
        queue = FileQueue(self.queue_dir)
        self.addCleanup(queue.close)
        payloads = [payload for _, payload in queue.read(10)]
        self.assertEqual(len(payloads), 2)
        self.assertIn(body, payloads[0])
        self.assertIn(torn[:-1], payloads[1])
        warnings = [e for e in self.events if "forwarded with" in e.get("log_format", "")]
        self.assertEqual([(e["faults"], e["keys"], e["host"]) for e in warnings],
                         [(2, ["bob", "carol"], "c-gw"), (0, [], None)])
        self.assertEqual((self.relay.faulty, self.relay.dropped), (2, 1))
