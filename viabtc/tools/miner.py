# -*- test-case-name: tests.tools.test_miner -*-
"""
``viabtc-miner``: a CPU Stratum miner for testing pools.

It mines regtest blocks in the local demo and end-to-end tests, and checks a
pool from the miner's side: every share it submits is one a correct pool must
accept, so a rejection printed here is a pool bug or a stale job.  It is not
meant to earn anything on mainnet.

The nonce search runs off the reactor thread in small chunks (a thread for
one worker, processes for more: CPython's hashlib keeps the GIL for 80-byte
inputs), so the Stratum session stays responsive and a clean job drops the
old work within one chunk.  The same ``Miner`` service is what tests drive
through ``run_miner``; its ``stats`` say what happened.
"""

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor

import attrs
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger, formatEvent

from viabtc import __version__
from viabtc.bitcoin.hashing import hash_to_display_hex, hash_to_int
from viabtc.bitcoin.target import bits_to_target, difficulty_to_target
from viabtc.stratum.client import (
    DEFAULT_VERSION_ROLLING_MASK,
    MalformedMessage,
    RequestTimeout,
    SessionClosed,
    StratumAddress,
    StratumClientHandler,
    StratumClientService,
    StratumError,
    StratumJob,
    TLSSettings,
    stratum_endpoint,
)
from viabtc.tools.mining import NONCE_SPACE, Cursor, grind, header_prefix, rolling_steps
from viabtc.tools.mining import extranonce2_bytes, roll_version

USER_AGENT = f"viabtc-miner/{__version__}"

#: Nonces per chunk handed to a worker: about 0.1 s of CPython hashing, so a
#: clean job or a stop is honoured within that time.
DEFAULT_CHUNK = 1 << 16


@attrs.frozen
class MinerConfig:
    """Everything ``viabtc-miner`` is told on its command line."""

    url: str
    user: str
    password: str = "x"
    threads: int = 1
    version_rolling_mask: int | None = None
    duration: float | None = None
    max_blocks: int | None = None
    max_shares: int | None = None
    extranonce2: int = 0
    tls: TLSSettings = TLSSettings()
    report_interval: float = 10.0
    chunk: int = DEFAULT_CHUNK
    nonce_space: int = NONCE_SPACE

    @property
    def address(self):
        return StratumAddress.from_url(self.url)


@attrs.define
class MinerStats:
    """
    What a run did.  ``rejected`` counts by the pool's error code (``None``
    for a plain ``false``), or ``"timeout"`` / ``"disconnected"`` when no
    answer came; ``blocks`` lists the display-order hashes of accepted shares
    that also met the block target.
    """

    jobs: int = 0
    sessions: int = 0
    submitted: int = 0
    accepted: int = 0
    rejected: Counter = attrs.Factory(Counter)
    blocks: list = attrs.Factory(list)
    hashes: int = 0


class ThreadGrinder:
    """Runs ``grind`` on the reactor's thread pool (one worker)."""

    def __init__(self, reactor):
        self.reactor = reactor

    def grind(self, prefix, start, stop, target):
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                 grind, prefix, start, stop, target)

    def stop(self):
        pass


class ProcessGrinder:
    """Runs ``grind`` in a pool of worker processes (``--threads`` > 1)."""

    def __init__(self, reactor, processes):
        self.reactor = reactor
        self.executor = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn"))

    def grind(self, prefix, start, stop, target):
        result = Deferred()
        try:
            future = self.executor.submit(grind, prefix, start, stop, target)
        except (BrokenExecutor, RuntimeError):
            return fail()
        future.add_done_callback(
            lambda f: self.reactor.callFromThread(_deliver, result, f))
        return result

    def stop(self):
        self.executor.shutdown(wait=False, cancel_futures=True)


def _deliver(result, future):
    if future.cancelled():
        result.errback(CancelledError())
    elif future.exception() is not None:
        result.errback(future.exception())
    else:
        result.callback(future.result())


@attrs.frozen
class _Work:
    """One header space: a job with fixed extranonces and version."""

    generation: int
    job: StratumJob
    extranonce2: bytes
    version: int
    mask: int
    prefix: bytes
    target: int
    block_target: int


