# -*- test-case-name: tests.rpc.test_codec -*-
"""
The seed's module-to-module packet format ("beep" framing, ref §2.2), pure.

Every role talks to every other role with these packets, and C peers of the
seed must be able to read what we write, so the header layout, the CRC and
the heartbeat TLV are reproduced byte for byte.  Our one addition lives in
the header's ``ext`` blob, which C peers skip: an HMAC-SHA256 tag
(ref §12.1) laid out as

    offset  size  field
    0       1     version (``AUTH_VERSION`` = 1)
    1       8     timestamp, u64 LE milliseconds since the Unix epoch
    9       8     nonce, random bytes (two identical packets sent in the
                  same millisecond still get distinct tags)
    17      32    HMAC-SHA256(secret, header with crc zeroed || ext[0:17] || body)

The tag covers the whole header except the CRC (so command, type, sequence,
req_id and both sizes), the timestamp and nonce, and the body: it cannot be
moved to another packet.  Freshness (timestamp window, replayed tags) needs a
clock and memory, so it lives in :mod:`viabtc.rpc.replay`.

Nothing here does I/O; the decoder only buffers bytes it is given.
"""

import hashlib
import hmac
import os
import struct
import time
import zlib
from enum import IntEnum

import attrs

HEADER = struct.Struct("<IIHIIIQIH")
HEADER_SIZE = HEADER.size
MAGIC = 0x70656562

#: Offset of the crc32 field inside the header (ref §2.2 table).
CRC_OFFSET = 14
_CRC_END = CRC_OFFSET + 4
_ZERO_CRC = b"\x00\x00\x00\x00"

AUTH_VERSION = 1
_AUTH_PREFIX = struct.Struct("<BQ8s")
AUTH_EXT_SIZE = _AUTH_PREFIX.size + 32

_HEARTBEAT_TLV = struct.Struct("<HHI")
_TLV_HEAD = struct.Struct("<HH")
HEARTBEAT_TLV_TIMEOUT = 1

#: Heartbeat timeouts are clamped to this range by C servers and clients
#: (ref §2.3); 3 s applies until a peer announces its own.
HEARTBEAT_TIMEOUT_MIN = 2.0
HEARTBEAT_TIMEOUT_MAX = 600.0
HEARTBEAT_TIMEOUT_DEFAULT = 3.0


class PacketType(IntEnum):
    REQUEST = 0
    REPLY = 1
    PUSH = 2


class Command(IntEnum):
    """Command ids of ``utils/ut_rpc_cmd.h`` (ref §2.4)."""

    HEARTBEAT = 0
    UPDATE_JOB = 1
    FOUND_BLOCK = 2
    UPDATE_BAN = 3
    HEIGHT_UPDATE = 4
    CHECK_SHARE = 5
    SUBMIT_BLOCK = 10
    COMPRESS_BLOCK = 11
    UPDATE_BLOCK = 12
    THIN_BLOCK_SUBMIT = 13
    THIN_BLOCK_UPDATE = 14
    THIN_BLOCK_TX = 15
    META_BLOCK = 100
    META_EVENT = 101
    META_SHARE = 102
    META_MONITOR = 103
    META_HASH = 104
    META_MONITOR_INT = 105
    META_MONITOR_FLOAT = 106


class ProtocolError(Exception):
    """
    Bytes from a peer that are not a valid packet.

    ``reason`` says why in words fit for a log line.  ``packets`` holds the
    valid packets decoded from the same chunk before the bad one, so a caller
    can still act on them before closing the connection.
    """

    def __init__(self, reason, packets=()):
        super().__init__(reason)
        self.reason = reason
        self.packets = list(packets)


@attrs.frozen
class Packet:
    """One RPC packet; ``ext`` is the raw ext blob (our auth stamp or empty)."""

    command: int
    body: bytes
    pkg_type: int = PacketType.PUSH
    sequence: int = 0
    result: int = 0
    req_id: int = 0
    ext: bytes = b""

    def reply(self, body=b""):
        """
        The answer the seed gives to this packet: same command, sequence and
        req_id, type REPLY, result 0 (heartbeat replies and stats ACKs).
        """
        return Packet(
            command=self.command,
            body=body,
            pkg_type=PacketType.REPLY,
            sequence=self.sequence,
            req_id=self.req_id,
        )


