"""
The compiled ``viabtc.bitcoin._sha256d`` against the Python references it
replaces on the share path (``sha256d``, the merkle fold, a share's header
and hash): the same bytes for any input, the same errors for malformed
input.  In CI (``VIABTC_REQUIRE_SERVICES=1``) the module must
have been built: a silent fall-back would make every gateway three times
slower on shares with no test noticing.
"""

import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, TestCase

from viabtc.bitcoin import hashing, merkle
from viabtc.devnet import services_required
from viabtc.stratum import share

from tests.bitcoin.test_hashing import GENESIS_HASH, GENESIS_HEADER

hash32 = st.binary(min_size=32, max_size=32)
u32 = st.integers(min_value=0, max_value=2**32 - 1)


class CompiledHashTests(TestCase):
    def setUp(self):
        if hashing._compiled is None:
            if services_required():
                self.fail("viabtc.bitcoin._sha256d was not built (setup.py: a C compiler and libssl-dev)")
            raise SkipTest("viabtc.bitcoin._sha256d was not built")
        self.compiled = hashing._compiled

    def test_in_use(self):
        self.assertTrue(hashing.COMPILED)
        self.assertIs(hashing.sha256d, self.compiled.sha256d)
        self.assertIs(merkle.merkle_root_from_branch, self.compiled.fold_branch)

    def test_genesis(self):
        self.assertEqual(hashing.hash_to_display_hex(self.compiled.sha256d(GENESIS_HEADER)), GENESIS_HASH)

    @given(st.binary(max_size=2000))
    def test_sha256d_matches_hashlib(self, data):
        self.assertEqual(self.compiled.sha256d(data), hashing.sha256d_py(data))

    def test_sha256d_takes_any_buffer(self):
        data = bytes(range(200))
        for form in (bytearray(data), memoryview(data)):
            self.assertEqual(self.compiled.sha256d(form), hashing.sha256d_py(data))
        with self.assertRaises(TypeError):
            self.compiled.sha256d("text")

    @given(hash32, st.lists(hash32, max_size=16))
    def test_fold_matches_python(self, leaf, branch):
        expected = merkle.merkle_root_from_branch_py(leaf, branch)
        self.assertEqual(self.compiled.fold_branch(leaf, tuple(branch)), expected)
        self.assertEqual(self.compiled.fold_branch(leaf, branch), expected)

    def test_fold_refuses_what_python_refuses(self):
        good = bytes(32)
        for fold in (self.compiled.fold_branch, merkle.merkle_root_from_branch_py):
            with self.assertRaises(ValueError):
                fold(bytes(31), (good,))
            with self.assertRaises(ValueError):
                fold(good, (good, bytes(33)))
            with self.assertRaises(TypeError):
                fold(good, 5)
        with self.assertRaises(TypeError):
            self.compiled.fold_branch(good, ("x" * 32,))
        with self.assertRaises(TypeError):
            self.compiled.fold_branch(good)

    def test_share_header_in_use(self):
        self.assertIs(share.share_header, self.compiled.share_header)

    @given(st.binary(max_size=300), st.lists(hash32, max_size=14), u32, hash32, u32, u32, u32)
    def test_share_header_matches_python(self, coinbase, branch, version, prevhash, ntime, nbits, nonce):
        expected = share.share_header_py(coinbase, branch, version, prevhash, ntime, nbits, nonce)
        header, digest = self.compiled.share_header(coinbase, tuple(branch), version, prevhash, ntime, nbits, nonce)
        self.assertEqual((header, digest), expected)
        self.assertEqual(len(header), 80)

    def test_share_header_refuses_what_python_refuses(self):
        good = (b"coinbase", (bytes(32),), 1, bytes(32), 2, 3, 4)
        for at, bad in ((2, 2**32), (4, -1), (5, 2**64), (6, 2**32)):
            args = list(good)
            args[at] = bad
            with self.assertRaises(OverflowError):
                self.compiled.share_header(*args)
            with self.assertRaises(struct.error):
                share.share_header_py(*args)
        with self.assertRaises(ValueError):
            self.compiled.share_header(b"", (bytes(31),), 1, bytes(32), 2, 3, 4)
        with self.assertRaises(ValueError):
            self.compiled.share_header(b"", (), 1, bytes(31), 2, 3, 4)
        with self.assertRaises(TypeError):
            self.compiled.share_header("text", (), 1, bytes(32), 2, 3, 4)
        with self.assertRaises(TypeError):
            self.compiled.share_header(b"", (), 1, bytes(32), 2, 3)
