# -*- test-case-name: tests.rpc.test_filequeue -*-
"""
A durable FIFO of byte records on disk, with out-of-order acknowledgement.

The reliable sender journals every packet here before sending it, so that
neither the overflow beyond its window nor the packets in flight are lost
when the process restarts (the seed lost the latter, ref §12.26).

Layout of the directory:

* ``<n>.seg`` segment files, ``n`` a zero-padded counter.  A segment starts
  with the 4 bytes ``VBQ1`` followed by records
  ``u32 length | u32 crc32(length bytes + payload) | payload`` (LE).
  Records are only ever appended; each ``append`` call is one write and one
  fsync.  A new segment is started when the current one passes
  ``segment_size`` and on every open, so older segments never change.
* ``<n>.ack`` beside each segment: entries ``u32 index | u32 crc32(index)``
  naming the records of that segment that were acknowledged (acks arrive in
  any order).  Each ``ack`` call appends and fsyncs once per segment.

On open every segment is scanned; a record or ack entry that is cut short or
fails its CRC (a crash mid-write) ends the file, which is truncated there.
A segment whose records are all acknowledged is deleted with its ack file,
so a drained queue leaves an empty directory.
"""

import os
import struct
import zlib

import attrs
from twisted.logger import Logger

SEGMENT_MAGIC = b"VBQ1"
_RECORD = struct.Struct("<II")
_ACK = struct.Struct("<II")


class QueueFull(Exception):
    """Appending would take the queue past its ``max_bytes``."""


@attrs.frozen(order=True)
class RecordId:
    """Where a record lives: its segment number and index inside it."""

    segment: int
    index: int


def _fsync(f):
    f.flush()
    os.fsync(f.fileno())


def _record_crc(header_length, payload):
    return zlib.crc32(payload, zlib.crc32(header_length))


class _Segment:
    """One segment file: its size, record count and acknowledged indices."""

    def __init__(self, directory, number):
        self.number = number
        self.path = os.path.join(directory, f"{number:012d}.seg")
        self.ack_path = os.path.join(directory, f"{number:012d}.ack")
        self.size = len(SEGMENT_MAGIC)
        self.count = 0
        self.acked = set()
        self.writer = None
        self.reader = None

    @property
    def drained(self):
        return len(self.acked) == self.count

    def close(self):
        for f in (self.writer, self.reader):
            if f is not None:
                f.close()
        self.writer = self.reader = None


