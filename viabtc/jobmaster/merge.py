# -*- test-case-name: tests.jobmaster.test_merge -*-
"""
What merged mining adds to a job, pure: the aux blocks the pool works on,
their slots and branches in the aux merkle tree, the commitment the coinbase
carries, the ``auxes`` targets gateways compare shares with (ref §3.6,
§3.7), and, when a gateway reports a share meeting an aux target, the
checked ``AuxPow`` for that chain.

A job keeps the ``MergedWork`` it was built with, so a share reported for an
older job is proved against the aux blocks and tree that job committed to.
"""

import attrs

from viabtc.bitcoin.auxpow import (
    assign_slots,
    aux_hash_from_display,
    aux_leaves,
    aux_merkle_branch,
    aux_merkle_root,
    aux_target,
    build_auxpow,
    check_auxpow,
    commitment,
    expected_index,
)
from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.stratum.job import Aux


@attrs.frozen
class AuxBlock:
    """
    One aux chain's block to mine on, from its daemon's ``getauxblock`` or
    ``createauxblock`` reply: ``block_hash`` is internal order,
    ``display_hash`` as the daemon wrote it (and wants it back).
    """

    name: str
    display_hash: str
    block_hash: bytes
    chain_id: int
    target: int
    height: int | None = None

    @classmethod
    def from_reply(cls, name, reply):
        """``ValueError`` naming what is wrong with the daemon's reply."""
        if not isinstance(reply, dict):
            raise ValueError("the aux block reply is not an object")
        text = reply.get("hash")
        block_hash = aux_hash_from_display(text)
        chain_id = reply.get("chainid")
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or not 0 <= chain_id < 2**31:
            raise ValueError("the aux block reply has no usable chainid")
        height = reply.get("height")
        if not isinstance(height, int) or isinstance(height, bool):
            height = None
        return cls(name, text.lower(), block_hash, chain_id, aux_target(reply), height)

    def aux(self):
        """The job's ``auxes`` entry: the target as display-order hex."""
        return Aux(self.name, self.display_hash, format(self.target, "064x"))


@attrs.frozen
class MergedEntry:
    """One aux block in a tree: its slot and its branch to the root."""

    block: AuxBlock
    slot: int
    branch: tuple


@attrs.frozen
class MergedWork:
    """The aux blocks one job commits to, and the coinbase bytes committing to them."""

    entries: tuple
    size: int
    nonce: int
    root: bytes
    commitment: bytes

    def auxes(self):
        return tuple(entry.block.aux() for entry in self.entries)

    def entry(self, name):
        for entry in self.entries:
            if entry.block.name == name:
                return entry
        return None

    def hashes(self):
        """What identifies the work: each chain's name and block hash."""
        return tuple((e.block.name, e.block.block_hash) for e in self.entries)


def merge(blocks, size, nonce):
    """
    The ``MergedWork`` over ``blocks`` (``AuxBlock``s, in config order), and
    the blocks left out because their slot is taken by an earlier chain (the
    tree can commit to one block per slot).  ``(None, left_out)`` when no
    block is left to mine.
    """
    kept = []
    taken = set()
    left_out = []
    for block in blocks:
        slot = expected_index(nonce, block.chain_id, size)
        if slot in taken:
            left_out.append(block)
            continue
        taken.add(slot)
        kept.append((block, slot))
    if not kept:
        return None, tuple(left_out)
    leaves = aux_leaves({slot: block.block_hash for block, slot in kept}, size)
    root = aux_merkle_root(leaves)
    entries = tuple(MergedEntry(block, slot, aux_merkle_branch(leaves, slot)) for block, slot in kept)
    return MergedWork(entries, size, nonce, root, commitment(root, size, nonce)), tuple(left_out)


def check_chain_ids(chain_ids, size, nonce):
    """``SlotCollision`` if two configured chain ids share a slot (start-up check)."""
    return assign_slots(chain_ids, size, nonce)


def aux_proof(found, context, entry):
    """
    The ``AuxPow`` of a gateway's found aux share (``found``, a
    ``FoundBlock``) for ``entry`` of ``context``'s merged work, checked as
    the aux chain will check it.  ``ValueError`` (``AuxPowError``) if it
    would be refused.  ``found`` must already have passed the candidate
    checks against the aux target.
    """
    auxpow = build_auxpow(found.coinbase, found.header, context.branch, entry.branch, entry.slot)
    check_auxpow(auxpow, entry.block.block_hash, entry.block.chain_id, entry.block.target)
    return auxpow


def describe(work):
    """A short text of the chains in ``work``, for logs."""
    if work is None:
        return "none"
    return ", ".join(f"{e.block.name}@{e.slot}:{hash_to_display_hex(e.block.block_hash)[:16]}"
                     for e in work.entries)
