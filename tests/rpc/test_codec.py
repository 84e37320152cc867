"""Tests for viabtc.rpc.codec: seed-exact framing, heartbeat TLV, auth tags."""

import struct
import zlib

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.rpc.codec import (
    AUTH_EXT_SIZE,
    HEADER,
    MAGIC,
    Command,
    Packet,
    PacketDecoder,
    PacketType,
    ProtocolError,
    clamp_heartbeat_timeout,
    decode_datagram,
    encode,
    heartbeat_body,
    heartbeat_request,
    parse_auth_ext,
    parse_heartbeat_timeout,
)

SECRET = b"shared secret of the pool"

packets = st.builds(
    Packet,
    command=st.integers(0, 0xFFFFFFFF),
    body=st.binary(max_size=300),
    pkg_type=st.integers(0, 0xFFFF),
    sequence=st.integers(0, 0xFFFFFFFF),
    result=st.integers(0, 0xFFFFFFFF),
    req_id=st.integers(0, 2**64 - 1),
    ext=st.binary(max_size=40),
)


class HeaderVectorTests(TestCase):
    """The bytes a C peer writes and reads (ref §2.2)."""

    def test_header_is_36_bytes(self):
        self.assertEqual(HEADER.size, 36)

    def test_magic_is_beep(self):
        data = encode(Packet(Command.UPDATE_JOB, b"{}"))
        self.assertEqual(data[:4], b"beep")
        self.assertEqual(MAGIC.to_bytes(4, "little"), b"beep")

    def test_exact_layout(self):
        packet = Packet(
            Command.FOUND_BLOCK,
            b"hello",
            PacketType.REQUEST,
            sequence=0x01020304,
            result=7,
            req_id=0x1122334455667788,
        )
        data = encode(packet)
        self.assertEqual(len(data), 36 + 5)
        self.assertEqual(data[4:8], bytes([2, 0, 0, 0]))
        self.assertEqual(data[8:10], bytes([0, 0]))
        self.assertEqual(data[10:14], bytes([7, 0, 0, 0]))
        self.assertEqual(data[18:22], bytes([4, 3, 2, 1]))
        self.assertEqual(data[22:30], bytes.fromhex("8877665544332211"))
        self.assertEqual(data[30:34], bytes([5, 0, 0, 0]))
        self.assertEqual(data[34:36], bytes([0, 0]))
        self.assertEqual(data[36:], b"hello")

    def test_crc_is_zlib_crc32_with_field_zeroed(self):
        data = encode(Packet(Command.UPDATE_BAN, b'{"ip":[],"op":"add"}', ext=b"xy"))
        crc = struct.unpack_from("<I", data, 14)[0]
        zeroed = data[:14] + b"\x00" * 4 + data[18:]
        self.assertEqual(crc, zlib.crc32(zeroed) & 0xFFFFFFFF)

    def test_known_heartbeat_packet(self):
        """A heartbeat REQUEST as the C client sends it, checked byte for byte."""
        data = encode(heartbeat_request(3.0))
        expected = bytearray(
            b"beep"
            + (0).to_bytes(4, "little")
            + (0).to_bytes(2, "little")
            + (0).to_bytes(4, "little")
            + b"\x00\x00\x00\x00"
            + (0).to_bytes(4, "little")
            + (0).to_bytes(8, "little")
            + (8).to_bytes(4, "little")
            + (0).to_bytes(2, "little")
            + bytes.fromhex("01000400b80b0000")
        )
        expected[14:18] = zlib.crc32(bytes(expected)).to_bytes(4, "little")
        self.assertEqual(data, bytes(expected))

    def test_command_ids(self):
        self.assertEqual(
            {c.name: c.value for c in Command},
            {
                "HEARTBEAT": 0, "UPDATE_JOB": 1, "FOUND_BLOCK": 2, "UPDATE_BAN": 3,
                "HEIGHT_UPDATE": 4, "CHECK_SHARE": 5, "SUBMIT_BLOCK": 10,
                "COMPRESS_BLOCK": 11, "UPDATE_BLOCK": 12, "THIN_BLOCK_SUBMIT": 13,
                "THIN_BLOCK_UPDATE": 14, "THIN_BLOCK_TX": 15, "META_BLOCK": 100,
                "META_EVENT": 101, "META_SHARE": 102, "META_MONITOR": 103,
                "META_HASH": 104, "META_MONITOR_INT": 105, "META_MONITOR_FLOAT": 106,
            },
        )
        self.assertEqual([t.value for t in PacketType], [0, 1, 2])

    def test_out_of_range_field_is_value_error(self):
        self.assertRaises(ValueError, encode, Packet(2**32, b""))
        self.assertRaises(ValueError, encode, Packet(1, b"", ext=b"x" * 70000))

    def test_reply_keeps_command_and_sequence(self):
        packet = Packet(Command.META_SHARE, b"body", PacketType.REQUEST, 99, req_id=5)
        self.assertEqual(
            packet.reply(), Packet(Command.META_SHARE, b"", PacketType.REPLY, 99, req_id=5)
        )


