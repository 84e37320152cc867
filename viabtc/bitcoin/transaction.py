# -*- test-case-name: tests.bitcoin.test_transaction -*-
"""
Transactions: enough to parse every transaction of a real block (legacy and
BIP144 segwit serialisation), serialise them back byte for byte, and compute
txid and wtxid.  Used to check blocks we build or receive, and for the
coinbase outputs the jobmaster writes.
"""

import struct

import attrs

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.serialize import DecodeError, compact_size, read_compact_size

_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")

#: The prefix of a BIP141 witness commitment output script.
WITNESS_COMMITMENT_HEADER = bytes.fromhex("6a24aa21a9ed")


def _var_bytes(data):
    return compact_size(len(data)) + data


@attrs.frozen
class TxIn:
    """An input: the spent outpoint (``prev_hash`` internal order), scriptSig, sequence."""

    prev_hash: bytes
    prev_index: int
    script_sig: bytes
    sequence: int

    def serialize(self):
        return (
            self.prev_hash
            + _U32.pack(self.prev_index)
            + _var_bytes(self.script_sig)
            + _U32.pack(self.sequence)
        )


@attrs.frozen
class TxOut:
    """An output: value in satoshis and the script it pays."""

    value: int
    script: bytes

    def serialize(self):
        """``value`` (i64 LE) ‖ CompactSize length ‖ script."""
        if self.value < 0:
            raise ValueError(f"output value cannot be negative: {self.value}")
        return _I64.pack(self.value) + _var_bytes(self.script)


@attrs.frozen
class Transaction:
    """
    A transaction.  ``witnesses`` holds one stack (a tuple of items) per
    input, or is empty when the transaction has no witness data.
    """

    version: int
    inputs: tuple = attrs.field(converter=tuple)
    outputs: tuple = attrs.field(converter=tuple)
    locktime: int
    witnesses: tuple = attrs.field(converter=lambda stacks: tuple(map(tuple, stacks)), default=())

    def has_witness(self):
        """True when any input carries witness items."""
        return any(self.witnesses)

    def serialize(self, with_witness=True):
        """
        The transaction's bytes: BIP144 (marker, flag, witnesses) when
        ``with_witness`` and there is witness data, else the legacy form.
        """
        segwit = with_witness and self.has_witness()
        if segwit and len(self.witnesses) != len(self.inputs):
            raise ValueError("a segwit transaction needs one witness stack per input")
        parts = [_U32.pack(self.version & 0xFFFFFFFF)]
        if segwit:
            parts.append(b"\x00\x01")
        parts.append(compact_size(len(self.inputs)))
        parts.extend(txin.serialize() for txin in self.inputs)
        parts.append(compact_size(len(self.outputs)))
        parts.extend(txout.serialize() for txout in self.outputs)
        if segwit:
            for stack in self.witnesses:
                parts.append(compact_size(len(stack)))
                parts.extend(_var_bytes(item) for item in stack)
        parts.append(_U32.pack(self.locktime))
        return b"".join(parts)

    def txid(self):
        """SHA-256d of the legacy serialisation, internal order."""
        return sha256d(self.serialize(with_witness=False))

    def wtxid(self):
        """SHA-256d of the witness serialisation (equals txid without witnesses)."""
        return sha256d(self.serialize(with_witness=True))

    @classmethod
    def parse(cls, data, offset=0):
        """
        Parse one transaction from ``data`` at ``offset``; return
        ``(transaction, new_offset)``.  ``DecodeError`` on truncation, an
        unknown segwit flag, or a witness section that carries no data (Core
        rejects that as superfluous).
        """
        try:
            return _parse(cls, data, offset)
        except (IndexError, struct.error):
            raise DecodeError(f"transaction truncated (started at offset {offset})") from None


def _read_bytes(data, offset):
    n, offset = read_compact_size(data, offset)
    end = offset + n
    if end > len(data):
        raise DecodeError(f"{n}-byte field truncated at offset {offset}")
    return data[offset:end], end


def _parse(cls, data, offset):
    start = offset
    (version,) = _U32.unpack_from(data, offset)
    offset += 4
    segwit = data[offset] == 0
    if segwit:
        flag = data[offset + 1]
        if flag != 1:
            raise DecodeError(f"unknown segwit flag {flag} in transaction at offset {start}")
        offset += 2
    n_in, offset = read_compact_size(data, offset)
    inputs = []
    for _ in range(n_in):
        prev_hash = data[offset : offset + 32]
        if len(prev_hash) != 32:
            raise IndexError
        (prev_index,) = _U32.unpack_from(data, offset + 32)
        script_sig, offset = _read_bytes(data, offset + 36)
        (sequence,) = _U32.unpack_from(data, offset)
        offset += 4
        inputs.append(TxIn(bytes(prev_hash), prev_index, bytes(script_sig), sequence))
    n_out, offset = read_compact_size(data, offset)
    outputs = []
    for _ in range(n_out):
        (value,) = _I64.unpack_from(data, offset)
        script, offset = _read_bytes(data, offset + 8)
        outputs.append(TxOut(value, bytes(script)))
    witnesses = []
    if segwit:
        for _ in range(n_in):
            n_items, offset = read_compact_size(data, offset)
            stack = []
            for _ in range(n_items):
                item, offset = _read_bytes(data, offset)
                stack.append(bytes(item))
            witnesses.append(stack)
        if not any(witnesses):
            raise DecodeError(f"superfluous witness record in transaction at offset {start}")
    (locktime,) = _U32.unpack_from(data, offset)
    offset += 4
    return cls(version, inputs, outputs, locktime, witnesses), offset


def witness_commitment_script(witness_root, reserved=bytes(32)):
    """
    The BIP141 commitment output script: ``OP_RETURN`` push of
    ``aa21a9ed`` ‖ SHA-256d(witness merkle root ‖ witness reserved value).
    """
    if len(witness_root) != 32 or len(reserved) != 32:
        raise ValueError("witness root and reserved value must be 32 bytes")
    return WITNESS_COMMITMENT_HEADER + sha256d(witness_root + reserved)
