# -*- test-case-name: tests.stratum.test_duplicates -*-
"""
Duplicate-share detection with bounded memory.

A miner must not be paid twice for one piece of work.  The seed kept one
process-wide set of 64-bit hash prefixes that grew until the next block and
compared keys with a truncating comparator (ref §12.17, §12.19).  Here every
job has its own set of full share hashes (the hash commits to the coinbase,
so to the session's extranonce1/nonce_id and extranonce2, and to ntime,
nonce and version: equal hashes are the same work), the set goes when its job
goes, and a global cap evicts whole sets, oldest job first.
"""

from twisted.logger import Logger


class DuplicateFilter:
    """
    Per-job sets of share hashes, at most ``max_entries`` hashes in all
    (about 100 bytes each: the default cap is roughly 200 MB at the worst).

    If the newest job alone reaches the cap its set is restarted: work
    duplicated across that restart would be credited twice, which the cap
    makes rare (it is far above what one job collects between two
    broadcasts) and which is logged when it happens.
    """

    _log = Logger()

    def __init__(self, max_entries=2_000_000):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._sets = {}  # job id -> set of hashes, oldest job first
        self._size = 0

    def __len__(self):
        return self._size

    def seen(self, job_id, share_hash):
        """
        Record ``share_hash`` for ``job_id``; true if it was already recorded
        (a duplicate).  Only record accepted shares: a rejected share earns
        nothing, so its repetition is no loss.
        """
        hashes = self._sets.get(job_id)
        if hashes is None:
            hashes = self._sets[job_id] = set()
        elif share_hash in hashes:
            return True
        if self._size >= self.max_entries:
            self._evict(job_id)
        hashes.add(share_hash)
        self._size += 1
        return False

    def drop_job(self, job_id):
        """Forget a job's shares (the job was replaced by a clean job or dropped)."""
        hashes = self._sets.pop(job_id, None)
        if hashes is not None:
            self._size -= len(hashes)

    def clear(self):
        self._sets.clear()
        self._size = 0

    def _evict(self, keep):
        for job_id in list(self._sets):
            if job_id == keep:
                continue
            self.drop_job(job_id)
            if self._size < self.max_entries:
                return
        hashes = self._sets[keep]
        self._log.warn(
            "duplicate filter full with one job; restarting job {job_id}'s set of {count} hashes",
            job_id=keep,
            count=len(hashes),
        )
        self._size -= len(hashes)
        hashes.clear()
