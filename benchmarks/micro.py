# -*- test-case-name: benchmarks -*-
"""
In-process measures: the pure paths and the protocol without sockets.

These isolate what the loopback benchmarks cannot: the share check alone,
the whole ``StratumServerProtocol`` share path without the reactor and the
kernel, JSON libraries on Stratum lines, the jobmaster's template-to-job
build with 4,000 transactions, and the pure part of a block candidate's
way from the gateway's share check to the bytes of ``submitblock``.  Each
measure is repeated and the best run reported (the least disturbed by
other work on the machine); results are a dict for ``benchmarks.runner``.
"""

import gc
import json
import time

import attrs

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from benchmarks.context import BENCH_DIFFICULTY, BenchContext, bench_factory, found_block_body
from benchmarks.grind import WorkSpec, grind, submit_lines
from benchmarks.mainnet import job_settings, template_result
from viabtc.node.jsonrpc import json_string, request_body
from viabtc.bitcoin.target import bits_to_target, difficulty_to_target
from viabtc.jobmaster.candidate import check_candidate
from viabtc.jobmaster.gateways import job_packet
from viabtc.jobmaster.jobs import build_job
from viabtc.jobmaster.messages import parse_found_block
from viabtc.node.template import Template
from viabtc.rpc.codec import Command, Packet, PacketDecoder, encode
from viabtc.stratum.job import Aux, Job, PreparedJob
from viabtc.stratum.share import ShareTarget, check_share
from viabtc.stratum.vardiff import VarDiff

CURTIME = 1_713_571_767
REGTEST_BITS = 0x207FFFFF
ACCOUNT = "bench.w1"


class CountingTransport(StringTransport):
    """A transport that keeps no bytes, only their count: the protocol measure's sink."""

    written = 0

    def write(self, data):
        self.written += len(data)


def best_of(repeat, fn):
    """The shortest of ``repeat`` timed calls of ``fn`` (seconds), with GC off."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return best


def prepared_mainnet_job(job_id=1, bits=None, transactions=4000):
    result = template_result(transactions, CURTIME)
    if bits is not None:
        result = dict(result, bits=format(bits, "08x"), target=format(bits_to_target(bits), "064x"))
    job, context = build_job(Template.from_rpc(result), job_settings(), job_id, True)
    return PreparedJob.prepare(Job.from_json(job.to_json()), CURTIME), context


def open_session(factory, host="127.0.0.2", port=40000):
    """A subscribed, authorized session at the bench difficulty; ``(protocol, transport, spec)``."""
    proto = factory.buildProtocol(None)
    transport = CountingTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    proto.dataReceived(
        b'{"id":1,"method":"mining.subscribe","params":["bench"]}\n'
        b'{"id":2,"method":"mining.authorize","params":["%s","d=%r"]}\n' % (ACCOUNT.encode(), BENCH_DIFFICULTY)
    )
    session = proto.session
    prepared = factory.context.jobs.current
    prefix = session.coinbase(prepared, factory.context)[0]
    spec = WorkSpec(
        account=ACCOUNT,
        job_id=prepared.job_id,
        prefix=prefix,
        coinbase2=prepared.coinbase2,
        branch=prepared.branch,
        version=prepared.version,
        prevhash=prepared.prevhash,
        nbits=prepared.nbits,
        ntime=prepared.curtime,
        target=difficulty_to_target(BENCH_DIFFICULTY),
    )
    return proto, transport, spec


#: Merged-mining targets of a mainnet-like job (Namecoin-style chains, RSK,
#: VCASH): far harder than a share, so, as in real mining, no share meets them.
AUX_TARGETS = (0x0000000000000000000a0000 << 160, 0x0000000000000000001f0000 << 160,
               0x00000000000000000fff0000 << 160, 0x000000000000000000ff0000 << 160)


def measure_share_check(shares=20000, auxes=0):
    """
    ``check_share`` alone on the mainnet-like job (with ``auxes`` aux
    targets): microseconds per valid share.
    """
    prepared, _ = prepared_mainnet_job()
    if auxes:
        job = attrs.evolve(prepared.job, auxes=[
            Aux(f"AUX{i}", "00" * 32, format(target, "064x"))
            for i, target in zip(range(auxes), AUX_TARGETS)])
        prepared = PreparedJob.prepare(job, CURTIME)
    context = BenchContext()
    context.jobs.add(prepared)
    factory = bench_factory(context, _Clock())
    _, _, spec = open_session(factory)
    good, _ = grind(spec, 0, shares, 0)
    target = ShareTarget.for_difficulty(BENCH_DIFFICULTY)
    prefix = spec.prefix
    ntime = spec.ntime

    def run():
        for en2, nonce in good:
            check_share(prepared, prefix, en2, ntime, nonce, 0, 0, target, target, CURTIME)

    return {"us_per_share": best_of(5, run) / shares * 1e6, "branch_levels": len(prepared.branch)}


class _Clock:
    """A clock standing still at the job's time (no timers are run here)."""

    def seconds(self):
        return float(CURTIME)


