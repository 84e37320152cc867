"""Tests for ``viabtc.bitcoin.hashing``."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import (
    hash160,
    hash_from_display_hex,
    hash_to_display_hex,
    hash_to_int,
    sha256,
    sha256d,
)

GENESIS_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b2"
    "7ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"


class HashFunctionTests(TestCase):
    def test_sha256_empty(self):
        self.assertEqual(
            sha256(b"").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )

    def test_sha256d_hello(self):
        # Bitcoin wiki's "hello" example of SHA-256d.
        self.assertEqual(
            sha256d(b"hello").hex(),
            "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50",
        )

    def test_genesis_header_hash(self):
        self.assertEqual(hash_to_display_hex(sha256d(GENESIS_HEADER)), GENESIS_HASH)

    def test_hash160_of_satoshis_genesis_key(self):
        # The genesis output key pays 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,
        # whose hash160 is 62e907b15cbf27d5425399ebf6f0fb50ebb88f18.
        key = bytes.fromhex(
            "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f3"
            "5504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
        )
        self.assertEqual(hash160(key).hex(), "62e907b15cbf27d5425399ebf6f0fb50ebb88f18")


class ByteOrderTests(TestCase):
    def test_display_hex_is_reversed_internal_order(self):
        internal = sha256d(GENESIS_HEADER)
        self.assertEqual(internal[-1], 0)
        self.assertEqual(hash_from_display_hex(GENESIS_HASH), internal)

    def test_hash_to_int_reads_little_endian(self):
        self.assertEqual(hash_to_int(hash_from_display_hex(GENESIS_HASH)), int(GENESIS_HASH, 16))

    def test_bad_display_hex(self):
        for text in ["", "00" * 31, "zz" * 32, "00" * 33, None]:
            self.assertRaises(ValueError, hash_from_display_hex, text)

    def test_bad_hash_length(self):
        self.assertRaises(ValueError, hash_to_display_hex, b"\0" * 31)

    @given(st.binary(min_size=32, max_size=32))
    def test_round_trip(self, h):
        self.assertEqual(hash_from_display_hex(hash_to_display_hex(h)), h)
