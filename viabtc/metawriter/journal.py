# -*- test-case-name: tests.metawriter.test_journal -*-
"""
The metawriter's write-ahead journal: what makes an ACK safe.

A packet is ACKed once it is in this journal (fsync'd) and in the in-memory
aggregate, long before the minute's Redis write.  Waiting for that write
instead would hold every packet unacknowledged for up to a minute, so the
senders' windows (1000 packets) would cap a pool's statistics at 1000
packets a minute and every packet would be resent about six times.

Time is cut into *generations*, one per minute flush.  Files in the
directory, ``<g>`` a zero-padded generation number:

``<g>.packets``
    every accepted packet of generation ``g`` as it arrived, appended with one
    write and fsync per reactor turn: records ``u32 length | u32 crc32 |
    f64 received-at | u16 command | body`` (LE).  A torn tail (a crash
    mid-write) is cut off when read back.
``<g>.batches``
    written once at the flush that ends generation ``g``: the Redis batches
    of that flush plus every block/event batch of ``g`` not yet confirmed by
    Redis (``viabtc.stats.writer_agg.Batch``, JSON).  Deleted when Redis has
    confirmed all of them.
``<g>-<t>.digests``
    the body digests (and arrival times) of generation ``g``'s packets, cut at
    unix time ``t``, so that de-duplication survives a restart; deleted after
    ``dup_timeout``.

The flush that ends generation ``g`` writes ``<g>.digests`` and ``<g>.batches``
(temporary name, fsync, rename, directory fsync) and only then deletes every
``<k>.packets`` with ``k <= g``.  So after any crash:

* a ``.packets`` file whose generation is at or below that of an existing
  ``.batches`` file is already accounted for there, and is deleted;
* any other ``.packets`` file was never flushed, and is replayed into the
  aggregate (block/event batches come out with the same guard ids, so one that
  did reach Redis is not written again);
* every ``.batches`` file is re-applied in order; the replay guards of
  ``writer_agg`` make the batches Redis already has no-ops.

Nothing is counted twice and nothing acknowledged is lost.
"""

import json
import os
import re
import struct
import zlib

import attrs
from twisted.logger import Logger

from viabtc.stats.writer_agg import Batch

_RECORD_HEAD = struct.Struct("<II")
_PACKET_HEAD = struct.Struct("<dH")
_DIGEST = struct.Struct("<32sd")
_NAME = re.compile(r"^(\d{12})(?:-(\d+))?\.(packets|batches|digests)$")


class JournalError(Exception):
    """A journal file that is not ours or cannot be parsed; names the file."""


@attrs.frozen
class JournaledPacket:
    """One accepted packet as the journal holds it."""

    received_at: float
    command: int
    body: bytes


@attrs.frozen
class Recovery:
    """
    What a journal held when opened: ``batches`` as ``(generation, Batch)``
    in the order to apply them, ``digests`` as ``(digest, time)`` pairs, and
    ``packets`` never flushed, oldest first.
    """

    batches: tuple
    digests: tuple
    packets: tuple


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_batches(batches):
    """The ``.batches`` file content for ``batches``."""
    return json.dumps(
        [{"id": b.batch_id, "ttl": b.guard_ttl, "commands": [list(c) for c in b.commands]}
         for b in batches],
        ensure_ascii=False, separators=(",", ":"),
    ).encode("utf-8")


def decode_batches(data):
    """The batches of a ``.batches`` file; ``ValueError`` when it is not one."""
    items = json.loads(data.decode("utf-8"))
    if not isinstance(items, list):
        raise ValueError("not a list of batches")
    return [Batch(item["id"], tuple(tuple(c) for c in item["commands"]), item["ttl"]) for item in items]


def _encode_packet(packet):
    payload = _PACKET_HEAD.pack(packet.received_at, packet.command) + packet.body
    length = len(payload).to_bytes(4, "little")
    return length + zlib.crc32(payload, zlib.crc32(length)).to_bytes(4, "little") + payload


def _read_packets(path):
    """The intact packets of ``path`` and the offset where intact data ends."""
    with open(path, "rb") as f:
        data = f.read()
    packets = []
    offset = 0
    while offset + _RECORD_HEAD.size <= len(data):
        length, crc = _RECORD_HEAD.unpack_from(data, offset)
        start = offset + _RECORD_HEAD.size
        end = start + length
        if end > len(data) or length < _PACKET_HEAD.size:
            break
        if zlib.crc32(data[start:end], zlib.crc32(data[offset:offset + 4])) != crc:
            break
        received_at, command = _PACKET_HEAD.unpack_from(data, start)
        packets.append(JournaledPacket(received_at, command, data[start + _PACKET_HEAD.size:end]))
        offset = end
    return packets, offset, len(data)