@attrs.frozen
class AuthStamp:
    """The parsed auth ext of a packet (see the module docstring)."""

    timestamp_ms: int
    nonce: bytes
    tag: bytes


def _mac(secret, header, ext_prefix, body):
    mac = hmac.new(secret, header, hashlib.sha256)
    mac.update(ext_prefix)
    mac.update(body)
    return mac.digest()


def encode(packet, secret=None, *, now=None, nonce=None):
    """
    Serialise ``packet``.

    With ``secret`` the ext blob is replaced by a fresh auth stamp (so
    ``packet.ext`` must be empty); ``now`` (seconds since the epoch, from the
    caller's reactor) and ``nonce`` (8 bytes) default to the wall clock and
    ``os.urandom``.  Out-of-range fields raise ``ValueError``.
    """
    body = packet.body
    if secret is None:
        ext = packet.ext
    else:
        if packet.ext:
            raise ValueError("packet.ext must be empty when signing")
        if now is None:
            now = time.time()
        if nonce is None:
            nonce = os.urandom(8)
        elif len(nonce) != 8:
            raise ValueError("nonce must be 8 bytes")
        ext_prefix = _AUTH_PREFIX.pack(AUTH_VERSION, int(now * 1000), nonce)
    fields = [
        MAGIC,
        packet.command,
        packet.pkg_type,
        packet.result,
        0,
        packet.sequence,
        packet.req_id,
        len(body),
        AUTH_EXT_SIZE if secret is not None else len(ext),
    ]
    try:
        header = HEADER.pack(*fields)
    except struct.error as e:
        raise ValueError(f"packet field out of range: {e}") from None
    if secret is not None:
        ext = ext_prefix + _mac(secret, header, ext_prefix, body)
    fields[4] = zlib.crc32(body, zlib.crc32(ext, zlib.crc32(header)))
    return b"".join((HEADER.pack(*fields), ext, body))


def parse_auth_ext(ext):
    """The ``AuthStamp`` in ``ext``; ``ProtocolError`` when there is none."""
    if not ext:
        raise ProtocolError("missing auth tag")
    if ext[0] != AUTH_VERSION:
        raise ProtocolError(f"unsupported auth ext version {ext[0]}")
    if len(ext) != AUTH_EXT_SIZE:
        raise ProtocolError(f"auth ext of {len(ext)} bytes, expected {AUTH_EXT_SIZE}")
    _, timestamp_ms, nonce = _AUTH_PREFIX.unpack_from(ext)
    return AuthStamp(timestamp_ms, nonce, bytes(ext[_AUTH_PREFIX.size :]))


def _check_tag(secret, header, ext, body):
    stamp = parse_auth_ext(ext)
    header0 = bytes(header[:CRC_OFFSET]) + _ZERO_CRC + bytes(header[_CRC_END:])
    expected = _mac(secret, header0, ext[: _AUTH_PREFIX.size], body)
    if not hmac.compare_digest(expected, stamp.tag):
        raise ProtocolError("bad auth tag")


def _decode_at(view, offset, max_size, secret):
    """
    Decode the packet starting at ``view[offset:]``.

    Returns ``(packet, end)``, or ``(None, needed_total)`` when more bytes are
    needed.  Checks the magic and size before waiting for the body, so a
    garbage length never makes us buffer gigabytes.
    """
    available = len(view) - offset
    if available < HEADER_SIZE:
        if available >= 4 and int.from_bytes(view[offset : offset + 4], "little") != MAGIC:
            raise ProtocolError("bad magic")
        return None, HEADER_SIZE
    (magic, command, pkg_type, result, crc, sequence, req_id, body_size, ext_size) = (
        HEADER.unpack_from(view, offset)
    )
    if magic != MAGIC:
        raise ProtocolError("bad magic")
    total = HEADER_SIZE + ext_size + body_size
    if total > max_size:
        raise ProtocolError(f"packet of {total} bytes exceeds max size {max_size}")
    if available < total:
        return None, total
    end = offset + total
    header = view[offset : offset + HEADER_SIZE]
    computed = zlib.crc32(header[:CRC_OFFSET])
    computed = zlib.crc32(_ZERO_CRC, computed)
    computed = zlib.crc32(view[offset + _CRC_END : end], computed)
    if computed != crc:
        raise ProtocolError("bad crc32")
    ext_start = offset + HEADER_SIZE
    ext = bytes(view[ext_start : ext_start + ext_size])
    body = bytes(view[ext_start + ext_size : end])
    if secret is not None:
        _check_tag(secret, header, ext, body)
    return Packet(command, body, pkg_type, sequence, result, req_id, ext), end


