"""Tests for ``viabtc.bitcoin.block``."""

import attrs
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import Block, assemble_block, parse_block
from viabtc.bitcoin.coinbase import (
    Recipient,
    coinbase_halves,
    coinbase_tag,
    miner_script_sig_prefix,
    real_coinbase1,
    split_reward,
    tag_budget,
)
from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_branch, merkle_root, merkle_root_from_branch
from viabtc.bitcoin.network import REGTEST
from viabtc.bitcoin.serialize import DecodeError
from viabtc.bitcoin.subsidy import block_subsidy
from viabtc.bitcoin.transaction import TxOut, witness_commitment_script

from .vectors import BLOCK_HASHES, block_bytes


class ParseBlockTests(TestCase):
    def test_real_blocks(self):
        for name, display in BLOCK_HASHES.items():
            block = parse_block(block_bytes(name))
            self.assertEqual(hash_to_display_hex(block.hash()), display)
            self.assertTrue(block.check_merkle_root(), name)
            self.assertTrue(block.check_witness_commitment(), name)

    def test_genesis(self):
        block = parse_block(block_bytes("mainnet-000000"))
        self.assertEqual(len(block.transactions), 1)
        self.assertEqual(block.header.merkle_root, block.transactions[0].txid())
        self.assertIsNone(block.witness_commitment())

    def test_segwit_block(self):
        block = parse_block(block_bytes("testnet-924634"))
        self.assertEqual(len(block.transactions), 15)
        self.assertEqual(block.coinbase_height(), 924634)
        self.assertEqual(
            block.witness_commitment().hex(),
            "f91c46b49eb8a29089980f02ee6b57e7d63d33b18b4fddac2bcd7db2a3983704",
        )

    def test_tampering_is_detected(self):
        raw = bytearray(block_bytes("mainnet-100000"))
        raw[-10] ^= 1
        self.assertFalse(parse_block(bytes(raw)).check_merkle_root())

    def test_wrong_witness_reserved_value(self):
        block = parse_block(block_bytes("testnet-924634"))
        coinbase = block.transactions[0]
        bad = attrs.evolve(coinbase, witnesses=[[b"\x01" * 32]])
        self.assertFalse(Block(block.header, [bad, *block.transactions[1:]]).check_witness_commitment())
        stripped = attrs.evolve(coinbase, witnesses=[])
        self.assertFalse(Block(block.header, [stripped, *block.transactions[1:]]).check_witness_commitment())

    def test_malformed(self):
        raw = block_bytes("mainnet-000170")
        for bad in [raw[:79], raw[:80], raw[:-1], raw + b"\x00", raw[:80] + b"\x00"]:
            self.assertRaises(DecodeError, parse_block, bad)


class AssembleBlockTests(TestCase):
    def test_reassemble_legacy_block(self):
        raw = block_bytes("mainnet-100000")
        block = parse_block(raw)
        txs = [tx.serialize() for tx in block.transactions]
        self.assertEqual(assemble_block(raw[:80], txs[0], txs[1:], segwit=False), raw)

    def test_reassemble_segwit_block(self):
        raw = block_bytes("testnet-924634")
        block = parse_block(raw)
        legacy_coinbase = block.transactions[0].serialize(with_witness=False)
        txs = [tx.serialize() for tx in block.transactions[1:]]
        self.assertEqual(assemble_block(raw[:80], legacy_coinbase, txs, segwit=True), raw)

    def test_bad_header(self):
        self.assertRaises(ValueError, assemble_block, bytes(79), b"", [], False)

    def test_pool_block_end_to_end(self):
        """
        Build a regtest block the way jobmaster and gateway do (ref Appendix
        B: coinbase halves, scriptSig, extranonces, branch, header) and check
        it as a node would: merkle root, witness commitment, BIP34 height,
        proof of work.
        """
        height = 1234
        template_txs = [parse_block(block_bytes("testnet-924634")).transactions[i] for i in (1, 2)]
        wtxids = [bytes(32)] + [tx.wtxid() for tx in template_txs]
        commitment = TxOut(0, witness_commitment_script(merkle_root(wtxids)))
        value = block_subsidy(height, REGTEST) + 12345
        outputs = split_reward(value, [Recipient(b"\x51\x20" + bytes(32), 0.01)], b"\x00\x14" + bytes(20))
        coinbase1, coinbase2 = coinbase_halves(outputs + [commitment])
        aux = b"\x01\x02"
        tag = coinbase_tag("ViaBTC", "regtest", "alice", tag_budget(height, aux, agent=False))
        prefix = miner_script_sig_prefix(height, tag, aux, (1 << 16) + 9, 42)
        extranonce1, extranonce2 = bytes.fromhex("0a0b0c0d"), bytes.fromhex("0000000000000001")
        coinbase = real_coinbase1(coinbase1, prefix) + extranonce1 + extranonce2 + coinbase2
        branch = merkle_branch([tx.txid() for tx in template_txs])
        root = merkle_root_from_branch(sha256d(coinbase), branch)
        for nonce in range(1000):
            header = BlockHeader(0x20000000, REGTEST.genesis_hash, root, 1700000000, 0x207FFFFF, nonce)
            if int.from_bytes(header.hash(), "little") <= 0x7FFFFF << 232:
                break
        raw = assemble_block(header.serialize(), coinbase, [tx.serialize() for tx in template_txs], segwit=True)
        block = parse_block(raw)
        self.assertTrue(block.check_merkle_root())
        self.assertTrue(block.check_witness_commitment())
        self.assertEqual(block.coinbase_height(), height)
        self.assertLessEqual(len(block.transactions[0].inputs[0].script_sig), 100)
        self.assertEqual(sum(o.value for o in block.transactions[0].outputs), value)
        self.assertLessEqual(int.from_bytes(block.hash(), "little"), 0x7FFFFF << 232)
