"""
The write-ahead journal: what a crash at each step of a flush leaves, and
what the next start makes of it.
"""

import os

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.metawriter.journal import Journal, JournaledPacket, decode_batches, encode_batches
from viabtc.stats.writer_agg import Batch, once

T = 1482252540
DIGEST_A = b"a" * 32
DIGEST_B = b"b" * 32


def packet(n):
    return JournaledPacket(T + n, 102, b"body %d" % n)


BATCH = Batch("ab" * 16, (
    ("HINCRBY", "btc:s:alice", str(T), "3"), ("RPUSH", "newevent", '{"user": "é"}'),
    once("viabtc:newworker:btc:é:rig1", 3600, ("RPUSH", "newworker", '{"user": "é"}')),
))


class JournalTests(unittest.TestCase):
    def setUp(self):
        self.dir = self.mktemp()

    def open(self):
        journal = Journal(self.dir)
        self.addCleanup(journal.close)
        return journal

    def names(self):
        return sorted(os.listdir(self.dir))

    def test_batches_round_trip(self):
        self.assertEqual(decode_batches(encode_batches([BATCH])), [BATCH])

    def test_unflushed_packets_are_replayed(self):
        journal = self.open()
        self.assertEqual(journal.recover(T, 3600).packets, ())
        journal.append([packet(1), packet(2)])
        journal.append([packet(3)])
        # kill -9: nothing more happens; the next start finds the packets.
        recovery = self.open().recover(T + 10, 3600)
        self.assertEqual(recovery.packets, (packet(1), packet(2), packet(3)))
        self.assertEqual(recovery.batches, ())

    def test_cut_files_batches_and_digests_and_drops_packets(self):
        journal = self.open()
        journal.recover(T, 3600)
        journal.append([packet(1)])
        generation = journal.cut([BATCH], [(DIGEST_A, T + 1.5)], T + 60)
        self.assertEqual(generation, 0)
        self.assertEqual(self.names(), ["000000000000-%d.digests" % (T + 60), "000000000000.batches",
                                        "000000000001.packets"])
        journal.append([packet(2)])
        recovery = self.open().recover(T + 61, 3600)
        self.assertEqual(recovery.batches, ((0, BATCH),))
        self.assertEqual(recovery.digests, ((DIGEST_A, T + 1.5),))
        self.assertEqual(recovery.packets, (packet(2),))

    def test_confirm_and_expiry(self):
        journal = self.open()
        journal.recover(T, 3600)
        journal.cut([BATCH], [(DIGEST_A, T)], T)
        journal.confirm(0)
        journal.cut([], [(DIGEST_B, T + 60)], T + 60)
        journal.expire_digests(T + 3630, 3600)
        self.assertEqual(self.names(), ["000000000001-%d.digests" % (T + 60), "000000000002.packets"])
        recovery = self.open().recover(T + 3661, 3600)
        self.assertEqual(recovery, type(recovery)((), (), ()))
        self.assertEqual(self.names(), ["000000000003.packets"])

    def test_crash_after_batches_before_packets_deleted(self):
        """The packets are covered by the batches file: not replayed, deleted."""
        journal = self.open()
        journal.recover(T, 3600)
        journal.append([packet(1)])
        journal.close()
        with open(os.path.join(self.dir, "000000000000.batches"), "wb") as f:
            f.write(encode_batches([BATCH]))
        recovery = self.open().recover(T + 60, 3600)
        self.assertEqual(recovery.packets, ())
        self.assertEqual(recovery.batches, ((0, BATCH),))
        self.assertNotIn("000000000000.packets", self.names())

    def test_crash_after_digests_before_batches(self):
        """That cut did not happen: the packets are replayed and their digests not taken as seen."""
        journal = self.open()
        journal.recover(T, 3600)
        journal.append([packet(1)])
        journal.close()
        with open(os.path.join(self.dir, "000000000000-%d.digests" % T), "wb") as f:
            f.write(DIGEST_A + b"\0" * 8)
        with open(os.path.join(self.dir, "000000000000.batches.tmp"), "wb") as f:
            f.write(b"[{")
        recovery = self.open().recover(T + 60, 3600)
        self.assertEqual(recovery.packets, (packet(1),))
        self.assertEqual(recovery.digests, ())
        self.assertEqual(self.names(), ["000000000000.packets", "000000000001.packets"])

    def test_torn_tail_is_cut(self):
        EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        journal = self.open()
        journal.recover(T, 3600)
        journal.append([packet(1), packet(2)])
        journal.close()
        path = os.path.join(self.dir, "000000000000.packets")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 3)
        recovery = self.open().recover(T + 60, 3600)
        self.assertEqual(recovery.packets, (packet(1),))
