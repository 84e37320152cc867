"""Tests for ``viabtc.bitcoin.coinbase`` (ref §3.4, §4.4 with the §12.9/§12.11 fixes)."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.coinbase import (
    MINER_EXTRANONCE_SIZE,
    Recipient,
    add_coinbase_witness,
    agent_script_sig_prefix,
    coinbase_halves,
    coinbase_tag,
    miner_script_sig_prefix,
    real_coinbase1,
    split_reward,
    tag_budget,
)
from viabtc.bitcoin.serialize import DecodeError, read_bip34_height
from viabtc.bitcoin.transaction import Transaction, TxOut

from .vectors import block_bytes

POOL = b"\xa9\x14" + b"\x01" * 20 + b"\x87"
FEE = b"\x76\xa9\x14" + b"\x02" * 20 + b"\x88\xac"
OTHER = b"\x00\x14" + b"\x03" * 20


class SplitRewardTests(TestCase):
    def test_fee_and_main_remainder(self):
        self.assertEqual(
            split_reward(625000000, [Recipient(FEE, 0.02)], POOL),
            [TxOut(12500000, FEE), TxOut(612500000, POOL)],
        )

    def test_floor_each_in_order(self):
        outputs = split_reward(1001, [Recipient(FEE, 0.5), Recipient(OTHER, 0.25)], POOL)
        self.assertEqual([o.value for o in outputs], [500, 250, 251])

    def test_percentages_summing_to_one_give_last_the_remainder(self):
        outputs = split_reward(1001, [Recipient(FEE, 0.3), Recipient(OTHER, 0.7)], None)
        self.assertEqual(outputs, [TxOut(300, FEE), TxOut(701, OTHER)])
        # Within 1e-9 of 1 counts as 1, and no main output is added.
        outputs = split_reward(1001, [Recipient(FEE, 0.1), Recipient(OTHER, 0.9 - 1e-12)], POOL)
        self.assertEqual([o.script for o in outputs], [FEE, OTHER])
        self.assertEqual(sum(o.value for o in outputs), 1001)

    def test_no_recipients(self):
        self.assertEqual(split_reward(5000, [], POOL), [TxOut(5000, POOL)])

    def test_errors(self):
        for args in [
            (100, [Recipient(FEE, 0.6), Recipient(OTHER, 0.5)], POOL),  # sum > 1
            (100, [Recipient(FEE, -0.1)], POOL),
            (100, [Recipient(FEE, float("nan"))], POOL),
            (100, [Recipient(FEE, 0.5)], None),  # remainder with nowhere to go
            (-1, [], POOL),
            # Within the 1e-9 tolerance, but the first floor already exceeds the value.
            (5 * 10**9, [Recipient(FEE, 1.0000000005), Recipient(OTHER, 0.0)], None),
        ]:
            self.assertRaises(ValueError, split_reward, *args)

    @given(
        st.integers(min_value=0, max_value=21 * 10**14),
        st.lists(st.floats(min_value=0, max_value=1), max_size=5),
        st.booleans(),
    )
    def test_never_more_out_than_in(self, value, weights, take_all):
        total = sum(weights)
        if total > 1 or (take_all and total > 0):
            weights = [w / total for w in weights]
        recipients = [Recipient(FEE, w) for w in weights]
        try:
            outputs = split_reward(value, recipients, POOL)
        except ValueError:
            # Only the over-allocation guard may refuse these inputs.
            self.assertGreater(sum(int(value * w) for w in weights), value)
            return
        self.assertEqual(sum(o.value for o in outputs), value)
        self.assertTrue(all(o.value >= 0 for o in outputs))


class CoinbaseHalvesTests(TestCase):
    def test_layout(self):
        coinbase1, coinbase2 = coinbase_halves([TxOut(5000000000, POOL)])
        self.assertEqual(coinbase1.hex(), "01000000" + "01" + "00" * 32 + "ffffffff")
        self.assertEqual(len(coinbase1), 41)
        self.assertEqual(
            coinbase2.hex(), "ffffffff" + "01" + "00f2052a01000000" + "17" + POOL.hex() + "00000000"
        )

    def test_reproduces_a_real_coinbase(self):
        # Split the testnet block's coinbase as Stratum would and rebuild it.
        block = parse_block(block_bytes("testnet-924634"))
        coinbase = block.transactions[0]
        script_sig = coinbase.inputs[0].script_sig
        coinbase1, coinbase2 = coinbase_halves(list(coinbase.outputs))
        rebuilt = real_coinbase1(coinbase1, script_sig[:-12]) + script_sig[-12:] + coinbase2
        self.assertEqual(rebuilt, coinbase.serialize(with_witness=False))
        self.assertEqual(add_coinbase_witness(rebuilt), coinbase.serialize())


class TagTests(TestCase):
    def test_full_tag(self):
        self.assertEqual(coinbase_tag("ViaBTC", "Hello", "alice", 74), b"/ViaBTC/Hello/Mined by alice/")
        self.assertEqual(coinbase_tag("ViaBTC", "", None, 74), b"/ViaBTC/")
        self.assertEqual(coinbase_tag("", "", None, 74), b"/")

    def test_parts_that_do_not_fit_are_left_out(self):
        self.assertEqual(coinbase_tag("ViaBTC", "Hello", "alice", 13), b"/ViaBTC/")
        self.assertEqual(coinbase_tag("ViaBTC", "Hello", "alice", 14), b"/ViaBTC/Hello/")
        self.assertEqual(coinbase_tag("x" * 80, "Hi", None, 74), b"/Hi/")
        self.assertEqual(coinbase_tag("ViaBTC", "", None, 1), b"/")
        self.assertEqual(coinbase_tag("ViaBTC", "", None, 0), b"")

    def test_utf8(self):
        self.assertEqual(coinbase_tag("矿池", "", None, 20), "/矿池/".encode())


class ScriptSigTests(TestCase):
    def test_miner_prefix_bytes(self):
        unique_id = (3 << 16) + 7  # worker_id 3, job 7, as the seed forms it
        prefix = miner_script_sig_prefix(840000, b"/ViaBTC/", b"", unique_id, 5)
        self.assertEqual(prefix.hex(), "0340d10c" + "08" + b"/ViaBTC/".hex() + "14" + "07000300" + "05000000")

    def test_miner_prefix_with_aux_and_short_tag(self):
        prefix = miner_script_sig_prefix(17, b"/", b"\xfa\xbe", 1, 2)
        # The one-byte tag is not pushed; the aux is.
        self.assertEqual(prefix.hex(), "0111" + "02fabe" + "14" + "01000000" + "02000000")

    def test_agent_prefix_bytes(self):
        prefix = agent_script_sig_prefix(840000, b"/ViaBTC/", b"", 0x0102, 0x0A0B0C0D, 9)
        self.assertEqual(
            prefix.hex(), "0340d10c" + "08" + b"/ViaBTC/".hex() + "12" + "0201" + "0d0c0b0a" + "09000000"
        )

    def test_regtest_small_height(self):
        prefix = miner_script_sig_prefix(1, b"/p/", b"", 0, 0)
        self.assertEqual(prefix[:1], b"\x51")
        self.assertEqual(read_bip34_height(prefix), 1)

    def test_budget_is_exact(self):
        cases = [(840000, b"", False), (1, b"", False), (840000, b"\x01" * 8, True), (17, b"", True)]
        for height, aux, agent in cases:
            budget = tag_budget(height, aux, agent)
            build = agent_prefix if agent else miner_prefix
            prefix = build(height, b"/" + b"x" * (budget - 1), aux)
            self.assertEqual(len(prefix) + MINER_EXTRANONCE_SIZE, 100)
            self.assertRaises(ValueError, build, height, b"/" + b"x" * budget, aux)

    def test_mainnet_budget(self):
        # 100 - 4 (height) - 1 (0x14) - 8 (ids) - 12 (extranonce) - 1 (push) = 74
        self.assertEqual(tag_budget(840000, b"", agent=False), 74)
        self.assertEqual(tag_budget(840000, b"", agent=True), 72)

    def test_the_seeds_overlong_tag_is_refused(self):
        # A 75-character pool name made the seed's scriptSig ~104 bytes (ref §4.4).
        tag = b"/" + b"p" * 75 + b"/"
        self.assertRaises(ValueError, miner_script_sig_prefix, 840000, tag, b"", 0, 0)

    def test_huge_aux_leaves_no_room(self):
        self.assertEqual(tag_budget(840000, b"\x00" * 90, agent=False), 0)
        self.assertRaises(ValueError, miner_script_sig_prefix, 840000, b"", b"\x00" * 90, 0, 0)

    def test_ids_out_of_range(self):
        self.assertRaises(ValueError, miner_script_sig_prefix, 1, b"", b"", 2**32, 0)
        self.assertRaises(ValueError, agent_script_sig_prefix, 1, b"", b"", 2**16, 0, 0)

    def test_real_coinbase1(self):
        prefix = miner_script_sig_prefix(840000, b"/ViaBTC/", b"", 1, 2)
        coinbase1, _ = coinbase_halves([])
        real = real_coinbase1(coinbase1, prefix)
        self.assertEqual(real, coinbase1 + bytes([len(prefix) + 12]) + prefix)

    @given(
        st.integers(min_value=0, max_value=2**31 - 1),
        st.text(max_size=120),
        st.text(max_size=120),
        st.one_of(st.none(), st.text(max_size=60)),
        st.binary(max_size=40),
        st.integers(min_value=0, max_value=2**32 - 1),
        st.integers(min_value=0, max_value=2**16 - 1),
    )
    def test_script_sig_never_exceeds_100_bytes(
        self, height, pool, message, account, aux, big_id, small_id
    ):
        for agent in (False, True):
            tag = coinbase_tag(pool, message, account, tag_budget(height, aux, agent))
            if agent:
                prefix = agent_script_sig_prefix(height, tag, aux, small_id, big_id, big_id)
            else:
                prefix = miner_script_sig_prefix(height, tag, aux, big_id, big_id)
            self.assertLessEqual(len(prefix) + MINER_EXTRANONCE_SIZE, 100)
            self.assertEqual(read_bip34_height(prefix), height)
            coinbase1, coinbase2 = coinbase_halves([TxOut(1, POOL)])
            tx, end = Transaction.parse(real_coinbase1(coinbase1, prefix) + bytes(12) + coinbase2)
            self.assertEqual(tx.inputs[0].script_sig, prefix + bytes(12))


def miner_prefix(height, tag, aux):
    return miner_script_sig_prefix(height, tag, aux, 0xFFFFFFFF, 0)


def agent_prefix(height, tag, aux):
    return agent_script_sig_prefix(height, tag, aux, 0xFFFF, 1, 2)


class AddCoinbaseWitnessTests(TestCase):
    def test_adds_reserved_value(self):
        coinbase1, coinbase2 = coinbase_halves([TxOut(1, POOL)])
        legacy = real_coinbase1(coinbase1, miner_prefix(500, b"/x/", b"")) + bytes(12) + coinbase2
        segwit = add_coinbase_witness(legacy)
        tx, _ = Transaction.parse(segwit)
        self.assertEqual(tx.witnesses, ((bytes(32),),))
        self.assertEqual(tx.serialize(with_witness=False), legacy)
        self.assertEqual(segwit[4:6], b"\x00\x01")

    def test_rejects_bad_input(self):
        segwit = parse_block(block_bytes("testnet-924634")).transactions[0].serialize()
        self.assertRaises(ValueError, add_coinbase_witness, segwit)
        self.assertRaises(DecodeError, add_coinbase_witness, b"\x01\x00")
        legacy = parse_block(block_bytes("mainnet-000170")).transactions[0].serialize()
        self.assertRaises(ValueError, add_coinbase_witness, legacy + b"\x00")
