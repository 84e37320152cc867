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
announcement path never waits for the transactions to be parsed.
"""

import os

from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.header import HEADER_SIZE, BlockHeader
from viabtc.bitcoin.serialize import DecodeError, compact_size
from viabtc.bitcoin.shortid import short_id_keys, short_txid
from viabtc.p2p.messages import BlockTxn, CmpctBlock, PrefilledTx


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
        self._compact = {}
        self._legacy = None

    @property
    def prev_hash(self):
        return self.header.prev_hash

    @property
    def parsed(self):
        """The ``Block`` (``DecodeError`` if the bytes are not one)."""
        if self._parsed is None:
            self._parsed = parse_block(self.raw)
        return self._parsed

    def compact(self, version=2):
        """The ``CmpctBlock`` for BIP152 ``version`` (1: txids, 2: wtxids)."""
        if version not in (1, 2):
            raise ValueError(f"compact block version is 1 or 2, got {version}")
        cached = self._compact.get(version)
        if cached is None:
            cached = compact_block(self.parsed, self._nonce, version)
            self._compact[version] = cached
        return cached

    def transactions(self, indexes, witness=True):
        """
        The ``BlockTxn`` answering a request for ``indexes``; ``IndexError``
        when one is beyond the block.
        """
        txs = self.parsed.transactions
        return BlockTxn(self.hash, tuple(txs[i].serialize(with_witness=witness) for i in indexes))

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


def compact_block(block, nonce, version=2):
    """BIP152 ``HeaderAndShortIDs`` of ``block`` (a parsed ``Block``), the coinbase prefilled."""
    header = block.header.serialize()
    k0, k1 = short_id_keys(header, nonce)
    witness = version == 2
    short_ids = tuple(short_txid(k0, k1, tx.wtxid() if witness else tx.txid())
                      for tx in block.transactions[1:])
    coinbase = block.transactions[0].serialize(with_witness=witness)
    return CmpctBlock(block.header, nonce, short_ids, (PrefilledTx(0, coinbase),))
