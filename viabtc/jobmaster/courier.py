# -*- test-case-name: tests.jobmaster.test_service -*-
"""
Getting a found block to the network, and never losing one (ref §3.8).

A checked candidate block is worth a block reward, so delivery is careful:

1. its hex is written to ``found_blocks_dir``, so an operator can
   resubmit it by hand whatever happens next; see "Order" below;
2. it is pushed (cmd 10) to every connected blockmaster, which relay it to
   their nodes and peers; an absent blockmaster delays nothing;
3. it is submitted to every node in parallel; while no node could judge it
   (all unreachable or not ready) the submission is retried (1 s, doubling
   up to 5 s) with a critical alert, for as long as the block can still
   win: until a node's chain reaches its height with another block, or
   ``retry_limit`` (10 minutes by default).  The outcome is logged with
   the block hash: info when a node has it in its best chain, critical
   when it was rejected or could not be submitted.

Order.  The push to the blockmasters leaves first, straight to their
sockets (``viabtc.sendnow``), as in the seed (ref §3.8: push, then
submit); the ``submitblock`` requests, issued just before it, are written
on the next reactor turn, one ``send`` each.  The file is written
and ``fsync``ed two reactor turns later, once the first turn has started
writing the requests to their sockets, and in the reactor's thread pool
(when the clock is a reactor with threads), so that the reactor keeps
sending the megabytes of the requests meanwhile.  Measured on the
benchmark VM, writing the 2.4 MB hex of a 4,000-transaction block costs
5-6 ms (the page cache under dirty-page throttling) and its ``fsync``
more: either, before or amid the submit, was the largest part of the
time from a winning share to the node (docs/benchmarks.md), and a block
is worth most in its first milliseconds.  The trade-off: if
the jobmaster dies in those few milliseconds, the file is missing, but the
requests are already in the kernel, which still delivers them to the
nodes when a process dies; the gateway also logs a candidate it could not
hand on, and re-sends the recent ones after a reconnect.  A block that
could not be submitted (no node answering) is retried long after the file
is on disk.
"""

import os

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from viabtc.node.jsonrpc import NodeCallError
from viabtc.rpc.codec import Command, Packet, PacketType

RETRY_FIRST = 1.0
RETRY_MAX = 5.0
RETRY_LIMIT = 600.0


def block_file_name(candidate):
    """``<height>-<display hash>.hex``: sorts by height, names the block."""
    return f"{candidate.height}-{candidate.display_hash}.hex"


