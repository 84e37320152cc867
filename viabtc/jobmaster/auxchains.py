# -*- test-case-name: tests.jobmaster.test_auxchains -*-
"""
The Namecoin-style aux chains the jobmaster merge-mines (ref §3.7): one
``AuxChain`` per ``aux_coin`` entry polls its daemons, and ``AuxChains``
turns their current blocks into the ``MergedWork`` each new job commits to.

Each chain, once a second: ``getblockcount``; a new height, or a block
older than ``aux_job_timeout``, fetches a new aux block (``createauxblock
(address)`` when an address is configured, else ``getauxblock()``).  Every
call has a short timeout and at most one poll per chain is in flight, so a
slow or dead daemon never holds up anything: while it fails, its block is
dropped from the work (jobs are built without it), one critical log (an
alert) says so, and one info log says when it answers again.  A found aux
block goes back with ``submitauxblock(hash, auxpow)`` or ``getauxblock
(hash, auxpow)``.
"""

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from viabtc.jobmaster.merge import AuxBlock, merge

#: Seconds an aux daemon may take to answer one call.
AUX_CALL_TIMEOUT = 3.0
#: Seconds a submission may take (a daemon checks the AuxPoW and connects the block).
AUX_SUBMIT_TIMEOUT = 10.0


@attrs.frozen
class AuxCoinConfig:
    """One ``aux_coin`` entry: its name, daemons and optional payout address and chain id."""

    name: str
    nodes: tuple
    address: str | None = None
    #: our key: the chain id the daemon will report, to check slots at start-up
    chain_id: int | None = None


class AuxChain:
    """
    One aux chain.  ``nodes`` has ``call(method, *params, timeout=)`` → a
    Deferred (a ``NodeGroup``); ``changed()`` is called whenever ``block``
    (the ``AuxBlock`` to mine, or None) changes.
    """

    _log = Logger()

    def __init__(self, config, nodes, clock, job_timeout, changed, call_timeout=AUX_CALL_TIMEOUT):
        self.config = config
        self._call_timeout = call_timeout
        self.name = config.name
        self._nodes = nodes
        self._clock = clock
        self._job_timeout = job_timeout
        self._changed = changed
        self.block = None
        self.height = None
        self.fetched_at = None
        self.failing = False
        self._closed = False
        self._polling = None
        #: hashes of the blocks submitted (each block is submitted once)
        self.submitted = set()

    def poll(self):
        """One poll (skipped while the previous one is still waiting); a Deferred."""
        if self._polling is not None or self._closed:
            return self._polling or defer.succeed(None)
        d = self._polling = defer.ensureDeferred(self._poll())
        d.addBoth(self._polled)
        return d

    def _polled(self, result):
        self._polling = None

    async def _poll(self):
        try:
            count = await self._nodes.call("getblockcount", timeout=self._call_timeout)
            now = self._clock.seconds()
            stale = self.fetched_at is None or now - self.fetched_at >= self._job_timeout
            if count != self.height or self.block is None or stale:
                reply = await self._fetch()
                block = AuxBlock.from_reply(self.name, reply)
                self.height = count
                self.fetched_at = self._clock.seconds()
                self._set(block)
            self._recovered()
        except defer.CancelledError:
            raise
        except Exception as e:  # a daemon's answer is bad input, never a crash
            self._failed(e)

    def _fetch(self):
        if self.config.address:
            return self._nodes.call("createauxblock", self.config.address,
                                    timeout=self._call_timeout)
        return self._nodes.call("getauxblock", timeout=self._call_timeout)

    def _set(self, block):
        old = self.block
        self.block = block
        if old is None or old.block_hash != block.block_hash or old.target != block.target:
            self._log.info("aux chain {name}: block {hash} height {height}", name=self.name,
                           hash=block.display_hash, height=self.height, role="jobmaster")
            self._changed()

    def _failed(self, error):
        if self._closed:
            return
        if not self.failing:
            self.failing = True
            self._log.critical("aux chain {name} unavailable, mining without it: {error}",
                               name=self.name, error=str(error) or type(error).__name__,
                               role="jobmaster")
        if self.block is not None:
            self.block = None
            self.fetched_at = None
            self._changed()

    def _recovered(self):
        if self.failing:
            self.failing = False
            self._log.info("aux chain {name} answers again", name=self.name, role="jobmaster")

    def notify(self):
        """``aux_blocknotify``: poll now."""
        return self.poll()

    def close(self):
        """Stop: the poll in flight is cancelled, idle connections closed."""
        self._closed = True
        if self._polling is not None:
            self._polling.cancel()
        return self._nodes.close()

    def first_submission(self, block_hash):
        """True the first time ``block_hash`` is to be submitted (then remembered)."""
        if block_hash in self.submitted:
            return False
        if len(self.submitted) >= 10_000:
            self.submitted.clear()
        self.submitted.add(block_hash)
        return True

    def submit(self, display_hash, auxpow_hex):
        """Submit a found block's AuxPoW; a Deferred with the daemon's result."""
        if self.config.address:
            return self._nodes.call("submitauxblock", display_hash, auxpow_hex,
                                    timeout=AUX_SUBMIT_TIMEOUT)
        return self._nodes.call("getauxblock", display_hash, auxpow_hex, timeout=AUX_SUBMIT_TIMEOUT)


class AuxChains:
    """
    Every aux chain, and the merged work jobs commit to.  ``changed()`` is
    called when the set of aux blocks to mine is different from the one the
    last ``work()`` returned (a new job is due).
    """

    _log = Logger()

    def __init__(self, chains, size, nonce):
        self.chains = list(chains)
        self.size = size
        self.nonce = nonce
        self._reported = set()

    def __iter__(self):
        return iter(self.chains)

    def get(self, name):
        for chain in self.chains:
            if chain.name == name:
                return chain
        return None

    def poll(self):
        for chain in self.chains:
            chain.poll()

    def work(self):
        """The ``MergedWork`` for the next job, or None (nothing to merge)."""
        blocks = [chain.block for chain in self.chains if chain.block is not None]
        if not blocks:
            return None
        work, left_out = merge(blocks, self.size, self.nonce)
        for block in left_out:
            if block.name not in self._reported:
                self._reported.add(block.name)
                self._log.critical(
                    "aux chain {name} (chain id {chain_id}) takes the slot of an earlier chain in "
                    "a tree of {size} with nonce {nonce}; it is not mined (change aux_merkle_nonce "
                    "or aux_merkle_size)", name=block.name, chain_id=block.chain_id,
                    size=self.size, nonce=self.nonce, role="jobmaster")
        return work
