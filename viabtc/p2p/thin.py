# -*- test-case-name: tests.p2p.test_thin -*-
"""
The seed's thin blocks (ref §6.2), byte for byte, and our compact form.

Blockmasters in different regions relay a block without its transactions,
which the receiving side already has in its mempool cache: the header, the
coinbase, and an 8-byte key per transaction (the first 8 bytes of the
display-order SHA-256d of the transaction as serialized in the block, i.e.
of its wtxid for a segwit transaction).  The bodies are

- cmd 13 (pool block) / cmd 14 (foreign block): display-order block hash
  (32) ‖ header (80) ‖ varstr coinbase ‖ u32 LE count ‖ count × 8-byte key;
- cmd 15 REQUEST: u32 LE count ‖ count × 8-byte key;
- cmd 15 REPLY: u32 LE count ‖ count × varstr transaction.

What the seed got wrong (ref §12.16) and this module does instead: a
reconstruction is checked against the header's merkle root (txids, i.e.
the non-witness serializations) and, when the coinbase commits to them,
against the witness root, before anyone submits it; a key two cached
transactions share, or a key whose transaction made the merkle check fail,
is asked for instead of guessed.

Between our own blockmasters a compact form (BIP152-style salted 48-bit
short ids of the wtxids, ``viabtc.bitcoin.shortid``) replaces the keys; it
is negotiated on each link (``HELLO``), so a C blockmaster never sees it:

- cmd 16 ``HELLO`` PUSH: JSON ``{"compact": 1}``, answered in kind by ours;
- cmd 17 ``COMPACT_BLOCK`` PUSH: u8 kind (13 or 14) ‖ header (80) ‖ u64 LE
  nonce ‖ varstr coinbase ‖ u32 LE count ‖ count × 6-byte short id;
- cmd 18 ``COMPACT_TX`` REQUEST: block hash (32, internal order) ‖ u32 LE
  count ‖ count × u32 LE index (0 = first after the coinbase); REPLY: block
  hash ‖ u32 LE count ‖ count × varstr transaction.

The receiver of a compact block computes the short id of every cached
transaction under that block's keys; ``viabtc.bitcoin.shortid`` does it
in Python (about 65 µs each: seconds for a full mempool), so the same
SipHash-2-4 is taken from ``siphashc`` (C, under 0.1 µs), checked against
``shortid`` in the tests.

Everything here is pure: bytes in, values out.  Every length and count is
checked against the bytes actually present before anything is allocated;
any malformed input raises ``ThinBlockError`` and nothing else.
"""

import json
import struct

import attrs
from siphashc import siphash

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.header import HEADER_SIZE
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.serialize import DecodeError, compact_size, read_compact_size
from viabtc.bitcoin.shortid import short_id_keys
from viabtc.bitcoin.transaction import WITNESS_COMMITMENT_HEADER, Transaction

#: Size of a seed thin-block transaction key (``TX_KEY_SIZE``).
KEY_SIZE = 8
#: Size of a BIP152 short id.
SHORT_ID_SIZE = 6

#: Command ids of our compact mode (the seed's table stops at 15 for these links).
HELLO = 16
COMPACT_BLOCK = 17
COMPACT_TX = 18

#: The seed's thin-block commands: a pool block and a foreign block.
THIN_SUBMIT = 13
THIN_UPDATE = 14

HELLO_BODY = b'{"compact": 1}'

#: The smallest serialized transaction (no inputs or outputs is invalid,
#: but a count is only bounded by the bytes it would need).
_MIN_TX_SIZE = 10

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_KEYS = struct.Struct("<QQ")
_SHORT_ID_MASK = (1 << 48) - 1


def short_id_function(header, nonce):
    """The BIP152 short id of a wtxid (internal order) under the keys of ``header`` and ``nonce``."""
    key = _KEYS.pack(*short_id_keys(header, nonce))
    return lambda wtxid: siphash(key, wtxid) & _SHORT_ID_MASK


