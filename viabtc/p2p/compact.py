# -*- test-case-name: tests.p2p.test_compact -*-
"""
A block as a relay holds it: the bytes as they came, and the forms peers
ask for, each computed once on first demand (pure).

- ``compact(version)``: BIP152 ``cmpctblock`` for high-bandwidth peers and
  ``getdata(MSG_CMPCT_BLOCK)``; the coinbase prefilled (the receiver cannot
  have it), every other transaction as the 48-bit SipHash of its wtxid
  (version 2) or txid (version 1) under keys from the header and a random
  nonce (``viabtc.bitcoin.shortid``).
- ``transactions(indexes, witness)``: ``blocktxn`` for a ``getblocktxn``.
- ``legacy``: the block without witness data, for ``getdata(MSG_BLOCK)``;
  ``raw`` itself answers ``MSG_WITNESS_BLOCK`` (the seed served no witness
  blocks, ref §6.3, §12.15).

Announcing a block needs only its header (80 bytes, no parsing), so the
announcement path never waits for the transactions to be parsed.  The
transactions are parsed once, keeping each one's bytes as they came: a
wtxid is the hash of those bytes, and ``blocktxn`` sends them unchanged.
SipHash-2-4 comes from ``siphashc`` (C): ``viabtc.bitcoin.shortid`` in
Python costs 65 µs a transaction, 0.2 s for a full block (the tests check
the two agree).
"""

import os
import struct

from siphashc import siphash

from viabtc.bitcoin.block import Block, parse_transactions
from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.header import HEADER_SIZE, BlockHeader
from viabtc.bitcoin.serialize import DecodeError, compact_size
from viabtc.bitcoin.shortid import short_id_keys
from viabtc.p2p.messages import BlockTxn, CmpctBlock, PrefilledTx

_KEYS = struct.Struct("<QQ")
_SHORT_ID_MASK = (1 << 48) - 1


class RelayBlock:
    """
    One block held for relay.  ``raw`` is the block as serialised with
    witness data; ``DecodeError`` from the constructor when it is not a
    block (the transactions are checked, once, on first use of any derived
    form: ``parsed`` raises ``DecodeError`` then).
    """

    def __init__(self, raw, nonce=None):
        if len(raw) <= HEADER_SIZE:
            raise DecodeError(f"{len(raw)} bytes cannot be a block")
        self.raw = bytes(raw)
        self.header_bytes = self.raw[:HEADER_SIZE]
        self.header = BlockHeader.parse(self.header_bytes)
        self.hash = self.header.hash()
        self._nonce = int.from_bytes(os.urandom(8), "little") if nonce is None else nonce
        self._parsed = None
        self._raw_txs = None
        self._compact = {}
        self._legacy = None

    @property
    def prev_hash(self):
        return self.header.prev_hash

    @property
    def parsed(self):
        """The ``Block`` (``DecodeError`` if the bytes are not one)."""
        if self._parsed is None:
            self._split()
        return self._parsed

    @property
    def raw_transactions(self):
        """Each transaction's bytes as in the block (``DecodeError`` if not a block)."""
        if self._raw_txs is None:
            self._split()
        return self._raw_txs

    def _split(self):
        raw = self.raw
        txs, offsets = parse_transactions(raw)
        self._parsed = Block(self.header, txs)
        self._raw_txs = [raw[start:end] for start, end in zip(offsets, offsets[1:])]

    def compact(self, version=2):
        """The ``CmpctBlock`` for BIP152 ``version`` (1: txids, 2: wtxids)."""
        if version not in (1, 2):
            raise ValueError(f"compact block version is 1 or 2, got {version}")
        cached = self._compact.get(version)
        if cached is None:
            cached = self._build_compact(version)
            self._compact[version] = cached
        return cached

    def _build_compact(self, version):
        key = _KEYS.pack(*short_id_keys(self.header_bytes, self._nonce))
        if version == 2:
            raws = self.raw_transactions
            ids = tuple(siphash(key, sha256d(tx)) & _SHORT_ID_MASK for tx in raws[1:])
            coinbase = raws[0]
        else:
            txs = self.parsed.transactions
            ids = tuple(siphash(key, tx.txid()) & _SHORT_ID_MASK for tx in txs[1:])
            coinbase = txs[0].serialize(with_witness=False)
        return CmpctBlock(self.header, self._nonce, ids, (PrefilledTx(0, coinbase),))

    def transactions(self, indexes, witness=True):
        """
        The ``BlockTxn`` answering a request for ``indexes``; ``IndexError``
        when one is beyond the block.
        """
        if witness:
            raws = self.raw_transactions
            return BlockTxn(self.hash, tuple(raws[i] for i in indexes))
        txs = self.parsed.transactions
        return BlockTxn(self.hash, tuple(txs[i].serialize(with_witness=False) for i in indexes))

    @property
    def legacy(self):
        """The block without witness data (what ``MSG_BLOCK`` asks for)."""
        if self._legacy is None:
            block = self.parsed
            if not any(tx.has_witness() for tx in block.transactions):
                self._legacy = self.raw
            else:
                self._legacy = b"".join(
                    [self.header_bytes, compact_size(len(block.transactions))]
                    + [tx.serialize(with_witness=False) for tx in block.transactions])
        return self._legacy
