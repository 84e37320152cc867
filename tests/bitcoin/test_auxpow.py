"""
Tests for ``viabtc.bitcoin.auxpow``: the slot formula against values worked
out by hand, the commitment's bytes, an AuxPoW serialisation field by
field, two real Namecoin mainnet AuxPoW headers verified by our verifier,
and properties of trees, proofs and tampering.
"""

import json
import os
import struct

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.auxpow import (
    COMMITMENT_SIZE,
    MERGED_MINING_HEADER,
    AuxPow,
    AuxPowError,
    SlotCollision,
    assign_slots,
    aux_leaves,
    aux_merkle_branch,
    aux_merkle_root,
    aux_target,
    build_auxpow,
    check_auxpow,
    check_merkle_branch,
    check_tree_size,
    commitment,
    expected_index,
)
from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_display_hex, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_branch, merkle_root_from_branch
from viabtc.bitcoin.serialize import DecodeError, push_data
from viabtc.bitcoin.target import bits_to_target
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut

with open(os.path.join(os.path.dirname(__file__), "data", "namecoin-auxpow.json")) as _f:
    NAMECOIN = json.load(_f)

NAMECOIN_CHAIN_ID = 1


class SlotFormulaTests(TestCase):
    """
    ``rand = nonce*1103515245+12345; rand += chain_id;
    rand = rand*1103515245+12345; slot = rand % size`` (mod 2**32).
    """

    def test_nonce_0_chain_1_size_16(self):
        # rand = 0*1103515245 + 12345 = 12345; + 1 = 12346;
        # 12346*1103515245 + 12345 = 13623999227115 = 3172 * 2**32 + 362964203;
        # 362964203 = 22685262 * 16 + 11.
        self.assertEqual(13623999227115 - 3172 * 2**32, 362964203)
        self.assertEqual(expected_index(0, 1, 16), 11)

    def test_size_1_is_always_slot_0(self):
        self.assertEqual(expected_index(0, 1, 1), 0)
        self.assertEqual(expected_index(0xFFFFFFFF, 0x7FFFFFFF, 1), 0)

    def test_nonce_7_chain_0x62_size_8(self):
        # 7*1103515245 + 12345 = 7724619060 -> mod 2**32 = 3429651764;
        # + 0x62 (98) = 3429651862; *1103515245 + 12345 mod 2**32 = 1412977943;
        # 1412977943 % 8 = 7.
        self.assertEqual((7 * 1103515245 + 12345) % 2**32, 3429651764)
        self.assertEqual((3429651862 * 1103515245 + 12345) % 2**32, 1412977943)
        self.assertEqual(expected_index(7, 0x62, 8), 7)

    def test_wraps_at_32_bits(self):
        # nonce 2**32-1: (2**32-1)*1103515245 + 12345 = -1103515245 + 12345
        # mod 2**32 = 3191464396; + 1 = 3191464397; -> 1392495234; % 4 = 2.
        self.assertEqual(expected_index(0xFFFFFFFF, 1, 4), 2)

    def test_real_namecoin_block_37174(self):
        # Its AuxPoW commits to a tree of 16 with nonce 0 and puts Namecoin
        # (chain id 1) in slot 11: the same answer as worked out above.
        self.assertEqual(NAMECOIN["37174"]["chain_index"], expected_index(0, NAMECOIN_CHAIN_ID, 16))

    def test_tree_size_must_be_power_of_two(self):
        for bad in (0, 3, 12, -4, 2**31):
            self.assertRaises(ValueError, check_tree_size, bad)
        self.assertEqual(check_tree_size(2**30), 2**30)

    def test_collision_refused(self):
        # Four slots cannot hold many chains: the first pair of chain ids
        # sharing a slot is refused, and the error names both.
        slots = {}
        for chain_id in range(1, 64):
            slot = expected_index(0, chain_id, 4)
            if slot in slots:
                first = slots[slot]
                break
            slots[slot] = chain_id
        e = self.assertRaises(SlotCollision, assign_slots, [first, chain_id], 4, 0)
        self.assertIn(str(first), str(e))
        self.assertIn(str(chain_id), str(e))

    def test_assign_slots(self):
        self.assertEqual(assign_slots([1], 16, 0), (11,))


