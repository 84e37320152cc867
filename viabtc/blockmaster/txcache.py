# -*- test-case-name: tests.blockmaster.test_txcache -*-
"""
The transactions a blockmaster can rebuild thin blocks from (ref §6.2):
the local node's mempool and every block relayed, keyed as the seed keys
them (8 bytes of the display-order hash of the bytes as relayed).

Unlike the seed's dict, a key shared by two transactions keeps both, so
the reconstruction sees the ambiguity and asks for the transaction
instead of guessing (``viabtc.p2p.thin.reconstruct``).  Entries not seen
again for ``ttl`` seconds are dropped by ``evict``, after each mempool poll
as in the seed.
"""


class TxCache:
    """``CachedTx`` by key, with the time each was last seen."""

    def __init__(self, ttl=600.0):
        self.ttl = ttl
        self._by_key = {}
        self._seen = {}
        self._txids = {}

    def __len__(self):
        return len(self._seen)

    def add(self, tx, now):
        """Add or refresh ``tx`` (a ``CachedTx``) as seen at ``now``."""
        entries = self._by_key.setdefault(tx.key, {})
        entries[tx.wtxid] = tx
        self._seen[tx.wtxid] = now
        self._txids[tx.txid] = tx.wtxid

    def touch_txid(self, txid, now):
        """Refresh the entry with ``txid`` (internal order); False when there is none."""
        wtxid = self._txids.get(txid)
        if wtxid is None or wtxid not in self._seen:
            return False
        self._seen[wtxid] = now
        return True

    def has_txid(self, txid):
        """True when a transaction with ``txid`` (internal order) is cached."""
        return self._txids.get(txid) in self._seen

    def lookup(self, key):
        """The transactions whose key is ``key`` (usually none or one)."""
        entries = self._by_key.get(key)
        return tuple(entries.values()) if entries else ()

    def get_raw(self, key):
        """The bytes of the one transaction with ``key``, or None (none, or ambiguous)."""
        found = self.lookup(key)
        return found[0].raw if len(found) == 1 else None

    def values(self):
        for entries in self._by_key.values():
            yield from entries.values()

    def evict(self, now):
        """Drop entries not seen for ``ttl`` seconds; returns how many."""
        old = [w for w, seen in self._seen.items() if now - seen > self.ttl]
        for wtxid in old:
            del self._seen[wtxid]
        if not old:
            return 0
        gone = set(old)
        for key in [k for k, e in self._by_key.items() if gone.intersection(e)]:
            entries = self._by_key[key]
            for wtxid in gone.intersection(entries):
                tx = entries.pop(wtxid)
                if self._txids.get(tx.txid) == wtxid:
                    del self._txids[tx.txid]
            if not entries:
                del self._by_key[key]
        return len(old)
