# -*- test-case-name: tests.bitcoin.test_auxpow -*-
"""
Merged mining (AuxPoW), pure: the aux merkle tree, the coinbase commitment,
the AuxPoW a Namecoin-style chain accepts, and a verifier doing what
Namecoin Core's ``CAuxPow::check`` does.

A pool mines several aux chains with the work of one parent (Bitcoin)
block.  Each aux chain gets a slot in a tree of ``size`` leaves (a power of
two): the slot follows from the tree's nonce and the chain's id by the
formula every AuxPoW chain checks (ref §3.7, Namecoin's
``getExpectedIndex``), so a chain cannot be committed twice in one tree.
The parent coinbase's scriptSig carries ``fa be 6d 6d`` ‖ the tree's root
(byte-reversed) ‖ u32 LE size ‖ u32 LE nonce.  When a parent header's hash
meets an aux chain's target, that chain gets an ``AuxPow``: the parent
coinbase, its merkle branch in the parent block, the chain's branch in the
aux tree and the parent header.

All hashes are internal byte order unless a name says ``display``.
"""

import struct

import attrs

from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_int, sha256d
from viabtc.bitcoin.header import HEADER_SIZE, BlockHeader
from viabtc.bitcoin.serialize import DecodeError, compact_size, read_compact_size
from viabtc.bitcoin.target import MAX_TARGET, bits_to_target
from viabtc.bitcoin.transaction import Transaction

#: The merged-mining marker that precedes the aux tree's root in the coinbase.
MERGED_MINING_HEADER = b"\xfa\xbe\x6d\x6d"

#: marker ‖ root ‖ size ‖ nonce
COMMITMENT_SIZE = len(MERGED_MINING_HEADER) + 32 + 4 + 4

#: Namecoin Core refuses longer chain branches, so trees have at most 2**30 leaves.
MAX_CHAIN_BRANCH = 30

#: Without the marker, Namecoin Core wants the root within the scriptSig's first 20 bytes.
LEGACY_ROOT_OFFSET = 20

_U32 = struct.Struct("<I")
_MASK32 = 0xFFFFFFFF
_LCG_A = 1103515245
_LCG_C = 12345


class AuxPowError(ValueError):
    """An AuxPoW an aux chain would refuse; the text says which check failed."""


class SlotCollision(ValueError):
    """Two aux chains fall into the same slot of the aux merkle tree."""


def check_tree_size(size):
    """``ValueError`` unless ``size`` is a power of two with a branch of at most 30."""
    if not isinstance(size, int) or size < 1 or size & (size - 1):
        raise ValueError(f"aux merkle size must be a power of two, got {size!r}")
    if size.bit_length() - 1 > MAX_CHAIN_BRANCH:
        raise ValueError(f"aux merkle size {size} needs a branch longer than {MAX_CHAIN_BRANCH}")
    return size


def expected_index(nonce, chain_id, size):
    """
    The slot of chain ``chain_id`` in a tree of ``size`` leaves with ``nonce``:
    ``rand = nonce*1103515245+12345; rand += chain_id;
    rand = rand*1103515245+12345; rand % size``, all in 32-bit unsigned
    arithmetic (the seed's ``cal_merkle_index``, Namecoin's
    ``getExpectedIndex`` with ``size == 1 << h``).
    """
    check_tree_size(size)
    rand = (nonce & _MASK32) * _LCG_A + _LCG_C & _MASK32
    rand = rand + chain_id & _MASK32
    rand = rand * _LCG_A + _LCG_C & _MASK32
    return rand % size


def assign_slots(chain_ids, size, nonce):
    """
    The slot of each chain id in order; ``SlotCollision`` naming both chains
    when two share a slot (a tree can commit to only one of them).
    """
    taken = {}
    slots = []
    for chain_id in chain_ids:
        slot = expected_index(nonce, chain_id, size)
        if slot in taken:
            raise SlotCollision(
                f"chain ids {taken[slot]} and {chain_id} both take slot {slot} of a tree of "
                f"{size} with nonce {nonce}"
            )
        taken[slot] = chain_id
        slots.append(slot)
    return tuple(slots)


def _tree_levels(leaves):
    """Every level of a full binary tree, leaves first (their count a power of two)."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        levels.append([sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)])
    return levels


def aux_leaves(hashes_by_slot, size):
    """The ``size`` leaves: each slot's aux block hash (internal order), else 32 zero bytes."""
    check_tree_size(size)
    leaves = [bytes(32)] * size
    for slot, block_hash in hashes_by_slot.items():
        if len(block_hash) != 32:
            raise ValueError("aux block hashes must be 32 bytes")
        leaves[slot] = block_hash
    return leaves