class CommitmentTests(TestCase):
    def test_bytes(self):
        root = bytes(range(32))
        c = commitment(root, 16, 7)
        self.assertEqual(len(c), COMMITMENT_SIZE)
        self.assertEqual(c[:4], bytes.fromhex("fabe6d6d"))
        self.assertEqual(MERGED_MINING_HEADER, b"\xfa\xbemm")
        self.assertEqual(c[4:36], root[::-1])
        self.assertEqual(c[36:40], bytes.fromhex("10000000"))
        self.assertEqual(c[40:44], bytes.fromhex("07000000"))

    def test_real_block_37174_commitment(self):
        # The aux tree root there, rebuilt from its own branch, gives the
        # exact 44 bytes pushed in that coinbase.
        data = bytes.fromhex(NAMECOIN["37174"]["header"])
        auxpow, _ = AuxPow.parse(data, 80)
        root = check_merkle_branch(sha256d(data[:80]), auxpow.chain_branch, auxpow.chain_index)
        script = Transaction.parse(auxpow.coinbase)[0].inputs[0].script_sig
        self.assertIn(push_data(commitment(root, 16, 0)), script)

    def test_aux_target_from_reply(self):
        target = 0x00000FFFF0000000000000000000000000000000000000000000000000000000
        le = target.to_bytes(32, "little").hex()
        self.assertEqual(aux_target({"_target": le}), target)
        self.assertEqual(aux_target({"target": le}), target)
        self.assertEqual(aux_target({"bits": "1e0ffff0"}), bits_to_target(0x1E0FFFF0))
        self.assertEqual(aux_target({"bits": 0x207FFFFF}), bits_to_target(0x207FFFFF))
        self.assertRaises(ValueError, aux_target, {})
        self.assertRaises(ValueError, aux_target, {"target": "00" * 31})
        for reply, why in (({"_target": "zz"}, "_target is not hex"),
                           ({"target": "00" * 31}, "target is not 32 bytes")):
            with self.assertRaises(ValueError) as e:
                aux_target(reply)
            self.assertEqual(str(e.exception), why)
        self.assertRaises(ValueError, aux_target, {"target": "00" * 32})


def _coinbase(script_sig):
    return Transaction(1, [TxIn(bytes(32), 0xFFFFFFFF, script_sig, 0xFFFFFFFF)],
                       [TxOut(5000000000, b"\x51")], 0).serialize(with_witness=False)


class SerialisationTests(TestCase):
    def test_field_by_field(self):
        coinbase = _coinbase(b"\x03\x01\x02\x03" + b"\x00" * 4)
        header = BlockHeader(0x20000000, b"\x11" * 32, sha256d(coinbase), 1700000000,
                             0x207FFFFF, 42).serialize()
        cb_branch = (b"\xaa" * 32, b"\xbb" * 32)
        chain_branch = (b"\xcc" * 32,)
        auxpow = build_auxpow(coinbase, header, cb_branch, chain_branch, 1)
        raw = auxpow.serialize()
        at = 0
        self.assertEqual(raw[at:at + len(coinbase)], coinbase)
        at += len(coinbase)
        self.assertEqual(raw[at:at + 32], sha256d(header))  # parent hash, internal order
        at += 32
        self.assertEqual(raw[at], 2)  # coinbase branch length
        self.assertEqual(raw[at + 1:at + 65], b"\xaa" * 32 + b"\xbb" * 32)
        at += 65
        self.assertEqual(raw[at:at + 4], b"\0\0\0\0")  # coinbase index 0
        at += 4
        self.assertEqual(raw[at], 1)  # chain branch length
        self.assertEqual(raw[at + 1:at + 33], b"\xcc" * 32)
        at += 33
        self.assertEqual(raw[at:at + 4], struct.pack("<I", 1))  # chain index
        at += 4
        self.assertEqual(raw[at:], header)
        self.assertEqual(len(raw), at + 80)
        self.assertEqual(AuxPow.from_hex(auxpow.hex()), auxpow)

    def test_truncated(self):
        raw = bytes.fromhex(NAMECOIN["37174"]["header"])[80:]
        for cut in (10, len(raw) - 81, len(raw) - 1):
            self.assertRaises(DecodeError, AuxPow.parse, raw[:cut])
        self.assertRaises(DecodeError, AuxPow.from_hex, raw.hex() + "00")


