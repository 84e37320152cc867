"""The miner's pure arithmetic: headers from jobs, version rolling, the search."""

import struct

from hypothesis import given, strategies as st
from twisted.trial import unittest

from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_int, sha256d
from viabtc.bitcoin.merkle import merkle_branch, merkle_root
from viabtc.bitcoin.target import bits_to_target, difficulty_to_target
from viabtc.stratum.client import StratumJob, prevhash_to_stratum
from viabtc.tools.mining import (
    Cursor,
    build_coinbase,
    extranonce2_bytes,
    grind,
    header_prefix,
    roll_version,
    rolling_steps,
)

# The genesis coinbase, cut the way a pool cuts it: coinbase1 ends inside the
# scriptSig, then 4 bytes of "extranonce1" and 8 of "extranonce2" (taken from
# the headline text), then coinbase2.
GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72"
    "206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff"
    "0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f"
    "61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000")
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_ROOT = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
GENESIS_TIME = 1231006505
GENESIS_BITS = 0x1D00FFFF
GENESIS_NONCE = 2083236893


def genesis_job():
    cut = 60
    notify = ["1", prevhash_to_stratum(b"\x00" * 32), GENESIS_COINBASE[:cut].hex(),
              GENESIS_COINBASE[cut + 12:].hex(), [], "00000001", f"{GENESIS_BITS:08x}",
              f"{GENESIS_TIME:08x}", True]
    return StratumJob.from_notify(notify), GENESIS_COINBASE[cut:cut + 4], \
        GENESIS_COINBASE[cut + 4:cut + 12]


class GenesisTests(unittest.TestCase):
    def test_coinbase(self):
        """The coinbase is coinbase1 ‖ extranonce1 ‖ extranonce2 ‖ coinbase2."""
        job, en1, en2 = genesis_job()
        coinbase = build_coinbase(job.coinbase1, en1, en2, job.coinbase2)
        self.assertEqual(coinbase, GENESIS_COINBASE)
        self.assertEqual(sha256d(coinbase), hash_from_display_hex(GENESIS_ROOT))

    def test_header(self):
        """The header built from the genesis job hashes to the genesis block hash."""
        job, en1, en2 = genesis_job()
        prefix = header_prefix(job, en1, en2, job.version)
        self.assertEqual(len(prefix), 76)
        header = prefix + struct.pack("<I", GENESIS_NONCE)
        self.assertEqual(sha256d(header), hash_from_display_hex(GENESIS_HASH))

    def test_grind_finds_genesis_nonce(self):
        """Grinding around the genesis nonce finds exactly it at the block target."""
        job, en1, en2 = genesis_job()
        prefix = header_prefix(job, en1, en2, job.version)
        found = grind(prefix, GENESIS_NONCE - 500, GENESIS_NONCE + 500,
                      bits_to_target(GENESIS_BITS))
        self.assertEqual(found, [(GENESIS_NONCE, hash_from_display_hex(GENESIS_HASH))])


class HeaderTests(unittest.TestCase):
    @given(st.lists(st.binary(min_size=32, max_size=32), max_size=9),
           st.binary(min_size=4, max_size=4), st.binary(min_size=8, max_size=8))
    def test_merkle_root_through_branch(self, txids, en1, en2):
        """The header's root equals the merkle root of coinbase + transactions."""
        job = StratumJob("a", b"\x11" * 32, b"\x01\x02", b"\x03", tuple(merkle_branch(txids)),
                         0x20000000, 0x207FFFFF, 1_700_000_000, False)
        prefix = header_prefix(job, en1, en2, job.version)
        coinbase_hash = sha256d(b"\x01\x02" + en1 + en2 + b"\x03")
        self.assertEqual(prefix[36:68], merkle_root([coinbase_hash, *txids]))
        self.assertEqual(prefix[4:36], b"\x11" * 32)
        self.assertEqual(struct.unpack("<III", prefix[:4] + prefix[68:76]),
                         (0x20000000, 1_700_000_000, 0x207FFFFF))


class GrindTests(unittest.TestCase):
    def test_easy_target(self):
        """Every nonce reported meets the target and none that meets it is missed."""
        prefix = bytes(range(76))
        target = difficulty_to_target("0.000002")
        found = grind(prefix, 0, 20000, target)
        self.assertTrue(found)
        expected = []
        for nonce in range(20000):
            digest = sha256d(prefix + struct.pack("<I", nonce))
            if hash_to_int(digest) <= target:
                expected.append((nonce, digest))
        self.assertEqual(found, expected)

    def test_bad_prefix(self):
        self.assertRaises(ValueError, grind, b"\x00" * 80, 0, 1, 0)


class VersionRollingTests(unittest.TestCase):
    @given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.data())
    def test_inside_mask(self, version, mask, data):
        """A rolled version differs from the job's only in mask bits."""
        step = data.draw(st.integers(0, rolling_steps(mask) - 1))
        rolled = roll_version(version, mask, step)
        self.assertEqual(rolled & ~mask, version & ~mask)
        self.assertLess(rolled, 2**32)

    @given(st.sampled_from([0x1FFFE000, 0x00006000, 0x10000001, 0]), st.integers(0, 2**32 - 1))
    def test_steps_distinct(self, mask, version):
        """Each step of a small mask yields a different version (no wasted work)."""
        steps = min(rolling_steps(mask), 512)
        versions = {roll_version(version, mask, step) for step in range(steps)}
        self.assertEqual(len(versions), steps)

    def test_outside_range(self):
        self.assertRaises(ValueError, roll_version, 0x20000000, 0x6000, 4)


class CursorTests(unittest.TestCase):
    def test_nonces_then_versions_then_extranonce2(self):
        """The walk covers each nonce range once per version, then moves extranonce2."""
        cursor = Cursor(extranonce2=5)
        seen = []
        for _ in range(6):
            position = (cursor.extranonce2, cursor.roll)
            cursor, covered = cursor.advance(60, roll_steps=2, nonce_space=100)
            seen.append((position, covered))
        self.assertEqual(seen, [
            ((5, 0), (0, 60)), ((5, 0), (60, 100)),
            ((5, 1), (0, 60)), ((5, 1), (60, 100)),
            ((6, 0), (0, 60)), ((6, 0), (60, 100)),
        ])

    def test_extranonce2_bytes(self):
        self.assertEqual(extranonce2_bytes(1, 8), b"\x00" * 7 + b"\x01")
        self.assertEqual(extranonce2_bytes(256 + 2, 1), b"\x02")