class ThinBlockError(ValueError):
    """Bytes that are not a valid thin-block message."""


@attrs.frozen
class CachedTx:
    """
    A transaction as the cache keeps it: its bytes as relayed, its txid
    (merkle root) and wtxid (witness root, short ids), internal order.
    """

    raw: bytes = attrs.field(repr=False)
    txid: bytes
    wtxid: bytes

    @property
    def key(self):
        """The seed's key: 8 bytes of the display-order SHA-256d of the bytes as relayed (the wtxid's)."""
        return self.wtxid[:-KEY_SIZE - 1:-1]

    @classmethod
    def parse(cls, raw):
        """A ``CachedTx`` of exactly one serialized transaction; ``ThinBlockError`` if it is not one."""
        raw = bytes(raw)
        end, txid, wtxid = scan_tx(raw, 0)
        if end != len(raw):
            raise ThinBlockError(f"{len(raw) - end} trailing bytes after a transaction")
        return cls(raw, txid, wtxid)


def _compact(raw, offset):
    try:
        return read_compact_size(raw, offset)
    except DecodeError as e:
        raise ThinBlockError(str(e)) from None


def scan_tx(raw, offset):
    """
    ``(end, txid, wtxid)`` of the transaction serialized in ``raw`` at
    ``offset``, without building it: the relay's hot path walks every
    transaction of a block, and this is several times faster than
    ``Transaction.parse`` (which the tests hold it to).  For a segwit
    transaction the txid is the hash of version ‖ inputs and outputs ‖
    locktime, the non-witness serialization.  Counts are bounded by the
    bytes left before any loop runs; ``ThinBlockError`` on anything
    malformed, as ``Transaction.parse`` refuses it.
    """
    size = len(raw)
    start = offset
    off = offset + 4
    if off + 1 > size:
        raise ThinBlockError(f"transaction truncated at offset {start}")
    segwit = raw[off] == 0
    if segwit:
        if off + 2 > size or raw[off + 1] != 1:
            raise ThinBlockError(f"bad segwit marker in transaction at offset {start}")
        off += 2
    body = off
    n_in, off = _compact(raw, off)
    if n_in * 41 > size - off:
        raise ThinBlockError(f"{n_in} inputs cannot fit at offset {off}")
    for _ in range(n_in):
        length, off = _compact(raw, off + 36)
        off += length + 4
    n_out, off = _compact(raw, off)
    if n_out * 9 > size - off:
        raise ThinBlockError(f"{n_out} outputs cannot fit at offset {off}")
    for _ in range(n_out):
        length, off = _compact(raw, off + 8)
        off += length
    body_end = off
    if segwit:
        items_seen = False
        for _ in range(n_in):
            n_items, off = _compact(raw, off)
            if n_items > size - off:
                raise ThinBlockError(f"{n_items} witness items cannot fit at offset {off}")
            items_seen = items_seen or n_items > 0
            for _ in range(n_items):
                length, off = _compact(raw, off)
                off += length
        if not items_seen:
            raise ThinBlockError(f"superfluous witness record in transaction at offset {start}")
    off += 4
    if off > size:
        raise ThinBlockError(f"transaction truncated (started at offset {start})")
    wtxid = sha256d(raw[start:off])
    if segwit:
        txid = sha256d(b"".join((raw[start:start + 4], raw[body:body_end], raw[off - 4:off])))
    else:
        txid = wtxid
    return off, txid, wtxid


