# -*- test-case-name: tests.stats.test_records -*-
"""
Bodies of the statistics packets (cmds 100 META_BLOCK, 101 META_EVENT,
102 META_SHARE, 105 META_MONITOR_INT, 106 META_MONITOR_FLOAT), ref §4.9.

A body is 32 leading bytes followed by records repeated to the end; a record is
a fixed sequence of varstr / varint / double-LE fields.  The leading bytes make
otherwise identical packets distinct, because the metawriter de-duplicates
retransmissions by the SHA-256 of the whole body (ref §2.5, §8.3).

Minute stamp (our addition, ref §12.26).  The seed's share and monitor records
carry no time: the metawriter files them under the minute in which it happens
to flush, about 30 s off.  Our gateways say which minute a body belongs to by
using the leading bytes, which every C reader skips unread::

    bytes 0..7    STAMP_MAGIC  b"VBTCmin\\x01" (the last byte is the version)
    bytes 8..15   u64 LE       minute start, unix seconds, a multiple of 60
    bytes 16..31  random       still 128 random bits, so dedupe keeps working

A C metawriter therefore accepts our stamped bodies (and attributes them by
arrival, as it always did), and our metawriter accepts the seed's unstamped
bodies: 32 random bytes start with the magic with probability 2**-64.  New
command ids were rejected because a C receiver ACKs and then drops unknown
commands, losing the statistics silently.
"""

import math
import os
import struct

import attrs

META_BLOCK = 100
META_EVENT = 101
META_SHARE = 102
META_HASH = 104
META_MONITOR_INT = 105
META_MONITOR_FLOAT = 106

PREFIX_SIZE = 32
STAMP_MAGIC = b"VBTCmin\x01"
MAX_BODY = 750

# Redis counts in signed 64 bits; a larger value can never be written.
MAX_COUNT = 2**63 - 1

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")


class RecordError(ValueError):
    """A stats body or record that cannot be encoded or decoded; says why."""


@attrs.frozen
class BlockRecord:
    """A found block (cmd 100): ``name`` is "BTC" or the aux coin's name."""

    user: str
    worker: str
    name: str
    hash: str


@attrs.frozen
class EventRecord:
    """A worker event (cmd 101): ``event`` is "connected" or "disconnected"."""

    user: str
    worker: str
    coin: str
    peer: str
    event: str


@attrs.frozen
class ShareRecord:
    """
    One minute of shares under ``key`` ("user", "user:worker", "user:reject",
    "user:worker:reject") from gateway ``host`` (cmd 102).
    """

    key: str
    host: str
    coin: str
    num: int
    pow: int
    goal: float


@attrs.frozen
class MonitorIntRecord:
    """One minute of an integer monitor counter (cmd 105)."""

    key: str
    host: str
    coin: str
    sum: int


@attrs.frozen
class MonitorFloatRecord:
    """One minute of a float monitor counter, e.g. ``goal`` (cmd 106)."""

    key: str
    host: str
    coin: str
    sum: float


# Per command: the record class and one letter per field, in wire order:
# s = varstr (UTF-8), i = varint, d = double LE.
_LAYOUTS = {
    META_BLOCK: (BlockRecord, "ssss"),
    META_EVENT: (EventRecord, "sssss"),
    META_SHARE: (ShareRecord, "sssiid"),
    META_MONITOR_INT: (MonitorIntRecord, "sssi"),
    META_MONITOR_FLOAT: (MonitorFloatRecord, "sssd"),
}


