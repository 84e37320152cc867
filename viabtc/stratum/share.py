# -*- test-case-name: tests.stratum.test_share -*-
"""
The share check: one submitted share against one job, as a pure function.

This is where miners are paid and blocks are found, so it is plain code with
no I/O: the session gathers the inputs (its job, its coinbase prefix, its
share targets, the parsed submit fields and the time) and acts on the
``ShareResult``.  It runs for every share, so it keeps to a few hash calls,
one struct pack and integer compares (architecture §4).

The rules are the seed's (ref §4.5 steps 6-12) with its holes closed
(ref §12.10): version bits outside the *negotiated* mask and an ``ntime``
outside ``[curtime - 7200, now + 7200]`` (the lower end raised to the job's
``mintime``: BIP94's timewarp floor, ``PreparedJob.ntime_min``) are
rejected with their own codes;
difficulty is judged with integer targets, never floats; a hash that meets
the block target is a block candidate even if it misses the session's share
target (possible on regtest, where blocks are easier than shares).
"""

import enum
import struct
from typing import NamedTuple

import attrs

from viabtc.bitcoin.hashing import _compiled, sha256d
from viabtc.bitcoin.merkle import merkle_root_from_branch
from viabtc.bitcoin.target import difficulty_to_target

_HEADER = struct.Struct("<I32s32sIII")

#: How far ``ntime`` may stray from the job's ``curtime`` (below) and from the
#: pool's clock (above).  Consensus allows two hours into the future; rolling
#: ntime backwards past the median time past would make an invalid block.
NTIME_WINDOW = 7200


class Reject(enum.IntEnum):
    """
    Stratum error codes.  21-25 and 31 are the seed's and keep their meaning;
    20 and 26-28 are ours, for cases the seed closed the connection on or let
    through (documented in docs/stratum.md).
    """

    OTHER = 20
    JOB_NOT_FOUND = 21
    DUPLICATE_SHARE = 22
    LOW_DIFFICULTY = 23
    UNAUTHORIZED = 24
    NOT_SUBSCRIBED = 25
    STALE_JOB = 26
    INVALID_NTIME = 27
    INVALID_VERSION_BITS = 28
    INVALID_CONFIG = 31

    @property
    def message(self):
        return _MESSAGES[self]


_MESSAGES = {
    Reject.OTHER: "Other/Unknown",
    Reject.JOB_NOT_FOUND: "Job not found",
    Reject.DUPLICATE_SHARE: "Duplicate share",
    Reject.LOW_DIFFICULTY: "Low difficulty share",
    Reject.UNAUTHORIZED: "Unauthorized worker",
    Reject.NOT_SUBSCRIBED: "Not subscribed",
    Reject.STALE_JOB: "Stale job",
    Reject.INVALID_NTIME: "ntime out of range",
    Reject.INVALID_VERSION_BITS: "Invalid version bits",
    Reject.INVALID_CONFIG: "invalid config",
}


@attrs.frozen
class ShareTarget:
    """
    A session difficulty and its exact integer target, made together once per
    difficulty change so the hot path only compares integers.
    """

    difficulty: float
    target: int

    @classmethod
    def for_difficulty(cls, difficulty):
        """Raises ``ValueError`` unless ``difficulty`` is a finite number > 0."""
        return cls(difficulty, difficulty_to_target(difficulty))


class ShareResult(NamedTuple):
    """
    The outcome of a share check.  A tuple rather than an attrs class because
    one is made for every accepted share (architecture §4); rejects reuse one
    constant per code.

    ``reject`` is ``None`` for an accepted share.  ``hash`` is internal order.
    ``difficulty`` is what the share is credited with.  ``header`` and
    ``coinbase`` are the exact bytes a block is assembled from (legacy
    coinbase serialisation, as the seed sends them to the jobmaster).
    ``aux`` holds the ``Aux`` entries whose target the hash also meets.
    """

    reject: Reject | None
    hash: bytes
    difficulty: float
    is_block: bool
    header: bytes
    coinbase: bytes
    aux: tuple


