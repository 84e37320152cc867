"""Tests for ``viabtc.blockmaster.txcache``: keys, collisions kept, eviction by age."""

from twisted.trial.unittest import TestCase

from tests.p2p.blocks import segwit_block
from viabtc.bitcoin.hashing import sha256d
from viabtc.blockmaster.txcache import TxCache
from viabtc.p2p.thin import CachedTx, split_block


class TxCacheTests(TestCase):
    def setUp(self):
        self.txs = split_block(segwit_block())[1][1:]

    def test_lookup_and_raw(self):
        cache = TxCache()
        cache.add(self.txs[0], 0)
        self.assertEqual(cache.lookup(self.txs[0].key), (self.txs[0],))
        self.assertEqual(cache.get_raw(self.txs[0].key), self.txs[0].raw)
        self.assertEqual(cache.lookup(b"\x00" * 8), ())

    def test_colliding_keys_are_both_kept(self):
        cache = TxCache()
        twin = CachedTx(b"other", sha256d(b"o"), self.txs[0].wtxid)
        other = CachedTx(b"other", sha256d(b"o"), sha256d(b"q")[:24] + self.txs[0].wtxid[24:])
        cache.add(self.txs[0], 0)
        cache.add(other, 0)
        self.assertEqual(len(cache.lookup(self.txs[0].key)), 2)
        self.assertIsNone(cache.get_raw(self.txs[0].key))
        cache.add(twin, 0)  # same wtxid: a refresh, not a third entry
        self.assertEqual(len(cache), 2)

    def test_eviction_after_ttl_unless_refreshed(self):
        cache = TxCache(ttl=600)
        cache.add(self.txs[0], 0)
        cache.add(self.txs[1], 0)
        self.assertTrue(cache.touch_txid(self.txs[1].txid, 500))
        self.assertEqual(cache.evict(601), 1)
        self.assertEqual(cache.lookup(self.txs[0].key), ())
        self.assertFalse(cache.touch_txid(self.txs[0].txid, 601))
        self.assertEqual(len(cache), 1)
