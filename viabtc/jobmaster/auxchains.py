# -*- test-case-name: tests.jobmaster.test_auxchains -*-
"""
The chains the jobmaster merge-mines (ref §3.7) and their daemons: one
``AuxChain`` per Namecoin-style ``aux_coin`` entry, an ``RskChain`` for
``rsk_coin`` and a ``VcashChain`` for ``vcash_coin``; ``AuxChains`` turns
their current work into the ``MergedWork`` each new job commits to.

Every chain is polled once a second with short call timeouts, and at most
one poll per chain is in flight, so a slow or dead daemon never holds up
anything: while it fails, its work is dropped (jobs are built without it),
one critical log (an alert) says so, and one info log says when it answers
again.

- Namecoin-style: ``getblockcount``; a new height, or a block older than
  ``aux_job_timeout``, fetches a new block (``createauxblock(address)`` when
  an address is configured, else ``getauxblock()``); a found block goes back
  with ``submitauxblock(hash, auxpow)`` or ``getauxblock(hash, auxpow)``.
- RSK: ``eth_blockNumber``; a new number, or work older than
  ``aux_job_timeout``, asks ``mnr_getWork`` (and ``eth_getBlockByHash`` of
  its parent for the height mined); new work reaches jobs at most once per
  ``rsk_job_interval``; a found block goes back with
  ``mnr_submitBitcoinBlockPartialMerkle``.
- VCASH: ``GET /v1/pool/getauxblock`` (HTTP, basic auth); a new height is
  new work; a found block is ``POST /v1/pool/submitauxblock``.
"""

import base64
import json
from io import BytesIO

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from viabtc.jobmaster.merge import (
    AuxBlock,
    RskWork,
    VcashWork,
    aux_proof,
    merge,
    rsk_submission,
    vcash_submission,
)
from viabtc.node.jsonrpc import NodeConnectionPool

#: Seconds an aux daemon may take to answer one call.
AUX_CALL_TIMEOUT = 3.0
#: Seconds a submission may take (a daemon checks the proof and connects the block).
AUX_SUBMIT_TIMEOUT = 10.0
#: RSK's ``blockImportedResult`` words meaning the block was taken.
RSK_IMPORTED = frozenset({"IMPORTED_BEST", "IMPORTED_NOT_BEST", "EXIST"})


@attrs.frozen
class AuxCoinConfig:
    """One ``aux_coin`` entry: its name, daemons and optional payout address and chain id."""

    name: str
    nodes: tuple
    address: str | None = None
    #: our key: the chain id the daemon will report, to check slots at start-up
    chain_id: int | None = None


class _PolledChain:
    """
    What every kind of aux chain shares: one poll at a time, failures
    turning the chain's ``work`` off with one alert, and submissions made
    once per block.  ``changed()`` is called whenever ``work`` changes.
    """

    _log = Logger()

    def __init__(self, name, clock, changed):
        self.name = name
        self._clock = clock
        self._changed = changed
        #: what jobs commit to for this chain, or None
        self.work = None
        self.failing = False
        self._closed = False
        self._polling = None
        #: hashes of the blocks submitted (each block is submitted once)
        self.submitted = set()

    def poll(self):
        """One poll (skipped while the previous one is still waiting); a Deferred."""
        if self._polling is not None or self._closed:
            return self._polling or defer.succeed(None)
        d = self._polling = defer.ensureDeferred(self._guarded())
        d.addBoth(self._polled)
        return d

    def notify(self):
        """``aux_blocknotify``: poll now."""
        return self.poll()

    def _polled(self, result):
        self._polling = None

    async def _guarded(self):
        try:
            await self._poll()
            self._recovered()
        except defer.CancelledError:
            raise
        except Exception as e:  # a daemon's answer is bad input, never a crash
            self._failed(e)

    def _set(self, work, description):
        old = self.work
        self.work = work
        if old != work:
            self._log.info("aux chain {name}: {description}", name=self.name,
                           description=description, role="jobmaster")
            self._changed()

    def _failed(self, error):
        if self._closed:
            return
        if not self.failing:
            self.failing = True
            self._log.critical("aux chain {name} unavailable, mining without it: {error}",
                               name=self.name, error=str(error) or type(error).__name__,
                               role="jobmaster")
        self._lost()
        if self.work is not None:
            self.work = None
            self._changed()

    def _lost(self):
        """Forget what the next poll must fetch again."""

    def _recovered(self):
        if self.failing:
            self.failing = False
            self._log.info("aux chain {name} answers again", name=self.name, role="jobmaster")

    def first_submission(self, block_hash):
        """True the first time ``block_hash`` is to be submitted (then remembered)."""
        if block_hash in self.submitted:
            return False
        if len(self.submitted) >= 10_000:
            self.submitted.clear()
        self.submitted.add(block_hash)
        return True

    def close(self):
        """Stop: the poll in flight is cancelled."""
        self._closed = True
        if self._polling is not None:
            self._polling.cancel()


