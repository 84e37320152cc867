# -*- test-case-name: benchmarks -*-
"""
The pool context of the in-process measures (``benchmarks.micro``).

The socket benchmarks drive the real ``viabtc-gateway`` role; the
in-process ones drive a ``StratumServerFactory`` through this
``IPoolContext``: identities from a 64-bit counter as the seed allocates
them (ref §4.3), the gateway coinbase layout, and per-account share sums standing in for the gateway's
per-minute statistics (one dict update per share, about what aggregation
costs).  ``found_block_body`` is the seed's cmd-2 body of a block
candidate, for the in-process block measure.
"""

import json
import os

from zope.interface import implementer

from viabtc.stratum.context import Identity, IPoolContext, StratumSettings
from viabtc.stratum.coinbase import miner_coinbase1_head
from viabtc.stratum.jobs import JobBook
from viabtc.stratum.protocol import StratumServerFactory
from viabtc.stratum.vardiff import VarDiffSettings

#: The seed's sample gateway ``worker_id``.
WORKER_ID = 100

#: About half of all hashes meet this difficulty's target (2**255):
#: grinding a valid share costs two header hashes, and low-difficulty
#: rejects are as easy to make as valid shares.
BENCH_DIFFICULTY = 2.0**-31


def bench_settings(difficulty=BENCH_DIFFICULTY, max_idle=86400):
    """Stratum settings whose range admits ``difficulty`` as a miner's ``d=`` choice."""
    vardiff = VarDiffSettings(
        diff_min=difficulty, diff_max=1024, diff_default=difficulty, target_time=4, retarget_time=120
    )
    return StratumSettings(vardiff=vardiff, client_max_idle_time=max_idle)


def bench_factory(context, clock):
    """
    The ``StratumServerFactory`` of the benchmarks.

    A load generator sends hundreds of shares per second per connection, so
    the per-connection request rate limit (``viabtc.stratum.limits``, 100/s
    by default, meant for miners at one share every few seconds) is lifted;
    every other limit keeps its default, so the generator spreads its
    connections over enough source addresses for the per-IP cap.
    """
    try:
        from viabtc.stratum.limits import Limits
    except ImportError:  # a tree without abuse limits
        return StratumServerFactory(context, clock)
    return StratumServerFactory(context, clock, limits=Limits(request_rate=1e9, request_burst=1_000_000_000))


def found_block_body(prepared, result):
    """The seed's cmd-2 body for a block candidate (ref §3.8)."""
    return json.dumps(
        {
            "job_id": prepared.job_id,
            "hash": result.hash[::-1].hex(),
            "block_head": result.header.hex(),
            "coinbase": result.coinbase.hex(),
            "type": "main",
            "name": prepared.job.main_name,
        },
        separators=(",", ":"),
    ).encode()


@implementer(IPoolContext)
class BenchContext:
    """An ``IPoolContext`` for the in-process measures."""

    role = "bench-gateway"

    def __init__(self, settings=None):
        self.settings = bench_settings() if settings is None else settings
        self.jobs = JobBook()
        self.accepted = 0
        self.rejected = 0
        self.blocks = 0
        self.pow = {}
        self._counter = int.from_bytes(os.urandom(8), "big")

    def allocate_identity(self):
        self._counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
        return Identity((self._counter & 0xFFFFFFFF).to_bytes(4, "big"), self._counter >> 32)

    def is_banned(self, host):
        return False

    def coinbase1_head(self, prepared, user):
        return miner_coinbase1_head(prepared, user, WORKER_ID)

    def worker_authorized(self, session, user, worker):
        pass

    def session_closed(self, session):
        pass

    def share_accepted(self, session, user, worker, prepared, result):
        self.accepted += 1
        key = (user, worker)
        self.pow[key] = self.pow.get(key, 0.0) + result.difficulty

    def share_rejected(self, session, user, worker, code):
        self.rejected += 1

    def block_found(self, session, user, worker, prepared, result):
        self.blocks += 1
