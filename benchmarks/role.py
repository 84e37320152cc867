# -*- test-case-name: benchmarks -*-
"""
The real ``viabtc-gateway`` role as the benchmarks' gateway under test,
and what any role run by the benchmarks shares (``TwistdRole``).

``twistd -n viabtc-gateway --config <file>``, the command an operator runs,
with a config made from the seed's sample ``gateway.json`` (ref §10): the
Stratum port and the jobmaster link on the benchmark's loopback ports,
``diff_min`` low enough for the load generator's ``d=2^-31`` shares, and a
``limits`` section lifting only the per-connection request rate (100/s,
meant for miners; the generator sends thousands).  The statistics writer
is the jobfeed's stand-in, which acknowledges every packet (a writer that
never answers would have the gateway resend its whole journal every few
seconds, which no healthy pool sees).

Job timings come from the gateway's own log (``job <id> at height ... sent
to N miners``, written after the broadcast); the fan-out figure itself is
measured outside the gateway (jobfeed push stamp → load generator's last
notify).  With ``profile`` the role runs under twistd's own cProfile
(``--profiler cprofile --savestats``), whose statistics become a text
report (cumulative and own time) when it stops.
"""

import json
import os
import re
import shutil
import pstats
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: The seed's sample configs, as the roles are deployed from them, beside
#: the repository in the project's tree.
SEED_CONFIGS = os.path.join(ROOT, "..", "shared", "seed", "configs")


def seed_sample_path(name, fallback):
    """The seed's sample ``<name>.json``; ``fallback`` in a clone on its own."""
    path = os.path.join(SEED_CONFIGS, f"{name}.json")
    return path if os.path.exists(path) else fallback


def base_config_path():
    """The sample config the benchmark gateway is made from (else ``etc/gateway.json``, the same keys)."""
    return seed_sample_path("gateway", os.path.join(ROOT, "etc", "gateway.json"))


def gateway_config(run_dir, stratum_port, jobmaster_port, writer_port, difficulty):
    """The sample ``gateway.json`` pointed at the benchmark's ports and files."""
    with open(base_config_path()) as f:
        config = json.load(f)
    for key in ("http_svr", "monitor", "cli", "alert"):
        config.pop(key, None)
    config["log"] = {"path": os.path.join(run_dir, "gateway"), "flag": "fatal,error,warn,info"}
    config["process"] = {"file_limit": 0, "core_limit": 0}
    config["svr"]["bind"] = [f"tcp@127.0.0.1:{stratum_port}"]
    config["job"]["addr"] = [f"tcp@127.0.0.1:{jobmaster_port}"]
    # A 4,000-transaction job body is far below this; found blocks go up.
    config["job"]["max_pkg_size"] = 1 << 20
    config["writer"]["addr"] = [f"udp@127.0.0.1:{writer_port}"]
    config["queue"] = os.path.join(run_dir, "gateway-queue")
    # VIABTC_BENCH_WORKER_NUM=N: the gateway as N worker processes (docs/benchmarks.md, issue 14).
    config["worker_num"] = int(os.environ.get("VIABTC_BENCH_WORKER_NUM", "1"))
    config["diff_min"] = difficulty
    config["diff_default"] = difficulty
    config["limits"] = {"request_rate": 1e9, "request_burst": 1_000_000_000}
    return config


def config_workers(config):
    """The ``worker_num`` of a role's ``config`` (1 for roles without workers)."""
    return config.get("worker_num", 1)


class TwistdRole:
    """
    One role as an operator runs it, ``twistd -n <plugin> --config <file>``,
    in a fresh ``run_dir`` (no journal or log left by an earlier run):
    ``<name>.json`` (``config``), ``<name>-twistd.log`` and
    ``<name>-twistd.stderr``; pinned to ``cpu`` when given.
    """

    def __init__(self, run_dir, plugin, name, config, cpu=None, twistd_options=()):
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        self.name = name
        self.config_path = os.path.join(run_dir, f"{name}.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        self.log_path = os.path.join(run_dir, f"{name}-twistd.log")
        open(self.log_path, "w").close()
        argv = [os.path.join(os.path.dirname(sys.executable), "twistd"), *twistd_options,
                "--logfile", self.log_path, "--pidfile", "", "-n", plugin, "--config", self.config_path]
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(run_dir, f"{name}-twistd.stderr"), "a"),
        )
        if cpu is not None:
            # Workers of a worker_num role inherit the parent's cores: give them every core.
            os.sched_setaffinity(self.popen.pid, {cpu} if config_workers(config) == 1 else os.sched_getaffinity(0))

    @property
    def pid(self):
        return self.popen.pid

    def check_running(self):
        """``RuntimeError`` naming the log if the process has exited."""
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}); see {self.log_path}")

    def stop(self, timeout=30.0):
        """SIGTERM, and SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class GatewayRole(TwistdRole):
    """One ``viabtc-gateway`` twistd process pinned to ``cpu``; its log read for job lines."""

    def __init__(self, run_dir, stratum_port, jobmaster_port, writer_port, difficulty, cpu, profile=None):
        self.port = stratum_port
        self.profile = profile
        self._stats = os.path.join(run_dir, "gateway.pstats")
        profiling = ("--profile", self._stats, "--profiler", "cprofile", "--savestats") if profile else ()
        super().__init__(run_dir, "viabtc-gateway", "gateway",
                         gateway_config(run_dir, stratum_port, jobmaster_port, writer_port, difficulty), cpu,
                         profiling)
        self._log = open(self.log_path)
        self._tail = ""

    def wait_listening(self, timeout=60.0):
        """Wait for the Stratum port (opened at start; miners are refused until a job came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway did not open port {self.port} within {timeout:g} s")

    def expect_job(self, job_id=None, timeout=60.0):
        """
        Wait for the log line of a job sent to the miners (``job_id`` or
        any); returns its miners count and the gateway's own time from the
        job's packet to the last notify handed to the kernel, in ms.
        """
        pattern = re.compile(r"job (\w+) at height \d+ \(clean \w+\) sent to (\d+) miners in ([\d.]+) ms")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self._read_log()
            if chunk:
                self._tail += chunk
                *lines, self._tail = self._tail.split("\n")
                for line in lines:
                    m = pattern.search(line)
                    if m and (job_id is None or m.group(1) == job_id):
                        return int(m.group(2)), float(m.group(3))
                continue
            self.check_running()
            time.sleep(0.02)
        raise RuntimeError(f"gateway logged no job {job_id or ''} within {timeout:g} s")

    def _read_log(self):
        """New log text; follows twistd's rotation (it renames the file every 1 MB)."""
        chunk = self._log.read()
        if chunk:
            return chunk
        try:
            rotated = os.stat(self.log_path).st_ino != os.fstat(self._log.fileno()).st_ino
        except FileNotFoundError:
            return ""
        if rotated:
            self._log.close()
            self._log = open(self.log_path)
            return self._log.read()
        return ""

    def stop(self, timeout=30.0):
        super().stop(timeout)
        self._log.close()
        if self.profile and os.path.exists(self._stats):
            with open(self.profile, "w") as f:
                stats = pstats.Stats(self._stats, stream=f)
                stats.sort_stats("cumulative").print_stats(60)
                stats.sort_stats("tottime").print_stats(40)