class HeartbeatTLVTests(TestCase):
    def test_body_bytes(self):
        self.assertEqual(heartbeat_body(3.0), bytes.fromhex("01000400") + (3000).to_bytes(4, "little"))
        self.assertEqual(heartbeat_body(600), bytes.fromhex("01000400c0270900"))

    def test_parse(self):
        self.assertEqual(parse_heartbeat_timeout(heartbeat_body(5.5)), 5.5)
        self.assertIsNone(parse_heartbeat_timeout(b""))
        other = struct.pack("<HH", 9, 2) + b"zz"
        self.assertEqual(parse_heartbeat_timeout(other + heartbeat_body(4)), 4.0)
        self.assertIsNone(parse_heartbeat_timeout(other))

    def test_truncated(self):
        self.assertRaises(ProtocolError, parse_heartbeat_timeout, b"\x01\x00")
        self.assertRaises(ProtocolError, parse_heartbeat_timeout, b"\x01\x00\x04\x00\x01")

    def test_clamp(self):
        self.assertEqual(clamp_heartbeat_timeout(0.1), 2.0)
        self.assertEqual(clamp_heartbeat_timeout(3), 3)
        self.assertEqual(clamp_heartbeat_timeout(10_000), 600.0)


class DecoderTests(TestCase):
    def test_byte_by_byte(self):
        sent = [
            Packet(Command.UPDATE_JOB, b'{"job_id":"1"}'),
            heartbeat_request(3),
            Packet(Command.SUBMIT_BLOCK, bytes(range(256)) * 4, PacketType.PUSH, 3),
        ]
        stream = b"".join(encode(p) for p in sent)
        decoder = PacketDecoder(max_size=4096)
        got = []
        for i in range(len(stream)):
            got.extend(decoder.feed(stream[i : i + 1]))
        self.assertEqual(got, sent)

    def test_bad_magic(self):
        decoder = PacketDecoder(max_size=4096)
        e = self.assertRaises(ProtocolError, decoder.feed, b"GET / HTTP/1.1\r\n")
        self.assertEqual(e.reason, "bad magic")

    def test_bad_magic_detected_before_full_header(self):
        self.assertRaises(ProtocolError, PacketDecoder(max_size=4096).feed, b"xxxx")

    def test_bad_crc(self):
        data = bytearray(encode(Packet(1, b"body")))
        data[-1] ^= 1
        e = self.assertRaises(ProtocolError, PacketDecoder(max_size=4096).feed, bytes(data))
        self.assertEqual(e.reason, "bad crc32")

    def test_oversize_rejected_from_header_alone(self):
        data = encode(Packet(1, b"x" * 100))
        decoder = PacketDecoder(max_size=100)
        e = self.assertRaises(ProtocolError, decoder.feed, data[:36])
        self.assertIn("exceeds max size", e.reason)

    def test_packets_before_error_are_kept(self):
        good = Packet(1, b"good")
        e = self.assertRaises(
            ProtocolError, PacketDecoder(max_size=4096).feed, encode(good) + b"junkjunk"
        )
        self.assertEqual(e.packets, [good])

    def test_max_size_bounds_whole_packet(self):
        data = encode(Packet(1, b"x" * 64))
        self.assertEqual(len(PacketDecoder(max_size=len(data)).feed(data)), 1)
        self.assertRaises(ProtocolError, PacketDecoder(max_size=len(data) - 1).feed, data)

    @given(st.lists(packets, max_size=5), st.data())
    @settings(max_examples=200)
    def test_round_trip_any_split(self, sent, data):
        stream = b"".join(encode(p) for p in sent)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
        decoder = PacketDecoder(max_size=1 << 20)
        got = []
        start = 0
        for cut in cuts + [len(stream)]:
            got.extend(decoder.feed(stream[start:cut]))
            start = cut
        self.assertEqual(got, sent)

    @given(st.binary(max_size=200))
    @settings(max_examples=500)
    def test_fuzz_only_protocol_error(self, junk):
        decoder = PacketDecoder(max_size=150, secret=SECRET)
        try:
            decoder.feed(junk)
        except ProtocolError:
            pass

    @given(packets, st.integers(0, 40), st.integers(0, 255))
    @settings(max_examples=300)
    def test_fuzz_mutated_packets(self, packet, position, value):
        data = bytearray(encode(packet))
        data[position % len(data)] = value
        for secret in (None, SECRET):
            try:
                PacketDecoder(max_size=1 << 20, secret=secret).feed(bytes(data))
                decode_datagram(bytes(data), 1 << 20, secret)
            except ProtocolError:
                pass


