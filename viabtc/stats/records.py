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

Reading what other hosts send (``read_body``).  A body holds many users'
records, and the seed's C gateways can put an impossible value in one of them
(a miner that suggests a difficulty below 1 gets difficulty 0 there, and its
user's ``goal`` becomes infinite).  The seed's metawriter applies each record
on its own, so one bad value must cost only itself: the record keeps its
other fields and the body its other records.  Only broken framing ends a
body, because after it no record boundary can be trusted.  ``decode_body``
is the strict reading, for what our own gateways produce.
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
    _record, faults = check_record(type(record), attrs.astuple(record, recurse=False))
    if faults:
        f = faults[0]
        raise RecordError("%s %s %s" % (f.field, f.value, f.reason))
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


def encode_bodies(command, records, max_body=MAX_BODY, random=os.urandom, minute=None, skip=None):
    """
    Pack ``records`` (all of the class for ``command``) into as few bodies as
    possible, each at most ``max_body`` bytes including its 32 leading bytes,
    so every packet fits one UDP datagram.  ``minute`` stamps every body (share
    and monitor records); ``None`` gives the seed's all-random prefix.

    Raises ``RecordError`` for an unknown command, a record of the wrong class
    or with bad values, or a record too large to fit any body; with ``skip``
    given, such a record is instead passed to ``skip(record, error)`` and
    left out, and the others are packed.
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
        try:
            if type(record) is not cls:
                raise RecordError("command %d carries %s, got %r" % (command, cls.__name__, record))
            raw = _encode_record(record, layout)
            if len(raw) > room:
                raise RecordError("record of %d bytes does not fit a %d-byte body" % (len(raw), max_body))
        except RecordError as e:
            if skip is None:
                raise
            skip(record, e)
            continue
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



# What a share record can hold (``check_record``).  A share's difficulty is at
# most the difficulty-1 target over a hash of 1, below 2**224, so with one
# share or more any pow a varint can carry is possible; without shares there
# is no pow.  A share's goal (difficulty over block difficulty) is at most
# 2**224 over the easiest block difficulty a target of 2**256 gives, 2**-32.
MAX_SHARE_GOAL = 2.0**256
# The most a minute can hold for a float without a count beside it (monitor
# floats, or a share whose count was dropped): 2**63-1 shares at their most.
MAX_GOAL = MAX_COUNT * MAX_SHARE_GOAL


@attrs.frozen
class Fault:
    """
    A value dropped from a record: ``field`` of the record ``key`` sent by
    gateway ``host`` said ``value`` (its repr), which is impossible because
    ``reason``.  A ``field`` that is a string (the record's key, host, ...)
    drops the whole record: without it the record cannot be filed.
    """

    key: str
    host: str
    field: str
    value: str
    reason: str


@attrs.frozen
class Body:
    """
    What ``read_body`` made of a body: ``records`` (bad values zeroed), one
    ``Fault`` per dropped value or record, and ``error``, why the body ended
    before its last byte (``None`` when it was read to the end).
    """

    records: tuple
    faults: tuple = ()
    error: str | None = None

    @property
    def clean(self):
        return not self.faults and self.error is None


def describe(faults, error=None, limit=8):
    """
    ``faults`` (and a framing ``error``) in one line for a log event: each
    fault with its gateway and key, at most ``limit`` of them spelled out.
    """
    parts = ["gateway %r key %r %s %s (%s)" % (f.host, f.key, f.field, f.value, f.reason) for f in faults[:limit]]
    if len(faults) > limit:
        parts.append("%d more" % (len(faults) - limit,))
    if error is not None:
        parts.append("body torn (%s), nothing after it read" % (error,))
    return "; ".join(parts)


class _Torn(Exception):
    """The framing of a record is broken (internal to ``read_body``)."""


def _read_fields(body, pos, layout):
    """The raw fields of the record at ``pos`` and the offset after it; ``_Torn`` if cut or corrupt."""
    end = len(body)
    values = []
    for kind in layout:
        if kind == "s":
            try:
                length, pos = _decode_varint(body, pos)
            except RecordError as e:
                raise _Torn(str(e)) from None
            stop = pos + length
            if stop > end:
                raise _Torn("truncated string at offset %d" % (pos,))
            values.append(body[pos:stop])
            pos = stop
        elif kind == "i":
            try:
                value, pos = _decode_varint(body, pos)
            except RecordError as e:
                raise _Torn(str(e)) from None
            values.append(value)
        else:
            if pos + 8 > end:
                raise _Torn("truncated double at offset %d" % (pos,))
            values.append(_DOUBLE.unpack_from(body, pos)[0])
            pos += 8
    return values, pos


# Why a count is dropped: a C gateway's negative int64 count arrives so.
_BEYOND_REDIS = "beyond 2**63-1 (negative as an int64)"


def _bad_double(value, limit, beyond):
    """Why ``value`` cannot be a goal of at most ``limit`` (``beyond`` says what that is), or ``None``."""
    if not math.isfinite(value):
        return "not finite"
    if value < 0:
        return "negative"
    if value > limit:
        return beyond
    return None


def check_record(cls, values):
    """
    Build a ``cls`` record from raw wire ``values`` (strings as bytes);
    return ``(record, faults)``.  ``record`` is ``None`` when a string is not
    UTF-8 (the record cannot be filed); otherwise every impossible number is
    replaced by zero and named in ``faults``:

    * a count (num, pow, an int monitor sum) beyond 2**63-1, which Redis
      cannot hold (a C gateway's negative int64 arrives as one);
    * a pow other than 0 where num is 0 (a difficulty sum without shares);
    * a double that is NaN, infinite, negative, or larger than its count
      allows (``MAX_SHARE_GOAL`` per share, ``MAX_GOAL`` without a count).

    Every other field is kept as it was.
    """
    names = [a.name for a in attrs.fields(cls)]
    fields = []
    broken = None
    for name, value in zip(names, values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                value = value.decode("utf-8", "backslashreplace")
                broken = broken or name
        fields.append(value)
    record = dict(zip(names, fields))
    key = record.get("key", record.get("user", ""))
    host = record.get("host", "")
    faults = []

    def drop(name, reason, zero):
        faults.append(Fault(key, host, name, repr(record[name]), reason))
        record[name] = zero

    if broken is not None:
        return None, [Fault(key, host, broken, repr(record[broken]), "not UTF-8: the record is dropped")]
    if cls is ShareRecord:
        counted = True
        if record["num"] > MAX_COUNT:
            drop("num", _BEYOND_REDIS, 0)
            counted = False
        if record["pow"] > MAX_COUNT:
            drop("pow", _BEYOND_REDIS, 0)
        elif counted and record["pow"] and not record["num"]:
            drop("pow", "a difficulty sum without shares", 0)
        if counted:
            limit, beyond = record["num"] * MAX_SHARE_GOAL, "more than %d shares can be worth" % record["num"]
        else:
            limit, beyond = MAX_GOAL, "more than any minute can hold"
        reason = _bad_double(record["goal"], limit, beyond)
        if reason is not None:
            drop("goal", reason, 0.0)
    elif cls is MonitorIntRecord:
        if record["sum"] > MAX_COUNT:
            drop("sum", _BEYOND_REDIS, 0)
    elif cls is MonitorFloatRecord:
        reason = _bad_double(record["sum"], MAX_GOAL, "more than any minute can hold")
        if reason is not None:
            drop("sum", reason, 0.0)
    return cls(**record), faults


def read_body(command, body):
    """
    Read a stats ``body`` for ``command`` record by record, the way the seed's
    metawriter applies it (ref §8): a ``Body`` with every record whose framing
    holds.  A value that decodes but is impossible costs only itself
    (``check_record``); a record whose framing is broken (a truncated or
    over-long field) ends the body, since nothing after it can be trusted, and
    the records before it are kept.

    Raises ``RecordError`` only for an unknown command or a body shorter than
    its 32-byte prefix: nothing of such a body can be read.
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
    recs = []
    faults = []
    while pos < end:
        try:
            values, pos = _read_fields(body, pos, layout)
        except _Torn as e:
            return Body(tuple(recs), tuple(faults), str(e))
        record, bad = check_record(cls, values)
        faults.extend(bad)
        if record is not None:
            recs.append(record)
    return Body(tuple(recs), tuple(faults))


def decode_body(command, body):
    """
    The records of a stats ``body`` for ``command``, in order, if every one
    of them is whole and sound: what our own gateways send.  Raises
    ``RecordError`` naming the first problem ``read_body`` found.
    """
    read = read_body(command, body)
    if read.error is not None:
        raise RecordError(read.error)
    if read.faults:
        f = read.faults[0]
        raise RecordError("record %r from %r: %s %s %s" % (f.key, f.host, f.field, f.value, f.reason))
    return list(read.records)
