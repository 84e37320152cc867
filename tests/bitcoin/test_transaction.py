"""Tests for ``viabtc.bitcoin.transaction``."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.serialize import DecodeError
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut, witness_commitment_script

from .vectors import BLOCK_HASHES, block_bytes

BLOCK_100000_TXIDS = [
    "8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87",
    "fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4",
    "6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4",
    "e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d",
]


def transactions_of(name):
    return parse_block(block_bytes(name)).transactions


class RealTransactionTests(TestCase):
    def test_block_100000_txids(self):
        txs = transactions_of("mainnet-100000")
        self.assertEqual([hash_to_display_hex(tx.txid()) for tx in txs], BLOCK_100000_TXIDS)
        spend = txs[1]
        self.assertEqual(
            spend.outputs,
            (
                TxOut(556000000, bytes.fromhex("76a914c398efa9c392ba6013c5e04ee729755ef7f58b3288ac")),
                TxOut(4444000000, bytes.fromhex("76a914948c765a6914d43f2a7ac177da2c2f6b52de3d7c88ac")),
            ),
        )
        self.assertEqual(
            hash_to_display_hex(spend.inputs[0].prev_hash),
            "87a157f3fd88ac7907c05fc55e271dc4acdc5605d187d646604ca8c0e9382e03",
        )

    def test_first_transfer(self):
        spend = transactions_of("mainnet-000170")[1]
        self.assertEqual(
            hash_to_display_hex(spend.txid()),
            "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16",
        )
        self.assertEqual([o.value for o in spend.outputs], [10 * 10**8, 40 * 10**8])

    def test_round_trip_every_real_transaction(self):
        for name in BLOCK_HASHES:
            raw = block_bytes(name)
            block = parse_block(raw)
            self.assertEqual(b"".join(tx.serialize() for tx in block.transactions), raw[81:])

    def test_segwit_coinbase(self):
        coinbase = transactions_of("testnet-924634")[0]
        self.assertTrue(coinbase.has_witness())
        self.assertEqual(coinbase.witnesses, ((bytes(32),),))
        legacy = coinbase.serialize(with_witness=False)
        self.assertEqual(len(coinbase.serialize()) - len(legacy), 2 + 1 + 1 + 32)
        self.assertNotEqual(coinbase.wtxid(), coinbase.txid())

    def test_legacy_wtxid_is_txid(self):
        tx = transactions_of("mainnet-000170")[1]
        self.assertEqual(tx.wtxid(), tx.txid())

    def test_witness_commitment_script(self):
        txs = transactions_of("testnet-924634")
        root = merkle_root([bytes(32)] + [tx.wtxid() for tx in txs[1:]])
        self.assertEqual(witness_commitment_script(root), txs[0].outputs[1].script)
        self.assertEqual(len(witness_commitment_script(root)), 38)
        self.assertRaises(ValueError, witness_commitment_script, bytes(31))


class MalformedTransactionTests(TestCase):
    def test_every_truncation_is_a_decode_error(self):
        for name in ["mainnet-000170", "testnet-924634"]:
            raw = block_bytes(name)
            tx, end = Transaction.parse(raw, 81)
            for cut in range(81, end):
                self.assertRaises(DecodeError, Transaction.parse, raw[:cut], 81)

    def test_unknown_segwit_flag(self):
        raw = bytearray(transactions_of("testnet-924634")[0].serialize())
        raw[5] = 2
        self.assertRaises(DecodeError, Transaction.parse, bytes(raw))

    def test_superfluous_witness(self):
        tx = Transaction(1, [TxIn(bytes(32), 0, b"", 0)], [TxOut(0, b"")], 0)
        legacy = tx.serialize()
        segwit_empty = legacy[:4] + b"\x00\x01" + legacy[4:-4] + b"\x00" + legacy[-4:]
        self.assertRaises(DecodeError, Transaction.parse, segwit_empty)

    def test_negative_output_value(self):
        self.assertRaises(ValueError, TxOut(-1, b"").serialize)


u32 = st.integers(min_value=0, max_value=2**32 - 1)
small_bytes = st.binary(max_size=300)


@st.composite
def transactions(draw):
    txin = st.builds(TxIn, st.binary(min_size=32, max_size=32), u32, small_bytes, u32)
    inputs = draw(st.lists(txin, min_size=1, max_size=4))
    txout = st.builds(TxOut, st.integers(min_value=0, max_value=2**63 - 1), small_bytes)
    outputs = draw(st.lists(txout, max_size=4))
    witnesses = ()
    if draw(st.booleans()):
        stack = st.lists(st.binary(max_size=80), max_size=3)
        witnesses = draw(st.lists(stack, min_size=len(inputs), max_size=len(inputs)))
        if not any(witnesses):
            witnesses = ()
    return Transaction(draw(u32), inputs, outputs, draw(u32), witnesses)


class RoundTripTests(TestCase):
    @given(transactions(), st.binary(max_size=8))
    def test_round_trip(self, tx, tail):
        raw = tx.serialize()
        self.assertEqual(Transaction.parse(b"\x99" + raw + tail, 1), (tx, 1 + len(raw)))

    @given(transactions())
    def test_legacy_form_drops_witnesses(self, tx):
        legacy, _ = Transaction.parse(tx.serialize(with_witness=False))
        self.assertEqual(legacy.witnesses, ())
        self.assertEqual(legacy.txid(), tx.txid())
