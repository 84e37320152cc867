# -*- test-case-name: tests.bitcoin.test_header -*-
"""
The 80-byte block header as a value.

The hot share-check path builds header bytes directly; this class is for
everything that wants named fields: parsing blocks, building templates, tests.
"""

import struct

import attrs

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.serialize import DecodeError

_HEADER = struct.Struct("<I32s32sIII")

#: Size of a serialized header.
HEADER_SIZE = _HEADER.size


@attrs.frozen
class BlockHeader:
    """
    A block header.  ``prev_hash`` and ``merkle_root`` are internal-order
    bytes; the integers are unsigned 32-bit, as they are packed.
    """

    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self):
        """The 80 header bytes; ``ValueError`` if a field is out of range."""
        if len(self.prev_hash) != 32 or len(self.merkle_root) != 32:
            raise ValueError("prev_hash and merkle_root must be 32 bytes")
        try:
            return _HEADER.pack(
                self.version, self.prev_hash, self.merkle_root, self.time, self.bits, self.nonce
            )
        except struct.error as e:
            raise ValueError(f"header field out of range: {e}") from None

    @classmethod
    def parse(cls, data):
        """Parse exactly 80 bytes; ``DecodeError`` for any other length."""
        if len(data) != HEADER_SIZE:
            raise DecodeError(f"a block header is {HEADER_SIZE} bytes, got {len(data)}")
        return cls(*_HEADER.unpack(data))

    def hash(self):
        """The block hash, internal order."""
        return sha256d(self.serialize())