def measure_protocol(shares=40000, batch=16, reject_every=50, profile=None):
    """
    The whole server share path, ``dataReceived`` to the reply bytes, for
    pipelined batches of ``batch`` submits on one session: shares per second
    of one core with no reactor and no kernel in the way.  ``profile``: a
    path for a pyinstrument text report of one run.
    """
    prepared, _ = prepared_mainnet_job()
    runs = []
    for _ in range(4):
        context = BenchContext()
        context.jobs.add(prepared)
        factory = bench_factory(context, _Clock())
        proto, transport, spec = open_session(factory)
        lines, _ = submit_lines(spec, 0, shares, reject_every)
        chunks = [b"".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]
        runs.append((proto, chunks, context))
    timings = []
    for i, (proto, chunks, context) in enumerate(runs):
        feed = proto.dataReceived
        profiler = None
        if profile and i == len(runs) - 1:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0001)
            profiler.start()
        gc.disable()
        start = time.perf_counter()
        for chunk in chunks:
            feed(chunk)
        elapsed = time.perf_counter() - start
        gc.enable()
        if profiler is not None:
            profiler.stop()
            with open(profile, "w") as f:
                f.write(profiler.output_text(unicode=True, color=False, show_all=False))
        else:
            timings.append(elapsed)
        if context.accepted != shares:
            raise RuntimeError(f"expected {shares} accepted shares, got {context.accepted}")
    best = min(timings)
    return {"shares_per_s": shares / best, "us_per_share": best / shares * 1e6, "batch": batch}


def _next_jobs(prepared, context, count=5):
    """``(number, PreparedJob)`` for ``count`` new, not clean jobs after ``prepared``, each made live."""
    for number in range(2, 2 + count):
        job = Job.from_json(dict(prepared.job.to_dict(), job_id=format(number, "x"), clean_jobs=False))
        new = PreparedJob.prepare(job, CURTIME)
        context.jobs.add(new)
        yield number, new


def measure_broadcast(sessions=10000, profile=None):
    """
    ``broadcast_job`` to ``sessions`` authorized sessions with no sockets:
    the gateway's own share of the new-job-to-last-notify time (each
    session's coinbase1 and notify line, one transport write).
    """
    prepared, _ = prepared_mainnet_job()
    context = BenchContext()
    context.jobs.add(prepared)
    factory = bench_factory(context, _Clock())
    for i in range(sessions):
        open_session(factory, host=f"127.0.{2 + i // 1500}.1", port=i)
    timings = []
    for number, new in _next_jobs(prepared, context):
        profiler = None
        if profile and number == 6:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0001)
            profiler.start()
        start = time.perf_counter()
        factory.broadcast_job(new)
        elapsed = time.perf_counter() - start
        if profiler is not None:
            profiler.stop()
            with open(profile, "w") as f:
                f.write(profiler.output_text(unicode=True, color=False))
        else:
            timings.append(elapsed)
    best = min(timings)
    return {"sessions": sessions, "ms": best * 1e3, "us_per_session": best / sessions * 1e6}