def encode_varint(n):
    """
    Canonical Bitcoin CompactSize.  The seed writes 0xffff and 0xffffffff one
    size too long (ref §12.24); we never do.
    """
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def _decode_varint(body, pos):
    """
    Read a CompactSize at ``pos``; return ``(value, new_pos)``.

    Accepts the canonical form and the two longer forms the seed's
    ``pack_varint_le`` emits (0xffff as ``fe``, 0xffffffff as ``ff``), so C
    gateways are understood; any other over-long form is corrupt.
    """
    end = len(body)
    if pos >= end:
        raise RecordError("truncated varint at offset %d" % (pos,))
    first = body[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        size, minimum, seed_quirk = 2, 0xFD, None
        unpack = _U16.unpack_from
    elif first == 0xFE:
        size, minimum, seed_quirk = 4, 0x10000, 0xFFFF
        unpack = _U32.unpack_from
    else:
        size, minimum, seed_quirk = 8, 0x100000000, 0xFFFFFFFF
        unpack = _U64.unpack_from
    if pos + 1 + size > end:
        raise RecordError("truncated varint at offset %d" % (pos,))
    (value,) = unpack(body, pos + 1)
    if value < minimum and value != seed_quirk:
        raise RecordError("non-canonical varint at offset %d" % (pos,))
    return value, pos + 1 + size


def _encode_record(record, layout):
    out = []
    for kind, value in zip(layout, attrs.astuple(record, recurse=False)):
        if kind == "s":
            if not isinstance(value, str):
                raise RecordError("string field expected, got %r" % (value,))
            raw = value.encode("utf-8")
            out.append(encode_varint(len(raw)))
            out.append(raw)
        elif kind == "i":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                raise RecordError("count must be an int in [0, 2**63-1], got %r" % (value,))
            out.append(encode_varint(value))
        else:
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise RecordError("finite number expected, got %r" % (value,))
            out.append(_DOUBLE.pack(value))
    return b"".join(out)


def make_prefix(minute=None, random=os.urandom):
    """
    The 32 leading bytes: all random for an unstamped body, else the minute
    stamp described in the module docstring.
    """
    if minute is None:
        return random(PREFIX_SIZE)
    if isinstance(minute, bool) or not isinstance(minute, int) or minute < 0 or minute % 60:
        raise RecordError("minute must be a non-negative multiple of 60, got %r" % (minute,))
    return STAMP_MAGIC + _U64.pack(minute) + random(PREFIX_SIZE - 16)


def encode_bodies(command, records, max_body=MAX_BODY, random=os.urandom, minute=None):
    """
    Pack ``records`` (all of the class for ``command``) into as few bodies as
    possible, each at most ``max_body`` bytes including its 32 leading bytes,
    so every packet fits one UDP datagram.  ``minute`` stamps every body (share
    and monitor records); ``None`` gives the seed's all-random prefix.

    Raises ``RecordError`` for an unknown command, a record of the wrong class
    or with bad values, or a record too large to fit any body.
    """
    try:
        cls, layout = _LAYOUTS[command]
    except KeyError:
        raise RecordError("command %r carries no records" % (command,)) from None
    room = max_body - PREFIX_SIZE
    if room <= 0:
        raise RecordError("max_body %d leaves no room after the prefix" % (max_body,))
    bodies = []
    chunk = []
    size = 0
    for record in records:
        if type(record) is not cls:
            raise RecordError("command %d carries %s, got %r" % (command, cls.__name__, record))
        raw = _encode_record(record, layout)
        if len(raw) > room:
            raise RecordError("record of %d bytes does not fit a %d-byte body" % (len(raw), max_body))
        if size + len(raw) > room:
            bodies.append(make_prefix(minute, random) + b"".join(chunk))
            chunk = []
            size = 0
        chunk.append(raw)
        size += len(raw)
    if chunk:
        bodies.append(make_prefix(minute, random) + b"".join(chunk))
    return bodies


def body_minute(body):
    """
    The minute stamped in ``body``'s leading bytes, or ``None`` for a seed
    body (attributed by arrival time).  A body that carries the magic but an
    impossible minute is corrupt: ``RecordError``.
    """
    if len(body) < PREFIX_SIZE:
        raise RecordError("body of %d bytes is shorter than its %d-byte prefix" % (len(body), PREFIX_SIZE))
    if body[:8] != STAMP_MAGIC:
        return None
    (minute,) = _U64.unpack_from(body, 8)
    if minute % 60 or minute > MAX_COUNT:
        raise RecordError("stamped minute %d is not a minute start" % (minute,))
    return minute


def decode_body(command, body):
    """
    The records of a stats ``body`` for ``command``, in order.

    Raises ``RecordError`` on anything malformed: a short prefix, a truncated
    field, a partial trailing record, bad UTF-8, a count beyond what Redis can
    hold, or a non-finite double.
    """
    try:
        cls, layout = _LAYOUTS[command]
    except KeyError:
        raise RecordError("command %r carries no records" % (command,)) from None
    body = bytes(body)
    end = len(body)
    if end < PREFIX_SIZE:
        raise RecordError("body of %d bytes is shorter than its %d-byte prefix" % (end, PREFIX_SIZE))
    pos = PREFIX_SIZE
    records = []
    values = []
    while pos < end:
        values.clear()
        for kind in layout:
            if kind == "s":
                length, pos = _decode_varint(body, pos)
                stop = pos + length
                if stop > end:
                    raise RecordError("truncated string at offset %d" % (pos,))
                try:
                    values.append(body[pos:stop].decode("utf-8"))
                except UnicodeDecodeError:
                    raise RecordError("string at offset %d is not UTF-8" % (pos,)) from None
                pos = stop
            elif kind == "i":
                value, new = _decode_varint(body, pos)
                if value > MAX_COUNT:
                    raise RecordError("count at offset %d exceeds 2**63-1" % (pos,))
                values.append(value)
                pos = new
            else:
                if pos + 8 > end:
                    raise RecordError("truncated double at offset %d" % (pos,))
                (value,) = _DOUBLE.unpack_from(body, pos)
                if not math.isfinite(value):
                    raise RecordError("non-finite double at offset %d" % (pos,))
                values.append(value)
                pos += 8
        records.append(cls(*values))
    return records
