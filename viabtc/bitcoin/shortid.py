# -*- test-case-name: tests.bitcoin.test_shortid -*-
"""
BIP152 compact-block short transaction ids, and the SipHash-2-4 they use.

The seed's thin blocks keyed transactions by 8 bytes of their hash with no
salt (ref §6.2, §12.16); BIP152's per-block salted 48-bit ids make deliberate
collisions useless and let thin blocks interoperate with Bitcoin nodes.
"""

import struct

from viabtc.bitcoin.hashing import sha256

_MASK = 0xFFFFFFFFFFFFFFFF
_U64 = struct.Struct("<Q")
_KEYS = struct.Struct("<QQ")


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK


def _rounds(v0, v1, v2, v3, n):
    for _ in range(n):
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(k0, k1, data):
    """SipHash-2-4 of ``data`` under the 128-bit key ``(k0, k1)`` (two u64 halves)."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(data)
    full = n - n % 8
    for (m,) in _U64.iter_unpack(data[:full]):
        v3 ^= m
        v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    last = int.from_bytes(data[full:], "little") | ((n & 0xFF) << 56)
    v3 ^= last
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 2)
    v0 ^= last
    v2 ^= 0xFF
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3


def short_id_keys(header80, nonce):
    """
    BIP152 SipHash keys: the first two little-endian u64 of
    SHA-256(header ‖ u64 LE nonce).
    """
    if len(header80) != 80:
        raise ValueError(f"a block header is 80 bytes, got {len(header80)}")
    return _KEYS.unpack(sha256(header80 + _U64.pack(nonce))[:16])


def short_txid(k0, k1, wtxid_or_txid):
    """The 48-bit short id of a transaction hash (internal order)."""
    return siphash24(k0, k1, wtxid_or_txid) & 0xFFFFFFFFFFFF
