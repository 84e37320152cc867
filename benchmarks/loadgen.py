# -*- test-case-name: benchmarks -*-
"""
The Stratum load generator: many sessions replaying pre-ground shares.

One process, pinned to its own core, opens ``--connections`` sessions from
the loopback source addresses 127.0.0.2, 127.0.0.3, ... (each gives its own
~28,000 ephemeral ports, and the gateway caps connections per address),
subscribes and authorizes each at the benchmark difficulty, learns each
session's coinbase from its ``mining.notify``, grinds every session's
shares in a process pool (``benchmarks.grind``) and only then measures.
During the measurement it writes prepared bytes and counts reply lines, so
it is far from being the bottleneck.

Modes:

``throughput``
    each session keeps ``--window`` submits in flight (closed loop), or,
    with ``--rate``, all sessions together send that many shares per second
    (open loop); prints shares/s and reply latency percentiles.
``idle``
    open authorized sessions, print ``ready``, hold them until stdin closes.
``fanout``
    like ``idle``, then for every new job print when the first and the last
    session received its ``mining.notify``.
``block``
    send one block-candidate share at a time (the job must have an easy
    block target) and print when each was sent.

Output is one JSON object per line on stdout; times are
``time.monotonic()`` seconds, comparable across processes on one host.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import deque

import attrs
from twisted.internet import protocol, stdio
from twisted.internet.task import LoopingCall
from twisted.protocols.basic import LineReceiver

from benchmarks.context import BENCH_DIFFICULTY
from benchmarks.events import emit
from benchmarks.grind import WorkSpec, grind, grind_task, submit_line, worker_init
from viabtc.bitcoin.target import bits_to_target, difficulty_to_target

_monotonic = time.monotonic
_NOTIFY = b'"method":"mining.notify"'
_TRUE = b'"result":true'
_NOTIFY_PARAMS = b'"method":"mining.notify","params":["'


def percentiles(samples, points=(50, 90, 99, 99.9)):
    """``{"p50": ..., ...}`` in milliseconds, plus the maximum."""
    if not samples:
        return {}
    ordered = sorted(samples)
    last = len(ordered) - 1
    result = {f"p{p:g}": ordered[min(last, int(p / 100 * len(ordered)))] * 1e3 for p in points}
    result["max"] = ordered[-1] * 1e3
    return result


class BenchClient(protocol.Protocol):
    """One session: handshake, then replayed submits and counted replies."""

    def __init__(self, run, index):
        self.run = run
        self.index = index
        self.extranonce1 = None
        self.spec = None
        self.lines = ()
        self.next = 0
        self.in_flight = deque()  # (send time, submits), oldest first
        self.pending = 0
        self._tail = b""
        self.job_id = None

    @property
    def account(self):
        return f"bench{self.index % 1000}.w{self.index}"

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        self.transport.write(
            b'{"id":1,"method":"mining.subscribe","params":["viabtc-loadgen"]}\n'
            b'{"id":2,"method":"mining.authorize","params":["%s","d=%r"]}\n'
            % (self.account.encode(), BENCH_DIFFICULTY)
        )

    def dataReceived(self, data):
        now = _monotonic()
        if self._tail:
            data = self._tail + data
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        if not cut:
            return
        complete = data[:cut] if cut < len(data) else data
        if self.spec is None:
            # The handshake: its replies are not shares.
            self._handshake(complete)
            return
        if _NOTIFY in complete:
            self._job_ids(complete, now)
        replies = complete.count(b'{"id":') - complete.count(b'{"id":null')
        if replies:
            self._replies(replies, complete.count(_TRUE), now)

    def _handshake(self, complete):
        for line in complete.split(b"\n"):
            if not line or b'"id":null' not in line and self.extranonce1 is not None:
                continue
            message = json.loads(line)
            if message.get("id") == 1 and message.get("result"):
                self.extranonce1 = message["result"][1]
            elif message.get("method") == "mining.notify":
                params = message["params"]
                self.spec = WorkSpec.from_notify(
                    self.account, self.extranonce1, params, difficulty_to_target(BENCH_DIFFICULTY)
                )
                self.job_id = params[0]
                self.run.session_ready(self)
                return

    def _job_ids(self, complete, now):
        """New jobs after the handshake: only the job id is read (no JSON), to stay cheap."""
        start = 0
        while True:
            at = complete.find(_NOTIFY_PARAMS, start)
            if at < 0:
                return
            at += len(_NOTIFY_PARAMS)
            end = complete.index(b'"', at)
            self.job_id = complete[at:end].decode()
            self.run.notified(self, self.job_id, now)
            start = end

    def _replies(self, count, accepted, now):
        run = self.run
        run.replied += count
        run.accepted += accepted
        run.last_reply = now
        self.pending -= count
        in_flight = self.in_flight
        while count and in_flight:
            sent, n = in_flight[0]
            if n <= count:
                count -= n
                in_flight.popleft()
                run.latencies.append(now - sent)
            else:
                in_flight[0] = (sent, n - count)
                count = 0
        if run.window:
            self.send(run.window - self.pending)
        elif not self.pending and self.next >= len(self.lines):
            run.client_done(self)

    def send(self, count):
        """Send up to ``count`` more submits."""
        start = self.next
        end = min(start + count, len(self.lines))
        if end <= start:
            if not self.pending:
                self.run.client_done(self)
            return 0
        self.next = end
        n = end - start
        self.pending += n
        self.in_flight.append((_monotonic(), n))
        self.transport.write(b"".join(self.lines[start:end]))
        return n

    def connectionLost(self, reason):
        self.run.lost(self)


class ClientFactory(protocol.ClientFactory):
    def __init__(self, run, index):
        self.run = run
        self.index = index

    def buildProtocol(self, addr):
        return BenchClient(self.run, self.index)

    def clientConnectionFailed(self, connector, reason):
        self.run.connect_failed(self.index, reason)


class Run:
    """One load generator run: connects, prepares, measures, prints."""

    def __init__(self, reactor, options):
        self.reactor = reactor
        self.options = options
        self.clients = []
        self.ready = 0
        self.connecting = 0
        self.started = 0
        self.failed = 0
        self.replied = 0
        self.accepted = 0
        self.latencies = []
        self.last_reply = None
        self.first_send = None
        self.done = set()
        self.window = options.window if not options.rate else 0
        self.jobs = {}  # job id -> [first, last, count]
        self.blocks_sent = 0
        self._ticker = None

    # -- connecting -------------------------------------------------------------

    def start(self):
        self._connect_more()

    def _connect_more(self):
        options = self.options
        while self.started < options.connections and self.connecting < options.connect_burst:
            index = self.started
            source = f"127.0.0.{2 + index // options.per_source}"
            self.reactor.connectTCP(
                options.host, options.port, ClientFactory(self, index), timeout=30, bindAddress=(source, 0)
            )
            self.started += 1
            self.connecting += 1

    def session_ready(self, client):
        self.clients.append(client)
        self.ready += 1
        self.connecting -= 1
        if self.ready + self.failed == self.options.connections:
            self.all_ready()
        else:
            self._connect_more()

    def connect_failed(self, index, reason):
        self.failed += 1
        self.connecting -= 1
        if self.failed <= 3:
            emit(event="connect_failed", index=index, reason=reason.getErrorMessage())
        if self.ready + self.failed == self.options.connections:
            self.all_ready()
        else:
            self._connect_more()

    def lost(self, client):
        if client.spec is not None and client not in self.done and self.options.mode == "throughput":
            emit(event="lost", index=client.index)
            self.client_done(client)

    # -- after every session is ready -------------------------------------------

    def all_ready(self):
        options = self.options
        emit(event="ready", sessions=self.ready, failed=self.failed, t=_monotonic())
        if options.mode == "throughput":
            self.prepare_shares()
            os.sched_setaffinity(0, {options.cpu})
            self.measure()
        elif options.mode == "block":
            os.sched_setaffinity(0, {options.cpu})
            self.reactor.callLater(0.2, self.send_block)
        else:
            os.sched_setaffinity(0, {options.cpu})
            stdio.StandardIO(_StopOnClose(self.reactor))

    def prepare_shares(self):
        options = self.options
        start = _monotonic()
        tasks = [(c.spec, 0, options.shares, options.reject_every) for c in self.clients]
        with multiprocessing.get_context("fork").Pool(options.grind_procs, initializer=worker_init) as pool:
            results = pool.map(grind_task, tasks, chunksize=max(1, len(tasks) // (8 * options.grind_procs)))
        total = 0
        for client, (lines, _) in zip(self.clients, results):
            client.lines = lines
            total += len(lines)
        emit(event="ground", submits=total, seconds=_monotonic() - start)

    def measure(self):
        self.total = sum(len(c.lines) for c in self.clients)
        self.first_send = _monotonic()
        if self.window:
            for client in self.clients:
                client.send(self.window)
        else:
            self._ticker = LoopingCall(self._tick)
            self._tick_last = self.first_send
            self._credit = 0.0
            self._offset = 0
            self._ticker.start(0.005)
        self.reactor.callLater(self.options.timeout, self.finish, True)

    def _tick(self):
        now = _monotonic()
        self._credit += (now - self._tick_last) * self.options.rate
        self._tick_last = now
        budget = int(self._credit)
        self._credit -= budget
        clients = self.clients
        n = len(clients)
        idle = 0
        while budget > 0 and idle < n:
            client = clients[self._offset % n]
            self._offset += 1
            if client.next >= len(client.lines):
                idle += 1
                continue
            idle = 0
            budget -= client.send(1)

    def client_done(self, client):
        if client in self.done:
            return
        self.done.add(client)
        if len(self.done) == len(self.clients):
            self.finish(False)

    def finish(self, timed_out):
        if self.first_send is None or getattr(self, "_finished", False):
            return
        self._finished = True
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        elapsed = (self.last_reply or _monotonic()) - self.first_send
        emit(
            event="result",
            mode="throughput",
            connections=len(self.clients),
            window=self.window,
            rate=self.options.rate,
            submits=self.total,
            replies=self.replied,
            accepted=self.accepted,
            rejected=self.replied - self.accepted,
            seconds=elapsed,
            shares_per_s=self.replied / elapsed if elapsed > 0 else 0.0,
            valid_per_s=self.accepted / elapsed if elapsed > 0 else 0.0,
            timed_out=timed_out,
            latency_ms=percentiles(self.latencies),
        )
        self.reactor.stop()

    # -- fan-out --------------------------------------------------------------

    def notified(self, client, job_id, now):
        entry = self.jobs.get(job_id)
        if entry is None:
            entry = self.jobs[job_id] = [now, now, 0]
        entry[1] = now
        entry[2] += 1
        if entry[2] == len(self.clients):
            emit(event="notified", job_id=job_id, first=entry[0], last=entry[1], sessions=entry[2])

    # -- block candidates -------------------------------------------------------

    def send_block(self):
        """One share meeting the job's block target, from the first session."""
        client = self.clients[0]
        spec = client.spec
        block_spec = WorkSpec(**{**_fields(spec), "target": bits_to_target(spec.nbits)})
        (en2, nonce), = grind(block_spec, 1 + self.blocks_sent, 1, 0)[0]
        self.blocks_sent += 1
        t = _monotonic()
        client.transport.write(submit_line(10_000 + self.blocks_sent, spec, en2, nonce))
        emit(event="block_sent", n=self.blocks_sent, t=t)
        if self.blocks_sent < self.options.blocks:
            self.reactor.callLater(0.2, self.send_block)
        else:
            self.reactor.callLater(1.0, self.reactor.stop)


def _fields(spec):
    return attrs.asdict(spec, recurse=False)


class _StopOnClose(LineReceiver):
    """Stops the reactor when the runner closes our stdin."""

    delimiter = b"\n"

    def __init__(self, reactor):
        self.reactor = reactor

    def lineReceived(self, line):
        pass

    def connectionLost(self, reason):
        if self.reactor.running:
            self.reactor.stop()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mode", choices=("throughput", "idle", "fanout", "block"), default="throughput")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--per-source", type=int, default=1500, help="connections per source address")
    parser.add_argument("--connect-burst", type=int, default=256, help="connects in progress at once")
    parser.add_argument("--shares", type=int, default=1000, help="valid shares per session")
    parser.add_argument("--reject-every", type=int, default=50, help="a low-difficulty share after every N")
    parser.add_argument("--window", type=int, default=8, help="submits in flight per session")
    parser.add_argument("--rate", type=float, default=0.0, help="shares/s of all sessions (0: closed loop)")
    parser.add_argument("--blocks", type=int, default=10, help="block candidates to send (block mode)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--grind-procs", type=int, default=os.cpu_count() or 1)
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    run = Run(reactor, options)
    reactor.callWhenRunning(run.start)
    reactor.run()


if __name__ == "__main__":
    main()