def _idle_miners(port, sessions, cpus, ready, stop):
    """
    A child process: ``sessions`` miners that subscribe and authorize, then
    never read again, so no notify wakes anything on the receiving side.
    """
    import os
    import socket

    os.sched_setaffinity(0, cpus)
    miners = []
    for i in range(sessions):
        sock = socket.socket()
        sock.bind((f"127.0.{2 + i // 1500}.1", 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                     b'{"id":2,"method":"mining.authorize","params":["bench%d.w","x"]}\n' % (i % 1000))
        miners.append(sock)
    ready.set()
    stop.wait()


def measure_broadcast_sockets(sessions=10000):
    """
    ``broadcast_job`` to ``sessions`` real loopback TCP sessions whose
    miners (another process, on the other cores) never read: the
    gateway's Python plus the kernel's send and receive path, without the
    receivers' wake-ups (docs/benchmarks.md, fan-out).
    """
    import multiprocessing
    import os

    from twisted.internet import reactor

    prepared, _ = prepared_mainnet_job()
    context = BenchContext()
    context.jobs.add(prepared)
    factory = bench_factory(context, reactor)
    port = reactor.listenTCP(0, factory, backlog=4096, interface="127.0.0.1")
    fork = multiprocessing.get_context("fork")
    ready, stop = fork.Event(), fork.Event()
    others = (os.sched_getaffinity(0) ^ set(range(os.cpu_count()))) or os.sched_getaffinity(0)
    child = fork.Process(target=_idle_miners, args=(port.getHost().port, sessions, others, ready, stop))
    child.start()
    try:
        deadline = time.monotonic() + 300
        while factory.authorized < sessions or not ready.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {factory.authorized} of {sessions} sessions authorized")
            reactor.iterate(0.01)
        timings = []
        for _, new in _next_jobs(prepared, context):
            start = time.perf_counter()
            factory.broadcast_job(new)
            timings.append(time.perf_counter() - start)
            reactor.iterate(0.05)
    finally:
        stop.set()
        child.join(30)
        for proto in list(factory.sessions):
            proto.transport.abortConnection()
        port.stopListening()
        for _ in range(20):
            reactor.iterate(0.01)
    best = min(timings)
    return {"sessions": sessions, "ms": best * 1e3, "us_per_session": best / sessions * 1e6,
            "median_ms": sorted(timings)[len(timings) // 2] * 1e3}


def measure_vardiff(shares=100000):
    """What per-share vardiff bookkeeping would add (the benchmarks fix the difficulty)."""
    from benchmarks.context import bench_settings

    settings = bench_settings().vardiff

    def run():
        vardiff = VarDiff(settings, 0.0)
        for i in range(shares):
            vardiff.on_share(i * 4.0)

    return {"us_per_share": best_of(5, run) / shares * 1e6}


def measure_json(lines=20000):
    """Decoding submit lines and encoding replies: the standard library against orjson."""
    line = (
        b'{"id":12345,"method":"mining.submit","params":["bench.w1","1","00000000000001a2",'
        b'"6622f3b7","1a2b3c4d"]}'
    )
    results = {}
    decoder = json.JSONDecoder().decode
    results["stdlib_decode_us"] = best_of(5, lambda: [decoder(line.decode()) for _ in range(lines)]) / lines * 1e6
    results["stdlib_loads_bytes_us"] = best_of(5, lambda: [json.loads(line) for _ in range(lines)]) / lines * 1e6
    try:
        import orjson
    except ImportError:
        return results
    results["orjson_decode_us"] = best_of(5, lambda: [orjson.loads(line) for _ in range(lines)]) / lines * 1e6
    reply = [[["mining.set_difficulty", "0123456789abcdef"], ["mining.notify", "0123456789abcdef"]], "0a0b0c0d", 8]
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    results["stdlib_encode_us"] = best_of(5, lambda: [dumps(reply).encode() for _ in range(lines)]) / lines * 1e6
    results["orjson_encode_us"] = best_of(5, lambda: [orjson.dumps(reply) for _ in range(lines)]) / lines * 1e6
    return results


def measure_jobmaster(transactions=4000):
    """
    The jobmaster's pure build path for one template: the node's JSON text
    decoded, checked (``Template.from_rpc``), the job built (coinbase halves,
    12-level branch, witness commitment given by the node) and encoded as
    the cmd-1 packet; then a gateway's side: the job decoded and prepared.
    """
    text = json.dumps({"result": template_result(transactions, CURTIME), "error": None, "id": 1}).encode()
    settings = job_settings()
    state = {}

    def jobmaster():
        template = Template.from_rpc(json.loads(text)["result"])
        job, _ = build_job(template, settings, 7, True)
        state["packet"] = encode(job_packet(job))

    def gateway():
        body = state["packet"][-len(job_packet_body(state)) :]
        PreparedJob.prepare(Job.from_json(body), CURTIME)

    jm = best_of(7, jobmaster)
    gw = best_of(7, gateway)
    return {
        "transactions": transactions,
        "template_bytes": len(text),
        "jobmaster_ms": jm * 1e3,
        "gateway_prepare_ms": gw * 1e3,
    }


def job_packet_body(state):
    decoder = PacketDecoder(1 << 20)
    return decoder.feed(state["packet"])[0].body


def measure_block_candidate(transactions=4000):
    """
    The pure part of a block candidate's way (gateway, then jobmaster): the
    share check that finds it, the cmd-2 body and packet, the jobmaster's
    decode, ``parse_found_block``, ``check_candidate`` (hashes, coinbase
    parse, merkle root, the 4,000-transaction block assembled) and the
    ``submitblock`` request body.  The job has regtest bits so that a block
    is easy to find; every cost here is independent of the target.
    """
    prepared, job_context = prepared_mainnet_job(bits=REGTEST_BITS, transactions=transactions)
    context = BenchContext()
    context.jobs.add(prepared)
    factory = bench_factory(context, _Clock())
    _, _, spec = open_session(factory)
    spec = WorkSpec(**{**_fields(spec), "target": prepared.block_target})
    (en2, nonce), = grind(spec, 0, 1, 0)[0]
    target = ShareTarget.for_difficulty(BENCH_DIFFICULTY)
    state = {}

    def gateway():
        result = check_share(prepared, spec.prefix, en2, spec.ntime, nonce, 0, 0, target, target, CURTIME)
        assert result.is_block
        state["wire"] = encode(Packet(Command.FOUND_BLOCK, found_block_body(prepared, result)))

    def jobmaster():
        packet = PacketDecoder(1 << 20).feed(state["wire"])[0]
        candidate = check_candidate(parse_found_block(packet.body), job_context)
        state["request"] = request_body(1, "submitblock", (json_string(*candidate.hex_parts),))

    gw = best_of(20, gateway)
    jm = best_of(20, jobmaster)
    return {
        "transactions": transactions,
        "gateway_ms": gw * 1e3,
        "jobmaster_ms": jm * 1e3,
        "submitblock_bytes": len(state["request"]),
        "total_ms": (gw + jm) * 1e3,
    }


def _fields(spec):
    return attrs.asdict(spec, recurse=False)


def run_all(quick=False, profile=None):
    """Every in-process measure; ``profile`` names the protocol profile's output file."""
    n = 10000 if quick else 40000
    return {
        "share_check": measure_share_check(n // 2),
        "share_check_aux": measure_share_check(n // 2, auxes=4),
        "protocol": measure_protocol(n, profile=profile),
        "vardiff": measure_vardiff(n),
        "broadcast": measure_broadcast(2000 if quick else 10000),
        "broadcast_sockets": measure_broadcast_sockets(2000 if quick else 10000),
        "json": measure_json(n // 2),
        "jobmaster_template": measure_jobmaster(),
        "block_candidate": measure_block_candidate(),
    }


def main():
    import argparse
    import os

    parser = argparse.ArgumentParser(description="in-process measures of the share and job paths")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--profile", help="write a pyinstrument profile of the protocol path here")
    options = parser.parse_args()
    os.sched_setaffinity(0, {options.cpu})
    print(json.dumps(run_all(quick=options.quick, profile=options.profile), indent=2))


if __name__ == "__main__":
    main()
