# -*- test-case-name: tests.integration.test_redis_sentinel -*-
"""
A real Redis Sentinel deployment on loopback: a master, its replicas and
Sentinels (``redis-server --sentinel``), for the tests and demos that must
show a failover (``viabtc.redis`` follows the master Sentinel elects).

``start()`` returns once every replica replicates and every Sentinel knows
the replicas and the other Sentinels, so a failover can happen at once;
``kill_master()`` is the fault (SIGKILL, as a crashed host), after which
``master_port()`` names the promoted replica once the Sentinels agree.  Failure detection is fast
(``down_after`` ms) so a test waits seconds, not the production minute.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import attrs

from viabtc.devnet import ServiceUnavailable, free_port
from viabtc.devnet.process import stop_process, wait_ready
from viabtc.devnet.redis import RedisServer, _read_reply, encode_command


def _command(port, *args, host="127.0.0.1"):
    with socket.create_connection((host, port), 5) as s:
        s.sendall(encode_command(args))
        return _read_reply(s.makefile("rb"))


def _info(server_port, section="replication"):
    text = _command(server_port, "INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@attrs.define
class SentinelGroup:
    """A master named ``name``, ``replicas`` replicas and ``sentinels`` Sentinels (quorum 2)."""

    name: str = "mymaster"
    replicas: int = 1
    sentinels: int = 3
    down_after: int = 1000
    host: str = "127.0.0.1"
    servers: list = attrs.Factory(list)
    sentinel_ports: list = attrs.Factory(list)
    _sentinel_processes: list = attrs.Factory(list)
    _tempdir: str | None = None

    @property
    def sentinel_addresses(self):
        """``["ip:port", ...]`` of the Sentinels, as a config's ``redis.addr``."""
        return [f"{self.host}:{port}" for port in self.sentinel_ports]

    def start(self, timeout=30.0):
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServiceUnavailable("redis-server not found; install the Debian package 'redis-server'")
        self._tempdir = tempfile.mkdtemp(prefix="viabtc-sentinel-")
        master = RedisServer(host=self.host).start()
        self.servers = [master]
        for _ in range(self.replicas):
            replica = RedisServer(host=self.host).start()
            replica.command("REPLICAOF", self.host, master.port)
            self.servers.append(replica)
        deadline = time.monotonic() + timeout
        for replica in self.servers[1:]:
            self._until(lambda: _info(replica.port).get("master_link_status") == "up", deadline, "replication")
        for i in range(self.sentinels):
            port = free_port(self.host)
            path = os.path.join(self._tempdir, f"sentinel-{i}.conf")
            with open(path, "w") as f:
                f.write(f"port {port}\nbind {self.host}\nprotected-mode no\ndir {self._tempdir}\n"
                        f"sentinel monitor {self.name} {self.host} {master.port} 2\n"
                        f"sentinel down-after-milliseconds {self.name} {self.down_after}\n"
                        f"sentinel failover-timeout {self.name} 10000\n"
                        f"sentinel parallel-syncs {self.name} 1\n")
            process = subprocess.Popen([exe, path, "--sentinel"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            self._sentinel_processes.append(process)
            self.sentinel_ports.append(port)
            if not wait_ready(process, lambda: _command(port, "PING") == "PONG", 10, 0.05):
                self.stop()
                raise ServiceUnavailable("redis-server --sentinel did not start")
        for port in self.sentinel_ports:
            self._until(lambda: self._sentinel_ready(port), deadline, "Sentinels discovering each other")
        return self

    def _sentinel_ready(self, port):
        state = _command(port, "SENTINEL", "MASTER", self.name)
        state = dict(zip(state[::2], state[1::2]))
        return (int(state["num-slaves"]) == self.replicas
                and int(state["num-other-sentinels"]) == self.sentinels - 1)

    def _until(self, predicate, deadline, what):
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (OSError, RuntimeError, KeyError):
                pass
            time.sleep(0.05)
        self.stop()
        raise ServiceUnavailable(f"Redis Sentinel set-up timed out: {what}")

    def master_port(self):
        """The master's port as the first Sentinel that answers reports it."""
        for port in self.sentinel_ports:
            try:
                return int(_command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1])
            except OSError:
                continue
        raise OSError("no Sentinel answers")

    def sentinel_command(self, *args):
        """Run one command on the first Sentinel."""
        return _command(self.sentinel_ports[0], *args)

    def agreed_master(self):
        """The master's port if every Sentinel names the same one, else None."""
        try:
            ports = {int(_command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1])
                     for port in self.sentinel_ports}
        except (OSError, TypeError):
            return None
        return ports.pop() if len(ports) == 1 else None

    def server(self, port):
        return next(s for s in self.servers if s.port == port)

    def kill_master(self):
        """SIGKILL the current master (nothing saved, nothing handed over); returns it."""
        master = self.server(self.master_port())
        master.process.send_signal(signal.SIGKILL)
        master.process.wait()
        return master

    def stop(self):
        for process in self._sentinel_processes:
            stop_process(process)
        self._sentinel_processes = []
        for server in self.servers:
            server.stop()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
