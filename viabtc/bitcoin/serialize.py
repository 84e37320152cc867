# -*- test-case-name: tests.bitcoin.test_serialize -*-
"""
Bitcoin's serialisation building blocks: CompactSize integers, CScriptNum and
the minimal script pushes used in coinbase scriptSigs, including the BIP34
height push.

The seed's varint writer is non-canonical at exactly 0xffff and 0xffffffff
(ref §12.24); nodes reject that, so ``compact_size`` uses Bitcoin Core's
thresholds and ``read_compact_size`` refuses non-canonical forms.
"""

import struct

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_PUSHDATA4 = 0x4E
OP_1NEGATE = 0x4F
OP_1 = 0x51
OP_16 = 0x60

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

#: Largest number a CompactSize can hold.
MAX_COMPACT_SIZE = 2**64 - 1


class DecodeError(ValueError):
    """Bytes that do not decode as the Bitcoin structure expected."""


def compact_size(n):
    """
    Canonical CompactSize encoding of ``n``: one byte below 0xfd, then
    ``fd``+u16, ``fe``+u32, ``ff``+u64, each used only when the value does
    not fit the shorter form (thresholds with ``<=``, as Core writes them).
    """
    if n < 0xFD:
        if n < 0:
            raise ValueError(f"CompactSize cannot encode negative {n}")
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    if n <= MAX_COMPACT_SIZE:
        return b"\xff" + _U64.pack(n)
    raise ValueError(f"CompactSize cannot encode {n} (more than 64 bits)")


_WIDE = {0xFD: (_U16, 0xFD), 0xFE: (_U32, 0x10000), 0xFF: (_U64, 0x100000000)}


def read_compact_size(data, offset=0):
    """
    Read a CompactSize from ``data`` at ``offset``; return ``(n, new_offset)``.

    Raises ``DecodeError`` if the data is truncated or the encoding is not the
    canonical (shortest) one, as Core does.
    """
    try:
        first = data[offset]
    except IndexError:
        raise DecodeError(f"CompactSize truncated at offset {offset}") from None
    if first < 0xFD:
        return first, offset + 1
    fmt, smallest = _WIDE[first]
    end = offset + 1 + fmt.size
    if end > len(data):
        raise DecodeError(f"CompactSize truncated at offset {offset}")
    (n,) = fmt.unpack_from(data, offset + 1)
    if n < smallest:
        raise DecodeError(f"non-canonical CompactSize {n} at offset {offset}")
    return n, end


def script_num(n):
    """
    Minimal CScriptNum encoding of ``n``: little-endian magnitude, sign in the
    top bit of the last byte (an extra byte when the magnitude uses that bit),
    and zero as the empty string.
    """
    if n == 0:
        return b""
    negative = n < 0
    magnitude = -n if negative else n
    out = bytearray(magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little"))
    if out[-1] & 0x80:
        out.append(0x80 if negative else 0x00)
    elif negative:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data):
    """
    The integer a CScriptNum encodes; raises ``DecodeError`` if the encoding
    is not minimal (a redundant zero or sign byte).
    """
    if not data:
        return 0
    if data[-1] & 0x7F == 0 and (len(data) == 1 or not data[-2] & 0x80):
        raise DecodeError(f"non-minimal script number {data.hex()}")
    value = int.from_bytes(data, "little")
    sign_bit = 0x80 << (8 * (len(data) - 1))
    if value & sign_bit:
        return -(value & ~sign_bit)
    return value


def push_data(data):
    """
    The smallest push opcode for ``data`` followed by the data: a direct push
    up to 75 bytes, then OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4.
    """
    n = len(data)
    if n <= 75:
        return bytes((n,)) + data
    if n <= 0xFF:
        return bytes((OP_PUSHDATA1, n)) + data
    if n <= 0xFFFF:
        return bytes((OP_PUSHDATA2,)) + _U16.pack(n) + data
    return bytes((OP_PUSHDATA4,)) + _U32.pack(n) + data


def push_int(n):
    """
    Push of an integer as Core's ``CScript() << n`` writes it: OP_0, OP_1NEGATE,
    OP_1..OP_16 for the small numbers, else a push of its CScriptNum.
    """
    if n == 0:
        return bytes((OP_0,))
    if n == -1:
        return bytes((OP_1NEGATE,))
    if 1 <= n <= 16:
        return bytes((OP_1 - 1 + n,))
    return push_data(script_num(n))


def bip34_height_push(height):
    """
    The bytes BIP34 requires at the start of a coinbase scriptSig.

    Core checks that the scriptSig starts with exactly ``CScript() << height``
    (``ContextualCheckBlock``), and ``<<`` writes 1..16 as OP_1..OP_16, not
    as a one-byte push; so heights 1..16 (reachable on regtest, where BIP34 is
    active from height 1) must use those opcodes.  The seed does the same
    (``pack_oppushint_le``).  Any other push of the same number is rejected.
    """
    if height < 0:
        raise ValueError(f"block height cannot be negative: {height}")
    return push_int(height)


def read_bip34_height(script_sig):
    """
    The block height a coinbase scriptSig commits to under BIP34.

    Accepts only what ``bip34_height_push`` writes (the one form Core
    accepts); raises ``DecodeError`` for anything else.  Blocks from before
    BIP34 (mainnet height < 227931) start with arbitrary data, so the number
    read from them means nothing.
    """
    if not script_sig:
        raise DecodeError("empty scriptSig has no BIP34 height")
    op = script_sig[0]
    if op == OP_0:
        return 0
    if OP_1 <= op <= OP_16:
        return op - OP_1 + 1
    if not 1 <= op <= 5:
        raise DecodeError(f"scriptSig does not start with a height push (opcode {op:#04x})")
    if len(script_sig) < 1 + op:
        raise DecodeError("scriptSig height push is truncated")
    height = decode_script_num(script_sig[1 : 1 + op])
    if height < 0 or bip34_height_push(height) != script_sig[: 1 + op]:
        raise DecodeError(f"scriptSig height push {script_sig[:1 + op].hex()} is not canonical")
    return height
