# -*- test-case-name: tests.dashboard.test_heights -*-
"""
Heights (and header times) of the found blocks the dashboard lists.

The seed's ``newblock`` entries carry no height, and its cmd 100 record
has no room for one (C metawriters still read our gateways' packets), so
Redis cannot tell.  When the dashboard is given a ``node`` (optional), it
asks it ``getblockheader <hash>`` for each main-chain block it shows:

- answers are cached per hash, at most ``size`` of them (the oldest
  looked-up hash goes first), so a block is asked about once;
- lookups run in the background, a few at a time, each with a timeout:
  a page is rendered from what is known now and shows "–" until then;
- a failed lookup (node away, block unknown to it) is not cached and is
  tried again when a later refresh lists the block again.

Aux-chain blocks are never looked up: the node serves the main chain.
"""

import collections
import re

import attrs
from twisted.internet import defer
from twisted.logger import Logger

ROLE = "dashboard"
#: Lookups in flight at once.
CONCURRENCY = 4
_HASH = re.compile(r"[0-9a-fA-F]{64}")


@attrs.frozen
class Header:
    """What the node said of a block: its height and the header's time (Unix seconds)."""

    height: int
    time: int


def header_from_reply(reply):
    """A ``Header`` from a verbose ``getblockheader`` result; ValueError when it has none."""
    try:
        height, time = reply["height"], reply["time"]
    except (TypeError, KeyError):
        raise ValueError(f"not a block header: {reply!r}") from None
    if type(height) is not int or type(time) is not int or height < 0:
        raise ValueError(f"not a block header: {reply!r}")
    return Header(height=height, time=time)


class BlockHeights:
    """
    ``getblockheader`` lookups through ``node`` (a ``NodeGroup``), cached.
    ``want(hashes)`` queues the unknown ones; ``known(hash)`` is the cached
    ``Header`` or None; ``on_found`` is called after each new answer.
    """

    _log = Logger()

    def __init__(self, node, timeout=5.0, size=256, on_found=None):
        self._node = node
        self._timeout = timeout
        self._size = size
        self.on_found = on_found
        self._cache = collections.OrderedDict()
        self._queue = collections.deque()
        self._queued = set()
        self._running = {}
        self.lookups = 0
        self.failures = 0

    def known(self, block_hash):
        return self._cache.get(block_hash.lower())

    def want(self, hashes):
        """Queue lookups of the ``hashes`` not known, queued or running; start what may start."""
        for block_hash in hashes:
            if not _HASH.fullmatch(block_hash):
                continue
            block_hash = block_hash.lower()
            if block_hash in self._cache or block_hash in self._queued or block_hash in self._running:
                continue
            self._queue.append(block_hash)
            self._queued.add(block_hash)
        self._start()

    def stop(self):
        """Forget the queue and cancel the lookups in flight (the service is stopping)."""
        self._queue.clear()
        self._queued.clear()
        for d in list(self._running.values()):
            d.cancel()

    def _start(self):
        while self._queue and len(self._running) < CONCURRENCY:
            block_hash = self._queue.popleft()
            self._queued.discard(block_hash)
            self.lookups += 1
            d = self._node.call("getblockheader", block_hash, True, timeout=self._timeout)
            self._running[block_hash] = d
            d.addCallback(header_from_reply)
            d.addCallbacks(self._found, self._failed, callbackArgs=(block_hash,), errbackArgs=(block_hash,))

    def _found(self, header, block_hash):
        del self._running[block_hash]
        self._cache[block_hash] = header
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        self._start()
        if self.on_found is not None:
            self.on_found()

    def _failed(self, failure, block_hash):
        del self._running[block_hash]
        self.failures += 1
        if failure.check(defer.CancelledError):
            return None  # stopping
        self._log.info("dashboard: no height for block {hash}: {error}", hash=block_hash,
                       error=failure.getErrorMessage(), role=ROLE)
        self._start()
        return None

    def annotate(self, blocks):
        """``blocks`` (``snapshot.Block``) with the heights and header times known now."""
        out = []
        for block in blocks:
            header = None if block.aux else self.known(block.hash)
            if header is not None and (block.height, block.time) != (header.height, header.time):
                block = attrs.evolve(block, height=header.height, time=header.time)
            out.append(block)
        return tuple(out)