class BlockCourier:
    """
    Delivers ``Candidate`` blocks.  ``submitter`` is a ``BlockSubmitter``,
    ``nodes`` its ``NodeGroup`` (asked for the tip height between retries),
    ``blockmasters`` a list of ``ILink`` (``FailoverClient``); ``clock`` an
    ``IReactorTime``.  ``deliver`` returns a Deferred that fires (never
    fails) when the block's fate is known; ``stop`` ends the waits between
    retries and waits for the deliveries in flight.
    """

    _log = Logger()

    def __init__(self, submitter, nodes, blockmasters, found_dir, clock,
                 retry_limit=RETRY_LIMIT):
        self._submitter = submitter
        self._nodes = nodes
        self._blockmasters = list(blockmasters)
        self._found_dir = found_dir
        self._clock = clock
        self._retry_limit = retry_limit
        self._in_flight = set()
        self._stopping = False
        #: the waits between retries (Deferred -> DelayedCall), ended early by ``stop``
        self._pauses = {}
        #: hashes of blocks already delivered, so a block reported twice
        #: (two gateways, a retransmission) is submitted once
        self._seen = set()

    def deliver(self, candidate):
        if candidate.block_hash in self._seen:
            self._log.info("block {hash} already delivered; duplicate report ignored",
                           hash=candidate.display_hash, role="jobmaster")
            return defer.succeed(None)
        self._seen.add(candidate.block_hash)
        if len(self._seen) > 10_000:
            self._seen = {candidate.block_hash}
        # The coroutine runs up to its first wait: the requests are issued.
        d = defer.ensureDeferred(self._submit(candidate))
        self._push(candidate)
        # The next turn sends them; the one after saves the file (see "Order").
        self._clock.callLater(0, self._clock.callLater, 0, self._save, candidate)
        self._in_flight.add(d)
        d.addBoth(self._done, d)
        return d

    def _done(self, result, d):
        self._in_flight.discard(d)
        if isinstance(result, Failure):
            self._log.failure("block delivery failed; resubmit it from {dir}", result,
                              dir=self._found_dir, role="jobmaster")
        return None

    def _save(self, candidate):
        """Write the block's hex file and make it durable, off the reactor thread when there are threads."""
        path = os.path.join(self._found_dir, block_file_name(candidate))
        if IReactorThreads.providedBy(self._clock):
            d = threads.deferToThreadPool(self._clock, self._clock.getThreadPool(),
                                          _write_durably, self._found_dir, path, candidate.hex_parts)
        else:
            d = defer.maybeDeferred(_write_durably, self._found_dir, path, candidate.hex_parts)
        d.addCallbacks(self._saved, self._not_saved, callbackArgs=(candidate, path),
                       errbackArgs=(candidate, path))
        return d

    def _saved(self, _, candidate, path):
        self._log.info("block {hash} (height {height}) saved to {path}",
                       hash=candidate.display_hash, height=candidate.height, path=path,
                       role="jobmaster")

    def _not_saved(self, failure, candidate, path):
        self._log.critical("block {hash} not saved to {path}: {error}",
                           hash=candidate.display_hash, path=path, error=str(failure.value),
                           role="jobmaster")

    def _push(self, candidate):
        if not self._blockmasters:
            return
        packet = Packet(Command.SUBMIT_BLOCK, candidate.block, PacketType.PUSH)
        for link in self._blockmasters:
            if not link.send(packet):
                self._log.warn("blockmaster {link} not connected; block {hash} not pushed to it",
                               link=getattr(link, "name", link), hash=candidate.display_hash,
                               role="jobmaster")

    async def _submit(self, candidate):
        started = self._clock.seconds()
        delay = RETRY_FIRST
        alerted = False
        while True:
            report = await self._submitter.submit_hex(candidate.hex_parts, candidate.block_hash)
            if report.accepted:
                self._log.info("block {hash} at height {height} accepted: {summary}",
                               hash=candidate.display_hash, height=candidate.height,
                               summary=report.summary(), role="jobmaster")
                return report
            if not report.retryable:
                verdict = "REJECTED" if report.rejected else "not in any node's best chain"
                self._log.critical("block {hash} at height {height} {verdict}: {summary}",
                                   hash=candidate.display_hash, height=candidate.height,
                                   verdict=verdict, summary=report.summary(), role="jobmaster")
                return report
            waited = self._clock.seconds() - started
            if self._stopping or waited >= self._retry_limit:
                self._log.critical(
                    "block {hash} at height {height} NOT SUBMITTED after {waited:.0f} s "
                    "({summary}); resubmit it from {dir}",
                    hash=candidate.display_hash, height=candidate.height, waited=waited,
                    summary=report.summary(), dir=self._found_dir, role="jobmaster")
                return report
            tip = await self._tip_height()
            if tip is not None and tip >= candidate.height:
                self._log.critical(
                    "block {hash} at height {height} lost: the node's chain reached height "
                    "{tip} with another block ({summary})", hash=candidate.display_hash,
                    height=candidate.height, tip=tip, summary=report.summary(), role="jobmaster")
                return report
            if not alerted:
                alerted = True
                self._log.critical("block {hash} at height {height} not yet submitted "
                                   "({summary}); retrying", hash=candidate.display_hash,
                                   height=candidate.height, summary=report.summary(),
                                   role="jobmaster")
            await self._pause(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _pause(self, seconds):
        """Wait ``seconds`` before the next attempt, or until ``stop``."""
        d = defer.Deferred()
        self._pauses[d] = self._clock.callLater(seconds, d.callback, None)
        try:
            await d
        finally:
            self._pauses.pop(d, None)

    async def _tip_height(self):
        """The node's block count, or None while no node answers."""
        try:
            return await self._nodes.call("getblockcount")
        except NodeCallError:
            return None

    def stop(self, timeout=30.0):
        """
        Stop retrying, and fire once every delivery in flight has finished
        its current attempt, or after ``timeout`` seconds.
        """
        self._stopping = True
        for d, call in list(self._pauses.items()):
            call.cancel()
            d.callback(None)
        if not self._in_flight:
            return defer.succeed(None)
        waiting = defer.DeferredList(list(self._in_flight))
        timer = self._clock.callLater(timeout, waiting.cancel)

        def finished(result):
            if timer.active():
                timer.cancel()
            return None

        return waiting.addBoth(finished)


def _write_durably(directory, path, parts):
    """``parts`` joined, and a newline, to ``path``, synced to disk; ``OSError`` if not."""
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.writelines(parts)
        f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