class Miner(StratumClientHandler, Service):
    """
    Mines on one pool until told to stop or an exit condition is met;
    ``done`` then fires with ``stats``.

    ``generation`` numbers the miner's view of the work: a clean job, a new
    session, a new extranonce or version mask bumps it, and results of chunks
    ground for an older generation are dropped rather than submitted.
    """

    log = Logger()

    def __init__(self, config, reactor, grinder=None):
        self.config = config
        self.reactor = reactor
        self.grinder = grinder or (
            ThreadGrinder(reactor) if config.threads <= 1
            else ProcessGrinder(reactor, config.threads))
        self.slots = max(1, config.threads)
        self.stats = MinerStats()
        self.done = Deferred()
        self._session = None
        self._job = None
        self._target = None
        self._mask = 0
        self._cursor = Cursor(extranonce2=config.extranonce2)
        self._work = None
        self._generation = 0
        self._in_flight = 0
        self._submitting = 0
        self._idle_waiters = []
        self._finishing = False
        self._finish_waiters = []
        self._ended = False
        self._deadline = None
        self._report = LoopingCall(self._report_hashrate)
        self._report.clock = reactor
        self._last_report = (0.0, 0)
        address = config.address
        self.client = StratumClientService(
            reactor, address, self, config.user, config.password,
            endpoint_for=lambda target: stratum_endpoint(reactor, target, config.tls),
            user_agent=USER_AGENT, version_rolling_mask=config.version_rolling_mask)

    # -- lifecycle ------------------------------------------------------------

    def startService(self):
        super().startService()
        self.log.info("mining on {url} as {user} with {n} worker(s)", url=self.config.url,
                      user=self.config.user, n=self.slots, role="miner")
        self.client.startService()
        if self.config.duration is not None:
            self._deadline = self.reactor.callLater(self.config.duration, self.finish)
        self._last_report = (self.reactor.seconds(), 0)
        self._report.start(self.config.report_interval, now=False)

    def stopService(self):
        super().stopService()
        self._generation += 1
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        if self._report.running:
            self._report.stop()
        return self._when_idle().addCallback(lambda _: self.client.stopService()).addBoth(
            self._stopped)

    def _stopped(self, result):
        self.grinder.stop()
        return result

    def finish(self):
        """
        Stop mining and fire ``done`` with the stats (once).  Returns a
        Deferred that fires when the miner has stopped, so a shutdown trigger
        can wait for in-flight shares to be answered.
        """
        if not self._finishing:
            self._finishing = True
            stopping = self.stopService() if self.running else succeed(None)
            stopping.addBoth(self._finished)
        if self._ended:
            return succeed(None)
        finished = Deferred()
        self._finish_waiters.append(finished)
        return finished

    def _finished(self, _):
        self._ended = True
        self._log_summary()
        waiters, self._finish_waiters = self._finish_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        self.done.callback(self.stats)

    def _when_idle(self):
        if not self._in_flight and not self._submitting:
            return succeed(None)
        waiter = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _maybe_idle(self):
        if not self._in_flight and not self._submitting:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    # -- what the pool says ---------------------------------------------------

    def sessionStarted(self, session):
        self.stats.sessions += 1
        self._session = session
        self._mask = session.version_mask
        if session.difficulty is not None:
            self._target = difficulty_to_target(session.difficulty)
        self._new_work(session.job, drop=True)

    def sessionEnded(self, session, reason):
        if session is self._session:
            self._session = None
            self._new_work(None, drop=True)

    def jobReceived(self, job):
        self.stats.jobs += 1
        if self._session is not None:
            self._new_work(job, drop=job.clean)

    def difficultyChanged(self, difficulty):
        self._target = difficulty_to_target(difficulty)
        self.log.info("difficulty {difficulty}", difficulty=str(difficulty), role="miner")
        self._work = None
        self._pump()

    def versionMaskChanged(self, mask):
        self._mask = mask
        self.log.info("version rolling mask {mask:08x}", mask=mask, role="miner")
        if self._session is not None:
            self._new_work(self._job, drop=True)

    def extranonceChanged(self, subscription):
        if self._session is not None:
            self._new_work(self._job, drop=True)

    # -- the search -----------------------------------------------------------

    def _new_work(self, job, drop):
        if drop:
            self._generation += 1
        self._job = job
        self._work = None
        self._cursor = Cursor(extranonce2=self.config.extranonce2)
        self._pump()

    def _current_work(self, cursor):
        work = self._work
        en2 = extranonce2_bytes(cursor.extranonce2, self._session.subscription.extranonce2_size)
        version = roll_version(self._job.version, self._mask, cursor.roll) if self._mask else \
            self._job.version
        if work is not None and work.extranonce2 == en2 and work.version == version:
            return work
        job = self._job
        try:
            block_target = bits_to_target(job.bits)
        except ValueError:
            block_target = -1
        self._work = _Work(
            generation=self._generation, job=job, extranonce2=en2, version=version,
            mask=self._mask,
            prefix=header_prefix(job, self._session.subscription.extranonce1, en2, version),
            target=self._target, block_target=block_target)
        return self._work

    def _pump(self):
        while (self.running and self._session is not None and self._job is not None
               and self._target is not None and self._in_flight < self.slots):
            steps = rolling_steps(self._mask) if self._mask else 1
            cursor = self._cursor
            self._cursor, (start, stop) = cursor.advance(
                self.config.chunk, steps, self.config.nonce_space)
            work = self._current_work(cursor)
            self._in_flight += 1
            result = self.grinder.grind(work.prefix, start, stop, work.target)
            result.addCallback(self._ground, work, stop - start)
            result.addErrback(self._grind_failed)
            result.addBoth(self._chunk_done)

    def _ground(self, found, work, count):
        self.stats.hashes += count
        if work.generation != self._generation or not self.running:
            return
        for nonce, digest in found:
            self._submit(work, nonce, digest)

    def _grind_failed(self, failure):
        """A hasher that fails (a worker process died) will fail again: stop."""
        if not failure.check(CancelledError):
            self.log.failure("hashing failed; stopping", failure, role="miner")
            self.finish()

    def _chunk_done(self, _):
        self._in_flight -= 1
        self._pump()
        self._maybe_idle()

    def _submit(self, work, nonce, digest):
        job = work.job
        bits = work.version & work.mask if work.mask else None
        self.stats.submitted += 1
        self._submitting += 1
        result = self._session.submit(job.job_id, work.extranonce2, job.time, nonce, bits)
        result.addCallbacks(self._accepted, self._rejected,
                            callbackArgs=(work, nonce, digest),
                            errbackArgs=(work, nonce, digest))
        result.addErrback(lambda f: self.log.failure("recording a share failed", f,
                                                     role="miner"))
        result.addBoth(self._submit_done)

    def _submit_done(self, _):
        self._submitting -= 1
        self._maybe_idle()

    def _accepted(self, _, work, nonce, digest):
        self.stats.accepted += 1
        display = hash_to_display_hex(digest)
        if hash_to_int(digest) <= work.block_target:
            self.stats.blocks.append(display)
            self.log.info("BLOCK {hash} accepted (height {height}, job {job_id})",
                          hash=display, height=_height(work.job), job_id=work.job.job_id,
                          role="miner")
        else:
            self.log.info("accepted {hash} (job {job_id}, nonce {nonce:08x})",
                          hash=display, job_id=work.job.job_id, nonce=nonce, role="miner")
        self._check_limits()

    def _rejected(self, failure, work, nonce, digest):
        if failure.check(StratumError):
            key, reason = failure.value.code, str(failure.value)
        elif failure.check(RequestTimeout):
            key, reason = "timeout", "no answer"
        elif failure.check(SessionClosed):
            key, reason = "disconnected", "connection closed before the answer"
        else:
            return failure
        self.stats.rejected[key] += 1
        self.log.info("rejected {hash}: {reason} (job {job_id}, nonce {nonce:08x})",
                      hash=hash_to_display_hex(digest), reason=reason,
                      job_id=work.job.job_id, nonce=nonce, role="miner")

    def _check_limits(self):
        config = self.config
        if ((config.max_shares is not None and self.stats.accepted >= config.max_shares)
                or (config.max_blocks is not None and len(self.stats.blocks) >= config.max_blocks)):
            self.finish()

    # -- reporting ------------------------------------------------------------

    def _report_hashrate(self):
        now, hashes = self.reactor.seconds(), self.stats.hashes
        then, before = self._last_report
        self._last_report = (now, hashes)
        rate = (hashes - before) / (now - then) if now > then else 0.0
        self.log.info("hashrate {rate}, {accepted} accepted, {rejected} rejected, {blocks} blocks",
                      rate=format_hashrate(rate), accepted=self.stats.accepted,
                      rejected=sum(self.stats.rejected.values()),
                      blocks=len(self.stats.blocks), role="miner")

    def _log_summary(self):
        stats = self.stats
        self.log.info(
            "done: {jobs} jobs, {accepted} accepted, rejected {rejected}, {blocks} blocks, "
            "{hashes} hashes", jobs=stats.jobs, accepted=stats.accepted,
            rejected=dict(stats.rejected) or 0, blocks=len(stats.blocks), hashes=stats.hashes,
            role="miner")


