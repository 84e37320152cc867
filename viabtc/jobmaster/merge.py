# -*- test-case-name: tests.jobmaster.test_merge -*-
"""
What merged mining adds to a job, pure: the aux blocks the pool works on,
their slots and branches in the aux merkle tree, the commitment the coinbase
carries, the RSK and VCASH outputs, the ``auxes`` targets gateways compare
shares with (ref §3.6, §3.7), and, when a gateway reports a share meeting an
aux target, what to submit: the checked ``AuxPow`` for a Namecoin-style
chain, the partial merkle proof for RSK, the branch for VCASH.

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
    hex32,
)
from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.target import MAX_TARGET, bits_to_target
from viabtc.bitcoin.transaction import TxOut
from viabtc.stratum.job import Aux

#: The RSK output's script: OP_RETURN, a 41-byte push of the tag and the hash (ref §3.4).
RSK_TAG = b"RSKBLOCK:"
#: The VCASH output's script: OP_RETURN, a 36-byte push of this magic and the hash.
VCASH_MAGIC = bytes.fromhex("b9e11b6d")


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


def _hex32(value, what):
    """32 bytes from hex text with or without ``0x``; ``ValueError`` naming ``what``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is missing")
    return hex32(value[2:] if value[:2].lower() == "0x" else value, what)


@attrs.frozen
class RskWork:
    """
    RSK's work from ``mnr_getWork``: ``block_hash`` is
    ``blockHashForMergedMining`` as given (it goes into the coinbase as it
    is), ``target`` its big-endian target, ``height`` the RSK height being
    mined (the seed's ``mine_height``, shown as the aux hash).
    """

    name: str
    block_hash: bytes
    target: int
    height: int

    @classmethod
    def from_reply(cls, name, reply, height):
        if not isinstance(reply, dict):
            raise ValueError("the mnr_getWork reply is not an object")
        block_hash = _hex32(reply.get("blockHashForMergedMining"), "blockHashForMergedMining")
        target = reply.get("target")
        if not isinstance(target, str):
            raise ValueError("target is missing")
        try:
            target = int(target, 16)
        except ValueError:
            raise ValueError("target is not hex") from None
        if not 0 < target <= MAX_TARGET:
            raise ValueError("target is out of range")
        return cls(name, block_hash, target, height)

    def output(self):
        return TxOut(0, b"\x6a\x29" + RSK_TAG + self.block_hash)

    def aux(self):
        return Aux(self.name, format(self.height, "x"), format(self.target, "064x"))


@attrs.frozen
class VcashWork:
    """VCASH's work from ``/v1/pool/getauxblock``: its header hash, height and target."""

    name: str
    block_hash: bytes
    height: int
    target: int

    @classmethod
    def from_reply(cls, name, reply):
        if not isinstance(reply, dict):
            raise ValueError("the getauxblock reply is not an object")
        block_hash = _hex32(reply.get("cur_hash"), "cur_hash")
        height, bits = reply.get("height"), reply.get("bits")
        for key, value in (("height", height), ("bits", bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} is not a number")
        target = bits_to_target(bits)
        if target <= 0:
            raise ValueError("bits give a zero target")
        return cls(name, block_hash, height, target)

    @property
    def display_hash(self):
        return self.block_hash.hex()

    def output(self):
        return TxOut(0, b"\x6a\x24" + VCASH_MAGIC + self.block_hash)

    def aux(self):
        return Aux(self.name, self.display_hash, format(self.target, "064x"))


def rsk_submission(work, found, context):
    """
    The ``mnr_submitBitcoinBlockPartialMerkle`` params for a share meeting
    RSK's target: the work hash, the header, the coinbase, the coinbase's
    txid and its branch (internal-order hex, space separated) and the
    block's transaction count in hex, the coinbase included (rskj builds the
    partial merkle tree from it; the seed left the coinbase out, ref §12.14).
    """
    hashes = [sha256d(found.coinbase)] + list(context.branch)
    return (work.block_hash.hex(), found.header.hex(), found.coinbase.hex(),
            " ".join(h.hex() for h in hashes), format(1 + len(context.transactions), "x"))


def vcash_submission(work, found, context):
    """The ``/v1/pool/submitauxblock`` body: the branch hashes each in display order."""
    return {
        "header_hash": work.display_hash,
        "btc_header": found.header.hex(),
        "btc_coinbase": found.coinbase.hex(),
        "btc_merkle_branch": "".join(hash_to_display_hex(h) for h in context.branch),
    }


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
    #: the aux tree's root and the coinbase commitment (empty without Namecoin-style chains)
    root: bytes
    commitment: bytes
    rsk: RskWork | None = None
    vcash: VcashWork | None = None

    def auxes(self, committed=True):
        """The job's ``auxes``; the tree's chains only when the coinbase carries ``commitment``."""
        out = [entry.block.aux() for entry in self.entries] if committed else []
        out.extend(work.aux() for work in (self.rsk, self.vcash) if work is not None)
        return tuple(out)

    def outputs(self, empty=False):
        """The zero-value coinbase outputs: RSK's, then VCASH's (not in empty-block jobs)."""
        works = (self.rsk,) if empty else (self.rsk, self.vcash)
        return [work.output() for work in works if work is not None]

    def entry(self, name):
        for entry in self.entries:
            if entry.block.name == name:
                return entry
        return None

    def hashes(self):
        """What identifies the work: each chain's name and block hash."""
        out = [(e.block.name, e.block.block_hash) for e in self.entries]
        out.extend((w.name, w.block_hash) for w in (self.rsk, self.vcash) if w is not None)
        return tuple(out)


def merge(blocks, size, nonce, rsk=None, vcash=None):
    """
    The ``MergedWork`` over ``blocks`` (``AuxBlock``s, in config order) and
    the RSK and VCASH work, and the blocks left out because their slot is
    taken by an earlier chain (the tree can commit to one block per slot).
    ``(None, left_out)`` when there is nothing to mine.
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
        if rsk is None and vcash is None:
            return None, tuple(left_out)
        return MergedWork((), size, nonce, b"", b"", rsk, vcash), tuple(left_out)
    leaves = aux_leaves({slot: block.block_hash for block, slot in kept}, size)
    root = aux_merkle_root(leaves)
    entries = tuple(MergedEntry(block, slot, aux_merkle_branch(leaves, slot)) for block, slot in kept)
    work = MergedWork(entries, size, nonce, root, commitment(root, size, nonce), rsk, vcash)
    return work, tuple(left_out)


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
    parts = [f"{e.block.name}@{e.slot}:{hash_to_display_hex(e.block.block_hash)[:16]}"
             for e in work.entries]
    parts.extend(f"{w.name}:{w.block_hash.hex()[:16]}" for w in (work.rsk, work.vcash)
                 if w is not None)
    return ", ".join(parts)
