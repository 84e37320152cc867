# -*- test-case-name: tests.integration.test_local_pool -*-
"""
Run the whole pool on this machine: ``./scripts/run-pool``.

Starts a real bcoin regtest node and a real ``redis-server`` on loopback,
writes role configs in the seed's format into a run directory, launches the
jobmaster, gateway, metawriter, alertcenter and dashboard as ``twistd``
processes (the same commands an operator runs), and points ``viabtc-miner``
at the gateway.  While it runs it prints every block the pool finds, the
dashboard's URL, and the pool hashrate read back from Redis once the
metawriter has written a minute, computed as the dashboard computes it
(``viabtc.stats.hashrate``: right at regtest's tiny difficulties too).

This is a demo and a smoke test of the real processes, not a deployment tool:
production deployments run each role under systemd (``etc/systemd/``).
"""

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import attrs

from viabtc.bitcoin.address import script_to_address
from viabtc.bitcoin.network import REGTEST
from viabtc.devnet import ServiceUnavailable, free_port, project_root
from viabtc.devnet.bcoin import BcoinNode
from viabtc.devnet.process import stop_process
from viabtc.devnet.redis import RedisServer
from viabtc.stats import hashrate, schema
from viabtc.stats.gateway_agg import POW, POW_FLOAT, SHARE

#: Roles started by the demo, in start order (consumers before producers).
ROLES = ("alertcenter", "metawriter", "jobmaster", "gateway", "dashboard")
#: The stats coin prefix of the demo's gateway.
COIN = "btc"


def payout_address(seed):
    """A regtest P2WPKH address for the demo's payouts (no key is kept)."""
    return script_to_address(b"\x00\x14" + seed[:20], REGTEST)


@attrs.define
class Ports:
    """Every loopback port the demo uses, chosen free at start-up."""

    stratum: int
    jobmaster: int
    jobmaster_cli: int
    gateway_cli: int
    gateway_monitor: int
    gateway_http: int
    metawriter: int
    metawriter_cli: int
    metawriter_monitor: int
    alertcenter: int
    dashboard: int
    jobmaster_http: int
    metawriter_metrics: int
    alertcenter_metrics: int

    @classmethod
    def choose(cls, stratum):
        names = [f.name for f in attrs.fields(cls) if f.name != "stratum"]
        return cls(stratum=stratum or free_port(), **{n: free_port() for n in names})


def role_configs(run_dir, ports, node, redis, payouts, secret):
    """
    The four role configs, as dicts in the seed's JSON format plus our keys.

    ``payouts`` is ``(main_address, [(address, percent), ...])``.
    """
    alert = {"host": "127.0.0.1", "addr": f"127.0.0.1:{ports.alertcenter}"}
    log_flags = "fatal,error,warn,info"
    main, recipients = payouts
    return {
        "alertcenter": {
            "log": {"path": os.path.join(run_dir, "alertcenter"), "flag": log_flags},
            "svr": {"bind": [f"udp@127.0.0.1:{ports.alertcenter}"], "max_pkg_size": 10240},
            "redis": {"host": redis.host, "port": redis.port},
            "metrics": f"tcp@127.0.0.1:{ports.alertcenter_metrics}",
        },
        "metawriter": {
            "log": {"path": os.path.join(run_dir, "metawriter"), "flag": log_flags},
            "alert": alert,
            "svr": {"bind": [f"tcp@127.0.0.1:{ports.metawriter}", f"udp@127.0.0.1:{ports.metawriter}"],
                    "max_pkg_size": 1048576},
            "monitor": {"bind": f"tcp@127.0.0.1:{ports.metawriter_monitor}", "max_pkg_size": 10240},
            "redis": {"host": redis.host, "port": redis.port},
            "cli": f"tcp@127.0.0.1:{ports.metawriter_cli}",
            "dup_timeout": 3600,
            "trust_file": "metawriter-trust.json",
            "journal": os.path.join(run_dir, "metawriter-journal"),
            "metrics": f"tcp@127.0.0.1:{ports.metawriter_metrics}",
            # The gateway ships a minute a second after its end: write it in the same flush.
            "flush_delay": 3,
            "secret": secret,
        },
        "jobmaster": {
            "log": {"path": os.path.join(run_dir, "jobmaster"), "flag": log_flags},
            "alert": alert,
            "network": "regtest",
            "svr": {"bind": [f"tcp@127.0.0.1:{ports.jobmaster}", f"udp@127.0.0.1:{ports.jobmaster}"],
                    "max_pkg_size": 8388608},
            "cli": f"tcp@127.0.0.1:{ports.jobmaster_cli}",
            "http_svr": {"bind": [f"tcp@127.0.0.1:{ports.jobmaster_http}"], "max_pkg_size": 102400},
            "main_coin": {"name": "BTC", "host": node.host, "port": node.rpc_port,
                          "user": "viabtc", "pass": node.api_key},
            "main_coin_recipient": main,
            "coin_recipients": [{"address": a, "percent": p} for a, p in recipients],
            "job_rebroadcast_timeout": 30,
            "pool_name": "viabtc",
            "coinbase_message": "local demo",
            "coinbase_account": True,
            "spv_mining_timeout": 30,
            "found_blocks_dir": os.path.join(run_dir, "found_blocks"),
            "secret": secret,
        },
        "gateway": {
            "log": {"path": os.path.join(run_dir, "gateway"), "flag": log_flags},
            "alert": alert,
            "svr": {"bind": [f"tcp@127.0.0.1:{ports.stratum}"], "max_pkg_size": 10240},
            "http_svr": {"bind": [f"tcp@127.0.0.1:{ports.gateway_http}"], "max_pkg_size": 102400},
            "monitor": {"bind": f"tcp@127.0.0.1:{ports.gateway_monitor}", "max_pkg_size": 10240},
            "job": {"name": "jobmaster", "addr": [f"tcp@127.0.0.1:{ports.jobmaster}"],
                    "max_pkg_size": 8388608},
            "writer": {"name": "writer", "addr": [f"udp@127.0.0.1:{ports.metawriter}"],
                       "max_pkg_size": 1048576},
            "cli": f"tcp@127.0.0.1:{ports.gateway_cli}",
            "coin": COIN,
            "queue": os.path.join(run_dir, "gateway-queue"),
            "worker_id": 1,
            "diff_min": 0.0001,
            "diff_max": 16384,
            "diff_default": 0.001,
            "target_time": 4,
            "retarget_time": 60,
            "client_max_idle_time": 600,
            "secret": secret,
        },
        "dashboard": {
            "log": {"path": os.path.join(run_dir, "dashboard"), "flag": log_flags},
            "alert": alert,
            "redis": {"host": redis.host, "port": redis.port},
            "coin": COIN,
            "http_svr": {"bind": [f"tcp@127.0.0.1:{ports.dashboard}"], "max_pkg_size": 102400},
            "refresh": 5,
            "history_minutes": 60,
            "worker_minutes": 30,
            # Only for the heights of the blocks listed.
            "node": {"host": node.host, "port": node.rpc_port, "user": "viabtc", "pass": node.api_key},
        },
    }


