"""
Tests for ``viabtc.p2p.thin``: the seed's thin-block bodies on real blocks
(keys checked against the blocks' published txids), reconstruction with
missing, colliding and wrong transactions, the compact form, and fuzzing:
arbitrary bytes only ever raise ``ThinBlockError``.
"""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.serialize import DecodeError, compact_size
from viabtc.bitcoin.transaction import Transaction
from viabtc.p2p.thin import (
    HELLO_BODY,
    THIN_SUBMIT,
    THIN_UPDATE,
    CachedTx,
    CompactBlock,
    Mismatch,
    Missing,
    Rebuilt,
    ThinBlock,
    ThinBlockError,
    decode_index_reply,
    decode_index_request,
    decode_tx_reply,
    decode_tx_request,
    encode_index_reply,
    encode_index_request,
    encode_tx_reply,
    encode_tx_request,
    is_hello,
    reconstruct,
    reconstruct_compact,
    scan_tx,
    split_block,
)

from ..bitcoin.vectors import BLOCK_HASHES, block_bytes
from .blocks import segwit_block

# Block 100000's txids as every explorer prints them (display order).
TXIDS_100000 = [
    "8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87",
    "fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4",
    "6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4",
    "e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d",
]


def cache_of(txs):
    """A lookup over ``txs`` as the blockmaster's cache gives it."""
    table = {}
    for tx in txs:
        table.setdefault(tx.key, []).append(tx)
    return lambda key: table.get(key, ())


class ThinBodyTests(TestCase):
    def test_seed_layout_on_block_100000(self):
        raw = block_bytes("mainnet-100000")
        header, txs = split_block(raw)
        body = ThinBlock.from_block(header, txs).encode()
        expected = (bytes.fromhex(BLOCK_HASHES["mainnet-100000"]) + raw[:80]
                    + compact_size(len(txs[0].raw)) + txs[0].raw + struct.pack("<I", 3)
                    + b"".join(bytes.fromhex(t)[:8] for t in TXIDS_100000[1:]))
        self.assertEqual(body, expected)
        self.assertEqual(ThinBlock.decode(body), ThinBlock.from_block(header, txs))

    def test_segwit_keys_are_wtxid_prefixes(self):
        header, txs = split_block(segwit_block())
        witness = [tx for tx in txs[1:] if tx.txid != tx.wtxid]
        self.assertTrue(witness)
        for tx in witness:
            self.assertEqual(tx.key, sha256d(tx.raw)[::-1][:8])
            self.assertNotEqual(tx.key, tx.txid[::-1][:8])

    def test_hash_must_be_the_headers(self):
        body = bytearray(ThinBlock.from_block(*split_block(block_bytes("mainnet-100000"))).encode())
        body[0] ^= 1
        self.assertRaises(ThinBlockError, ThinBlock.decode, bytes(body))

    def test_count_beyond_the_body_is_refused_before_reading(self):
        header, txs = split_block(block_bytes("mainnet-000170"))
        body = ThinBlock(header, txs[0].raw, ()).encode()
        forged = body[:-4] + struct.pack("<I", 0xFFFFFFFF)
        self.assertRaises(ThinBlockError, ThinBlock.decode, forged)

    def test_request_and_reply_layout(self):
        keys = (b"\x01" * 8, b"\x02" * 8)
        self.assertEqual(encode_tx_request(keys), b"\x02\x00\x00\x00" + b"\x01" * 8 + b"\x02" * 8)
        self.assertEqual(decode_tx_request(encode_tx_request(keys)), keys)
        raws = (b"abc", b"x" * 300)
        body = encode_tx_reply(raws)
        self.assertEqual(body, b"\x02\x00\x00\x00\x03abc\xfd\x2c\x01" + b"x" * 300)
        self.assertEqual(decode_tx_reply(body), raws)

    def test_seed_style_wide_varint_is_read(self):
        # The seed writes some lengths wider than needed (ref §12.24).
        self.assertEqual(decode_tx_reply(b"\x01\x00\x00\x00\xfe\x03\x00\x00\x00abc"), (b"abc",))


class ReconstructTests(TestCase):
    def setUp(self):
        self.raw = segwit_block()
        self.header, self.txs = split_block(self.raw)
        self.thin = ThinBlock.from_block(self.header, self.txs)

    def test_full_cache_rebuilds_the_block_byte_for_byte(self):
        result = reconstruct(self.thin, cache_of(self.txs[1:]))
        self.assertIsInstance(result, Rebuilt)
        self.assertEqual(result.block, self.raw)

    def test_missing_positions_then_supplied(self):
        result = reconstruct(self.thin, cache_of(self.txs[3:]))
        self.assertEqual(result, Missing((0, 1)))
        supplied = {tx.key: tx for tx in self.txs[1:3]}
        self.assertEqual(reconstruct(self.thin, cache_of(self.txs[3:]), supplied).block, self.raw)

    def test_ambiguous_key_is_asked_for(self):
        twin = CachedTx(b"not the real one", sha256d(b"a"), self.txs[5].wtxid)
        result = reconstruct(self.thin, cache_of(self.txs[1:] + [twin]))
        self.assertEqual(result, Missing((4,)))

    def test_testnet_block_rebuilds(self):
        raw = block_bytes("testnet-924634")
        header, txs = split_block(raw)
        self.assertEqual(reconstruct(ThinBlock.from_block(header, txs), cache_of(txs[1:])).block, raw)

    def test_wrong_candidate_fails_the_merkle_check(self):
        impostor = CachedTx(self.txs[2].raw, sha256d(b"other"), self.txs[4].wtxid)
        cache = cache_of([t for t in self.txs[1:] if t is not self.txs[4]] + [impostor])
        result = reconstruct(self.thin, cache)
        self.assertIsInstance(result, Mismatch)
        self.assertIn("merkle", result.reason)
        # The peer's transaction for every key repairs it.
        supplied = {tx.key: tx for tx in self.txs[1:]}
        self.assertIsInstance(reconstruct(self.thin, cache, supplied), Rebuilt)

    def test_witness_commitment_is_checked(self):
        # Same txid, different witness: the merkle root matches, the witness root does not.
        real = next(tx for tx in self.txs[1:] if tx.txid != tx.wtxid)
        forged = CachedTx(real.raw, real.txid, sha256d(b"malleated"))
        lookup = cache_of(self.txs[1:])
        result = reconstruct(self.thin, lambda key: (forged,) if key == real.key else lookup(key))
        self.assertIsInstance(result, Mismatch)
        self.assertIn("witness", result.reason)

    def test_coinbase_without_reserved_value_is_left_to_the_node(self):
        # The seed's jobmaster sends a legacy coinbase (ref §12.8).
        raw = block_bytes("mainnet-100000")
        header, txs = split_block(raw)
        self.assertEqual(reconstruct(ThinBlock.from_block(header, txs), cache_of(txs[1:])).block, raw)


