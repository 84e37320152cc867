# -*- test-case-name: tests.bitcoin.test_hashing -*-
"""
The hash functions Bitcoin uses, and the only conversions between internal
byte order and the display-order hex that bitcoind prints.

Every hash in viabtc is ``bytes`` in internal order (the raw SHA-256d output,
what goes into headers and merkle trees).  Byte-order mistakes are the classic
pool bug (ref Appendix A), so converting to or from display hex is only done
through the two helpers here, whose names say which way they go.
"""

import hashlib

try:
    from viabtc.bitcoin import _sha256d as _compiled
except ImportError:  # built without a C compiler or OpenSSL's headers (setup.py)
    _compiled = None

_sha256 = hashlib.sha256

#: True when double SHA-256 and the merkle fold run in the compiled module
#: (about three times faster on the share path); the gateway logs which.
COMPILED = _compiled is not None


def sha256(data):
    """Single SHA-256 of ``data``."""
    return _sha256(data).digest()


def sha256d_py(data):
    """Double SHA-256 through hashlib: the reference for the compiled one."""
    return _sha256(_sha256(data).digest()).digest()


#: Double SHA-256: block hashes, txids and merkle nodes.
sha256d = sha256d_py if _compiled is None else _compiled.sha256d


def hash160(data):
    """RIPEMD-160 of SHA-256: the hash in P2PKH and P2SH scripts."""
    return hashlib.new("ripemd160", _sha256(data).digest()).digest()


def hash_from_display_hex(text):
    """
    Turn a 64-digit display-order hex hash (as bitcoind prints block hashes,
    txids and ``previousblockhash``) into internal-order bytes.

    Raises ``ValueError`` if ``text`` is not 64 hex digits.
    """
    if not isinstance(text, str) or len(text) != 64:
        raise ValueError(f"a hash is 64 hex digits, got {text!r}")
    return bytes.fromhex(text)[::-1]


def hash_to_display_hex(h):
    """Internal-order hash bytes as display-order hex (what bitcoind prints)."""
    if len(h) != 32:
        raise ValueError(f"a hash is 32 bytes, got {len(h)}")
    return h[::-1].hex()


def hash_to_int(h):
    """
    The hash as the 256-bit number proof of work compares with a target: the
    internal bytes read little-endian.  A header meets target ``T`` iff
    ``hash_to_int(sha256d(header)) <= T``.
    """
    return int.from_bytes(h, "little")