class PacketDecoder:
    """
    Incremental decoder for a TCP stream of packets (ref §2.2 ``rpc_decode``).

    ``max_size`` bounds a whole packet (header, ext and body), as the seed's
    per-connection receive buffer ``max_pkg_size`` does.  With ``secret``
    every packet must carry a valid auth tag.  After a ``ProtocolError`` the
    stream is out of sync and the decoder must be discarded.
    """

    def __init__(self, max_size, secret=None):
        self._max_size = max_size
        self._secret = secret
        self._buffer = bytearray()
        self._needed = HEADER_SIZE

    def feed(self, data):
        """Add ``data``; return the packets it completes, in order."""
        buffer = self._buffer
        buffer += data
        if self._needed > HEADER_SIZE and len(buffer) < self._needed:
            # Still waiting for the body of a packet whose header passed.
            return []
        packets = []
        offset = 0
        with memoryview(buffer) as view:
            try:
                while True:
                    packet, end = _decode_at(view, offset, self._max_size, self._secret)
                    if packet is None:
                        self._needed = end
                        break
                    self._needed = HEADER_SIZE
                    packets.append(packet)
                    offset = end
            except ProtocolError as e:
                raise ProtocolError(e.reason, packets) from None
        if offset:
            del buffer[:offset]
        return packets


def decode_datagram(data, max_size, secret=None):
    """
    The one packet a UDP datagram carries.

    Short, oversize, or trailing bytes are a ``ProtocolError`` (the seed
    delivered short datagrams with a stale header, ref §12.21).
    """
    if len(data) > max_size:
        raise ProtocolError(f"datagram of {len(data)} bytes exceeds max size {max_size}")
    with memoryview(data) as view:
        packet, end = _decode_at(view, 0, max_size, secret)
    if packet is None:
        raise ProtocolError(f"short datagram: {len(data)} bytes, packet needs {end}")
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} trailing bytes after packet")
    return packet


def clamp_heartbeat_timeout(seconds):
    """A heartbeat timeout inside the seed's [2 s, 600 s] range."""
    return min(max(seconds, HEARTBEAT_TIMEOUT_MIN), HEARTBEAT_TIMEOUT_MAX)


def heartbeat_body(timeout):
    """The heartbeat TLV ``01 00 04 00 <u32 timeout_ms>`` (ref §2.3)."""
    return _HEARTBEAT_TLV.pack(HEARTBEAT_TLV_TIMEOUT, 4, int(round(timeout * 1000)))


def heartbeat_request(timeout, sequence=0):
    """A heartbeat REQUEST announcing ``timeout`` seconds."""
    return Packet(
        Command.HEARTBEAT, heartbeat_body(timeout), PacketType.REQUEST, sequence
    )


def parse_heartbeat_timeout(body):
    """
    The timeout in seconds announced by a heartbeat body, or ``None`` when it
    announces none.  A truncated TLV is a ``ProtocolError``.
    """
    offset = 0
    size = len(body)
    while offset < size:
        if size - offset < _TLV_HEAD.size:
            raise ProtocolError("truncated heartbeat TLV")
        kind, length = _TLV_HEAD.unpack_from(body, offset)
        offset += _TLV_HEAD.size
        if size - offset < length:
            raise ProtocolError("truncated heartbeat TLV")
        if kind == HEARTBEAT_TLV_TIMEOUT and length == 4:
            return int.from_bytes(body[offset : offset + 4], "little") / 1000.0
        offset += length
    return None