class AuxChain(_PolledChain):
    """
    A Namecoin-style chain.  ``nodes`` has ``call(method, *params,
    timeout=)`` → a Deferred (a ``NodeGroup``); ``work`` is its ``AuxBlock``.
    """

    def __init__(self, config, nodes, clock, job_timeout, changed, call_timeout=AUX_CALL_TIMEOUT):
        super().__init__(config.name, clock, changed)
        self.config = config
        self._nodes = nodes
        self._job_timeout = job_timeout
        self._call_timeout = call_timeout
        self.height = None
        self.fetched_at = None

    @property
    def block(self):
        return self.work

    async def _poll(self):
        count = await self._nodes.call("getblockcount", timeout=self._call_timeout)
        now = self._clock.seconds()
        stale = self.fetched_at is None or now - self.fetched_at >= self._job_timeout
        if count != self.height or self.work is None or stale:
            if self.config.address:
                reply = await self._nodes.call("createauxblock", self.config.address,
                                               timeout=self._call_timeout)
            else:
                reply = await self._nodes.call("getauxblock", timeout=self._call_timeout)
            block = AuxBlock.from_reply(self.name, reply)
            self.height = count
            self.fetched_at = self._clock.seconds()
            self._set(block, f"block {block.display_hash} height {count}")

    def _lost(self):
        self.fetched_at = None

    def target_in(self, merged):
        entry = merged.entry(self.name)
        return entry.block.target if entry is not None else None

    def prepare(self, found, context):
        """``(block hash, text for logs, params)`` of the submission; ``ValueError`` if refused."""
        entry = context.merge.entry(self.name)
        auxpow = aux_proof(found, context, entry)
        return entry.block.block_hash, entry.block.display_hash, (entry.block.display_hash,
                                                                 auxpow.hex())

    def submit(self, params):
        """Submit ``(display hash, auxpow hex)``; a Deferred firing with True if accepted."""
        method = "submitauxblock" if self.config.address else "getauxblock"
        d = self._nodes.call(method, *params, timeout=AUX_SUBMIT_TIMEOUT)
        return d.addCallback(lambda result: result is not False)

    def close(self):
        super().close()
        return self._nodes.close()


