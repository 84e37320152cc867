"""A relay block's derived forms, checked on a real segwit block."""

from twisted.trial.unittest import SynchronousTestCase

from tests.bitcoin.vectors import block_bytes
from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.serialize import DecodeError, compact_size
from viabtc.bitcoin.shortid import short_id_keys, short_txid
from viabtc.p2p.compact import RelayBlock
from viabtc.p2p.messages import decode

RAW = block_bytes("testnet-924634")


def rebuild(compact, transactions):
    """What a BIP152 receiver holding ``transactions`` (mempool) rebuilds."""
    k0, k1 = short_id_keys(compact.header.serialize(), compact.nonce)
    pool = {short_txid(k0, k1, tx.wtxid()): tx.serialize() for tx in transactions}
    slots = [None] * (len(compact.short_ids) + len(compact.prefilled))
    for p in compact.prefilled:
        slots[p.index] = p.raw
    ids = iter(compact.short_ids)
    for i, slot in enumerate(slots):
        if slot is None:
            slots[i] = pool[next(ids)]
    return compact.header.serialize() + compact_size(len(slots)) + b"".join(slots)


class RelayBlockTests(SynchronousTestCase):
    def test_header_without_parsing(self):
        block = RelayBlock(RAW, nonce=5)
        self.assertEqual(block.header_bytes, RAW[:80])
        self.assertEqual(block.hash, parse_block(RAW).hash())
        self.assertIsNone(block._parsed)

    def test_compact_rebuilds_the_block(self):
        block = RelayBlock(RAW, nonce=12345)
        compact = block.compact(2)
        self.assertEqual(len(compact.short_ids), 14)
        self.assertEqual([p.index for p in compact.prefilled], [0])
        self.assertEqual(rebuild(compact, parse_block(RAW).transactions[1:]), RAW)
        self.assertIs(block.compact(2), compact)
        self.assertEqual(decode("cmpctblock", compact.serialize()), compact)

    def test_version_1_uses_txids(self):
        block = RelayBlock(RAW, nonce=1)
        txs = parse_block(RAW).transactions
        k0, k1 = short_id_keys(RAW[:80], 1)
        self.assertEqual(block.compact(1).short_ids[0], short_txid(k0, k1, txs[1].txid()))
        # Version 1 peers get the coinbase without its witness.
        self.assertEqual(block.compact(1).prefilled[0].raw, txs[0].serialize(with_witness=False))
        self.assertEqual(block.compact(2).prefilled[0].raw, txs[0].serialize())

    def test_blocktxn(self):
        block = RelayBlock(RAW)
        txs = parse_block(RAW).transactions
        answer = block.transactions([1, 4], witness=True)
        self.assertEqual(answer.transactions, (txs[1].serialize(), txs[4].serialize()))
        self.assertEqual(answer.block_hash, block.hash)
        self.assertRaises(IndexError, block.transactions, [15])

    def test_legacy_has_no_witness(self):
        block = RelayBlock(RAW)
        legacy = parse_block(block.legacy)
        self.assertFalse(any(tx.has_witness() for tx in legacy.transactions))
        self.assertTrue(legacy.check_merkle_root())
        self.assertLess(len(block.legacy), len(RAW))

    def test_legacy_of_a_legacy_block_is_itself(self):
        raw = block_bytes("mainnet-000170")
        self.assertIs(RelayBlock(raw).legacy, raw)

    def test_not_a_block(self):
        self.assertRaises(DecodeError, RelayBlock, b"x" * 80)
        broken = RelayBlock(RAW[:-1])
        self.assertRaises(DecodeError, broken.compact)