def split_block(raw):
    """
    ``(header, [CachedTx, ...])`` of a serialized block, each transaction's
    bytes as in the block (coinbase first); ``ThinBlockError`` if malformed.
    """
    raw = bytes(raw)
    if len(raw) < HEADER_SIZE + 1:
        raise ThinBlockError(f"a block is at least {HEADER_SIZE + 1} bytes, got {len(raw)}")
    count, offset = _compact(raw, HEADER_SIZE)
    if count == 0 or count > (len(raw) - offset) // _MIN_TX_SIZE:
        raise ThinBlockError(f"a block of {len(raw)} bytes cannot hold {count} transactions")
    txs = []
    for _ in range(count):
        end, txid, wtxid = scan_tx(raw, offset)
        txs.append(CachedTx(raw[offset:end], txid, wtxid))
        offset = end
    if offset != len(raw):
        raise ThinBlockError(f"{len(raw) - offset} trailing bytes after the last transaction")
    return raw[:HEADER_SIZE], txs


# -- reading helpers ---------------------------------------------------------


class _Reader:
    """Bounds-checked reads over one message body."""

    def __init__(self, body, what):
        self.body = bytes(body)
        self.offset = 0
        self.what = what

    def left(self):
        return len(self.body) - self.offset

    def take(self, n):
        if n > self.left():
            raise ThinBlockError(f"{self.what} truncated: needs {n} more bytes at offset "
                                 f"{self.offset}, has {self.left()}")
        start = self.offset
        self.offset += n
        return self.body[start:self.offset]

    def u32(self):
        return _U32.unpack(self.take(4))[0]

    def varint(self):
        """A CompactSize; lenient about width (the seed writes 0xffff as fe+u32, ref §12.24)."""
        first = self.take(1)[0]
        if first < 0xFD:
            return first
        return int.from_bytes(self.take({0xFD: 2, 0xFE: 4, 0xFF: 8}[first]), "little")

    def varstr(self):
        return self.take(self.varint())

    def count(self, each):
        """A u32 count of items of at least ``each`` bytes, checked against the bytes left."""
        n = self.u32()
        if n * each > self.left():
            raise ThinBlockError(f"{self.what}: count {n} needs at least {n * each} bytes, "
                                 f"{self.left()} left")
        return n

    def end(self):
        if self.left():
            raise ThinBlockError(f"{self.what}: {self.left()} trailing bytes")


def _varstr(data):
    return compact_size(len(data)) + data


# -- the seed's thin block (cmd 13/14) and tx request/reply (cmd 15) --------


@attrs.frozen
class ThinBlock:
    """A cmd 13/14 thin block: header, coinbase bytes and the other transactions' keys."""

    header: bytes
    coinbase: bytes = attrs.field(repr=False)
    keys: tuple = attrs.field(converter=tuple, repr=False)

    @property
    def block_hash(self):
        """The block hash, internal order."""
        return sha256d(self.header)

    @classmethod
    def from_block(cls, header, txs):
        """The thin block of a split block (``split_block``)."""
        return cls(header, txs[0].raw, tuple(tx.key for tx in txs[1:]))

    def encode(self):
        return b"".join([self.block_hash[::-1], self.header, _varstr(self.coinbase),
                         _U32.pack(len(self.keys)), *self.keys])

    @classmethod
    def decode(cls, body):
        """Parse a cmd 13/14 body; ``ThinBlockError`` if malformed or its hash is not its header's."""
        r = _Reader(body, "thin block")
        display_hash = r.take(32)
        header = r.take(HEADER_SIZE)
        if sha256d(header)[::-1] != display_hash:
            raise ThinBlockError("thin block: the hash is not the header's")
        coinbase = r.varstr()
        n = r.count(KEY_SIZE)
        keys = tuple(r.take(KEY_SIZE) for _ in range(n))
        r.end()
        return cls(header, coinbase, keys)


def encode_tx_request(keys):
    """Body of a cmd 15 REQUEST for ``keys``."""
    return _U32.pack(len(keys)) + b"".join(keys)


def decode_tx_request(body):
    """The keys a cmd 15 REQUEST asks for."""
    r = _Reader(body, "tx request")
    keys = tuple(r.take(KEY_SIZE) for _ in range(r.count(KEY_SIZE)))
    r.end()
    return keys


