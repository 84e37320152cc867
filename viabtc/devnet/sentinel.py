# -*- test-case-name: tests.integration.test_redis_sentinel -*-
"""
A real Redis Sentinel deployment on loopback: a master, its replicas and
Sentinels (``redis-server --sentinel``), for the tests and demos that must
show a failover (``viabtc.redis`` follows the master Sentinel elects).
The multi-host tests run the same group on several hosts: ``places`` (one
per server, master first) and ``sentinel_places`` say where each program
runs (``viabtc.devnet.Loopback`` describes a place; the default is loopback).

``start()`` returns once every replica replicates and every Sentinel knows
the replicas and the other Sentinels, so a failover can happen at once;
``kill_master()`` is the fault (SIGKILL, as a crashed host), after which
``master_port()`` names the promoted replica once the Sentinels agree;
``restart(server)`` brings a killed server back, for Sentinel to make it a
replica of the new master.  Failure detection is fast
(``down_after`` ms) so a test waits seconds, not the production minute.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import attrs

from viabtc.devnet import Loopback, ServiceUnavailable
from viabtc.devnet.process import stop_process, wait_ready
from viabtc.devnet.redis import RedisServer, _read_reply, encode_command


def _command(place, port, *args):
    with place.connect(port, 5) as s:
        s.sendall(encode_command(args))
        return _read_reply(s.makefile("rb"))


def _info(server, section="replication"):
    text = server.command("INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@attrs.define
class SentinelGroup:
    """A master named ``name``, ``replicas`` replicas and ``sentinels`` Sentinels (quorum 2)."""

    name: str = "mymaster"
    replicas: int = 1
    sentinels: int = 3
    down_after: int = 1000
    host: str = "127.0.0.1"
    #: where the servers run (master first), and the Sentinels; default: ``Loopback(host)``
    places: list = attrs.Factory(list)
    sentinel_places: list = attrs.Factory(list)
    servers: list = attrs.Factory(list)
    sentinel_ports: list = attrs.Factory(list)
    _sentinel_processes: list = attrs.Factory(list)
    _tempdir: str | None = None

    @property
    def sentinel_addresses(self):
        """``["ip:port", ...]`` of the Sentinels, as a config's ``redis.addr``."""
        return [f"{place.address}:{port}" for place, port in zip(self.sentinel_places, self.sentinel_ports)]

    def _sentinels(self):
        return zip(self.sentinel_places, self.sentinel_ports)

    def start(self, timeout=30.0):
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServiceUnavailable("redis-server not found; install the Debian package 'redis-server'")
        self._tempdir = tempfile.mkdtemp(prefix="viabtc-sentinel-")
        self.places = list(self.places) or [Loopback(self.host)] * (1 + self.replicas)
        self.sentinel_places = list(self.sentinel_places) or [Loopback(self.host)] * self.sentinels
        master = RedisServer(place=self.places[0]).start()
        self.servers = [master]
        for place in self.places[1:1 + self.replicas]:
            replica = RedisServer(place=place).start()
            replica.command("REPLICAOF", master.host, master.port)
            self.servers.append(replica)
        deadline = time.monotonic() + timeout
        for replica in self.servers[1:]:
            self._until(lambda: _info(replica).get("master_link_status") == "up", deadline, "replication")
        for i, place in enumerate(self.sentinel_places[:self.sentinels]):
            port = place.free_port()
            path = os.path.join(self._tempdir, f"sentinel-{i}.conf")
            with open(path, "w") as f:
                f.write(f"port {port}\nbind {place.address}\nprotected-mode no\ndir {self._tempdir}\n"
                        f"sentinel monitor {self.name} {master.host} {master.port} 2\n"
                        f"sentinel down-after-milliseconds {self.name} {self.down_after}\n"
                        f"sentinel failover-timeout {self.name} 10000\n"
                        f"sentinel parallel-syncs {self.name} 1\n")
            process = place.popen([exe, path, "--sentinel"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            self._sentinel_processes.append(process)
            self.sentinel_ports.append(port)
            if not wait_ready(process, lambda: _command(place, port, "PING") == "PONG", 10, 0.05):
                self.stop()
                raise ServiceUnavailable("redis-server --sentinel did not start")
        for place, port in self._sentinels():
            self._until(lambda: self._sentinel_ready(place, port), deadline, "Sentinels discovering each other")
        return self

    def _sentinel_ready(self, place, port):
        state = _command(place, port, "SENTINEL", "MASTER", self.name)
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

    def _master_of(self, place, port):
        host, master_port = _command(place, port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return host, int(master_port)

    def master_address(self):
        """``(ip, port)`` of the master as the first Sentinel that answers reports it."""
        for place, port in self._sentinels():
            try:
                return self._master_of(place, port)
            except OSError:
                continue
        raise OSError("no Sentinel answers")

    def master_port(self):
        """The master's port as the first Sentinel that answers reports it."""
        return self.master_address()[1]

    def sentinel_command(self, *args):
        """Run one command on the first Sentinel."""
        return _command(self.sentinel_places[0], self.sentinel_ports[0], *args)

    def agreed_master_address(self):
        """``(ip, port)`` of the master if every Sentinel names the same one, else None."""
        try:
            addresses = {self._master_of(place, port) for place, port in self._sentinels()}
        except (OSError, TypeError, ValueError):
            return None
        return addresses.pop() if len(addresses) == 1 else None

    def agreed_master(self):
        """The master's port if every Sentinel names the same one, else None."""
        address = self.agreed_master_address()
        return None if address is None else address[1]

    def server(self, port):
        return next(s for s in self.servers if s.port == port)

    def server_at(self, address):
        """The server at ``(ip, port)``."""
        return next(s for s in self.servers if (s.host, s.port) == tuple(address))

    def kill_master(self):
        """SIGKILL the current master (nothing saved, nothing handed over); returns it."""
        master = self.server_at(self.master_address())
        master.process.send_signal(signal.SIGKILL)
        master.process.wait()
        return master

    def restart(self, server, master, timeout=10.0):
        """
        Start a killed ``server`` again on its address, empty, and make it
        the replica of ``master`` (the promoted server) at once, as an
        operator brings back a crashed master: left to come back as a master,
        an empty server can be elected again before the Sentinels demote it,
        and its replicas then copy its emptiness (seen in the multi-host
        test under load, docs/deployment.md).
        """
        server.process = None
        server.start(timeout)
        server.command("REPLICAOF", master.host, str(master.port))
        return server

    def stop(self):
        for process in self._sentinel_processes:
            stop_process(process)
        self._sentinel_processes = []
        for server in self.servers:
            server.stop()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
