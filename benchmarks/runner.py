# -*- test-case-name: benchmarks -*-
"""
Runs the benchmark suite and records it: ``scripts/bench`` calls this.

Processes: the jobmaster end (``benchmarks.jobfeed``) and the load
generators on core 1, the gateway under test alone on core 0, the
in-process measures (``benchmarks.micro``) on core 0 before anything else
starts.  The gateway under test is the real role, ``twistd -n
viabtc-gateway`` with a config made from the seed's sample
(``benchmarks.role``), fed by the jobmaster end over the module RPC.  Each
measure of the issue's table gets its own scenario; results go to
``benchmarks/results/<name>.json`` with PNG plots beside them, and a
summary table is printed.
"""

import argparse
import json
import os
import platform
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

from benchmarks.role import base_config_path
from benchmarks.storm import scenario as storm_scenario

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GATEWAY_CPU = 0
LOAD_CPU = 1


class Proc:
    """A child Python module whose stdout is JSON events, read by a thread into a queue."""

    def __init__(self, module, *args, cpu=None):
        self.name = module.rsplit(".", 1)[-1]
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module, *map(str, args)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(HERE, "results", f"{self.name}.log"), "a"),
            text=True,
            bufsize=1,
        )
        if cpu is not None:
            os.sched_setaffinity(self.popen.pid, {cpu})
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self):
        return self.popen.pid

    def _read(self):
        for line in self.popen.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "text", "text": line})
        self.events.put({"event": "exited"})

    def expect(self, name, timeout=120.0):
        """The next event called ``name`` (others are skipped); ``RuntimeError`` on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no {name!r} within {timeout:g} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event["event"] == name:
                return event
            if event["event"] == "exited":
                raise RuntimeError(f"{self.name} exited waiting for {name!r} (see results/{self.name}.log)")

    def send(self, line):
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.popen.poll() is None:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid):
    """User plus system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "gateway_config_from": os.path.relpath(base_config_path(), ROOT),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


class LoopbackSteering:
    """
    Receive Packet Steering on ``lo`` towards the load core, while in use.

    Over loopback the kernel does the receiver's TCP input, and its
    wake-up, inside the sender's ``send()``.  In a fan-out the gateway is
    a pure sender, so it also does the receive work of 10,000 miners,
    which over a real network their own machines do: 70 % of the
    gateway's fan-out time is in the kernel (``perf``), 7-12 µs per
    700-byte send.  Steering loopback's receive processing to the load
    core leaves the sender its own part (plus an inter-processor interrupt
    per hand-over, which this VM traps, much as a virtual NIC's doorbell).
    The fan-out is measured both ways; share traffic runs both ways at
    once, so those scenarios run as loopback is.  Needs root (``/sys``);
    without it the steered figures are missing and the run says why.
    """

    PATH = "/sys/class/net/lo/queues/rx-0/rps_cpus"

    def __init__(self, cpu):
        self.mask = format(1 << cpu, "x")
        self._old = None

    def available(self):
        """None when steering can be switched on here, else why not."""
        try:
            with open(self.PATH, "r+"):
                return None
        except OSError as e:
            return f"{self.PATH}: {e.strerror}"

    def __enter__(self):
        with open(self.PATH) as f:
            self._old = f.read().strip()
        with open(self.PATH, "w") as f:
            f.write(self.mask)
        return self

    def __exit__(self, *exc):
        with open(self.PATH, "w") as f:
            f.write(self._old)