def encode_tx_reply(raws):
    """Body of a cmd 15 REPLY (or the tail of a cmd 18 REPLY) carrying ``raws``."""
    return _U32.pack(len(raws)) + b"".join(_varstr(raw) for raw in raws)


def _read_txs(r):
    return tuple(bytes(r.varstr()) for _ in range(r.count(1)))


def decode_tx_reply(body):
    """The serialized transactions a cmd 15 REPLY carries (not yet parsed)."""
    r = _Reader(body, "tx reply")
    raws = _read_txs(r)
    r.end()
    return raws


# -- our compact form (cmd 16/17/18) ----------------------------------------


def is_hello(body):
    """True when a cmd 16 body offers the compact mode."""
    try:
        offer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(offer, dict) and offer.get("compact") == 1


@attrs.frozen
class CompactBlock:
    """A cmd 17 compact block: kind (13 pool / 14 foreign), header, nonce, coinbase, short ids."""

    kind: int
    header: bytes
    nonce: int
    coinbase: bytes = attrs.field(repr=False)
    short_ids: tuple = attrs.field(converter=tuple, repr=False)

    @property
    def block_hash(self):
        return sha256d(self.header)

    @classmethod
    def from_block(cls, kind, header, txs, nonce):
        short_id = short_id_function(header, nonce)
        return cls(kind, header, nonce, txs[0].raw, tuple(short_id(tx.wtxid) for tx in txs[1:]))

    def encode(self):
        return b"".join([bytes((self.kind,)), self.header, _U64.pack(self.nonce),
                         _varstr(self.coinbase), _U32.pack(len(self.short_ids)),
                         *(i.to_bytes(SHORT_ID_SIZE, "little") for i in self.short_ids)])

    @classmethod
    def decode(cls, body):
        r = _Reader(body, "compact block")
        kind = r.take(1)[0]
        if kind not in (THIN_SUBMIT, THIN_UPDATE):
            raise ThinBlockError(f"compact block: unknown kind {kind}")
        header = r.take(HEADER_SIZE)
        nonce = _U64.unpack(r.take(8))[0]
        coinbase = r.varstr()
        n = r.count(SHORT_ID_SIZE)
        ids = tuple(int.from_bytes(r.take(SHORT_ID_SIZE), "little") for _ in range(n))
        r.end()
        return cls(kind, header, nonce, coinbase, ids)


def encode_index_request(block_hash, indexes):
    """Body of a cmd 18 REQUEST: the transactions at ``indexes`` of block ``block_hash``."""
    return block_hash + _U32.pack(len(indexes)) + b"".join(_U32.pack(i) for i in indexes)


def decode_index_request(body):
    """``(block_hash, indexes)`` of a cmd 18 REQUEST."""
    r = _Reader(body, "index request")
    block_hash = r.take(32)
    indexes = tuple(r.u32() for _ in range(r.count(4)))
    r.end()
    return block_hash, indexes


def encode_index_reply(block_hash, raws):
    return block_hash + encode_tx_reply(raws)


def decode_index_reply(body):
    """``(block_hash, raws)`` of a cmd 18 REPLY."""
    r = _Reader(body, "index reply")
    block_hash = r.take(32)
    raws = _read_txs(r)
    r.end()
    return block_hash, raws


# -- reconstruction ----------------------------------------------------------


@attrs.frozen
class Rebuilt:
    """A reconstruction that matches its header: ``block`` is ready to submit."""

    block: bytes = attrs.field(repr=False)
    txs: tuple = attrs.field(repr=False)


@attrs.frozen
class Missing:
    """Positions (0 = first after the coinbase) whose transaction must be asked for."""

    positions: tuple


@attrs.frozen
class Mismatch:
    """Every transaction was found, but they do not make the header's merkle root (or witness root)."""

    reason: str