def aux_merkle_root(leaves):
    """The root of the aux tree over ``leaves`` (a power-of-two count, internal order)."""
    check_tree_size(len(leaves))
    return _tree_levels(leaves)[-1][0]


def aux_merkle_branch(leaves, index):
    """The siblings from leaf ``index`` up to the root (Namecoin's ``vChainMerkleBranch``)."""
    check_tree_size(len(leaves))
    branch = []
    for level in _tree_levels(leaves)[:-1]:
        branch.append(level[index ^ 1])
        index >>= 1
    return tuple(branch)


def check_merkle_branch(leaf, branch, index):
    """Fold ``leaf`` up ``branch``: the bits of ``index`` say on which side it is."""
    h = leaf
    for sibling in branch:
        h = sha256d(sibling + h) if index & 1 else sha256d(h + sibling)
        index >>= 1
    return h


def commitment(root, size, nonce):
    """The 44 bytes put in the parent coinbase: marker, reversed root, size, nonce."""
    check_tree_size(size)
    return MERGED_MINING_HEADER + root[::-1] + _U32.pack(size) + _U32.pack(nonce & _MASK32)


def hex32(text, what):
    """32 bytes from the hex ``text`` of an aux daemon's reply; ``ValueError`` naming ``what``."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} is not hex") from None
    if len(raw) != 32:
        raise ValueError(f"{what} is not 32 bytes")
    return raw


def aux_target(reply):
    """
    An aux chain's target (an integer) from a ``getauxblock`` /
    ``createauxblock`` reply: ``_target`` or ``target`` (little-endian hex
    of 32 bytes), else ``bits`` (compact, as hex text or a number).
    ``ValueError`` when none is usable.
    """
    for key in ("_target", "target"):
        text = reply.get(key)
        if isinstance(text, str) and text:
            target = int.from_bytes(hex32(text, key), "little")
            break
    else:
        bits = reply.get("bits")
        if isinstance(bits, str):
            try:
                bits = int(bits, 16)
            except ValueError:
                raise ValueError("bits is not hex") from None
        if not isinstance(bits, int) or isinstance(bits, bool):
            raise ValueError("the reply has neither target, _target nor bits")
        target = bits_to_target(bits)
    if not 0 < target <= MAX_TARGET:
        raise ValueError("the aux target is zero")
    return target


def _hashes(branch):
    return compact_size(len(branch)) + b"".join(branch)


def _read_hashes(data, offset):
    n, offset = read_compact_size(data, offset)
    end = offset + 32 * n
    if end > len(data):
        raise DecodeError("merkle branch truncated")
    return tuple(data[i:i + 32] for i in range(offset, end, 32)), end


def _read_u32(data, offset):
    if offset + 4 > len(data):
        raise DecodeError("index truncated")
    return _U32.unpack_from(data, offset)[0], offset + 4


@attrs.frozen
class AuxPow:
    """
    The proof an aux chain accepts in place of its own proof of work
    (Namecoin's ``CAuxPow``), field by field in serialisation order.
    ``coinbase`` is the parent coinbase, legacy-serialised; indexes are
    unsigned 32-bit as serialised (Namecoin reads them as signed ints).
    """

    coinbase: bytes
    parent_hash: bytes
    coinbase_branch: tuple = attrs.field(converter=tuple)
    coinbase_index: int
    chain_branch: tuple = attrs.field(converter=tuple)
    chain_index: int
    parent_header: bytes

    def serialize(self):
        return b"".join((
            self.coinbase,
            self.parent_hash,
            _hashes(self.coinbase_branch),
            _U32.pack(self.coinbase_index),
            _hashes(self.chain_branch),
            _U32.pack(self.chain_index),
            self.parent_header,
        ))

    def hex(self):
        return self.serialize().hex()

    @classmethod
    def parse(cls, data, offset=0):
        """``(AuxPow, end offset)``; ``DecodeError`` on truncated or malformed bytes."""
        tx, end = Transaction.parse(data, offset)
        if tx.has_witness():
            raise DecodeError("an AuxPoW coinbase is legacy-serialised")
        coinbase = bytes(data[offset:end])
        if end + 32 > len(data):
            raise DecodeError("parent hash truncated")
        parent_hash = bytes(data[end:end + 32])
        coinbase_branch, end = _read_hashes(data, end + 32)
        coinbase_index, end = _read_u32(data, end)
        chain_branch, end = _read_hashes(data, end)
        chain_index, end = _read_u32(data, end)
        if end + HEADER_SIZE > len(data):
            raise DecodeError("parent header truncated")
        parent_header = bytes(data[end:end + HEADER_SIZE])
        return cls(coinbase, parent_hash, coinbase_branch, coinbase_index, chain_branch,
                   chain_index, parent_header), end + HEADER_SIZE

    @classmethod
    def from_hex(cls, text):
        """Parse exactly one AuxPoW from hex text."""
        data = bytes.fromhex(text)
        auxpow, end = cls.parse(data)
        if end != len(data):
            raise DecodeError(f"{len(data) - end} bytes after the AuxPoW")
        return auxpow


def build_auxpow(coinbase, parent_header, coinbase_branch, chain_branch, chain_index):
    """The ``AuxPow`` for a parent block whose coinbase (index 0) is ``coinbase``."""
    return AuxPow(coinbase, sha256d(parent_header), coinbase_branch, 0, chain_branch,
                  chain_index, parent_header)


def chain_id_of(version):
    """The chain id an AuxPoW chain reads from a header version (its top 16 bits)."""
    return (version & _MASK32) >> 16


def check_auxpow(auxpow, aux_hash, chain_id, target, strict_chain_id=True):
    """
    Raise ``AuxPowError`` unless ``auxpow`` proves work for the aux block
    ``aux_hash`` (internal order) of chain ``chain_id`` at ``target``, as
    Namecoin Core checks it: the parent header's hash meets the target; the
    coinbase is a one-input transaction at index 0 of the parent's merkle
    tree; its scriptSig holds the aux tree's root, once, right after the
    marker (or in its first 20 bytes when there is no marker), followed by
    the tree size matching the branch and the nonce giving this chain's slot;
    and (``strict_chain_id``) the parent is not a block of this chain.
    """
    if len(auxpow.parent_header) != HEADER_SIZE:
        raise AuxPowError("parent header is not 80 bytes")
    parent = BlockHeader.parse(auxpow.parent_header)
    parent_hash = sha256d(auxpow.parent_header)
    if hash_to_int(parent_hash) > target:
        raise AuxPowError("parent block hash does not meet the aux target")
    if auxpow.coinbase_index != 0:
        raise AuxPowError("AuxPoW is not a generate (coinbase index is not 0)")
    if strict_chain_id and chain_id_of(parent.version) == chain_id:
        raise AuxPowError("AuxPoW parent has our chain id")
    if len(auxpow.chain_branch) > MAX_CHAIN_BRANCH:
        raise AuxPowError("AuxPoW chain merkle branch too long")
    try:
        tx, end = Transaction.parse(auxpow.coinbase)
    except DecodeError as e:
        raise AuxPowError(f"parent coinbase does not parse: {e}") from None
    if end != len(auxpow.coinbase) or not tx.inputs:
        raise AuxPowError("parent coinbase is not one transaction")
    root = check_merkle_branch(aux_hash, auxpow.chain_branch, auxpow.chain_index)[::-1]
    coinbase_root = check_merkle_branch(sha256d(auxpow.coinbase), auxpow.coinbase_branch, 0)
    if coinbase_root != parent.merkle_root:
        raise AuxPowError("AuxPoW merkle root incorrect (coinbase not in the parent block)")
    script = tx.inputs[0].script_sig
    at = script.find(root)
    if at < 0:
        raise AuxPowError("AuxPoW missing chain merkle root in parent coinbase")
    head = script.find(MERGED_MINING_HEADER)
    if head >= 0:
        if script.find(MERGED_MINING_HEADER, head + 1) >= 0:
            raise AuxPowError("multiple merged mining headers in coinbase")
        if head + len(MERGED_MINING_HEADER) != at:
            raise AuxPowError("merged mining header is not just before chain merkle root")
    elif at > LEGACY_ROOT_OFFSET:
        raise AuxPowError("AuxPoW chain merkle root must start in the first 20 bytes")
    tail = script[at + 32:at + 40]
    if len(tail) < 8:
        raise AuxPowError("AuxPoW missing chain merkle tree size and nonce in parent coinbase")
    size, nonce = struct.unpack("<II", tail)
    height = len(auxpow.chain_branch)
    if size != 1 << height:
        raise AuxPowError("AuxPoW merkle branch size does not match parent coinbase")
    if auxpow.chain_index != expected_index(nonce, chain_id, size):
        raise AuxPowError("AuxPoW wrong index")


def aux_hash_from_display(text):
    """An aux daemon's block hash (display hex) in internal order; ``ValueError`` if bad."""
    if not isinstance(text, str) or len(text) != 64:
        raise ValueError("an aux block hash is 64 hex digits")
    return hash_from_display_hex(text)
