"""Which headers bitpeer believes: proof of work as integers, known parents, plausible bits."""

from twisted.trial.unittest import SynchronousTestCase

from tests.bitcoin.vectors import block_bytes
from tests.bitpeer.mining import REGTEST_BITS, STRICT, mine, mine_chain
from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.network import MAINNET, REGTEST
from viabtc.bitpeer.chain import BadHeader, HeaderChain, UnknownParent, check_proof_of_work

NOW = 1700000000
GENESIS = BlockHeader(1, bytes(32), bytes(32), NOW - 600, REGTEST_BITS, 2)


class ProofOfWorkTests(SynchronousTestCase):
    def test_real_mainnet_headers(self):
        for name in ("mainnet-000170", "mainnet-100000"):
            header = parse_block(block_bytes(name)).header
            check_proof_of_work(MAINNET, header, header.hash())

    def test_claimed_easier_bits_fail(self):
        header = parse_block(block_bytes("mainnet-100000")).header
        import attrs
        lowered = attrs.evolve(header, bits=header.bits - 1)
        self.assertRaises(BadHeader, check_proof_of_work, MAINNET, lowered, lowered.hash())

    def test_bits_above_limit(self):
        header = mine(bytes(32), bits=0x2100FFFF)
        self.assertRaises(BadHeader, check_proof_of_work, REGTEST, header, header.hash())

    def test_negative_bits(self):
        header = BlockHeader(1, bytes(32), bytes(32), NOW, 0x20800001, 0)
        self.assertRaises(BadHeader, check_proof_of_work, REGTEST, header, header.hash())


class ChainTests(SynchronousTestCase):
    def setUp(self):
        self.chain = HeaderChain(STRICT, keep=5)
        self.tip = self.chain.anchor(GENESIS, 100)

    def test_connects_and_counts(self):
        a, b = mine_chain(self.tip.hash, 2)
        entry, new = self.chain.connect(a, NOW)
        self.assertEqual((entry.height, new), (101, True))
        self.assertEqual(self.chain.connect(a, NOW), (entry, False))
        entry, _ = self.chain.connect(b, NOW)
        self.assertIs(self.chain.best, entry)
        self.assertEqual(self.chain.locator(), [b.hash(), a.hash(), GENESIS.hash()])

    def test_unknown_parent(self):
        self.assertRaises(UnknownParent, self.chain.connect, mine(b"\x01" * 32), NOW)

    def test_bad_pow(self):
        with self.assertRaises(BadHeader) as e:
            self.chain.connect(mine(self.tip.hash, valid=False), NOW)
        self.assertNotIsInstance(e.exception, UnknownParent)
        self.assertEqual(self.chain.best, self.tip)

    def test_bits_must_follow_parent(self):
        self.assertRaises(BadHeader, self.chain.connect, mine(self.tip.hash, bits=0x2000FFFF), NOW)

    def test_retarget_boundary_allows_factor_4(self):
        chain = HeaderChain(STRICT)
        tip = chain.anchor(GENESIS, 2015)
        chain.connect(mine(tip.hash, bits=0x20200000), NOW)
        chain = HeaderChain(STRICT)
        tip = chain.anchor(GENESIS, 2015)
        self.assertRaises(BadHeader, chain.connect, mine(tip.hash, bits=0x200FFFFF), NOW)

    def test_min_difficulty_networks_take_any_bits(self):
        chain = HeaderChain(REGTEST)
        tip = chain.anchor(GENESIS, 7)
        chain.connect(mine(tip.hash, bits=0x2000FFFF), NOW)

    def test_future_time(self):
        self.assertRaises(BadHeader, self.chain.connect, mine(self.tip.hash, time=NOW + 7201), NOW)

    def test_fork_does_not_replace_best_at_same_height(self):
        a = mine(self.tip.hash, merkle=b"\x01" * 32)
        b = mine(self.tip.hash, merkle=b"\x02" * 32)
        first, _ = self.chain.connect(a, NOW)
        self.chain.connect(b, NOW)
        self.assertIs(self.chain.best, first)

    def test_old_entries_forgotten(self):
        headers = mine_chain(self.tip.hash, 8)
        for h in headers:
            self.chain.connect(h, NOW)
        self.assertNotIn(GENESIS.hash(), self.chain)
        self.assertEqual(min(e.height for e in self.chain.entries.values()), 103)
