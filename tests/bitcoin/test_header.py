"""Tests for ``viabtc.bitcoin.header``."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_display_hex, hash_to_int
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.serialize import DecodeError
from viabtc.bitcoin.target import bits_to_target

from .vectors import BLOCK_HASHES, block_bytes

u32 = st.integers(min_value=0, max_value=2**32 - 1)
h32 = st.binary(min_size=32, max_size=32)


class BlockHeaderTests(TestCase):
    def test_genesis_fields(self):
        header = BlockHeader.parse(block_bytes("mainnet-000000")[:80])
        self.assertEqual(
            header,
            BlockHeader(
                version=1,
                prev_hash=bytes(32),
                merkle_root=hash_from_display_hex(
                    "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
                ),
                time=1231006505,
                bits=0x1D00FFFF,
                nonce=2083236893,
            ),
        )
        self.assertEqual(hash_to_display_hex(header.hash()), BLOCK_HASHES["mainnet-000000"])

    def test_real_headers_hash_and_meet_their_target(self):
        for name, display in BLOCK_HASHES.items():
            raw = block_bytes(name)[:80]
            header = BlockHeader.parse(raw)
            self.assertEqual(header.serialize(), raw)
            self.assertEqual(hash_to_display_hex(header.hash()), display)
            self.assertLessEqual(hash_to_int(header.hash()), bits_to_target(header.bits))

    def test_block_100000(self):
        header = BlockHeader.parse(block_bytes("mainnet-100000")[:80])
        self.assertEqual(
            hash_to_display_hex(header.prev_hash),
            "000000000002d01c1fccc21636b607dfd930d31d01c3a62104612a1719011250",
        )
        self.assertEqual((header.time, header.bits, header.nonce), (1293623863, 453281356, 274148111))

    def test_wrong_length(self):
        self.assertRaises(DecodeError, BlockHeader.parse, bytes(79))
        self.assertRaises(DecodeError, BlockHeader.parse, bytes(81))

    def test_field_out_of_range(self):
        for bad in [
            BlockHeader(2**32, bytes(32), bytes(32), 0, 0, 0),
            BlockHeader(1, bytes(32), bytes(32), -1, 0, 0),
            BlockHeader(1, bytes(31), bytes(32), 0, 0, 0),
        ]:
            self.assertRaises(ValueError, bad.serialize)

    @given(u32, h32, h32, u32, u32, u32)
    def test_round_trip(self, version, prev_hash, merkle_root, time, bits, nonce):
        header = BlockHeader(version, prev_hash, merkle_root, time, bits, nonce)
        raw = header.serialize()
        self.assertEqual(len(raw), 80)
        self.assertEqual(BlockHeader.parse(raw), header)
