# -*- test-case-name: tests.p2p.test_framing -*-
"""
The P2P message envelope (ref §6.3), pure: ``magic(4)`` (the config's
``start_string``), ``command(12, NUL padded)``, ``u32 LE payload length``,
``checksum`` (first 4 bytes of SHA-256d of the payload), payload.

Everything a peer sends is checked before it costs memory: the magic on
the first byte, the command's spelling, the announced length against the
cap (the seed's 32,000,000 bytes, Core's ``MAX_PROTOCOL_MESSAGE_LENGTH``
is 4,000,000 plus witness, so no honest message comes near) before any of
the payload is buffered, and the checksum once it has arrived.  A violation
is a ``P2PError``; the protocol drops that peer and nobody else.
"""

import struct

from viabtc.bitcoin.hashing import sha256d

_HEADER = struct.Struct("<4s12sI4s")

#: Size of the envelope before the payload.
HEADER_SIZE = _HEADER.size

#: The seed's cap on one payload (``bp_peer.c``); larger announces close the peer.
MAX_PAYLOAD = 32_000_000

_COMMAND_BYTES = frozenset(range(0x21, 0x7F))


class P2PError(ValueError):
    """Bytes from a peer that are not a valid P2P message; says why."""


def checksum(payload):
    """The envelope's checksum of ``payload``."""
    return sha256d(payload)[:4]


def encode_frame(magic, command, payload):
    """One framed message: ``command`` (str, at most 12 ASCII characters)."""
    name = command.encode("ascii")
    if not 0 < len(name) <= 12:
        raise ValueError(f"a P2P command is 1 to 12 characters, got {command!r}")
    return _HEADER.pack(magic, name, len(payload), checksum(payload)) + payload


def _command_name(raw):
    name = raw.rstrip(b"\x00")
    if not name or b"\x00" in name or not set(name) <= _COMMAND_BYTES:
        raise P2PError(f"malformed command field {raw!r}")
    return name.decode("ascii")


class FrameDecoder:
    """
    Cuts a peer's byte stream into ``(command, payload)`` pairs.

    ``feed(data)`` returns the complete messages in ``data`` plus what was
    buffered, in order, or raises ``P2PError`` at the first bad one (the
    stream cannot be resynchronised, so the peer must be dropped).
    ``pending`` is True while a message is partly received, which the
    protocol times to catch peers that stall mid-message.
    """

    def __init__(self, magic, max_payload=MAX_PAYLOAD):
        if len(magic) != 4:
            raise ValueError(f"the network magic is 4 bytes, got {len(magic)}")
        self.magic = magic
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._failed = None

    @property
    def pending(self):
        return bool(self._buffer)

    def feed(self, data):
        if self._failed is not None:
            raise P2PError(self._failed)
        self._buffer += data
        messages = []
        buffer = self._buffer
        offset = 0
        try:
            while True:
                available = len(buffer) - offset
                if available < HEADER_SIZE:
                    # Check the magic as soon as its bytes are here: a wrong
                    # network (or garbage) is refused before anything else.
                    head = bytes(buffer[offset:offset + min(available, 4)])
                    if head != self.magic[:len(head)]:
                        raise P2PError(f"bad magic {head.hex()} (expected {self.magic.hex()})")
                    break
                magic, raw_command, length, check = _HEADER.unpack_from(buffer, offset)
                if magic != self.magic:
                    raise P2PError(f"bad magic {magic.hex()} (expected {self.magic.hex()})")
                command = _command_name(raw_command)
                if length > self.max_payload:
                    raise P2PError(f"{command} payload of {length} bytes exceeds the "
                                   f"{self.max_payload} byte limit")
                end = offset + HEADER_SIZE + length
                if end > len(buffer):
                    break
                payload = bytes(buffer[offset + HEADER_SIZE:end])
                if checksum(payload) != check:
                    raise P2PError(f"{command} checksum mismatch")
                messages.append((command, payload))
                offset = end
        except P2PError as e:
            self._failed = str(e)
            self._buffer = bytearray()
            raise
        del buffer[:offset]
        return messages