class RealNamecoinTests(TestCase):
    """Namecoin mainnet blocks 37174 (with the marker) and 19414 (legacy, without)."""

    def _load(self, height):
        vector = NAMECOIN[height]
        data = bytes.fromhex(vector["header"])
        header = BlockHeader.parse(data[:80])
        auxpow, end = AuxPow.parse(data, 80)
        self.assertEqual(end, len(data))
        self.assertEqual(hash_to_display_hex(header.prev_hash), vector["prev_hash"])
        return sha256d(data[:80]), bits_to_target(header.bits), auxpow

    def test_block_37174_parsed(self):
        aux_hash, target, auxpow = self._load("37174")
        vector = NAMECOIN["37174"]
        self.assertEqual(hash_to_display_hex(sha256d(auxpow.coinbase)), vector["coinbase_txid"])
        self.assertEqual(auxpow.coinbase_index, 0)
        self.assertEqual(len(auxpow.coinbase_branch), vector["coinbase_branch_length"])
        self.assertEqual(len(auxpow.chain_branch), vector["chain_branch_length"])
        self.assertEqual(hash_to_display_hex(auxpow.chain_branch[0]), "00" * 31 + "0a")
        self.assertEqual(auxpow.chain_index, 11)
        self.assertEqual(auxpow.parent_hash, sha256d(auxpow.parent_header))
        self.assertEqual(target, 0x242A4A << (8 * (0x1A - 3)))

    def test_block_37174_verifies(self):
        aux_hash, target, auxpow = self._load("37174")
        check_auxpow(auxpow, aux_hash, NAMECOIN_CHAIN_ID, target)

    def test_block_19414_verifies(self):
        aux_hash, target, auxpow = self._load("19414")
        check_auxpow(auxpow, aux_hash, NAMECOIN_CHAIN_ID, target)

    def test_real_block_refused_when_altered(self):
        aux_hash, target, auxpow = self._load("37174")
        cases = {
            "target": dict(target=target >> 40),
            "chain id": dict(chain_id=2),
            "aux hash": dict(aux_hash=sha256d(b"other")),
        }
        for name, change in cases.items():
            kw = dict(auxpow=auxpow, aux_hash=aux_hash, chain_id=NAMECOIN_CHAIN_ID, target=target)
            kw.update(change)
            self.assertRaises(AuxPowError, check_auxpow, **kw)
        self.assertRaises(AuxPowError, check_auxpow, attrs.evolve(auxpow, coinbase_index=1),
                          aux_hash, NAMECOIN_CHAIN_ID, target)
        self.assertRaises(AuxPowError, check_auxpow,
                          attrs.evolve(auxpow, chain_branch=auxpow.chain_branch[:3]),
                          aux_hash, NAMECOIN_CHAIN_ID, target)
        self.assertRaises(AuxPowError, check_auxpow, attrs.evolve(auxpow, chain_index=10),
                          aux_hash, NAMECOIN_CHAIN_ID, target)


hashes32 = st.binary(min_size=32, max_size=32)


@st.composite
def merged(draw):
    """A tree of aux chains, a parent coinbase committing to it, and a mined parent header."""
    height = draw(st.integers(0, 4))
    size = 1 << height
    nonce = draw(st.integers(0, 2**32 - 1))
    count = draw(st.integers(1, min(size, 3)))
    chain_ids = draw(st.lists(st.integers(2, 2**15), min_size=count, max_size=count, unique=True))
    try:
        slots = assign_slots(chain_ids, size, nonce)
    except SlotCollision:
        chain_ids, slots = chain_ids[:1], assign_slots(chain_ids[:1], size, nonce)
    blocks = draw(st.lists(hashes32, min_size=len(chain_ids), max_size=len(chain_ids)))
    others = draw(st.lists(hashes32, max_size=5))
    return size, nonce, chain_ids, slots, blocks, others


class PropertyTests(TestCase):
    @given(st.integers(0, 2**32 - 1), st.integers(-2**31, 2**31 - 1), st.integers(0, 30))
    def test_slot_in_range(self, nonce, chain_id, height):
        self.assertLess(expected_index(nonce, chain_id, 1 << height), 1 << height)

    @given(st.integers(0, 5).flatmap(lambda h: st.lists(hashes32, min_size=1 << h, max_size=1 << h)))
    def test_every_branch_leads_to_the_root(self, leaves):
        root = aux_merkle_root(leaves)
        for i, leaf in enumerate(leaves):
            self.assertEqual(check_merkle_branch(leaf, aux_merkle_branch(leaves, i), i), root)

    @settings(max_examples=40)
    @given(merged())
    def test_built_auxpow_verifies_for_every_chain(self, case):
        size, nonce, chain_ids, slots, blocks, others = case
        leaves = aux_leaves(dict(zip(slots, blocks)), size)
        root = aux_merkle_root(leaves)
        coinbase = _coinbase(b"\x03\x01\x02\x03" + push_data(commitment(root, size, nonce)) + b"\0" * 8)
        branch = merkle_branch(others)
        header = BlockHeader(0x20000000, b"\x22" * 32, merkle_root_from_branch(sha256d(coinbase), branch),
                             1700000000, 0x207FFFFF, 0).serialize()
        target = 2**256 - 1
        for chain_id, slot, block in zip(chain_ids, slots, blocks):
            auxpow = build_auxpow(coinbase, header, branch, aux_merkle_branch(leaves, slot), slot)
            again = AuxPow.from_hex(auxpow.hex())
            self.assertEqual(again, auxpow)
            check_auxpow(again, block, chain_id, target)
            # Another chain's slot, or another block, is refused.
            self.assertRaises(AuxPowError, check_auxpow, again, sha256d(block), chain_id, target)

    @given(st.binary(max_size=300))
    def test_parse_never_raises_other_errors(self, data):
        try:
            AuxPow.parse(data)
        except DecodeError:
            pass


class HashOrderTests(TestCase):
    def test_display_hash_is_reversed_into_a_leaf(self):
        text = "00" * 31 + "01"
        self.assertEqual(hash_from_display_hex(text), b"\x01" + b"\x00" * 31)
