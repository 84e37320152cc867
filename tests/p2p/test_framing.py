"""The P2P envelope: known bytes, limits checked before buffering, any bytes fail only as P2PError."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from viabtc.p2p.framing import HEADER_SIZE, MAX_PAYLOAD, FrameDecoder, P2PError, encode_frame

MAINNET = bytes.fromhex("f9beb4d9")
#: verack on mainnet, as every reference prints it (checksum of nothing: 5df6e0e2).
VERACK = bytes.fromhex("f9beb4d976657261636b000000000000000000005df6e0e2")


class FramingTests(SynchronousTestCase):
    def test_known_verack(self):
        self.assertEqual(encode_frame(MAINNET, "verack", b""), VERACK)
        self.assertEqual(FrameDecoder(MAINNET).feed(VERACK), [("verack", b"")])

    def test_byte_by_byte(self):
        decoder = FrameDecoder(MAINNET)
        data = encode_frame(MAINNET, "ping", b"12345678") + VERACK
        got = []
        for i in range(len(data)):
            got.extend(decoder.feed(data[i:i + 1]))
            self.assertEqual(decoder.pending, i + 1 not in (len(data), len(data) - len(VERACK)))
        self.assertEqual(got, [("ping", b"12345678"), ("verack", b"")])

    def test_wrong_magic_refused_on_first_byte(self):
        with self.assertRaises(P2PError):
            FrameDecoder(MAINNET).feed(b"\xfa")

    def test_oversized_refused_before_payload(self):
        header = MAINNET + b"block".ljust(12, b"\0") + (MAX_PAYLOAD + 1).to_bytes(4, "little") + b"\0" * 4
        decoder = FrameDecoder(MAINNET)
        with self.assertRaises(P2PError) as e:
            decoder.feed(header)
        self.assertIn("exceeds", str(e.exception))

    def test_configured_limit(self):
        decoder = FrameDecoder(MAINNET, max_payload=10)
        with self.assertRaises(P2PError):
            decoder.feed(encode_frame(MAINNET, "x", b"0" * 11))

    def test_bad_checksum(self):
        data = bytearray(encode_frame(MAINNET, "ping", b"12345678"))
        data[-1] ^= 1
        with self.assertRaises(P2PError):
            FrameDecoder(MAINNET).feed(bytes(data))

    def test_bad_command_names(self):
        for raw in (b"\0" * 12, b"ve\0rack\0\0\0\0\0", b"ver ack\0\0\0\0\0", b"\xffx".ljust(12, b"\0")):
            data = MAINNET + raw + b"\0" * 4 + bytes.fromhex("5df6e0e2")
            with self.assertRaises(P2PError):
                FrameDecoder(MAINNET).feed(data)

    def test_stays_failed(self):
        decoder = FrameDecoder(MAINNET)
        self.assertRaises(P2PError, decoder.feed, b"junk")
        self.assertRaises(P2PError, decoder.feed, VERACK)

    def test_encode_refuses_long_command(self):
        self.assertRaises(ValueError, encode_frame, MAINNET, "x" * 13, b"")

    @settings(max_examples=300)
    @given(st.lists(st.binary(max_size=64), max_size=8))
    def test_fuzz_only_p2p_errors(self, chunks):
        decoder = FrameDecoder(MAINNET, max_payload=1000)
        try:
            for chunk in chunks:
                for command, payload in decoder.feed(MAINNET + chunk):
                    self.assertLessEqual(len(payload), 1000)
        except P2PError:
            pass

    @given(st.lists(st.tuples(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
                              st.binary(max_size=300)), max_size=5),
           st.integers(1, 50))
    def test_round_trip_any_split(self, messages, step):
        data = b"".join(encode_frame(MAINNET, c, p) for c, p in messages)
        decoder = FrameDecoder(MAINNET)
        got = []
        for i in range(0, len(data), step):
            got.extend(decoder.feed(data[i:i + step]))
        self.assertEqual(got, messages)
        self.assertFalse(decoder.pending)
        self.assertEqual(HEADER_SIZE, 24)