class CompactTests(TestCase):
    def setUp(self):
        self.raw = block_bytes("testnet-924634")
        self.header, self.txs = split_block(self.raw)

    def test_round_trip_and_rebuild(self):
        compact = CompactBlock.from_block(THIN_UPDATE, self.header, self.txs, nonce=0x1122334455667788)
        decoded = CompactBlock.decode(compact.encode())
        self.assertEqual(decoded, compact)
        self.assertEqual(len(compact.encode()), 1 + 80 + 8 + 1 + len(self.txs[0].raw) + 4 + 6 * 14)
        self.assertEqual(reconstruct_compact(decoded, self.txs[1:]).block, self.raw)

    def test_short_ids_are_bip152s(self):
        from viabtc.bitcoin.shortid import short_id_keys, short_txid
        compact = CompactBlock.from_block(THIN_SUBMIT, self.header, self.txs, nonce=99)
        k0, k1 = short_id_keys(self.header, 99)
        self.assertEqual(compact.short_ids, tuple(short_txid(k0, k1, tx.wtxid) for tx in self.txs[1:]))

    def test_missing_by_position(self):
        compact = CompactBlock.from_block(THIN_SUBMIT, self.header, self.txs, nonce=7)
        self.assertEqual(reconstruct_compact(compact, self.txs[2:]), Missing((0,)))
        self.assertEqual(reconstruct_compact(compact, self.txs[2:], {0: self.txs[1]}).block, self.raw)

    def test_index_messages(self):
        h = sha256d(b"block")
        self.assertEqual(decode_index_request(encode_index_request(h, (0, 5))), (h, (0, 5)))
        self.assertEqual(decode_index_reply(encode_index_reply(h, (b"t1", b"t2"))), (h, (b"t1", b"t2")))

    def test_hello(self):
        self.assertTrue(is_hello(HELLO_BODY))
        self.assertFalse(is_hello(b"\xff"))
        self.assertFalse(is_hello(b"[]"))


class ScanTests(TestCase):
    """``scan_tx`` is held to ``Transaction.parse``, the reference parser."""

    def reference(self, raw, offset=0):
        try:
            tx, end = Transaction.parse(raw, offset)
        except DecodeError:
            return None
        try:
            txid = tx.txid()
        except ValueError:
            # A negative output value: parsed, but Transaction will not re-serialize it.
            txid = None
        return end, txid, sha256d(raw[offset:end])

    def scanned(self, raw, offset=0):
        try:
            return scan_tx(raw, offset)
        except ThinBlockError:
            return None

    def test_real_and_segwit_blocks(self):
        for raw in (block_bytes("mainnet-100000"), block_bytes("testnet-924634"), segwit_block()):
            offset = 81
            while offset < len(raw):
                expected = self.reference(raw, offset)
                self.assertEqual(scan_tx(raw, offset), expected)
                offset = expected[0]

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_agrees_with_the_reference_on_mutations(self, data):
        raw = bytearray(data.draw(st.sampled_from(split_block(segwit_block(4))[1])).raw)
        for _ in range(data.draw(st.integers(0, 3))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(raw[:data.draw(st.integers(0, len(raw)))])
        scanned, expected = self.scanned(raw), self.reference(raw)
        if expected is not None and expected[1] is None:
            scanned, expected = scanned[::2], expected[::2]
        self.assertEqual(scanned, expected)


DECODERS = [ThinBlock.decode, CompactBlock.decode, decode_tx_request, decode_tx_reply,
            decode_index_request, decode_index_reply, split_block, CachedTx.parse]


class FuzzTests(TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=400), st.sampled_from(DECODERS))
    def test_arbitrary_bytes_raise_only_the_codec_error(self, data, decode):
        try:
            decode(data)
        except ThinBlockError:
            pass

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_mutated_real_bodies(self, data):
        header, txs = split_block(block_bytes("testnet-924634"))
        body = bytearray(ThinBlock.from_block(header, txs).encode())
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(body) - 1))
            body[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(body)))
        try:
            thin = ThinBlock.decode(bytes(body[:cut]))
        except ThinBlockError:
            return
        result = reconstruct(thin, cache_of(txs[1:]))
        self.assertIsInstance(result, (Rebuilt, Missing, Mismatch))
