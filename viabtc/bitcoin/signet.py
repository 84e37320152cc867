# -*- test-case-name: tests.bitcoin.test_signet -*-
"""
What a signet block carries beyond a testnet block (BIP325), pure.

A signet (Bitcoin Core's ``-signet``, custom ones with
``-signetchallenge=<script hex>``) accepts a block only when its coinbase
proves the block was authorised: the witness commitment output (which a
signet block must have, even with no other transaction) carries, after the
commitment, a push of ``SIGNET_HEADER`` followed by a *solution* (a
scriptSig and a witness stack) that satisfies the *challenge* script.

A pool can only supply a solution it can make.  For the challenge ``51``
(``OP_TRUE``) the empty solution does; any challenge that needs a
signature needs the signer's key, which a pool does not have, so those
signets cannot be mined through it (``challenge_needs_signer``; the
jobmaster refuses with that reason).  The solution is not covered by the
block's proof of work (BIP325 signs a modified block), so adding the empty
one changes nothing a miner hashes beyond these bytes of coinbase2.
"""

from viabtc.bitcoin.serialize import (
    OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4, DecodeError, compact_size, push_data,
    read_compact_size,
)
from viabtc.bitcoin.transaction import WITNESS_COMMITMENT_HEADER

#: The four bytes that mark the signet solution's push (BIP325).
SIGNET_HEADER = bytes.fromhex("ecc7daa2")

#: ``OP_TRUE``: the challenge anyone can satisfy, with the empty solution.
OP_TRUE_CHALLENGE = b"\x51"

#: The BIP141 commitment output's script is 38 bytes before any extra push.
_COMMITMENT_SIZE = 38


class SignetError(ValueError):
    """A signet block that fails our check, or a challenge we cannot satisfy."""


def challenge_needs_signer(challenge):
    """
    True unless ``challenge`` (the script bytes) is satisfied by the empty
    solution, which we only know of ``OP_TRUE``.
    """
    return challenge != OP_TRUE_CHALLENGE


def serialize_solution(script_sig=b"", witness=()):
    """The solution bytes: the scriptSig and the witness stack, each length-prefixed."""
    parts = [compact_size(len(script_sig)), script_sig, compact_size(len(witness))]
    for item in witness:
        parts += [compact_size(len(item)), item]
    return b"".join(parts)


#: The solution for an ``OP_TRUE`` challenge: empty scriptSig, empty witness.
EMPTY_SOLUTION = serialize_solution()


def with_solution(commitment_script, solution=EMPTY_SOLUTION):
    """``commitment_script`` (a BIP141 commitment) with the signet solution pushed after it."""
    if len(commitment_script) < _COMMITMENT_SIZE:
        raise ValueError("not a witness commitment script")
    return commitment_script + push_data(SIGNET_HEADER + solution)


def _pushes(script):
    """The data of every push in ``script`` (``DecodeError`` if one is truncated)."""
    offset = 0
    while offset < len(script):
        op = script[offset]
        offset += 1
        if 1 <= op <= 75:
            size = op
        elif op in (OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4):
            width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[op]
            if offset + width > len(script):
                raise DecodeError("truncated push length")
            size = int.from_bytes(script[offset:offset + width], "little")
            offset += width
        else:
            continue
        if offset + size > len(script):
            raise DecodeError("truncated push")
        yield script[offset:offset + size]
        offset += size


def find_solution(commitment_script):
    """
    ``(script_sig, witness)`` of the signet solution in a commitment
    script, or None when it carries none; ``SignetError`` when malformed.
    """
    try:
        for data in _pushes(commitment_script):
            if len(data) > len(SIGNET_HEADER) and data.startswith(SIGNET_HEADER):
                return _parse_solution(data[len(SIGNET_HEADER):])
    except DecodeError as e:
        raise SignetError(f"signet solution does not parse: {e}") from None
    return None


def _parse_solution(raw):
    size, offset = read_compact_size(raw, 0)
    script_sig = raw[offset:offset + size]
    if len(script_sig) != size:
        raise DecodeError("truncated scriptSig")
    offset += size
    count, offset = read_compact_size(raw, offset)
    witness = []
    for _ in range(count):
        size, offset = read_compact_size(raw, offset)
        item = raw[offset:offset + size]
        if len(item) != size:
            raise DecodeError("truncated witness item")
        witness.append(item)
        offset += size
    if offset != len(raw):
        raise DecodeError(f"{len(raw) - offset} bytes after the solution")
    return script_sig, tuple(witness)


def commitment_output_script(block):
    """The script of the coinbase's witness commitment output (the last one), or None."""
    for out in reversed(block.transactions[0].outputs):
        if len(out.script) >= _COMMITMENT_SIZE and out.script.startswith(WITNESS_COMMITMENT_HEADER):
            return out.script
    return None


def check_signet_block(block, challenge):
    """
    ``SignetError`` unless ``block`` (a parsed ``Block``) is one a signet
    with ``challenge`` accepts as far as we can tell: it has a valid witness
    commitment, and its solution (or its lack of one) satisfies the
    challenge.  Only ``OP_TRUE`` can be judged here: any other challenge is
    refused as needing its signer.
    """
    if challenge_needs_signer(challenge):
        raise SignetError(f"the signet challenge {challenge.hex()} needs its signer's signature")
    script = commitment_output_script(block)
    if script is None:
        raise SignetError("a signet block needs a witness commitment in its coinbase")
    if not block.check_witness_commitment():
        raise SignetError("the witness commitment does not match the block")
    solution = find_solution(script)
    if solution is not None and solution != (b"", ()):
        raise SignetError("an OP_TRUE challenge takes the empty solution")
