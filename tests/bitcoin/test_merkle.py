"""Tests for ``viabtc.bitcoin.merkle``."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.hashing import hash_from_display_hex, sha256d
from viabtc.bitcoin.merkle import merkle_branch, merkle_root, merkle_root_from_branch

from .vectors import BLOCK_HASHES, block_bytes

hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=40)


class MerkleRootTests(TestCase):
    def test_single_hash_is_its_own_root(self):
        h = sha256d(b"coinbase")
        self.assertEqual(merkle_root([h]), h)

    def test_odd_level_duplicates_last(self):
        a, b, c = (sha256d(bytes([i])) for i in range(3))
        ab = sha256d(a + b)
        cc = sha256d(c + c)
        self.assertEqual(merkle_root([a, b, c]), sha256d(ab + cc))

    def test_empty(self):
        self.assertRaises(ValueError, merkle_root, [])

    def test_block_100000(self):
        block = parse_block(block_bytes("mainnet-100000"))
        txids = [tx.txid() for tx in block.transactions]
        self.assertEqual(
            merkle_root(txids),
            hash_from_display_hex("f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766"),
        )


class MerkleBranchTests(TestCase):
    def test_no_other_transactions(self):
        self.assertEqual(merkle_branch([]), [])
        self.assertEqual(merkle_root_from_branch(b"c" * 32, []), b"c" * 32)

    def test_block_170(self):
        # The branch of block 170's coinbase is the one other txid.
        block = parse_block(block_bytes("mainnet-000170"))
        coinbase, spend = (tx.txid() for tx in block.transactions)
        branch = merkle_branch([spend])
        self.assertEqual(branch, [spend])
        self.assertEqual(merkle_root_from_branch(coinbase, branch), block.header.merkle_root)

    def test_real_blocks(self):
        for name in BLOCK_HASHES:
            block = parse_block(block_bytes(name))
            txids = [tx.txid() for tx in block.transactions]
            branch = merkle_branch(txids[1:])
            self.assertEqual(merkle_root_from_branch(txids[0], branch), block.header.merkle_root)

    def test_three_transactions(self):
        # Coinbase c with a, b: branch [a, H(b|b)].
        a, b = sha256d(b"a"), sha256d(b"b")
        self.assertEqual(merkle_branch([a, b]), [a, sha256d(b + b)])

    @given(st.binary(min_size=32, max_size=32), hashes)
    def test_branch_gives_full_root(self, coinbase, others):
        branch = merkle_branch(others)
        self.assertEqual(merkle_root_from_branch(coinbase, branch), merkle_root([coinbase] + others))
        self.assertEqual(len(branch), (len(others)).bit_length())