@attrs.define
class LocalPool:
    """The demo's services and role processes; ``stop()`` ends them all."""

    run_dir: str
    stratum_port: int = 0
    node: BcoinNode | None = None
    redis: RedisServer | None = None
    ports: Ports | None = None
    processes: dict = attrs.Factory(dict)
    out: object = attrs.field(default=sys.stdout)

    def say(self, text):
        print(f"[run-pool] {text}", file=self.out, flush=True)

    def start(self):
        os.makedirs(self.run_dir, exist_ok=True)
        self.say("starting the regtest node (bcoin) and redis-server")
        node_dir = os.path.join(self.run_dir, "bcoin")
        os.makedirs(node_dir, exist_ok=True)
        self.node = BcoinNode(directory=node_dir, keep_dir=True).start()
        self.redis = RedisServer(directory=self.run_dir).start()
        self.ports = Ports.choose(self.stratum_port)
        self.node.generate(1)
        seeds = [secrets.token_bytes(20) for _ in range(2)]
        payouts = (payout_address(seeds[0]), [(payout_address(seeds[1]), 0.1)])
        configs = role_configs(self.run_dir, self.ports, self.node, self.redis, payouts,
                               secrets.token_hex(24))
        with open(os.path.join(self.run_dir, "metawriter-trust.json"), "w") as f:
            json.dump({"127.0.0.1": "localhost"}, f)
        for role in ROLES:
            path = os.path.join(self.run_dir, f"{role}.json")
            with open(path, "w") as f:
                json.dump(configs[role], f, indent=2)
            self.start_role(role, path)
        self.wait_for_port(self.ports.stratum, "gateway")
        self.wait_for_port(self.ports.dashboard, "dashboard")
        self.say(f"pool ready: stratum+tcp://127.0.0.1:{self.ports.stratum} "
                 f"(node RPC {self.node.rpc_url}, redis port {self.redis.port}, logs in {self.run_dir})")
        self.say(f"dashboard: {self.dashboard_url}")

    @property
    def dashboard_url(self):
        return f"http://127.0.0.1:{self.ports.dashboard}/"

    def start_role(self, role, config_path):
        log_path = os.path.join(self.run_dir, f"{role}.log")
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        argv = [twistd, "--logfile", log_path, "--pidfile", "",
                "-n", f"viabtc-{role}", "--config", config_path]
        self.processes[role] = subprocess.Popen(
            argv, cwd=self.run_dir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(log_path + ".stderr", "wb"),
        )
        self.say(f"started {role} (pid {self.processes[role].pid}, log {log_path})")

    def wait_for_port(self, port, role, timeout=30.0):
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{role} did not open port {port}; see {self.run_dir}/{role}.log")

    def check_alive(self):
        """Raise when a role has exited, or a miner has failed (one done with its --max-shares is fine)."""
        for role, process in self.processes.items():
            if process.poll() is not None and (role in ROLES or process.returncode != 0):
                raise RuntimeError(
                    f"{role} exited with status {process.returncode}; see {self.run_dir}/{role}.log")

    def start_miner(self, threads=1, extra=(), account="demo.cpu0", name="miner"):
        argv = [sys.executable, "-m", "viabtc.tools.miner",
                "-o", f"stratum+tcp://127.0.0.1:{self.ports.stratum}",
                "-u", account, "-p", "x", "--threads", str(threads), *extra]
        log_path = os.path.join(self.run_dir, f"{name}.log")
        self.processes[name] = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
        self.say(f"started viabtc-miner as {account} (log {log_path})")

    def pool_minute(self):
        """
        The newest minute the metawriter has written, read back from Redis:
        ``(minute, shares, difficulty, hashes_per_second)`` or None before
        the first.

        ``btc:m:pow`` holds whole difficulty-1 units (the seed's integer
        contract); a CPU miner on regtest does far less than one unit a
        minute, so the exact sum comes from ``btc:m:pow_float``
        (``viabtc.stats.hashrate.pool_difficulty``), as on the dashboard.
        """
        def minute_values(name):
            fields = self.redis.command("HGETALL", schema.monitor_key(COIN, name)) or []
            return {int(k): float(v) for k, v in zip(fields[::2], fields[1::2])}

        shares = minute_values(SHARE)
        if not shares:
            return None
        minute = max(shares)
        difficulty = hashrate.pool_difficulty(minute_values(POW), minute_values(POW_FLOAT)).get(minute, 0.0)
        return minute, int(shares[minute]), difficulty, hashrate.hashrate(difficulty)

    def stop(self):
        miners = [name for name in self.processes if name not in ROLES]
        for role in [*miners, *reversed(ROLES)]:
            # SIGTERM: each role stops gracefully (statistics flushed).
            stop_process(self.processes.pop(role, None), grace=10.0)
        if self.node is not None:
            self.node.stop()
        if self.redis is not None:
            self.redis.stop()


