# -*- test-case-name: benchmarks -*-
"""
The mineragent's measures (issue 11, docs/benchmarks.md "Mineragent"):
``scripts/bench --only agent``.

The real role, ``twistd -n viabtc-mineragent`` from the seed's sample
``mineragent.json`` (ports, log path and the benchmark difficulty changed,
the miners' request rate lifted as the gateway's is), in front of the
suite's real gateway and jobmaster end; the load generator speaks Stratum
to the agent exactly as it does to the gateway.

* idle: authorized sessions held by one agent process, its RSS per session
  (the gateway meanwhile holds one connection);
* throughput: pipelined valid shares through the agent (v2: each miner's
  reply waits for the gateway's verdict; v1: answered at once), with the
  agent's and the gateway's CPU; shares per agent CPU-second is the figure
  for "one agent on one core" (two cores carry three busy processes here);
* bytes per share: what the gateway's connections received and sent
  (the kernel's per-socket counters) per share, through the agent and from
  the same load connected directly;
* block candidates: generator's write to the jobmaster's receipt of cmd 2,
  through the agent and directly.
"""

import json
import os
import subprocess
import time

from benchmarks.role import ROOT, TwistdRole, seed_sample_path

#: The repository's copy of the seed's sample, for a clone on its own.
TESTS_CONFIG = os.path.join(ROOT, "tests", "data", "seed-configs", "mineragent.json")


def agent_config(run_dir, agent_port, gateway_port, difficulty, v2):
    """The seed's sample ``mineragent.json`` pointed at the benchmark's gateway."""
    with open(seed_sample_path("mineragent", TESTS_CONFIG)) as f:
        config = json.load(f)
    config.pop("cli", None)
    config["log"] = {"path": os.path.join(run_dir, "mineragent"), "flag": "fatal,error,warn,info"}
    config["process"] = {"file_limit": 0, "core_limit": 0}
    config["svr"]["bind"] = [f"tcp@127.0.0.1:{agent_port}"]
    config["stratum_port"] = gateway_port
    config["diff_min"] = difficulty
    config["diff_default"] = difficulty
    config["agent_v2"] = v2
    config["limits"] = {"request_rate": 1e9, "request_burst": 1_000_000_000}
    return config


class AgentRole(TwistdRole):
    """One ``viabtc-mineragent`` twistd process; ready once it has a job from the gateway."""

    def __init__(self, run_dir, agent_port, gateway_port, difficulty, v2=True, cpu=None):
        self.port = agent_port
        super().__init__(run_dir, "viabtc-mineragent", "mineragent",
                         agent_config(run_dir, agent_port, gateway_port, difficulty, v2), cpu)

    def wait_ready(self, timeout=60.0):
        """Until the agent has its first job (it refuses miners before)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            with open(self.log_path) as f:
                if " sent to 0 miners" in f.read():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"mineragent had no job within {timeout:g} s; see {self.log_path}")


def socket_bytes(port, seen):
    """
    Update ``seen`` (peer -> ``(received, sent)``) with the byte counters of
    every established TCP connection on local ``port``, from the kernel's
    per-socket counters (``ss -ti``): the gateway's payload traffic with
    each peer.  Sampled while the load runs, since a closing generator takes
    its connections (and their counters) with it.
    """
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    peer = None
    for token in out.split():
        if token.count(":") == 1 and token[0].isdigit() and "." in token:
            # local then peer address: the last one seen names the connection
            peer = token
            seen.setdefault(peer, [0, 0])
            continue
        key, _, value = token.partition(":")
        if peer is not None and key == "bytes_received":
            seen[peer][0] = max(seen[peer][0], int(value))
        elif peer is not None and key == "bytes_sent":
            seen[peer][1] = max(seen[peer][1], int(value))


def _until_result(gen, port, seen, timeout=600.0):
    """The generator's result, sampling the gateway's socket counters meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        socket_bytes(port, seen)
        try:
            return gen.expect("result", 0.25)
        except RuntimeError as e:
            if "within" not in str(e) or time.monotonic() > deadline:
                raise