class DatagramTests(TestCase):
    def test_one_packet(self):
        packet = Packet(Command.HEIGHT_UPDATE, b'{"height":1}')
        self.assertEqual(decode_datagram(encode(packet), 1024), packet)

    def test_short(self):
        data = encode(Packet(1, b"body"))
        for n in (0, 3, 20, 36, len(data) - 1):
            self.assertRaises(ProtocolError, decode_datagram, data[:n], 1024)

    def test_oversize(self):
        data = encode(Packet(1, b"x" * 100))
        e = self.assertRaises(ProtocolError, decode_datagram, data, 50)
        self.assertIn("exceeds max size", e.reason)

    def test_trailing_bytes(self):
        data = encode(Packet(1, b"x"))
        e = self.assertRaises(ProtocolError, decode_datagram, data + b"\x00", 1024)
        self.assertIn("trailing", e.reason)

    @given(st.binary(max_size=200))
    @settings(max_examples=500)
    def test_fuzz_only_protocol_error(self, junk):
        try:
            decode_datagram(junk, 150, SECRET)
        except ProtocolError:
            pass

    @given(packets)
    def test_round_trip(self, packet):
        self.assertEqual(decode_datagram(encode(packet), 1 << 20), packet)


class AuthTagTests(TestCase):
    """The HMAC tag in ext (architecture §1: our addition, C peers skip ext)."""

    def signed(self, packet, **kw):
        return encode(packet, SECRET, now=1_700_000_000.25, nonce=b"\x01" * 8, **kw)

    def test_ext_layout(self):
        data = self.signed(Packet(Command.HEIGHT_UPDATE, b"{}", sequence=4))
        self.assertEqual(HEADER.unpack_from(data)[-1], AUTH_EXT_SIZE)
        self.assertEqual(AUTH_EXT_SIZE, 49)
        packet = decode_datagram(data, 1024, SECRET)
        stamp = parse_auth_ext(packet.ext)
        self.assertEqual(data[36], 1)
        self.assertEqual(stamp.timestamp_ms, 1_700_000_000_250)
        self.assertEqual(stamp.nonce, b"\x01" * 8)
        self.assertEqual(len(stamp.tag), 32)
        self.assertEqual(attrs.evolve(packet, ext=b""), Packet(Command.HEIGHT_UPDATE, b"{}", sequence=4))

    def test_c_peer_view(self):
        """A peer without the secret (a C module) decodes it and skips ext."""
        packet = Packet(Command.UPDATE_JOB, b'{"a":1}')
        got = decode_datagram(self.signed(packet), 1024)
        self.assertEqual((got.command, got.body), (packet.command, packet.body))

    def test_missing_tag(self):
        data = encode(Packet(1, b"x"))
        e = self.assertRaises(ProtocolError, decode_datagram, data, 1024, SECRET)
        self.assertEqual(e.reason, "missing auth tag")
        self.assertRaises(ProtocolError, PacketDecoder(1024, SECRET).feed, data)

    def test_wrong_secret(self):
        data = self.signed(Packet(1, b"x"))
        e = self.assertRaises(ProtocolError, decode_datagram, data, 1024, b"other")
        self.assertEqual(e.reason, "bad auth tag")

    def test_tag_cannot_be_transplanted(self):
        """Changing command, sequence or body under the same tag fails."""
        original = Packet(Command.HEIGHT_UPDATE, b'{"height":100}', sequence=1)
        ext = decode_datagram(self.signed(original), 1024, SECRET).ext
        for forged in (
            attrs.evolve(original, command=Command.UPDATE_BAN),
            attrs.evolve(original, sequence=2),
            attrs.evolve(original, body=b'{"height":101}'),
            attrs.evolve(original, pkg_type=PacketType.REPLY),
        ):
            data = encode(attrs.evolve(forged, ext=ext))
            e = self.assertRaises(ProtocolError, decode_datagram, data, 1024, SECRET)
            self.assertEqual(e.reason, "bad auth tag")

    def test_unsupported_version(self):
        data = bytearray(self.signed(Packet(1, b"x")))
        data[36] = 2
        data[14:18] = b"\x00" * 4
        data[14:18] = zlib.crc32(bytes(data)).to_bytes(4, "little")
        e = self.assertRaises(ProtocolError, decode_datagram, bytes(data), 1024, SECRET)
        self.assertIn("version 2", e.reason)

    def test_signing_requires_empty_ext(self):
        self.assertRaises(ValueError, encode, Packet(1, b"", ext=b"x"), SECRET)

    @given(packets.map(lambda p: attrs.evolve(p, ext=b"")), st.binary(min_size=8, max_size=8))
    def test_signed_round_trip(self, packet, nonce):
        data = encode(packet, SECRET, now=1_700_000_000, nonce=nonce)
        got = PacketDecoder(1 << 20, SECRET).feed(data)
        self.assertEqual([attrs.evolve(p, ext=b"") for p in got], [packet])
