"""Tests for ``viabtc.bitcoin.serialize``."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.serialize import (
    DecodeError,
    bip34_height_push,
    compact_size,
    decode_script_num,
    push_data,
    push_int,
    read_bip34_height,
    read_compact_size,
    script_num,
)


class CompactSizeTests(TestCase):
    VECTORS = [
        (0, "00"),
        (0xFC, "fc"),
        (0xFD, "fdfd00"),
        (0xFFFF, "fdffff"),  # the seed wrote fe ffff0000 here (ref §12.24)
        (0x10000, "fe00000100"),
        (0xFFFFFFFF, "feffffffff"),  # and ff ... here
        (0x100000000, "ff0000000001000000"),
        (2**64 - 1, "ffffffffffffffffff"),
    ]

    def test_vectors(self):
        for n, encoded in self.VECTORS:
            self.assertEqual(compact_size(n).hex(), encoded)
            self.assertEqual(read_compact_size(bytes.fromhex(encoded)), (n, len(encoded) // 2))

    def test_out_of_range(self):
        self.assertRaises(ValueError, compact_size, -1)
        self.assertRaises(ValueError, compact_size, 2**64)

    def test_non_canonical_rejected(self):
        for encoded in ["fdfc00", "fe00000000", "feffff0000", "ffffffffff00000000"]:
            self.assertRaises(DecodeError, read_compact_size, bytes.fromhex(encoded))

    def test_truncated(self):
        for encoded in ["", "fd", "fdff", "feffffff", "ff00000000000000"]:
            self.assertRaises(DecodeError, read_compact_size, bytes.fromhex(encoded))

    def test_offset(self):
        self.assertEqual(read_compact_size(b"\xaa\xfd\x00\x01\xbb", 1), (0x100, 4))

    @given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=4))
    def test_round_trip(self, n, tail):
        encoded = compact_size(n)
        self.assertEqual(read_compact_size(b"x" + encoded + tail, 1), (n, 1 + len(encoded)))


class ScriptNumTests(TestCase):
    VECTORS = [
        (0, ""),
        (1, "01"),
        (-1, "81"),
        (127, "7f"),
        (128, "8000"),
        (-128, "8080"),
        (255, "ff00"),
        (256, "0001"),
        (-255, "ff80"),
        (32767, "ff7f"),
        (32768, "008000"),
        (227931, "5b7a03"),  # BIP34 activation height on mainnet
        (2**31 - 1, "ffffff7f"),
        (-(2**31 - 1), "ffffffff"),
        (2**31, "0000008000"),
    ]

    def test_vectors(self):
        for n, encoded in self.VECTORS:
            self.assertEqual(script_num(n).hex(), encoded)
            self.assertEqual(decode_script_num(bytes.fromhex(encoded)), n)

    def test_non_minimal_rejected(self):
        for encoded in ["00", "80", "0100", "0180", "ff0000"]:
            self.assertRaises(DecodeError, decode_script_num, bytes.fromhex(encoded))

    @given(st.integers(min_value=-(2**63), max_value=2**63))
    def test_round_trip(self, n):
        self.assertEqual(decode_script_num(script_num(n)), n)


class PushTests(TestCase):
    def test_push_data_sizes(self):
        self.assertEqual(push_data(b""), b"\x00")
        self.assertEqual(push_data(b"\x07" * 75)[:1], b"\x4b")
        self.assertEqual(push_data(b"\x07" * 76)[:2], b"\x4c\x4c")
        self.assertEqual(push_data(b"\x07" * 255)[:2], b"\x4c\xff")
        self.assertEqual(push_data(b"\x07" * 256)[:3], b"\x4d\x00\x01")
        self.assertEqual(push_data(b"\x07" * 65536)[:5], b"\x4e\x00\x00\x01\x00")

    @given(st.binary(max_size=70000))
    def test_push_data_carries_data(self, data):
        pushed = push_data(data)
        self.assertTrue(pushed.endswith(data))
        self.assertLessEqual(len(pushed) - len(data), 5)

    def test_push_int(self):
        self.assertEqual(push_int(0), b"\x00")
        self.assertEqual(push_int(-1), b"\x4f")
        self.assertEqual(push_int(1), b"\x51")
        self.assertEqual(push_int(16), b"\x60")
        self.assertEqual(push_int(17), b"\x01\x11")
        self.assertEqual(push_int(-2), b"\x01\x82")
        self.assertEqual(push_int(1000), b"\x02\xe8\x03")


class BIP34Tests(TestCase):
    """
    Heights as Core's ``CScript() << nHeight`` writes them, which is what
    ``ContextualCheckBlock`` compares the scriptSig prefix with.
    """

    VECTORS = [
        (0, "00"),
        (1, "51"),
        (16, "60"),
        (17, "0111"),
        (127, "017f"),
        (128, "028000"),
        (255, "02ff00"),
        (256, "020001"),
        (32767, "02ff7f"),
        (32768, "03008000"),
        (227931, "035b7a03"),
        (840000, "0340d10c"),  # the fourth halving block
        (8388607, "03ffff7f"),
        (8388608, "0400008000"),
        (2**31 - 1, "04ffffff7f"),
    ]

    def test_vectors(self):
        for height, encoded in self.VECTORS:
            self.assertEqual(bip34_height_push(height).hex(), encoded)
            self.assertEqual(read_bip34_height(bytes.fromhex(encoded) + b"/pool/"), height)

    def test_negative_height(self):
        self.assertRaises(ValueError, bip34_height_push, -1)

    def test_non_canonical_rejected(self):
        # A one-byte push of 5 instead of OP_5, a padded push, a negative
        # number, OP_1NEGATE, a truncated push and a non-push opcode.
        for encoded in ["0105", "02110000", "0181", "4f", "03ffff", "76a9", "", "4c0111"]:
            self.assertRaises(DecodeError, read_bip34_height, bytes.fromhex(encoded))

    @given(st.integers(min_value=0, max_value=2**31 - 1), st.binary(max_size=10))
    def test_round_trip(self, height, rest):
        self.assertEqual(read_bip34_height(bip34_height_push(height) + rest), height)
