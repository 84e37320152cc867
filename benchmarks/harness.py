# -*- test-case-name: benchmarks -*-
"""
The gateway under test, until the real ``viabtc-gateway`` role runs.

One process, pinned to one core: a ``StratumServerFactory`` with the
benchmark pool context (``benchmarks.context``) on a loopback port, fed
its jobs by a jobmaster over the real module RPC (a ``FailoverClient``, the
seed's cmd-1 packets, ``Job.from_json``, ``PreparedJob.prepare``,
``JobBook.add``, ``broadcast_job``), sending block candidates back as
cmd-2 packets.  That is the gateway's whole share and job path; what it
lacks is the statistics link, the HTTP and CLI ports and the config file.

It prints one JSON object per line: ``listening``, and ``job`` for every
job with the time from the packet's arrival to the last session's notify
handed to its transport.  ``--profile FILE`` records the whole run with
pyinstrument and writes the text report when the process is stopped
(SIGTERM or SIGINT).
"""

import argparse
import json
import os
import sys
import time

from twisted.internet.endpoints import TCP4ClientEndpoint
from zope.interface import implementer

from benchmarks.context import BenchContext, bench_factory
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet
from viabtc.rpc.interfaces import ILinkObserver
from viabtc.stratum.job import Job, JobError, PreparedJob


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


@implementer(ILinkObserver)
class JobIntake:
    """Jobs from the jobmaster link into the book and out to every session."""

    def __init__(self, context, factory, clock):
        self.context = context
        self.factory = factory
        self.clock = clock

    def on_connect(self, link):
        emit(event="jobmaster_connected")

    def on_disconnect(self, link):
        emit(event="jobmaster_lost")

    def on_packet(self, link, packet):
        if packet.command != Command.UPDATE_JOB:
            return
        start = time.monotonic()
        try:
            prepared = PreparedJob.prepare(Job.from_json(packet.body), self.clock.seconds())
            self.context.jobs.add(prepared)
        except JobError as e:
            emit(event="job_refused", error=str(e))
            return
        prepared_at = time.monotonic()
        self.factory.broadcast_job(prepared)
        done = time.monotonic()
        emit(
            event="job",
            job_id=prepared.job_id,
            clean=prepared.clean,
            sessions=len(self.factory.sessions),
            received=start,
            prepare_ms=(prepared_at - start) * 1e3,
            broadcast_ms=(done - prepared_at) * 1e3,
        )


def main():
    parser = argparse.ArgumentParser(description="the benchmark gateway harness")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jobmaster-port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--profile", help="write a pyinstrument text profile here on exit")
    options = parser.parse_args()
    os.sched_setaffinity(0, {options.cpu})

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.logger import LogLevel, FilteringLogObserver, LogLevelFilterPredicate, globalLogBeginner
    from twisted.logger import textFileLogObserver

    # Info and above to stderr (the runner keeps it in results/harness.log).
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.info)])],
        redirectStandardIO=False,
    )
    profiler = None
    if options.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()

    link = FailoverClient(
        [TCP4ClientEndpoint(reactor, "127.0.0.1", options.jobmaster_port)],
        max_size=1 << 20,
        reactor=reactor,
        role="bench-gateway",
    )
    context = BenchContext(on_block=lambda body: link.send(Packet(Command.FOUND_BLOCK, body)))
    factory = bench_factory(context, reactor)
    link.add_observer(JobIntake(context, factory, reactor))
    reactor.listenTCP(options.port, factory, backlog=4096, interface="127.0.0.1")
    link.startService()

    def report():
        emit(event="stopped", accepted=context.accepted, rejected=context.rejected, blocks=context.blocks)
        if profiler is not None:
            profiler.stop()
            with open(options.profile, "w") as f:
                f.write(profiler.output_text(unicode=True, color=False))

    reactor.addSystemEventTrigger("before", "shutdown", report)
    emit(event="listening", port=options.port, pid=os.getpid())
    reactor.run()


if __name__ == "__main__":
    main()
