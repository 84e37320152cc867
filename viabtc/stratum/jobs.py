# -*- test-case-name: tests.stratum.test_jobs -*-
"""
The set of jobs a Stratum server accepts shares for.

A clean job (new block) invalidates every earlier job: shares for them can
no longer make a block and are "stale" (code 26), which a miner must be told
apart from an id the server never issued (code 21, ref §12 fixes).  Within
one block, earlier non-clean jobs stay valid, up to ``max_jobs`` of them.
The duplicate-share sets live and die with their jobs.
"""

from viabtc.stratum.duplicates import DuplicateFilter
from viabtc.stratum.job import JobError


class JobBook:
    """
    Live jobs by id, the ids made stale by the last clean job, and the
    duplicate filter.  Owned by one role instance (gateway, mineragent) and
    shared by all its sessions.
    """

    def __init__(self, max_jobs=64, duplicates=None):
        self.max_jobs = max_jobs
        self.duplicates = DuplicateFilter() if duplicates is None else duplicates
        self._live = {}  # job id -> PreparedJob, oldest first
        self._stale = frozenset()
        self.current = None

    def __len__(self):
        return len(self._live)

    def add(self, prepared):
        """
        Make ``prepared`` the current job.  A clean job retires every live
        job into the stale set; otherwise the oldest live job is dropped once
        there are ``max_jobs``.  A live id arriving again (without a clean
        job in between) is refused with ``JobError``, as the seed does:
        shares could not tell the two jobs apart.
        """
        job_id = prepared.job_id
        if prepared.clean:
            for old in self._live:
                self.duplicates.drop_job(old)
            self._stale = frozenset(self._live)
            self._live = {}
        elif job_id in self._live:
            raise JobError(f"job_id: {job_id} is already live")
        elif len(self._live) >= self.max_jobs:
            oldest = next(iter(self._live))
            del self._live[oldest]
            self.duplicates.drop_job(oldest)
        self._live[job_id] = prepared
        self.current = prepared

    def lookup(self, job_id):
        """The live ``PreparedJob`` with this id, or ``None``."""
        return self._live.get(job_id)

    def is_stale(self, job_id):
        """True if ``job_id`` was live until the last clean job replaced it."""
        return job_id in self._stale and job_id not in self._live

    def is_duplicate(self, prepared, share_hash):
        """Record an accepted share's hash; true if this job already had it."""
        return self.duplicates.seen(prepared.job_id, share_hash)