class FileQueue:
    """
    Records appended in order, read in order (skipping acknowledged ones),
    acknowledged in any order.  Not thread-safe; one owner per directory.
    """

    _log = Logger()

    def __init__(self, directory, *, segment_size=8 << 20, max_bytes=1 << 30):
        self.directory = directory
        self._segment_size = segment_size
        self._max_bytes = max_bytes
        os.makedirs(directory, exist_ok=True)
        self._segments = {}
        self._active = None
        for name in sorted(os.listdir(directory)):
            if name.endswith(".seg"):
                number = int(name[:-4])
                self._segments[number] = self._recover(number)
        # Segment numbers are never reused, so a cursor never points into
        # a different file than the one it was read from.
        self._next_number = max(self._segments, default=-1) + 1
        self._bytes = sum(s.size for s in self._segments.values())
        for segment in list(self._segments.values()):
            if segment.drained:
                self._delete(segment)
        self._pending = sum(s.count - len(s.acked) for s in self._segments.values())
        self._unread = self._pending
        # Read cursor: segment number, byte offset and record index there.
        first = min(self._segments, default=self._next_number)
        self._cursor = (first, len(SEGMENT_MAGIC), 0)

    def __len__(self):
        """Records appended and not yet acknowledged."""
        return self._pending

    @property
    def unread(self):
        """Records not yet returned by ``read`` (and not acknowledged)."""
        return self._unread

    # -- recovery -------------------------------------------------------

    def _recover(self, number):
        segment = _Segment(self.directory, number)
        with open(segment.path, "r+b") as f:
            data = f.read()
            if data[:4] != SEGMENT_MAGIC:
                if len(data) >= 4:
                    raise ValueError(f"{segment.path} is not a queue segment")
                f.seek(0)
                f.write(SEGMENT_MAGIC)
                f.truncate()
                _fsync(f)
                return segment
            offset = len(SEGMENT_MAGIC)
            while offset + _RECORD.size <= len(data):
                length, crc = _RECORD.unpack_from(data, offset)
                end = offset + _RECORD.size + length
                if end > len(data):
                    break
                payload = data[offset + _RECORD.size : end]
                if _record_crc(data[offset : offset + 4], payload) != crc:
                    break
                offset = end
                segment.count += 1
            if offset != len(data):
                self._log.warn(
                    "truncating corrupt tail of {path}: {lost} bytes after {count} records",
                    path=segment.path,
                    lost=len(data) - offset,
                    count=segment.count,
                )
                f.truncate(offset)
                _fsync(f)
            segment.size = offset
        if os.path.exists(segment.ack_path):
            self._recover_acks(segment)
        return segment

    def _recover_acks(self, segment):
        with open(segment.ack_path, "r+b") as f:
            data = f.read()
            offset = 0
            while offset + _ACK.size <= len(data):
                index, crc = _ACK.unpack_from(data, offset)
                if zlib.crc32(data[offset : offset + 4]) != crc:
                    break
                if index < segment.count:
                    segment.acked.add(index)
                offset += _ACK.size
            if offset != len(data):
                self._log.warn(
                    "truncating corrupt tail of {path}", path=segment.ack_path
                )
                f.truncate(offset)
                _fsync(f)

    # -- writing --------------------------------------------------------

    def _new_segment(self):
        number = self._next_number
        self._next_number += 1
        segment = _Segment(self.directory, number)
        segment.writer = open(segment.path, "xb")
        segment.writer.write(SEGMENT_MAGIC)
        _fsync(segment.writer)
        self._fsync_directory()
        self._segments[number] = segment
        self._bytes += segment.size
        self._active = segment
        return segment

    def _fsync_directory(self):
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, payloads):
        """
        Append ``payloads`` durably (one write and fsync per segment touched)
        and return their ``RecordId``s; ``QueueFull`` if they do not fit.
        """
        if not payloads:
            return []
        size = sum(_RECORD.size + len(p) for p in payloads)
        if self._bytes + size > self._max_bytes:
            raise QueueFull(
                f"queue {self.directory} holds {self._bytes} bytes, limit {self._max_bytes}"
            )
        ids = []
        chunks = []
        segment = self._active
        if segment is None:
            segment = self._new_segment()
        for payload in payloads:
            if segment.size >= self._segment_size:
                segment = self._roll(segment, chunks)
                chunks = []
            length = len(payload).to_bytes(4, "little")
            chunks.append(length)
            chunks.append(_record_crc(length, payload).to_bytes(4, "little"))
            chunks.append(payload)
            ids.append(RecordId(segment.number, segment.count))
            segment.count += 1
            segment.size += _RECORD.size + len(payload)
        self._write(segment, chunks)
        self._bytes += size
        self._pending += len(payloads)
        self._unread += len(payloads)
        return ids

    def _roll(self, segment, chunks):
        """Finish ``segment`` (writing ``chunks``) and start the next one."""
        if chunks:
            self._write(segment, chunks)
        segment.writer.close()
        segment.writer = None
        new = self._new_segment()
        if segment.drained and self._cursor_past(segment):
            self._delete(segment)
        return new

    def _write(self, segment, chunks):
        if not chunks:
            return
        segment.writer.write(b"".join(chunks))
        _fsync(segment.writer)

    # -- reading --------------------------------------------------------

    def read(self, limit):
        """
        Up to ``limit`` ``(RecordId, payload)`` pairs not returned before,
        oldest first, skipping acknowledged records.
        """
        records = []
        number, offset, index = self._cursor
        numbers = sorted(n for n in self._segments if n >= number)
        for n in numbers:
            segment = self._segments[n]
            if n != number:
                offset, index = len(SEGMENT_MAGIC), 0
            if segment.reader is None and offset < segment.size:
                segment.reader = open(segment.path, "rb")
            while offset < segment.size and len(records) < limit:
                (length, _) = _RECORD.unpack(
                    os.pread(segment.reader.fileno(), _RECORD.size, offset)
                )
                if index not in segment.acked:
                    payload = os.pread(
                        segment.reader.fileno(), length, offset + _RECORD.size
                    )
                    records.append((RecordId(n, index), payload))
                offset += _RECORD.size + length
                index += 1
            number = n
            if len(records) >= limit or segment is self._active:
                break
            if segment.drained:
                self._delete(segment)
            elif segment.reader is not None:
                segment.reader.close()
                segment.reader = None
        self._cursor = (number, offset, index)
        self._unread -= len(records)
        return records

    # -- acknowledging ---------------------------------------------------

    def ack(self, ids):
        """Mark records acknowledged, durably; delete drained segments."""
        by_segment = {}
        for record_id in ids:
            by_segment.setdefault(record_id.segment, []).append(record_id.index)
        for number, indices in by_segment.items():
            segment = self._segments.get(number)
            if segment is None:
                continue
            fresh = [i for i in set(indices) if i not in segment.acked and i < segment.count]
            if not fresh:
                continue
            with open(segment.ack_path, "ab") as f:
                f.write(
                    b"".join(
                        _ACK.pack(i, zlib.crc32(i.to_bytes(4, "little"))) for i in fresh
                    )
                )
                _fsync(f)
            segment.acked.update(fresh)
            self._pending -= len(fresh)
            if segment.drained and self._cursor_past(segment):
                self._delete(segment)

    def _cursor_past(self, segment):
        number, offset, _ = self._cursor
        return number > segment.number or offset >= segment.size

    def _delete(self, segment):
        segment.close()
        if segment is self._active:
            self._active = None
        del self._segments[segment.number]
        self._bytes -= segment.size
        for path in (segment.path, segment.ack_path):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def close(self):
        """Close every file; the queue object must not be used afterwards."""
        for segment in self._segments.values():
            segment.close()
        self._active = None
