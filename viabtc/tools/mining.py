# -*- test-case-name: tests.tools.test_mining -*-
"""
The pure arithmetic of a Stratum miner: from a job to headers, and the
nonce search over them.

``viabtc-miner`` exists to test pools, so it must build exactly the header a
correct pool rebuilds from a submit: coinbase = coinbase1 ‖ extranonce1 ‖
extranonce2 ‖ coinbase2, merkle root through the branch, version rolled only
inside the negotiated mask.  Nothing here does I/O or knows about Twisted, so
``grind`` can run in a thread or another process and every piece is checked
against known blocks.
"""

import hashlib
import struct

import attrs

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root_from_branch

#: Nonces per header: the header's nonce field is 32 bits.
NONCE_SPACE = 1 << 32

_NONCE = struct.Struct("<I")


def build_coinbase(coinbase1, extranonce1, extranonce2, coinbase2):
    """The coinbase transaction the pool will rebuild from our submit."""
    return b"".join((coinbase1, extranonce1, extranonce2, coinbase2))


def header_prefix(job, extranonce1, extranonce2, version):
    """
    The first 76 bytes of the header for ``job`` (a ``StratumJob``) with our
    extranonces and ``version``: everything but the nonce, which ``grind``
    appends.
    """
    coinbase = build_coinbase(job.coinbase1, extranonce1, extranonce2, job.coinbase2)
    root = merkle_root_from_branch(sha256d(coinbase), job.branch)
    return BlockHeader(version, job.prev_hash, root, job.time, job.bits, 0).serialize()[:76]


def rolling_steps(mask):
    """How many distinct versions the mask allows (2 ** its bit count)."""
    return 1 << bin(mask).count("1")


def roll_version(version, mask, step):
    """
    The ``step``-th version reachable from ``version`` inside ``mask``: the
    bits of ``step`` are deposited, lowest first, into the mask's bit
    positions, and bits outside the mask are left as the pool sent them.
    Step 0 is ``version`` with its mask bits cleared.
    """
    if not 0 <= step < rolling_steps(mask):
        raise ValueError(f"step {step} is outside mask {mask:#010x}")
    rolled = version & ~mask & 0xFFFFFFFF
    bit = 0
    while step:
        while not (mask >> bit) & 1:
            bit += 1
        if step & 1:
            rolled |= 1 << bit
        step >>= 1
        bit += 1
    return rolled


def extranonce2_bytes(counter, size):
    """Extranonce2 number ``counter`` as the ``size`` bytes put in the coinbase."""
    return (counter % (1 << (8 * size))).to_bytes(size, "big")


def grind(prefix, start, stop, target):
    """
    Try nonces ``start .. stop-1`` after the 76-byte ``prefix``; return
    ``[(nonce, hash), ...]`` for each header whose SHA-256d (internal order)
    meets ``target`` (``hash_to_int(hash) <= target``).

    The prefix is hashed once and copied per nonce (the SHA-256 midstate
    trick, on 64 of the 76 bytes), which roughly halves the work per nonce.
    """
    if len(prefix) != 76:
        raise ValueError(f"header prefix must be 76 bytes, got {len(prefix)}")
    midstate = hashlib.sha256(prefix)
    sha256 = hashlib.sha256
    pack = _NONCE.pack
    from_bytes = int.from_bytes
    found = []
    for nonce in range(start, stop):
        inner = midstate.copy()
        inner.update(pack(nonce))
        digest = sha256(inner.digest()).digest()
        if from_bytes(digest, "little") <= target:
            found.append((nonce, digest))
    return found


@attrs.frozen
class Cursor:
    """
    A position in a job's search space, walked nonces first, then versions
    (when rolling; no coinbase rebuild needed), then extranonce2.
    """

    extranonce2: int = 0
    roll: int = 0
    nonce: int = 0

    def advance(self, count, roll_steps, nonce_space=NONCE_SPACE):
        """
        The cursor ``count`` nonces on, and the half-open nonce range
        ``(start, stop)`` covered from here: a range never crosses the end of
        the nonce space, which moves on to the next version, and after the
        last version to the next extranonce2.
        """
        start = self.nonce
        stop = min(start + count, nonce_space)
        if stop < nonce_space:
            return attrs.evolve(self, nonce=stop), (start, stop)
        if self.roll + 1 < roll_steps:
            return Cursor(self.extranonce2, self.roll + 1, 0), (start, stop)
        return Cursor(self.extranonce2 + 1, 0, 0), (start, stop)