def _quantity(value, what):
    """An Ethereum-style ``QUANTITY`` (``0x`` hex text) as an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{what} is not a 0x quantity")
    return int(value, 16)


class RskChain(_PolledChain):
    """RSK through its ``mnr_*`` JSON-RPC; ``work`` is its ``RskWork``."""

    def __init__(self, name, nodes, clock, job_timeout, job_interval, changed,
                 call_timeout=AUX_CALL_TIMEOUT):
        super().__init__(name, clock, changed)
        self._nodes = nodes
        self._job_timeout = job_timeout
        self._job_interval = job_interval
        self._call_timeout = call_timeout
        self.number = None
        self.fetched_at = None
        self.installed_at = None
        #: work newer than ``work``, waiting for ``rsk_job_interval`` to pass
        self.pending = None

    async def _poll(self):
        call = self._nodes.call
        number = _quantity(await call("eth_blockNumber", timeout=self._call_timeout),
                           "eth_blockNumber")
        now = self._clock.seconds()
        stale = self.fetched_at is None or now - self.fetched_at >= self._job_timeout
        if number != self.number or stale:
            reply = await call("mnr_getWork", timeout=self._call_timeout)
            parent = reply.get("parentBlockHash") if isinstance(reply, dict) else None
            block = await call("eth_getBlockByHash", parent, False, timeout=self._call_timeout)
            if not isinstance(block, dict):
                raise ValueError("eth_getBlockByHash gave no block for the work's parent")
            work = RskWork.from_reply(self.name, reply, _quantity(block.get("number"), "number") + 1)
            self.number = number
            self.fetched_at = self._clock.seconds()
            if self.work is None or work.block_hash != self.work.block_hash:
                self.pending = work
        self._install_due()

    def _install_due(self):
        pending, now = self.pending, self._clock.seconds()
        if pending is None:
            return
        if self.work is not None and now - self.installed_at < self._job_interval:
            return
        self.pending = None
        self.installed_at = now
        self._set(pending, f"work {pending.block_hash.hex()} height {pending.height}")

    def _lost(self):
        self.fetched_at = None
        self.pending = None

    def target_in(self, merged):
        rsk = merged.rsk
        return rsk.target if rsk is not None and rsk.name == self.name else None

    def prepare(self, found, context):
        work = context.merge.rsk
        return work.block_hash, work.block_hash.hex(), rsk_submission(work, found, context)

    def submit(self, params):
        """``mnr_submitBitcoinBlockPartialMerkle``; True when RSK imported the block."""
        d = self._nodes.call("mnr_submitBitcoinBlockPartialMerkle", *params,
                             timeout=AUX_SUBMIT_TIMEOUT)
        return d.addCallback(rsk_imported)

    def close(self):
        super().close()
        return self._nodes.close()


def rsk_imported(result):
    """Whether an ``mnr_submit*`` result says the block was imported."""
    word = result.get("blockImportedResult") if isinstance(result, dict) else None
    if not isinstance(word, str):
        return False
    try:
        word = bytes.fromhex(word[2:] if word.startswith("0x") else word).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return False
    return word in RSK_IMPORTED


class VcashHTTP:
    """
    VCASH's pool API: JSON over plain HTTP GET/POST with basic auth, each
    call bounded by ``timeout``.
    """

    def __init__(self, entry, reactor, timeout=AUX_CALL_TIMEOUT):
        self._base = (entry.url or f"http://{entry.host}:{entry.port}").rstrip("/").encode()
        self._reactor = reactor
        self._timeout = timeout
        self._pool = NodeConnectionPool(reactor)
        self._agent = Agent(reactor, pool=self._pool)
        credentials = f"{entry.user or ''}:{entry.password or ''}".encode()
        self._headers = {b"Authorization": [b"Basic " + base64.b64encode(credentials)],
                         b"Content-Type": [b"application/json"]}

    @defer.inlineCallbacks
    def request(self, method, path, body=None, timeout=None):
        producer = None
        if body is not None:
            producer = FileBodyProducer(BytesIO(json.dumps(body).encode()))
        d = self._agent.request(method, self._base + path, Headers(self._headers), producer)
        d.addTimeout(timeout or self._timeout, self._reactor)
        response = yield d
        data = yield readBody(response)
        if response.code != 200:
            raise ValueError(f"HTTP {response.code} from {path.decode()}")
        return json.loads(data) if data.strip() else None

    def close(self):
        return self._pool.closeCachedConnections()


class VcashChain(_PolledChain):
    """VCASH through its pool API (``http`` a ``VcashHTTP``); ``work`` is its ``VcashWork``."""

    def __init__(self, name, http, clock, changed):
        super().__init__(name, clock, changed)
        self._http = http

    async def _poll(self):
        reply = await self._http.request(b"GET", b"/v1/pool/getauxblock")
        work = VcashWork.from_reply(self.name, reply)
        if self.work is None or work.height > self.work.height or (
                work.height == self.work.height and work.block_hash != self.work.block_hash):
            self._set(work, f"block {work.display_hash} height {work.height}")

    def target_in(self, merged):
        vcash = merged.vcash
        return vcash.target if vcash is not None and vcash.name == self.name else None

    def prepare(self, found, context):
        work = context.merge.vcash
        return work.block_hash, work.display_hash, vcash_submission(work, found, context)

    def submit(self, body):
        d = self._http.request(b"POST", b"/v1/pool/submitauxblock", body,
                               timeout=AUX_SUBMIT_TIMEOUT)
        return d.addCallback(lambda result: not (isinstance(result, dict) and result.get("error")))

    def close(self):
        super().close()
        return self._http.close()


class AuxChains:
    """
    Every merge-mined chain, and the merged work jobs commit to: the
    Namecoin-style ``chains`` in a tree of ``size`` with ``nonce``, and
    optional ``rsk`` and ``vcash``.
    """

    _log = Logger()

    def __init__(self, chains, size, nonce, rsk=None, vcash=None):
        self.chains = list(chains)
        self.size = size
        self.nonce = nonce
        self.rsk = rsk
        self.vcash = vcash
        self._reported = set()

    def __iter__(self):
        yield from self.chains
        for chain in (self.rsk, self.vcash):
            if chain is not None:
                yield chain

    def get(self, name):
        for chain in self:
            if chain.name == name:
                return chain
        return None

    def poll(self):
        for chain in self:
            chain.poll()

    def work(self):
        """The ``MergedWork`` for the next job, or None (nothing to merge)."""
        blocks = [chain.work for chain in self.chains if chain.work is not None]
        rsk = self.rsk.work if self.rsk is not None else None
        vcash = self.vcash.work if self.vcash is not None else None
        work, left_out = merge(blocks, self.size, self.nonce, rsk, vcash)
        for block in left_out:
            if block.name not in self._reported:
                self._reported.add(block.name)
                self._log.critical(
                    "aux chain {name} (chain id {chain_id}) takes the slot of an earlier chain in "
                    "a tree of {size} with nonce {nonce}; it is not mined (change aux_merkle_nonce "
                    "or aux_merkle_size)", name=block.name, chain_id=block.chain_id,
                    size=self.size, nonce=self.nonce, role="jobmaster")
        return work

    def close(self):
        return defer.gatherResults([defer.maybeDeferred(chain.close) for chain in self],
                                   consumeErrors=True)
