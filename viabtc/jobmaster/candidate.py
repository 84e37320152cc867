# -*- test-case-name: tests.jobmaster.test_jobs -*-
"""
Turning a gateway's found-block report into block bytes worth submitting, pure.

A gateway reports a share that meets the block target with its header and
coinbase (cmd 2, ref §3.8).  Before the jobmaster spends its nodes' time and
its reputation with peers on it, every claim is checked against the job it
names: the header hashes to the reported hash and meets the job's target,
builds on the job's previous block with the job's bits, and commits (through
the job's merkle branch) to a coinbase that is the job's own coinbase halves
around a valid scriptSig with the right BIP34 height.  On a signet the
whole block is also parsed and checked as the signet will (witness
commitment, solution for the challenge: ``viabtc.bitcoin.signet``), since
nothing else in the pool has seen its commitment output.  A candidate failing
any check is a bug or an attack, never a block: ``BadCandidate`` says which
check failed.
"""

import attrs

from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.coinbase import MAX_SCRIPT_SIG, MIN_SCRIPT_SIG, add_coinbase_witness
from viabtc.bitcoin.hashing import hash_to_display_hex, hash_to_int, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root_from_branch
from viabtc.bitcoin.serialize import DecodeError, compact_size, read_bip34_height
from viabtc.bitcoin.signet import SignetError, check_signet_block
from viabtc.bitcoin.transaction import Transaction


class BadCandidate(ValueError):
    """A found block that fails a check; the text says which."""


@attrs.frozen
class Candidate:
    """
    A checked block: its hash (internal order), height and job, and its
    bytes in two pieces: ``head`` (header, transaction count, coinbase) and
    the job's other ``transactions``, serialised once per job, as binary
    and as lowercase hex (ASCII bytes).  Kept apart so that submitting it
    copies no megabytes (each fresh megabyte-sized join costs ~0.3 ms of
    page faults here): ``hex_parts`` go into the ``submitblock`` body and
    the found-block file as they are, and ``block`` joins the binary only
    when it is asked for.
    """

    head: bytes = attrs.field(repr=False)
    transactions: bytes = attrs.field(repr=False)
    transactions_hex: bytes = attrs.field(repr=False, eq=False)
    block_hash: bytes
    height: int
    job_id: str

    @property
    def block(self):
        """The whole block, serialised."""
        return self.head + self.transactions

    @property
    def hex_parts(self):
        """Lowercase hex bytes whose concatenation is ``block``'s hex, header first."""
        return (self.head.hex().encode(), self.transactions_hex)

    @property
    def display_hash(self):
        return hash_to_display_hex(self.block_hash)

    @property
    def block_hex(self):
        """``block`` as lowercase hex bytes."""
        return b"".join(self.hex_parts)


def check_candidate(found, context, target=None):
    """
    The ``Candidate`` for ``found`` (a ``FoundBlock``) made with the job of
    ``context`` (its ``JobContext``); ``BadCandidate`` if any check fails.
    ``target`` replaces the job's block target (an aux chain's, for a
    parent block that proves aux work only).
    """
    header = BlockHeader.parse(found.header)
    block_hash = sha256d(found.header)
    if block_hash != found.block_hash:
        raise BadCandidate(
            f"header hashes to {hash_to_display_hex(block_hash)}, "
            f"not the reported {hash_to_display_hex(found.block_hash)}"
        )
    if hash_to_int(block_hash) > (context.target if target is None else target):
        raise BadCandidate("header hash does not meet the job's target")
    if header.prev_hash != context.prevhash:
        raise BadCandidate("header builds on another block than the job's")
    if header.bits != context.nbits:
        raise BadCandidate(f"header bits {header.bits:08x} are not the job's {context.nbits:08x}")
    coinbase = found.coinbase
    if not (coinbase.startswith(context.coinbase1) and coinbase.endswith(context.coinbase2)):
        raise BadCandidate("coinbase is not built from the job's coinbase halves")
    try:
        tx, end = Transaction.parse(coinbase)
    except DecodeError as e:
        raise BadCandidate(f"coinbase does not parse: {e}") from None
    if end != len(coinbase) or tx.has_witness() or len(tx.inputs) != 1:
        raise BadCandidate("coinbase is not one legacy-serialised transaction with one input")
    script_sig = tx.inputs[0].script_sig
    if not MIN_SCRIPT_SIG <= len(script_sig) <= MAX_SCRIPT_SIG:
        raise BadCandidate(f"coinbase scriptSig is {len(script_sig)} bytes")
    try:
        height = read_bip34_height(script_sig)
    except DecodeError as e:
        raise BadCandidate(f"coinbase has no BIP34 height: {e}") from None
    if height != context.height:
        raise BadCandidate(f"coinbase commits to height {height}, the job is for {context.height}")
    if merkle_root_from_branch(sha256d(coinbase), context.branch) != header.merkle_root:
        raise BadCandidate("header merkle root does not match the coinbase and the job's branch")
    # assemble_block's layout, joined to the job's pre-serialised transactions.
    if context.segwit:
        coinbase = add_coinbase_witness(coinbase)
    head = b"".join((found.header, compact_size(1 + len(context.transactions)), coinbase))
    if context.signet_challenge is not None:
        try:
            check_signet_block(parse_block(head + context.transactions_bytes),
                               context.signet_challenge)
        except (SignetError, DecodeError) as e:
            raise BadCandidate(f"not a valid signet block: {e}") from None
    return Candidate(head, context.transactions_bytes, context.transactions_hex, block_hash,
                     context.height, context.job_id)
