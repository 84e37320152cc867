# -*- test-case-name: tests.bitcoin.test_coinbase -*-
"""
The coinbase transaction, split the way Stratum needs it (ref §3.4, §4.4).

The jobmaster builds ``coinbase1`` (the fixed 41-byte prefix) and
``coinbase2`` (sequence, outputs, locktime); the gateway (or mineragent)
inserts the scriptSig: BIP34 height, pool tag, coinbaseaux, the ids that make
every session's coinbase unique, then the miner's 12 extranonce bytes.

Byte layouts follow the seed so C gateways and mineragents interoperate, with
its consensus bugs fixed: the miner push opcode is ``0x14`` (the 20 bytes that
follow) rather than ``0x10`` (§12.9), and the whole scriptSig is kept within
the consensus limit of 100 bytes, which the seed's budget did not guarantee.
"""

import struct

import attrs

from viabtc.bitcoin.serialize import bip34_height_push, compact_size, push_data
from viabtc.bitcoin.transaction import Transaction, TxOut

#: Extranonce bytes a miner fills: 4 of extranonce1 (per session) and 8 of extranonce2.
MINER_EXTRANONCE_SIZE = 12

#: Consensus limits on a coinbase scriptSig's length.
MAX_SCRIPT_SIG = 100
MIN_SCRIPT_SIG = 2

#: How close to 1 the recipients' percentages must sum for them to take it all.
PERCENT_EPSILON = 1e-9

_COINBASE1 = struct.pack("<IB", 1, 1) + bytes(32) + b"\xff\xff\xff\xff"
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

# After the tag and coinbaseaux pushes: 0x14 ‖ u32 unique id ‖ u32 nonce id,
# then the 12 extranonce bytes; the agent variant has 0x12 ‖ u16 ‖ u32 ‖ u32.
_MINER_TAIL = 1 + 4 + 4 + MINER_EXTRANONCE_SIZE
_AGENT_TAIL = 1 + 2 + 4 + 4 + MINER_EXTRANONCE_SIZE


@attrs.frozen
class Recipient:
    """A configured share of the block reward (``percent`` is a fraction: 0.02 = 2 %)."""

    script: bytes
    percent: float


def split_reward(coinbase_value, recipients, main_script):
    """
    The reward outputs, by the seed's rule: each recipient in order gets
    ``floor(coinbase_value * percent)``; if the percentages sum to 1 (within
    ``PERCENT_EPSILON``) the last recipient gets what remains instead and
    there is no main output, else ``main_script`` gets the remainder.

    ``ValueError`` if a percentage is negative, they sum to more than 1, the
    remainder has no ``main_script`` to go to, or rounding would pay out more
    than ``coinbase_value``.
    """
    if coinbase_value < 0:
        raise ValueError(f"coinbase value cannot be negative: {coinbase_value}")
    total = 0.0
    for r in recipients:
        if not r.percent >= 0:
            raise ValueError(f"recipient percent must be >= 0, got {r.percent!r}")
        total += r.percent
    if total > 1 + PERCENT_EPSILON:
        raise ValueError(f"recipient percentages sum to {total}, more than 1")
    takes_all = bool(recipients) and abs(total - 1) <= PERCENT_EPSILON
    if not takes_all and main_script is None:
        raise ValueError("recipients leave a remainder but there is no main recipient")
    outputs = []
    paid = 0
    last = len(recipients) - 1
    for i, r in enumerate(recipients):
        if takes_all and i == last:
            value = coinbase_value - paid
        else:
            value = int(coinbase_value * r.percent)
        paid += value
        if value < 0 or paid > coinbase_value:
            raise ValueError("recipient percentages would pay out more than the coinbase value")
        outputs.append(TxOut(value, r.script))
    if not takes_all:
        outputs.append(TxOut(coinbase_value - paid, main_script))
    return outputs


def coinbase_halves(outputs):
    """
    ``(coinbase1, coinbase2)``: the 41-byte prefix (version 1, one input,
    null prevout) and the part after the scriptSig (sequence 0xffffffff,
    outputs, locktime 0).
    """
    parts = [b"\xff\xff\xff\xff", compact_size(len(outputs))]
    parts.extend(o.serialize() for o in outputs)
    parts.append(b"\0\0\0\0")
    return _COINBASE1, b"".join(parts)