#: ``ShareResult(...)`` without namedtuple's ``__new__``, a Python function
#: (a frame for every accepted share, a third of ``check_share`` after the hashes).
_result = tuple.__new__


def _rejected(code):
    return ShareResult(code, b"", 0.0, False, b"", b"", ())


#: One immutable result per reject code, so a flood of bad shares allocates nothing.
REJECTED = {code: _rejected(code) for code in Reject}
_LOW_DIFFICULTY = REJECTED[Reject.LOW_DIFFICULTY]
_INVALID_NTIME = REJECTED[Reject.INVALID_NTIME]
_INVALID_VERSION_BITS = REJECTED[Reject.INVALID_VERSION_BITS]
_NO_AUX = ()


def share_header_py(coinbase, branch, version, prevhash, ntime, nbits, nonce):
    """
    ``(header, hash)``: the 80-byte header a share makes (its coinbase's
    txid folded with the job's branch into the merkle root) and the
    header's double SHA-256.  ``struct.error`` for an integer outside 32
    bits.  The reference for the compiled ``share_header``, which does the
    same in one call (and raises ``OverflowError`` there).
    """
    root = merkle_root_from_branch(sha256d(coinbase), branch)
    header = _HEADER.pack(version, prevhash, root, ntime, nbits, nonce)
    return header, sha256d(header)


#: ``share_header_py``, compiled when ``viabtc.bitcoin._sha256d`` was built.
share_header = share_header_py if _compiled is None else _compiled.share_header


def check_share(
    job,
    coinbase_prefix,
    extranonce2,
    ntime,
    nonce,
    version_bits,
    version_mask,
    current,
    previous,
    now,
):
    """
    Check one share.

    ``job`` is the ``PreparedJob`` the share names.  ``coinbase_prefix`` is
    every coinbase byte before extranonce2: the session's real coinbase1 and
    its extranonce1, in the miner layout or the agent layout alike.
    ``extranonce2`` is bytes; ``ntime``, ``nonce`` and ``version_bits`` are
    the submitted integers (``version_bits`` 0 when absent);
    ``version_mask`` is the mask negotiated with ``mining.configure`` (0 if
    none).  ``current`` and ``previous`` are the session's ``ShareTarget``s:
    a share missing the current one is still credited at the previous one
    (the seed's grace after a retarget, ref §4.5 step 9).  ``now`` is the
    pool's clock in seconds.

    Returns a ``ShareResult``; never raises for integer and bytes inputs.
    """
    if version_bits & ~version_mask:
        return _INVALID_VERSION_BITS
    if ntime < job.ntime_min or ntime > now + NTIME_WINDOW or ntime > 0xFFFFFFFF:
        return _INVALID_NTIME
    coinbase = coinbase_prefix + extranonce2 + job.coinbase2
    try:
        header, share_hash = share_header(
            coinbase, job.branch, (job.version & ~version_mask) | version_bits, job.prevhash, ntime, job.nbits, nonce
        )
    except (struct.error, OverflowError):
        # A nonce or version outside 32 bits: the protocol layer parses 8 hex
        # digits, so only a direct caller can get here.
        return REJECTED[Reject.OTHER]
    value = int.from_bytes(share_hash, "little")
    is_block = value <= job.block_target
    if value <= current.target:
        credited = current.difficulty
    elif value <= previous.target:
        credited = previous.difficulty
    elif is_block:
        # Only when blocks are easier than shares (regtest): the hash proved
        # the block's difficulty, so that is what it is worth.
        credited = job.block_difficulty
    else:
        return _LOW_DIFFICULTY
    aux = _NO_AUX
    if value <= job.aux_max_target:
        aux = tuple(a.aux for a in job.aux_targets if value <= a.target)
    return _result(ShareResult, (None, share_hash, credited, is_block, header, coinbase, aux))