def _height(job):
    try:
        return job.coinbase_height()
    except MalformedMessage:
        return "?"


def format_hashrate(rate):
    """``1234567.0`` → ``"1.23 MH/s"``."""
    for unit in ("", "k", "M", "G", "T"):
        if rate < 1000 or unit == "T":
            return f"{rate:.2f} {unit}H/s"
        rate /= 1000


def run_miner(reactor, config, grinder=None):
    """
    Start a ``Miner`` for ``config`` and return a Deferred firing with its
    ``MinerStats`` when it ends (``duration``, ``max_shares``,
    ``max_blocks``).  ``miner.finish()`` ends it early; the Miner is
    reachable as the Deferred's ``miner`` attribute.
    """
    miner = Miner(config, reactor, grinder)
    miner.startService()
    miner.done.miner = miner
    return miner.done


# -- the command line ---------------------------------------------------------

def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
        return value
    return parse


def _hex_int(text):
    try:
        return int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {text}") from None


def _url(text):
    try:
        StratumAddress.from_url(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def parse_args(argv):
    """The ``MinerConfig`` for a command line (argparse exits on a bad one)."""
    parser = argparse.ArgumentParser(
        prog="viabtc-miner",
        description="CPU Stratum miner for testing pools (regtest, demos, load).")
    parser.add_argument("-o", "--url", required=True, type=_url,
                        help="pool, e.g. stratum+tcp://127.0.0.1:3333 or stratum+ssl://host:port")
    parser.add_argument("-u", "--user", required=True, help="account, e.g. name.worker")
    parser.add_argument("-p", "--password", default="x",
                        help="password (d=N asks the pool for difficulty N)")
    parser.add_argument("-t", "--threads", type=_positive(int), default=1,
                        help="hashing workers; more than one uses processes (default 1)")
    parser.add_argument("--version-rolling", nargs="?", type=_hex_int,
                        const=DEFAULT_VERSION_ROLLING_MASK, default=None, metavar="MASK",
                        help="negotiate BIP310 version rolling (mask hex, default %(const)08x)")
    parser.add_argument("--duration", type=_positive(float), help="stop after S seconds")
    parser.add_argument("--max-blocks", type=_positive(int),
                        help="stop after N accepted block-solving shares")
    parser.add_argument("--max-shares", type=_positive(int),
                        help="stop after N accepted shares")
    parser.add_argument("--extranonce2", type=_hex_int, default=0, metavar="HEX",
                        help="first extranonce2 (hex); give parallel miners distinct ranges")
    parser.add_argument("--report-interval", type=_positive(float), default=10.0,
                        metavar="S", help="seconds between hashrate lines (default 10)")
    tls = parser.add_argument_group("TLS (stratum+ssl://)")
    tls.add_argument("--cafile", help="PEM file of the CA (or the pool certificate) to trust")
    tls.add_argument("--fingerprint",
                     help="accept only the pool certificate with this SHA-256 fingerprint")
    tls.add_argument("--insecure", action="store_true",
                     help="do not verify the pool certificate")
    args = parser.parse_args(argv)
    if args.fingerprint is not None:
        digest = args.fingerprint.replace(":", "").lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            parser.error("--fingerprint must be a SHA-256 hex digest")
    return MinerConfig(
        url=args.url, user=args.user, password=args.password, threads=args.threads,
        version_rolling_mask=args.version_rolling, duration=args.duration,
        max_blocks=args.max_blocks, max_shares=args.max_shares, extranonce2=args.extranonce2,
        tls=TLSSettings(cafile=args.cafile, fingerprint=args.fingerprint,
                        insecure=args.insecure),
        report_interval=args.report_interval)


def _print_event(event):
    """One plain line per log event of level info or above, on stdout."""
    if event.get("log_level") is not None and event["log_level"].name == "debug":
        return
    text = formatEvent(event)
    if "log_failure" in event:
        text += "\n" + event["log_failure"].getTraceback()
    sys.stdout.write(time.strftime("%H:%M:%S ") + text + "\n")
    sys.stdout.flush()


def main(argv=None):
    """
    Console entry point.  Exits 0 when the run ends normally, 1 when it never
    received a job (pool unreachable, handshake refused).
    """
    from twisted.internet.task import react
    from twisted.logger import globalLogBeginner

    config = parse_args(sys.argv[1:] if argv is None else argv)

    def run(reactor):
        globalLogBeginner.beginLoggingTo([_print_event], redirectStandardIO=False)
        done = run_miner(reactor, config)
        miner = done.miner
        reactor.addSystemEventTrigger("before", "shutdown", miner.finish)

        def exit_code(stats):
            if not stats.jobs:
                raise SystemExit(1)
        return done.addCallback(exit_code)

    react(run)


if __name__ == "__main__":
    main()