class Suite:
    def __init__(self, options):
        self.options = options
        self.quick = options.quick
        self.results = {"machine": machine(), "quick": self.quick}
        self.jobmaster_port = free_port()
        self.gateway_port = free_port()
        self.writer_port = free_port()
        self.jobfeed = None
        self.gateway = None
        self.node = None
        self.proxy = None

    # -- processes -------------------------------------------------------------

    def start_gateway(self, profile=None):
        from benchmarks.context import BENCH_DIFFICULTY
        from benchmarks.role import GatewayRole

        self.gateway = GatewayRole(
            os.path.join(self.options.out, "gateway-run"), self.gateway_port, self.jobmaster_port,
            self.writer_port, BENCH_DIFFICULTY, GATEWAY_CPU, profile=profile,
        )
        self.gateway.wait_listening(60)
        self.gateway.expect_job(None, 60)

    def stop_gateway(self):
        self.gateway.stop()
        self.gateway = None

    def loadgen(self, *args):
        return Proc("benchmarks.loadgen", "--port", self.gateway_port, "--cpu", LOAD_CPU, *args)

    def fresh_job(self):
        """A clean job: empties the gateway's duplicate sets between runs."""
        pushed = self.jobfeed_push("push clean mainnet")
        self.gateway.expect_job(pushed["job_id"])

    def jobfeed_push(self, command):
        self.jobfeed.send(command)
        return self.jobfeed.expect("pushed")

    # -- scenarios ---------------------------------------------------------------

    def micro(self):
        args = [sys.executable, "-m", "benchmarks.micro", "--cpu", str(GATEWAY_CPU),
                "--profile", os.path.join(self.options.out, "profile-protocol.txt")]
        if self.quick:
            args.append("--quick")
        out = subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout
        self.results["micro"] = json.loads(out)

    def idle(self):
        sessions = 3000 if self.quick else 18000
        before = rss_kib(self.gateway.pid)
        gen = self.loadgen("--mode", "idle", "--connections", sessions)
        ready = gen.expect("ready", 300)
        time.sleep(2.0)
        after = rss_kib(self.gateway.pid)
        gen.stop()
        self.results["idle"] = {
            "sessions": ready["sessions"],
            "failed": ready["failed"],
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_session": (after - before) / max(1, ready["sessions"]),
        }

    def fanout(self):
        """
        New job → every session's notify, as loopback is and then with the
        receivers' work steered to their core (``LoopbackSteering``).
        """
        sessions = 2000 if self.quick else 10000
        gen = self.loadgen("--mode", "fanout", "--connections", sessions)
        gen.expect("ready", 300)
        time.sleep(1.0)
        rows = self._pushes(gen, steered=False)
        steering = LoopbackSteering(LOAD_CPU)
        why_not = "--no-steering" if self.options.no_steering else steering.available()
        if why_not is None:
            with steering:
                rows += self._pushes(gen, steered=True)
        else:
            self.results["fanout_not_steered_because"] = why_not
        gen.stop()
        self.results["fanout"] = rows

    def _pushes(self, gen, steered):
        rows = []
        for i in range(3 if self.quick else 8):
            pushed = self.jobfeed_push("push clean" if i % 2 else "push")
            notified = gen.expect("notified", 60)
            miners, written_ms = self.gateway.expect_job(pushed["job_id"])
            rows.append(
                {
                    "steered": steered,
                    "job_id": pushed["job_id"],
                    "clean": pushed["clean"],
                    "gateway_written_ms": written_ms,
                    "last_notify_ms": (notified["last"] - pushed["t"]) * 1e3,
                    "first_notify_ms": (notified["first"] - pushed["t"]) * 1e3,
                    "gateway_miners": miners,
                    "sessions": notified["sessions"],
                }
            )
            time.sleep(0.5)
        return rows

    def throughput(self):
        points = [200] if self.quick else [200, 500, 1000]
        total = 60_000 if self.quick else 400_000
        rows = []
        for connections in points:
            self.fresh_job()
            gen = self.loadgen("--connections", connections, "--shares", total // connections, "--window", 8)
            result, ground = self._measured(gen)
            result["grind_seconds"] = ground["seconds"]
            rows.append(result)
            gen.stop()
        self.results["throughput"] = rows

    def _measured(self, gen):
        """
        The generator's ``result`` (and ``ground``) events, with how busy the
        gateway's core was in between (``gateway_cpu_percent``: near 100 means
        the gateway, not the generator, set the pace).
        """
        ground = gen.expect("ground", 300)
        cpu, wall = cpu_seconds(self.gateway.pid), time.monotonic()
        result = gen.expect("result", 300)
        result["gateway_cpu_percent"] = (cpu_seconds(self.gateway.pid) - cpu) / (time.monotonic() - wall) * 100
        return result, ground

    def latency(self):
        connections = 500
        rates = [10_000] if self.quick else [5_000, 10_000, 20_000, 30_000]
        seconds = 3 if self.quick else 6
        rows = []
        for rate in rates:
            self.fresh_job()
            shares = max(1, int(rate * seconds / connections * 50 / 51))
            gen = self.loadgen("--connections", connections, "--shares", shares, "--rate", rate)
            result, _ = self._measured(gen)
            rows.append(result)
            gen.stop()
        self.results["latency"] = rows

    def start_node(self):
        """
        A bcoin regtest node behind the submitblock-stamping proxy
        (``benchmarks.stampproxy``).  The proxy shares the gateway's core,
        idle by the time the jobmaster sends (sharing the jobmaster's would
        serialise the sending and the receiving of the 2.3 MB request).
        """
        from viabtc.devnet.bcoin import BcoinNode

        self.node = BcoinNode().start()
        self.proxy_port = free_port()
        self.proxy = Proc("benchmarks.stampproxy", "--port", self.proxy_port, "--node-port", self.node.rpc_port,
                          "--cpu", GATEWAY_CPU, cpu=GATEWAY_CPU)
        self.proxy.expect("listening", 30)

    def block(self):
        """
        Block candidate: share written by the generator → cmd 2 in the
        jobmaster → its courier's submitblock request received by the node
        (through the stamping proxy).
        """
        blocks = 5 if self.quick else 20
        pushed = self.jobfeed_push("push clean regtest")
        self.gateway.expect_job(pushed["job_id"])
        gen = self.loadgen("--mode", "block", "--connections", 1, "--blocks", blocks)
        rows = []
        for _ in range(blocks):
            sent = gen.expect("block_sent", 60)
            found = self.jobfeed.expect("found_block", 60)
            at_node = self.proxy.expect("submitblock", 60)
            rows.append(
                {
                    "to_jobmaster_ms": (found["t"] - sent["t"]) * 1e3,
                    "jobmaster_ms": (found["checked"] - found["t"]) * 1e3,
                    "to_sent_ms": (found["sent"] - sent["t"]) * 1e3,
                    "to_submitblock_ms": (at_node["t"] - sent["t"]) * 1e3,
                    "request_first_to_last_ms": (at_node["t"] - at_node["first"]) * 1e3,
                    "request_reads": at_node["reads"],
                }
            )
        gen.stop()
        self.fresh_job()
        self.results["block"] = rows

    def fastblock(self):
        """Bitpeer's fast-block latencies, with their own roles and node (``benchmarks.fastblock``)."""
        done = subprocess.run([sys.executable, "-m", "benchmarks.fastblock", "--rounds",
                               str(3 if self.quick else 10)], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        self.results["fastblock"] = json.loads(done.stdout.strip().splitlines()[-1])

    def agent(self):
        """The mineragent in front of this gateway (``benchmarks.agent``)."""
        from benchmarks.agent import run_agent

        self.results["agent"] = run_agent(self)

    def profile(self):
        """The whole gateway process under load, profiled (the numbers of this run are not reported)."""
        path = os.path.join(self.options.out, "profile-gateway.txt")
        self.stop_gateway()
        self.start_gateway(profile=path)
        gen = self.loadgen("--connections", 500, "--shares", (40_000 if self.quick else 200_000) // 500)
        gen.expect("result", 300)
        gen.stop()
        self.stop_gateway()
        self.results["profile"] = path

    def relay(self):
        """Region-to-region blockmaster relay (``benchmarks.relay``): two bcoin nodes, no pinning."""
        blocks, txs = (2, 50) if self.quick else (5, 1000)
        proc = Proc("benchmarks.relay", "--blocks", blocks, "--txs", txs)
        self.results["relay"] = proc.expect("result", 900)["relay"]
        proc.stop()

    def run(self):
        os.makedirs(self.options.out, exist_ok=True)
        only = set(filter(None, self.options.only.split(",")))
        if not only or "fastblock" in only:
            self.fastblock()
            if only == {"fastblock"}:
                return self.results
        if not only or "micro" in only:
            self.micro()
        if not only or "relay" in only:
            self.relay()
        if only and not only - {"micro", "relay"}:
            return self.results
        node_args = []
        if not only or "block" in only:
            self.start_node()
            node_args = ["--node-url", f"http://127.0.0.1:{self.proxy_port}/", "--node-password", self.node.api_key,
                         "--found-dir", os.path.join(self.options.out, "found_blocks")]
        self.jobfeed = Proc("benchmarks.jobfeed", "--port", self.jobmaster_port, "--cpu", LOAD_CPU,
                            "--writer-port", self.writer_port, *node_args, cpu=LOAD_CPU)
        self.jobfeed.expect("listening", 60)
        try:
            self.start_gateway()
            for name, step in (
                ("idle", self.idle),
                ("fanout", self.fanout),
                ("throughput", self.throughput),
                ("latency", self.latency),
                ("block", self.block),
                ("storm", lambda: storm_scenario(self)),
                ("agent", self.agent),
                ("profile", self.profile),
            ):
                if only and name not in only:
                    continue
                started = time.monotonic()
                print(f"-- {name} ...", file=sys.stderr, flush=True)
                step()
                elapsed = self.results.setdefault("seconds", {})[name] = time.monotonic() - started
                print(f"   {name}: {elapsed:.1f} s", file=sys.stderr, flush=True)
        finally:
            if self.gateway is not None:
                self.stop_gateway()
            self.jobfeed.stop()
            if self.proxy is not None:
                self.proxy.stop()
                self.node.stop()
        return self.results


def _spread(values, digits=0):
    values = sorted(values)
    return f"median {values[len(values) // 2]:.{digits}f} ms, worst {values[-1]:.{digits}f} ms"


def summary(results):
    """The summary table: measure, target, result."""
    rows = []
    fast = results.get("fastblock")
    if fast and "error" not in fast:
        rows.append(("block at bitpeer (P2P) -> empty notify at a miner", "<= 20 ms",
                     _spread(fast["block_to_empty_notify_ms"], 1)))
        rows.append(("block share -> first byte from bitpeer at a peer", "<= 10 ms",
                     _spread(fast["share_to_first_byte_ms"], 1)))
        compact = fast["compact_block"]
        rows.append((f"bitpeer: compact block of a {compact['txs']:,}-tx block, no sockets", "-",
                     f"{compact['ms']:.1f} ms"))
    if results.get("throughput"):
        best = max(r["valid_per_s"] for r in results["throughput"])
        sweep = ", ".join(
            f"{r['connections']}: {r['valid_per_s']:,.0f} at {r.get('gateway_cpu_percent', 0):.0f} % cpu"
            for r in results["throughput"]
        )
        rows.append(("valid shares/s, pipelined over loopback", ">= 40,000", f"{best:,.0f} (conns {sweep})"))
    if results.get("latency"):
        sweep = ", ".join(f"{r['rate']:,.0f}/s: {r['latency_ms']['p99']:.0f} ms" for r in results["latency"])
        rows.append(("p99 reply latency, one share per read", "-", sweep))
    idle = results.get("idle")
    if idle:
        rows.append(
            ("idle authorized sessions, RSS per session", "18,000, <= 6 KiB",
             f"{idle['sessions']:,} held, {idle['kib_per_session']:.1f} KiB")
        )
    fan = results.get("fanout")
    if fan:
        n = f"{fan[0]['sessions']:,}"
        for steered, how in ((False, "loopback as is"), (True, "receive work steered")):
            part = [r for r in fan if r["steered"] is steered]
            if part:
                rows.append((f"new job -> last of {n} notifies written ({how})", "<= 100 ms",
                             _spread(r["gateway_written_ms"] for r in part)))
                rows.append((f"new job -> last of {n} notifies received ({how})", "-",
                             _spread(r["last_notify_ms"] for r in part)))
    block = results.get("block")
    if block:
        rows.append(("block share -> submitblock sent (gw + jm)", "<= 5 ms",
                     _spread((r["to_sent_ms"] for r in block), 1)))
        rows.append(("block share -> submitblock at the node", "-",
                     _spread((r["to_submitblock_ms"] for r in block), 1)))
    relay = dict(results.get("relay", {}))
    pure = relay.pop("pure", None)
    if pure:
        rows.append((f"blockmaster relay, no sockets ({pure['txs']} txs): A encodes / B rebuilds, seed; compact",
                     "-", f"{pure['a_full_block_seed_ms']:.1f} / {pure['b_rebuild_seed_ms']:.1f} ms; "
                          f"{pure['a_full_block_compact_ms']:.1f} / {pure['b_rebuild_compact_ms']:.1f} ms"))
    for mode, relayed in sorted(relay.items()):
        rows.append((f"blockmaster relay A -> B, {mode} ({relayed[0]['txs']} txs): submitblock issued / in B's chain",
                     "-", f"{_spread([r['to_submit_ms'] for r in relayed], 1)} / "
                          f"{_spread([r['to_best_chain_ms'] for r in relayed])}"))
    storm = results.get("storm")
    if storm:
        first, back = storm["first"], storm.get("restart")
        n = f"{storm['sessions']:,}"
        rows.append((f"storm: {n} sessions at once -> last first job", "<= 5 s",
                     f"{first.get('last_job_s', float('nan')):.2f} s ({first['with_job']:,} got one)"))
        if back:
            rows.append((f"restart: gateway listening -> last of {n} back at work", "<= 5 s",
                         f"{back['listening_to_last_job_s'] or float('nan'):.2f} s "
                         f"(SIGTERM -> last: {back['sigterm_to_last_job_s'] or float('nan'):.2f} s)"))
    from benchmarks.agent import summary_rows

    rows.extend(summary_rows(results))
    micro = results.get("micro", {})
    jm = micro.get("jobmaster_template")
    if jm:
        rows.append(("jobmaster: 4,000-tx template -> job packet", "<= 50 ms", f"{jm['jobmaster_ms']:.1f} ms (pure path)"))
    if micro.get("broadcast_sockets"):
        b, c = micro["broadcast"], micro["broadcast_sockets"]
        rows.append((f"broadcast to {c['sessions']:,} sessions, in-process: no sockets / real sockets", "-",
                     f"{b['ms']:.0f} ms / {c['ms']:.0f} ms (readers not polling: no wake-ups)"))
    if micro.get("protocol"):
        rows.append(("in-process share path (no sockets)", "-", f"{micro['protocol']['shares_per_s']:,.0f} shares/s"))
    if micro.get("share_check"):
        rows.append(("check_share alone, 12-level branch", "-", f"{micro['share_check']['us_per_share']:.1f} us/share"))
    if micro.get("share_check_aux"):
        rows.append(("check_share, same job with 4 aux targets", "-", f"{micro['share_check_aux']['us_per_share']:.1f} us/share"))
    if not rows:
        return "(no measure in this run)"
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(("measure", "target", "result"), width))]
    lines.append("-+-".join("-" * w for w in width))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description="run the viabtc benchmark suite")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--name", default=None, help="results file name (default: quick or full)")
    parser.add_argument("--only", default="", help="comma-separated scenarios to run (default: all)")
    parser.add_argument("--no-steering", action="store_true",
                        help="measure the fan-out only as loopback is (see LoopbackSteering)")
    options = parser.parse_args()
    os.makedirs(options.out, exist_ok=True)
    if (os.cpu_count() or 1) < 2:
        sys.exit("the benchmarks pin the gateway and the load generator to two different cores")
    started = time.monotonic()
    # SIGTERM unwinds like ^C, so the steering and the child processes are undone.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results = Suite(options).run()
    results["total_seconds"] = time.monotonic() - started
    name = options.name or ("quick" if options.quick else "full")
    try:
        from benchmarks.plots import plot

        results["plots"] = plot(results, options.out)
    except ImportError:
        results["plots"] = []
    with open(os.path.join(options.out, f"{name}.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(summary(results))
    print(f"\n{name}: {results['total_seconds']:.0f} s; results in {os.path.join(options.out, name + '.json')}")


if __name__ == "__main__":
    main()