class Journal:
    """
    The journal in ``directory`` (created if missing).  Call ``recover`` once
    after opening, then ``append`` per reactor turn, ``cut`` per flush and
    ``confirm`` when Redis confirmed all batches of a generation.  Any
    ``OSError`` propagates: the caller must then not ACK.
    """

    _log = Logger()

    def __init__(self, directory, role="metawriter"):
        self.directory = directory
        self._role = role
        os.makedirs(directory, exist_ok=True)
        self._files = {}
        for name in os.listdir(directory):
            match = _NAME.match(name)
            if match is not None:
                self._files.setdefault(match.group(3), {})[int(match.group(1))] = (name, match.group(2))
        numbers = [n for kind in self._files.values() for n in kind]
        self.generation = max(numbers, default=-1) + 1
        self._writer = None

    def _path(self, name):
        return os.path.join(self.directory, name)

    def _name(self, generation, kind, stamp=None):
        if stamp is None:
            return f"{generation:012d}.{kind}"
        return f"{generation:012d}-{int(stamp)}.{kind}"

    def recover(self, now, dup_timeout):
        """
        Read back what a previous run left (see the module docstring), delete
        what is covered or expired, and start generation ``self.generation``.
        """
        for name in os.listdir(self.directory):
            if name.endswith(".tmp"):
                os.remove(self._path(name))
        batch_files = sorted(self._files.get("batches", {}).items())
        covered = max((g for g, _ in batch_files), default=-1)
        batches = []
        for generation, (name, _) in batch_files:
            try:
                with open(self._path(name), "rb") as f:
                    loaded = decode_batches(f.read())
            except (ValueError, KeyError, TypeError) as e:
                raise JournalError(f"{self._path(name)}: not a batches file ({e})") from None
            batches.extend((generation, b) for b in loaded)
        packets = []
        replayed = set()
        for generation, (name, _) in sorted(self._files.get("packets", {}).items()):
            path = self._path(name)
            if generation <= covered or os.path.getsize(path) == 0:
                os.remove(path)
                continue
            replayed.add(generation)
            found, good, size = _read_packets(path)
            if good != size:
                self._log.warn("journal {path}: cutting a torn tail of {lost} bytes after {count} packets",
                               path=path, lost=size - good, count=len(found), role=self._role)
                with open(path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            packets.extend(found)
        digests = []
        for generation, (name, stamp) in sorted(self._files.get("digests", {}).items()):
            # A cut that wrote its digests but not its batches did not happen:
            # those packets are replayed, and must not be taken as seen.
            if generation in replayed or int(stamp or 0) < now - dup_timeout:
                os.remove(self._path(name))
                continue
            with open(self._path(name), "rb") as f:
                data = f.read()
            usable = len(data) - len(data) % _DIGEST.size
            digests.extend(_DIGEST.iter_unpack(data[:usable]))
        self._files = {}
        self._writer = self._open_generation(self.generation)
        return Recovery(tuple(batches), tuple(digests), tuple(packets))

    def _open_generation(self, generation):
        writer = open(self._path(self._name(generation, "packets")), "ab", buffering=0)
        _fsync_dir(self.directory)
        return writer

    def append(self, packets):
        """Append ``JournaledPacket``s to the current generation: one write, one fsync."""
        if not packets:
            return
        if self._writer is None:
            raise OSError("journal is closed")
        fd = self._writer.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            self._writer.write(b"".join(_encode_packet(p) for p in packets))
            os.fsync(fd)
        except OSError:
            # Cut a partial write off, so later appends are not hidden behind it.
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise

    def _write_atomically(self, name, data):
        path = self._path(name)
        temporary = path + ".tmp"
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)

    def cut(self, batches, digests, now):
        """
        End the current generation: persist its ``digests`` (``(digest,
        time)`` pairs) and ``batches`` (everything of it Redis has not
        confirmed), drop its packets, and start the next generation.  Returns
        the generation number the batches are filed under.

        An ``OSError`` leaves the generation open, its packets in place; a
        later ``cut`` with the same batches (and more) is then correct.
        """
        generation = self.generation
        if digests:
            self._write_atomically(self._name(generation, "digests", now),
                                   b"".join(_DIGEST.pack(d, t) for d, t in digests))
        if batches:
            self._write_atomically(self._name(generation, "batches"), encode_batches(batches))
        _fsync_dir(self.directory)
        writer = self._open_generation(generation + 1)
        old, self._writer = self._writer, writer
        self.generation = generation + 1
        old.close()
        for name in os.listdir(self.directory):
            match = _NAME.match(name)
            if match is not None and match.group(3) == "packets" and int(match.group(1)) <= generation:
                try:
                    os.remove(self._path(name))
                except OSError as e:
                    # Covered by the batches just written; the next start deletes it.
                    self._log.warn("journal: cannot delete {name}: {error}", name=name,
                                   error=str(e), role=self._role)
        return generation

    def confirm(self, generation):
        """Redis confirmed every batch filed under ``generation``: forget them."""
        try:
            os.remove(self._path(self._name(generation, "batches")))
        except FileNotFoundError:
            pass

    def expire_digests(self, now, dup_timeout):
        """Delete digest files cut more than ``dup_timeout`` seconds before ``now``."""
        for name in os.listdir(self.directory):
            match = _NAME.match(name)
            if match is not None and match.group(3) == "digests" and int(match.group(2) or 0) < now - dup_timeout:
                os.remove(self._path(name))

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
