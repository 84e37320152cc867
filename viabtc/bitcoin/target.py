# -*- test-case-name: tests.bitcoin.test_target -*-
"""
Targets, compact ``nBits`` and difficulty.

Proof of work compares integers: a hash meets a target iff
``hash_to_int(hash) <= target``.  Converting a pool difficulty to a target is
done with exact rational arithmetic, because share acceptance at the edge of a
target must not depend on floating-point rounding (pool difficulties go far
below 1, e.g. 0.0001 on a CPU miner).  Floats appear only in the functions
that produce difficulties for display and statistics.
"""

import math
from decimal import Decimal
from fractions import Fraction

#: The target of difficulty 1 (``0x1d00ffff``), as pools and bitcoind use it.
DIFF1_TARGET = 0xFFFF << 208

#: The largest 256-bit value; no target can be higher.
MAX_TARGET = 2**256 - 1


def bits_to_target(bits):
    """
    Decode compact ``nBits`` into a target, as Core's ``SetCompact``.

    Raises ``ValueError`` for encodings Core treats as invalid: a negative
    value (sign bit set with a non-zero mantissa) or one that overflows 256
    bits.  A mantissa that is zero once positioned decodes to 0, as in Core.
    """
    if not 0 <= bits <= 0xFFFFFFFF:
        raise ValueError(f"nBits must be a 32-bit unsigned integer, got {bits!r}")
    size = bits >> 24
    word = bits & 0x007FFFFF
    if size <= 3:
        word >>= 8 * (3 - size)
    if word == 0:
        return 0
    if bits & 0x00800000:
        raise ValueError(f"nBits {bits:#010x} encodes a negative target")
    if size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32):
        raise ValueError(f"nBits {bits:#010x} overflows 256 bits")
    if size <= 3:
        return word
    return word << (8 * (size - 3))


def target_to_bits(target):
    """
    Encode a target as compact ``nBits``, as Core's ``GetCompact``: the three
    most significant bytes, shifted down a byte when the top one would set
    the sign bit.  Precision below those bytes is truncated, so
    ``bits_to_target(target_to_bits(t)) <= t``.
    """
    if not 0 <= target <= MAX_TARGET:
        raise ValueError(f"target must be in 0..2**256-1, got {target!r}")
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        compact = target << (8 * (3 - size))
    else:
        compact = target >> (8 * (size - 3))
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    return compact | (size << 24)


def _exact_difficulty(difficulty):
    if isinstance(difficulty, bool):
        raise ValueError("difficulty must be a number, not a bool")
    try:
        if isinstance(difficulty, float) and not math.isfinite(difficulty):
            raise ValueError
        if isinstance(difficulty, str):
            # Decimal parses every decimal or exponent spelling exactly and
            # rejects junk; Fraction of it is exact.
            exact = Fraction(Decimal(difficulty.strip()))
        else:
            exact = Fraction(difficulty)
    except (ValueError, TypeError, ArithmeticError):
        raise ValueError(f"difficulty must be a finite number, got {difficulty!r}") from None
    if exact <= 0:
        raise ValueError(f"difficulty must be greater than 0, got {difficulty!r}")
    return exact


def difficulty_to_target(difficulty):
    """
    The share target for a pool difficulty: ``floor(DIFF1_TARGET /
    difficulty)``, capped at ``MAX_TARGET``.

    ``difficulty`` may be an int, a float, a ``Fraction``, a ``Decimal`` or a
    decimal string ("0.0001", "1e-4"); the division is exact.  Raises
    ``ValueError`` unless it is a finite number greater than 0.
    """
    exact = _exact_difficulty(difficulty)
    target = DIFF1_TARGET * exact.denominator // exact.numerator
    return min(target, MAX_TARGET)


def target_to_difficulty(target):
    """The difficulty a target stands for (display and statistics only)."""
    if target <= 0:
        raise ValueError(f"target must be positive, got {target!r}")
    return DIFF1_TARGET / target


def hash_difficulty(hash_int):
    """
    The difficulty a hash achieves, ``DIFF1_TARGET / hash`` (display and
    statistics; infinite for the all-zero hash).
    """
    if hash_int == 0:
        return math.inf
    return DIFF1_TARGET / hash_int
