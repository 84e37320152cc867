"""Tests for viabtc.rpc.replay: timestamp window and replayed tags."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from viabtc.rpc.codec import Packet, ProtocolError, decode_datagram, encode
from viabtc.rpc.replay import ReplayGuard

SECRET = b"k"
NOW = 1_700_000_000.0


def signed(now, nonce=b"\x00" * 8, body=b"x"):
    return decode_datagram(encode(Packet(4, body), SECRET, now=now, nonce=nonce), 1024, SECRET)


class ReplayGuardTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.guard = ReplayGuard(self.clock, window=30.0, max_entries=3)

    def test_fresh_accepted_once(self):
        packet = signed(NOW)
        self.guard.check(packet)
        e = self.assertRaises(ProtocolError, self.guard.check, packet)
        self.assertEqual(e.reason, "replayed packet")

    def test_same_body_distinct_nonce_accepted(self):
        self.guard.check(signed(NOW, b"\x00" * 8))
        self.guard.check(signed(NOW, b"\x01" * 8))

    def test_timestamp_window(self):
        self.guard.check(signed(NOW - 29))
        self.guard.check(signed(NOW + 29))
        for skew in (-31, 31):
            e = self.assertRaises(ProtocolError, self.guard.check, signed(NOW + skew))
            self.assertIn("outside", e.reason)

    def test_untagged(self):
        e = self.assertRaises(ProtocolError, self.guard.check, Packet(4, b"x"))
        self.assertEqual(e.reason, "missing auth tag")

    def test_tags_expire_and_memory_is_bounded(self):
        for i in range(3):
            self.guard.check(signed(NOW, bytes([i]) * 8))
        e = self.assertRaises(ProtocolError, self.guard.check, signed(NOW, b"\x09" * 8))
        self.assertEqual(e.reason, "replay cache full")
        self.clock.advance(60)
        self.guard.check(signed(NOW + 60, b"\x09" * 8))
        self.assertEqual(len(self.guard), 1)

    def test_replay_after_expiry_still_rejected_by_timestamp(self):
        packet = signed(NOW)
        self.guard.check(packet)
        self.clock.advance(60)
        self.assertRaises(ProtocolError, self.guard.check, packet)