def _witness_ok(coinbase, txs):
    """
    True unless the coinbase commits to a witness root these transactions
    do not make.  A coinbase without its witness reserved value (the seed's
    jobmaster sends one, ref §12.8) cannot be checked here; the node repairs
    and checks it on submitblock.
    """
    try:
        tx, _ = Transaction.parse(coinbase)
    except DecodeError:
        return False
    commitment = None
    for out in reversed(tx.outputs):
        if len(out.script) >= 38 and out.script[:6] == WITNESS_COMMITMENT_HEADER:
            commitment = out.script[6:38]
            break
    if commitment is None or not tx.witnesses:
        return True
    stack = tx.witnesses[0]
    if len(stack) != 1 or len(stack[0]) != 32:
        return False
    root = merkle_root([bytes(32)] + [t.wtxid for t in txs])
    return sha256d(root + stack[0]) == commitment


def assemble(header, coinbase, chosen):
    """
    Check ``chosen`` (the ``CachedTx`` after the coinbase, in block order)
    against ``header``: ``Rebuilt`` with the block bytes, or ``Mismatch``.
    """
    try:
        cb = CachedTx.parse(coinbase)
    except ThinBlockError as e:
        return Mismatch(f"bad coinbase: {e}")
    root = merkle_root([cb.txid] + [tx.txid for tx in chosen])
    if root != header[36:68]:
        return Mismatch("transactions do not make the header's merkle root")
    if not _witness_ok(coinbase, chosen):
        return Mismatch("transactions do not make the coinbase's witness commitment")
    block = b"".join([header, compact_size(len(chosen) + 1), coinbase, *(tx.raw for tx in chosen)])
    return Rebuilt(block, (cb, *chosen))


def _rebuild(header, coinbase, chosen):
    """``assemble`` once every position has its transaction; else ``Missing`` (the positions of None)."""
    missing = tuple(i for i, tx in enumerate(chosen) if tx is None)
    if missing:
        return Missing(missing)
    return assemble(header, coinbase, chosen)


def reconstruct(thin, lookup, supplied=None):
    """
    Rebuild ``thin`` (a ``ThinBlock``).  ``lookup(key)`` gives the cached
    candidates for a key (a sequence of ``CachedTx``); ``supplied`` maps a
    key to the transaction a peer sent for it, which wins over the cache.

    A key with no candidate, or with more than one, is ``Missing`` (asked
    for rather than guessed).  Returns ``Rebuilt``, ``Missing`` or
    ``Mismatch``; a ``Mismatch`` made only of cached transactions means a
    colliding key picked a wrong one, so the caller asks for them all.
    """
    supplied = supplied or {}
    chosen = []
    for key in thin.keys:
        tx = supplied.get(key)
        if tx is None:
            candidates = lookup(key)
            if len(candidates) == 1:
                tx = candidates[0]
        chosen.append(tx)
    return _rebuild(thin.header, thin.coinbase, chosen)


def reconstruct_compact(compact, pool, supplied=None):
    """
    Rebuild ``compact`` from ``pool`` (an iterable of ``CachedTx``: the
    cache) and ``supplied`` (position -> ``CachedTx`` a peer sent).  As
    ``reconstruct``: an unknown or ambiguous short id is ``Missing``.
    """
    supplied = supplied or {}
    short_id = short_id_function(compact.header, compact.nonce)
    wanted = {}
    for i, sid in enumerate(compact.short_ids):
        if i not in supplied:
            wanted.setdefault(sid, []).append(i)
    found = {}
    for tx in pool:
        sid = short_id(tx.wtxid)
        if sid in wanted:
            found.setdefault(sid, []).append(tx)
    chosen = []
    for i, sid in enumerate(compact.short_ids):
        tx = supplied.get(i)
        if tx is None:
            candidates = found.get(sid, ())
            if len(candidates) == 1 and len(wanted[sid]) == 1:
                tx = candidates[0]
        chosen.append(tx)
    return _rebuild(compact.header, compact.coinbase, chosen)