def run_agent(suite):
    """The agent's measures on the suite's running gateway and jobfeed; returns the results dict."""
    from benchmarks.context import BENCH_DIFFICULTY
    from benchmarks.runner import Proc, cpu_seconds, free_port, rss_kib

    quick = suite.quick
    results = {}
    out = os.path.join(suite.options.out, "agent-run")

    def loadgen(port, *args):
        return Proc("benchmarks.loadgen", "--port", port, "--cpu", 1, *args)

    def start(v2):
        agent = AgentRole(os.path.join(out, f"v{2 if v2 else 1}"), free_port(), suite.gateway_port,
                          BENCH_DIFFICULTY, v2)
        agent.wait_ready()
        return agent

    # -- idle ---------------------------------------------------------------------
    agent = start(True)
    try:
        sessions = 3000 if quick else 19000
        before, gateway_before = rss_kib(agent.pid), rss_kib(suite.gateway.pid)
        gen = loadgen(agent.port, "--mode", "idle", "--connections", sessions)
        ready = gen.expect("ready", 600)
        time.sleep(2.0)
        results["idle"] = {
            "sessions": ready["sessions"], "failed": ready["failed"],
            "rss_before_kib": before, "rss_after_kib": rss_kib(agent.pid),
            "kib_per_session": (rss_kib(agent.pid) - before) / max(1, ready["sessions"]),
            "gateway_rss_growth_kib": rss_kib(suite.gateway.pid) - gateway_before,
        }
        gen.stop()
    finally:
        agent.stop()

    # -- throughput and bytes, v2 and v1, then the same load directly --------------
    connections = 200 if quick else 500
    total = 40_000 if quick else 300_000
    rows = []
    for v2 in (True, False, None):
        suite.fresh_job()
        agent = None if v2 is None else start(v2)
        try:
            port = suite.gateway_port if agent is None else agent.port
            gen = loadgen(port, "--connections", connections, "--shares", total // connections, "--window", 8)
            gen.expect("ground", 600)
            cpu_gw, wall = cpu_seconds(suite.gateway.pid), time.monotonic()
            cpu_agent = cpu_seconds(agent.pid) if agent else 0.0
            seen = {}
            result = _until_result(gen, suite.gateway_port, seen)
            seconds = time.monotonic() - wall
            if agent is not None:
                # v1: the agent answered its miners before it had sent everything up.
                last = None
                for _ in range(60):
                    time.sleep(0.5)
                    socket_bytes(suite.gateway_port, seen)
                    now_seen = sorted(map(tuple, seen.values()))
                    if now_seen == last:
                        break
                    last = now_seen
            # The handshakes and the job's notifies are in it too (a few bytes per share).
            read = sum(r for r, _ in seen.values())
            written = sum(w for _, w in seen.values())
            result.pop("latency_ms", None)
            result.update(
                path="direct" if agent is None else ("agent v2" if v2 else "agent v1"),
                gateway_cpu_percent=(cpu_seconds(suite.gateway.pid) - cpu_gw) / seconds * 100,
                agent_cpu_percent=(cpu_seconds(agent.pid) - cpu_agent) / seconds * 100 if agent else None,
                gateway_read_bytes_per_share=read / max(1, result["replies"]),
                gateway_written_bytes_per_share=written / max(1, result["replies"]),
            )
            if agent is not None and result["agent_cpu_percent"]:
                result["valid_per_agent_cpu_s"] = result["valid_per_s"] / (result["agent_cpu_percent"] / 100)
            rows.append(result)
            gen.stop()
        finally:
            if agent is not None:
                agent.stop()
    results["throughput"] = rows

    # -- block candidates ---------------------------------------------------------
    blocks = 5 if quick else 20
    pushed = suite.jobfeed_push("push clean regtest")
    suite.gateway.expect_job(pushed["job_id"])
    agent = start(True)
    try:
        latency = {}
        for name, port in (("direct", suite.gateway_port), ("agent", agent.port)):
            gen = loadgen(port, "--mode", "block", "--connections", 1, "--blocks", blocks)
            times = []
            for _ in range(blocks):
                sent = gen.expect("block_sent", 60)
                found = suite.jobfeed.expect("found_block", 60)
                times.append((found["t"] - sent["t"]) * 1e3)
            gen.stop()
            latency[name] = times
        results["block_to_jobmaster_ms"] = latency
    finally:
        agent.stop()
    suite.fresh_job()
    return results


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


def summary_rows(results):
    """Rows ``(measure, target, result)`` for the suite's table."""
    agent = results.get("agent")
    if not agent:
        return []
    rows = []
    idle = agent["idle"]
    rows.append(("agent: idle miners held by one process, RSS per miner", "20,000",
                 f"{idle['sessions']:,} held, {idle['kib_per_session']:.1f} KiB, gateway +"
                 f"{idle['gateway_rss_growth_kib']:,} KiB"))
    for r in agent["throughput"]:
        if r["path"] == "direct":
            continue
        rows.append((f"agent ({r['path']}): valid shares/s from its miners", ">= 30,000 on one core",
                     f"{r['valid_per_s']:,.0f} at {r['agent_cpu_percent']:.0f} % agent cpu"
                     f" ({r.get('valid_per_agent_cpu_s', 0):,.0f} per agent cpu-s),"
                     f" gateway {r['gateway_cpu_percent']:.0f} %"))
    per_path = {r["path"]: r for r in agent["throughput"]}
    rows.append(("bytes per share into / out of the gateway", "-", ", ".join(
        f"{p}: {r['gateway_read_bytes_per_share']:.0f} / {r['gateway_written_bytes_per_share']:.0f}"
        for p, r in per_path.items())))
    block = agent["block_to_jobmaster_ms"]
    rows.append(("block share -> cmd 2 at the jobmaster", "agent ~ direct",
                 f"direct median {_median(block['direct']):.1f} ms, agent median {_median(block['agent']):.1f} ms"))
    return rows