def coinbase_tag(pool_name, message, account, budget):
    """
    The coinbase tag ``/pool/message/Mined by account/`` as the seed builds
    it, within ``budget`` bytes: it starts with ``/`` and each non-empty part,
    with its trailing ``/``, is appended only if it fits in what is left.
    A part that does not fit is left out whole (as the seed does) rather
    than cut, so no UTF-8 character is split.  Returns ``b""`` when not even
    the leading ``/`` fits.
    """
    if budget < 1:
        return b""
    tag = b"/"
    parts = [pool_name, message]
    if account:
        parts.append("Mined by " + account)
    for part in parts:
        if part:
            piece = part.encode("utf-8") + b"/"
            if len(tag) + len(piece) <= budget:
                tag += piece
    return tag


def _prefix_head(height, tag, coinbaseaux):
    head = bip34_height_push(height)
    if len(tag) > 1:
        head += push_data(tag)
    if coinbaseaux:
        head += push_data(coinbaseaux)
    return head


def _checked(prefix, extranonce_size):
    total = len(prefix) + extranonce_size
    if total > MAX_SCRIPT_SIG:
        raise ValueError(
            f"coinbase scriptSig would be {total} bytes, over the limit of {MAX_SCRIPT_SIG}; "
            "size the tag with tag_budget()"
        )
    return prefix


def miner_script_sig_prefix(height, tag, coinbaseaux, unique_id, nonce_id):
    """
    The scriptSig up to the miner's extranonce: BIP34 height, the tag pushed
    if longer than one byte, coinbaseaux pushed if non-empty, then ``0x14`` (a
    push of the 20 bytes that follow), u32 LE ``unique_id``, u32 LE
    ``nonce_id``.  ``ValueError`` if the full scriptSig (with 12 extranonce
    bytes) would exceed 100 bytes.
    """
    try:
        ids = b"\x14" + _U32.pack(unique_id) + _U32.pack(nonce_id)
    except struct.error as e:
        raise ValueError(f"unique_id and nonce_id must be 32-bit unsigned: {e}") from None
    return _checked(_prefix_head(height, tag, coinbaseaux) + ids, MINER_EXTRANONCE_SIZE)


def agent_script_sig_prefix(height, tag, coinbaseaux, job_id, agent_id, nonce_id):
    """
    The seed-compatible mineragent scriptSig prefix: the same head, then
    ``0x12`` ‖ u16 LE ``job_id`` ‖ u32 LE ``agent_id`` ‖ u32 LE ``nonce_id``.
    The ``0x12`` byte is kept as the seed writes it, because C mineragents
    build the same bytes and the coinbases must match.
    """
    try:
        ids = b"\x12" + _U16.pack(job_id) + _U32.pack(agent_id) + _U32.pack(nonce_id)
    except struct.error as e:
        raise ValueError(
            f"job_id (16 bits), agent_id and nonce_id (32 bits) out of range: {e}"
        ) from None
    return _checked(_prefix_head(height, tag, coinbaseaux) + ids, MINER_EXTRANONCE_SIZE)


def tag_budget(height, coinbaseaux, agent):
    """
    The longest tag that keeps the whole scriptSig (height, tag push, aux
    push, ids, extranonce) within 100 bytes; 0 if not even an empty tag fits.
    """
    fixed = len(bip34_height_push(height)) + (_AGENT_TAIL if agent else _MINER_TAIL)
    if coinbaseaux:
        fixed += len(push_data(coinbaseaux))
    room = MAX_SCRIPT_SIG - fixed
    if room <= 1:
        # A one-byte tag is not pushed at all, so it costs nothing.
        return 1 if room >= 0 else 0
    if room - 1 <= 75:
        return room - 1
    return room - 2


def real_coinbase1(coinbase1, script_sig_prefix, extranonce_size=MINER_EXTRANONCE_SIZE):
    """
    ``coinbase1`` ‖ CompactSize(scriptSig length including the extranonce) ‖
    prefix; the miner appends extranonce1, extranonce2 and coinbase2.
    """
    return coinbase1 + compact_size(len(script_sig_prefix) + extranonce_size) + script_sig_prefix


def add_coinbase_witness(coinbase_legacy):
    """
    The segwit serialisation of a legacy-serialised coinbase: marker and
    flag, and the single witness item of 32 zero bytes (the witness reserved
    value the BIP141 commitment was computed with).  Blocks relayed raw need
    it when they carry a witness commitment (ref §12.8).
    """
    tx, end = Transaction.parse(coinbase_legacy)
    if end != len(coinbase_legacy):
        raise ValueError("trailing bytes after the coinbase transaction")
    if len(tx.inputs) != 1 or tx.has_witness():
        raise ValueError("expected a legacy-serialised coinbase with exactly one input")
    return attrs.evolve(tx, witnesses=[[bytes(32)]]).serialize(with_witness=True)