def watch(pool, duration, want_blocks, want_hashrate):
    """
    Print blocks as the node accepts them and the hashrate as Redis gets it;
    return once ``duration`` passes or every wanted result has been seen.
    """
    start_height = pool.node.rpc("getblockcount")
    height = start_height
    last_rate = None
    deadline = time.monotonic() + duration if duration else None
    while deadline is None or time.monotonic() < deadline:
        pool.check_alive()
        tip = pool.node.rpc("getblockcount")
        while height < tip:
            height += 1
            block_hash = pool.node.rpc("getblockhash", height)
            pool.say(f"block {height} accepted by the node: {block_hash}")
        rate = pool.pool_minute()
        if rate is not None and rate != last_rate:
            minute, shares, difficulty, hashes = rate
            stamp = time.strftime("%H:%M", time.gmtime(minute))
            pool.say(f"redis minute {stamp} UTC: btc:m:share={shares}, difficulty sum {difficulty:.6g} "
                     f"-> pool hashrate {hashrate.format_hashrate(hashes)} (dashboard: {pool.dashboard_url})")
            last_rate = rate
        found = height - start_height
        if found >= want_blocks and (last_rate is not None or not want_hashrate):
            return found, last_rate
        time.sleep(1.0)
    return height - start_height, last_rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=os.path.join(project_root(), "run"),
                        help="run directory for configs, logs and data (default: ./run)")
    parser.add_argument("--stratum-port", type=int, default=3333)
    parser.add_argument("--threads", type=int, default=1, help="miner processes")
    parser.add_argument("--duration", type=float, default=0,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--blocks", type=int, default=0,
                        help="with --duration: stop early once this many blocks are found")
    parser.add_argument("--hashrate", action="store_true",
                        help="with --duration: also wait for a statistics minute in Redis")
    args = parser.parse_args(argv)
    pool = LocalPool(run_dir=os.path.abspath(args.dir), stratum_port=args.stratum_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        pool.start()
        pool.start_miner(args.threads)
        found, rate = watch(pool, args.duration, args.blocks or 1 << 30, args.hashrate)
        pool.say(f"done: {found} blocks found" + (", statistics in redis" if rate else ""))
        ok = found >= args.blocks and (rate is not None or not args.hashrate)
        return 0 if ok else 1
    except KeyboardInterrupt:
        pool.say("stopping")
        return 0
    except (RuntimeError, ServiceUnavailable) as e:
        pool.say(f"error: {e}")
        return 1
    finally:
        pool.stop()


if __name__ == "__main__":
    sys.exit(main())
