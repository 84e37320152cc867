"""Tests for viabtc.rpc.filequeue: durability, corrupt tails, compaction."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.rpc.filequeue import SEGMENT_MAGIC, FileQueue, QueueFull


class FileQueueTests(TestCase):
    def setUp(self):
        self.directory = self.mktemp()

    def open(self, **kw):
        queue = FileQueue(self.directory, **kw)
        self.addCleanup(queue.close)
        return queue

    def files(self):
        return sorted(os.listdir(self.directory))

    def test_append_read_in_order(self):
        queue = self.open()
        ids = queue.append([b"a", b"bb", b""])
        queue.append([b"d"])
        self.assertEqual(len(queue), 4)
        self.assertEqual(queue.unread, 4)
        self.assertEqual([p for _, p in queue.read(2)], [b"a", b"bb"])
        self.assertEqual([p for _, p in queue.read(10)], [b"", b"d"])
        self.assertEqual(queue.read(10), [])
        self.assertEqual(queue.unread, 0)
        self.assertEqual(len(queue), 4)
        self.assertEqual(len(set(ids)), 3)

    def test_out_of_order_acks_survive_reopen(self):
        queue = self.open()
        ids = queue.append([b"0", b"1", b"2", b"3"])
        queue.read(4)
        queue.ack([ids[2], ids[0]])
        self.assertEqual(len(queue), 2)
        queue.close()
        queue = self.open()
        self.assertEqual(len(queue), 2)
        self.assertEqual([p for _, p in queue.read(10)], [b"1", b"3"])

    def test_drained_queue_leaves_empty_directory(self):
        queue = self.open(segment_size=20)
        ids = queue.append([b"x" * 10 for _ in range(6)])
        self.assertGreater(len(self.files()), 2)
        queue.ack([rid for rid, _ in queue.read(3)])
        queue.ack([rid for rid, _ in queue.read(3)])
        self.assertEqual(len(queue), 0)
        self.assertEqual(self.files(), [])
        more = queue.append([b"after"])
        self.assertEqual([p for _, p in queue.read(5)], [b"after"])
        self.assertNotIn(more[0], ids)

    def test_segments_compacted_as_acked(self):
        queue = self.open(segment_size=20)
        queue.append([b"x" * 10 for _ in range(6)])
        records = queue.read(6)
        segments = sorted({rid.segment for rid, _ in records})
        queue.ack([rid for rid, _ in records if rid.segment == segments[0]])
        self.assertNotIn(f"{segments[0]:012d}.seg", self.files())
        self.assertIn(f"{segments[1]:012d}.seg", self.files())

    def test_corrupt_tail_truncated(self):
        queue = self.open()
        queue.append([b"one", b"two", b"three"])
        queue.close()
        (segment,) = [f for f in self.files() if f.endswith(".seg")]
        path = os.path.join(self.directory, segment)
        good_size = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(b"\x40\x00\x00\x00\x12\x34")  # a record cut short by a crash
        queue = self.open()
        self.assertEqual(os.path.getsize(path), good_size)
        self.assertEqual([p for _, p in queue.read(10)], [b"one", b"two", b"three"])

    def test_bad_crc_truncates_from_that_record(self):
        queue = self.open()
        queue.append([b"one", b"two", b"three"])
        queue.close()
        (segment,) = [f for f in self.files() if f.endswith(".seg")]
        path = os.path.join(self.directory, segment)
        with open(path, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            f.write(b"X")
        queue = self.open()
        self.assertEqual([p for _, p in queue.read(10)], [b"one", b"two"])
        queue.append([b"four"])
        self.assertEqual([p for _, p in queue.read(10)], [b"four"])

    def test_corrupt_ack_tail_truncated(self):
        queue = self.open()
        ids = queue.append([b"a", b"b"])
        queue.read(2)
        queue.ack([ids[0]])
        queue.close()
        (ack,) = [f for f in self.files() if f.endswith(".ack")]
        with open(os.path.join(self.directory, ack), "ab") as f:
            f.write(b"\x01\x00\x00")
        queue = self.open()
        self.assertEqual([p for _, p in queue.read(10)], [b"b"])
        self.assertEqual(os.path.getsize(os.path.join(self.directory, ack)), 8)

    def test_torn_segment_header(self):
        os.makedirs(self.directory)
        with open(os.path.join(self.directory, "000000000000.seg"), "wb") as f:
            f.write(SEGMENT_MAGIC[:2])
        queue = self.open()
        self.assertEqual(len(queue), 0)
        queue.append([b"x"])
        self.assertEqual([p for _, p in queue.read(1)], [b"x"])

    def test_foreign_file_is_an_error(self):
        os.makedirs(self.directory)
        with open(os.path.join(self.directory, "000000000000.seg"), "wb") as f:
            f.write(b"not a queue")
        self.assertRaises(ValueError, FileQueue, self.directory)

    def test_max_bytes(self):
        queue = self.open(max_bytes=100)
        queue.append([b"x" * 50])
        self.assertRaises(QueueFull, queue.append, [b"y" * 50])
        self.assertEqual(len(queue), 1)

    @given(
        st.lists(
            st.one_of(
                st.tuples(st.just("append"), st.lists(st.binary(max_size=30), max_size=4)),
                st.tuples(st.just("read"), st.integers(0, 5)),
                st.tuples(st.just("ack"), st.integers(0, 5)),
                st.tuples(st.just("reopen"), st.none()),
            ),
            max_size=25,
        )
    )
    @settings(max_examples=60, deadline=None)
    def test_matches_model(self, operations):
        """Whatever the interleaving, unacknowledged records survive in order."""
        directory = self.mktemp()
        queue = FileQueue(directory, segment_size=64)
        model = []  # [payload, read?, acked?] in append order
        read = []  # RecordIds read and not acked, oldest first
        try:
            for op, arg in operations:
                if op == "append":
                    queue.append(arg)
                    model.extend([p, False, False] for p in arg)
                elif op == "read":
                    got = queue.read(arg)
                    expected = [m for m in model if not m[1] and not m[2]][:arg]
                    self.assertEqual([p for _, p in got], [m[0] for m in expected])
                    for m in expected:
                        m[1] = True
                    read.extend(zip((rid for rid, _ in got), expected))
                elif op == "ack":
                    # Ack every other read record: acks arrive out of order.
                    chosen = read[::2][:arg]
                    queue.ack([rid for rid, _ in chosen])
                    for item in chosen:
                        item[1][2] = True
                        read.remove(item)
                else:
                    queue.close()
                    queue = FileQueue(directory, segment_size=64)
                    read = []
                    for m in model:
                        m[1] = False
                self.assertEqual(len(queue), sum(1 for m in model if not m[2]))
            queue.close()
            queue = FileQueue(directory, segment_size=64)
            self.assertEqual(
                [p for _, p in queue.read(1000)], [m[0] for m in model if not m[2]]
            )
        finally:
            queue.close()
