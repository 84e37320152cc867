# -*- test-case-name: tests.bitpeer.test_chain -*-
"""
Which block headers bitpeer believes, pure.

A height hint makes the whole pool mine empty blocks on the hinted block,
so a header is believed only when it

- links to a block we know (the node's tip or a header believed before):
  an unknown parent says nothing about the height, and is never hinted;
- carries proof of work for its own ``nBits``, compared as integers
  (the seed compared a floating-point difficulty with the network's,
  ref §12.15): ``hash <= target(nBits) <= pow_limit``;
- has ``nBits`` its parent allows: the parent's own bits except at a
  retarget boundary (then within the factor of 4 consensus allows), so
  nobody can hint a block made at a trivial difficulty; networks with
  minimum-difficulty blocks (testnet, regtest) accept any bits up to the
  limit, as their rules do;
- is not more than two hours ahead of our clock (Core's rule).

Heights come from the parent (+1), never from the block's own claim.
The node's tip is the anchor (``anchor``): bitpeer trusts its own node.
"""

import attrs

from viabtc.bitcoin.hashing import hash_to_int
from viabtc.bitcoin.target import bits_to_target

#: Core's ``MAX_FUTURE_BLOCK_TIME``.
MAX_FUTURE_BLOCK_TIME = 2 * 60 * 60

#: Headers this far below the best are forgotten.
KEEP_DEPTH = 144

#: Hashes in a ``getheaders`` locator built from what we keep.
LOCATOR_SIZE = 10


class BadHeader(ValueError):
    """A header that is not believed; says why."""


class UnknownParent(BadHeader):
    """A header whose parent we do not know (not a fault of the sender)."""


@attrs.frozen
class Entry:
    """A believed block: its hash (internal order), height and header."""

    hash: bytes
    height: int
    header: object


def check_proof_of_work(network, header, block_hash):
    """``BadHeader`` unless ``block_hash`` meets ``header.bits`` within the network's limit."""
    try:
        target = bits_to_target(header.bits)
    except ValueError as e:
        raise BadHeader(str(e)) from None
    if not 0 < target <= network.pow_limit:
        raise BadHeader(f"nBits {header.bits:#010x} is outside the network's proof-of-work limit")
    if hash_to_int(block_hash) > target:
        raise BadHeader(f"hash does not meet its own nBits {header.bits:#010x}")


def check_bits(network, header, parent, height):
    """``BadHeader`` unless ``parent`` (an ``Entry``) allows ``header.bits`` at ``height``."""
    if network.pow_allow_min_difficulty_blocks:
        return
    if height % network.retarget_interval != 0:
        if header.bits != parent.header.bits:
            raise BadHeader(f"nBits {header.bits:#010x} changes from {parent.header.bits:#010x} "
                            f"outside a retarget boundary")
        return
    old, new = bits_to_target(parent.header.bits), bits_to_target(header.bits)
    if not old // 4 <= new <= old * 4:
        raise BadHeader(f"nBits {header.bits:#010x} retargets by more than a factor of 4")


class HeaderChain:
    """
    The believed headers near the tip.  ``best`` is the highest (first
    seen wins a tie), None until the first anchor.
    """

    def __init__(self, network, keep=KEEP_DEPTH):
        self.network = network
        self.keep = keep
        self.entries = {}
        self.best = None

    def __contains__(self, block_hash):
        return block_hash in self.entries

    def get(self, block_hash):
        return self.entries.get(block_hash)

    def anchor(self, header, height):
        """
        Believe ``header`` at ``height`` because our node says so (its tip);
        returns its ``Entry``.
        """
        entry = Entry(header.hash(), height, header)
        self.entries[entry.hash] = entry
        if self.best is None or height > self.best.height:
            self._set_best(entry)
        return entry

    def connect(self, header, now, block_hash=None):
        """
        ``(entry, new)`` for a header from the network: ``new`` is False
        when it was already believed.  ``UnknownParent`` or ``BadHeader``
        otherwise.
        """
        block_hash = header.hash() if block_hash is None else block_hash
        known = self.entries.get(block_hash)
        if known is not None:
            return known, False
        parent = self.entries.get(header.prev_hash)
        if parent is None:
            raise UnknownParent("parent block is not known")
        check_proof_of_work(self.network, header, block_hash)
        height = parent.height + 1
        check_bits(self.network, header, parent, height)
        if header.time > now + MAX_FUTURE_BLOCK_TIME:
            raise BadHeader(f"time {header.time} is more than 2 hours ahead")
        entry = Entry(block_hash, height, header)
        self.entries[block_hash] = entry
        if height > self.best.height:
            self._set_best(entry)
        return entry, True

    def locator(self):
        """Hashes from the best block back, for ``getheaders`` (newest first)."""
        hashes = []
        entry = self.best
        while entry is not None and len(hashes) < LOCATOR_SIZE:
            hashes.append(entry.hash)
            entry = self.entries.get(entry.header.prev_hash)
        return hashes

    def _set_best(self, entry):
        self.best = entry
        floor = entry.height - self.keep
        if any(e.height < floor for e in self.entries.values()):
            self.entries = {h: e for h, e in self.entries.items() if e.height >= floor}
