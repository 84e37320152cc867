"""
A pool's hosts as Linux network namespaces, for the multi-host tests.

Each host is a namespace with one veth link to a bridge in a "switch"
namespace, an address in a private /24 that exists only inside those
namespaces (nothing is added to the test machine's own network), and
``/etc/netns/<host>/hosts`` for the names it resolves (``ip netns exec``
mounts it as the host's ``/etc/hosts``, so a name with two addresses is
DNS round robin).  Processes run in a host with ``ip netns exec``; their
output goes to a log file each, printed when a test fails.  Everything is
torn down by the test's cleanup: processes killed, namespaces deleted
(which deletes their links), hosts files removed.

``Network.place(host)`` is a host as a ``viabtc.devnet`` *place*: the devnet
launchers (``RedisServer``, ``SentinelGroup``) start their programs there,
and this process talks to them by creating its sockets inside the host's
namespace (``setns`` on the calling thread, switched back at once: a socket
stays in the namespace it was made in).

``Network.hold`` is a network fault a process kill cannot stage: one TCP
stream stops being delivered while its connection stays up (``tc``).

Building namespaces needs root and a kernel that allows them; where either
is missing the tests are skipped with the reason (never passed silently).
"""

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import socket
import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest

from viabtc.devnet import free_port, project_root, services_required

BIN = os.path.dirname(sys.executable)
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def inside(ns):
    """This thread in network namespace ``ns`` for the block (sockets made there stay there)."""
    with open("/proc/thread-self/ns/net") as home, open(f"/var/run/netns/{ns}") as there:
        _setns(there.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def namespaces_refused():
    """Why namespaces cannot be built here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    missing = [tool for tool in ("ip", "ss", "tc") if shutil.which(tool) is None]
    if missing:
        why = f"iproute2's {', '.join(missing)} not installed (scripts/bootstrap installs it)"
        if services_required():
            # A tool the project installs, not the kernel refusing: never a silent skip in CI.
            raise AssertionError(why)
        return why
    probe = f"vbprobe{os.getpid() % 100000}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"the kernel refuses network namespaces: {result.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Network:
    """Hosts on one switch; ``directory`` keeps the logs."""

    def __init__(self, testcase, directory):
        why = namespaces_refused()
        if why is not None:
            raise SkipTest(why)
        self.testcase = testcase
        self.directory = directory
        tag = os.getpid() % 10000
        self._prefix = f"vb{tag}"
        self.subnet = f"10.{200 + tag % 50}.{tag % 250}"
        self.switch = f"{self._prefix}sw"
        self.hosts = {}
        #: each host's end of its veth link (inside the host)
        self.links = {}
        self.processes = {}
        testcase.addCleanup(self.teardown)
        _ip("netns", "add", self.switch)
        self.run_in(self.switch, "ip", "link", "add", "br0", "type", "bridge")
        self.run_in(self.switch, "ip", "link", "set", "br0", "up")

    def run_in(self, ns, *argv):
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True)

    def add_host(self, name, number):
        """Host ``name`` at ``<subnet>.<number>``; returns its address."""
        ns = f"{self._prefix}{name}"
        address = f"{self.subnet}.{number}"
        inner, outer = f"{ns}a"[-15:], f"{ns}b"[-15:]
        _ip("netns", "add", ns)
        self.hosts[name] = (ns, address)
        self.links[name] = inner
        _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", outer, "netns", self.switch)
        self.run_in(self.switch, "ip", "link", "set", outer, "master", "br0")
        self.run_in(self.switch, "ip", "link", "set", outer, "up")
        self.run_in(ns, "ip", "addr", "add", f"{address}/24", "dev", inner)
        self.run_in(ns, "ip", "link", "set", inner, "up")
        self.run_in(ns, "ip", "link", "set", "lo", "up")
        return address

    def address(self, name):
        return self.hosts[name][1]

    def hold(self, host, port, peer, peer_port):
        """
        Stop delivering the TCP stream that ``host``'s ``port`` sends to
        ``peer``'s ``peer_port``, as a link that stopped carrying one
        connection: its packets leave ``host`` into a ``blackhole`` queue
        (``tc``: an ``htb`` root whose ``u32`` filter picks the connection by
        addresses and ports), so the connection stays established, what the
        peer sends still arrives, and every other flow passes.  Returns
        ``release()``, which removes the queue again.
        """
        ns, link = self.hosts[host][0], self.links[host]
        tc = ["ip", "netns", "exec", ns, "tc"]
        for argv in (["qdisc", "add", "dev", link, "root", "handle", "1:", "htb", "default", "1"],
                     ["class", "add", "dev", link, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"],
                     ["class", "add", "dev", link, "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit"],
                     ["qdisc", "add", "dev", link, "parent", "1:2", "handle", "20:", "blackhole"],
                     ["filter", "add", "dev", link, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                      "match", "ip", "protocol", "6", "0xff", "match", "ip", "dst", f"{self.address(peer)}/32",
                      "match", "ip", "sport", str(port), "0xffff", "match", "ip", "dport", str(peer_port), "0xffff",
                      "classid", "1:2"]):
            result = subprocess.run(tc + argv, capture_output=True, text=True)
            if result.returncode != 0:
                raise AssertionError(f"tc {' '.join(argv)} on {host}: {result.stderr.strip()}")

        def release():
            subprocess.run(tc + ["qdisc", "del", "dev", link, "root"], capture_output=True, check=True)

        return release

    def place(self, host):
        """``host`` as a ``viabtc.devnet`` place (see the module docstring)."""
        return Place(self, host)

    def connect(self, host, port, timeout=5):
        """A TCP connection from this process to ``port`` on ``host``."""
        ns, address = self.hosts[host]
        with inside(ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def http_get(self, host, port, path, timeout=5):
        """The body of ``GET path`` on ``host:port`` (HTTP/1.0), or OSError."""
        with self.connect(host, port, timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {self.address(host)}\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or head.split()[1] != b"200":
            raise OSError(f"GET {path} on {host}: {head[:80]!r}")
        return body.decode("utf-8", "replace")

    def names(self, host, entries):
        """``/etc/hosts`` of ``host``: ``{name: [address, ...]}``."""
        ns = self.hosts[host][0]
        os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
        with open(f"/etc/netns/{ns}/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n")
            for name, addresses in entries.items():
                for address in addresses:
                    f.write(f"{address} {name}\n")

    def spawn(self, host, name, argv):
        """Run ``argv`` on ``host`` as process ``name``, its output in ``<directory>/<name>.log``."""
        ns = self.hosts[host][0]
        log = open(os.path.join(self.directory, f"{name}.log"), "ab")
        env = dict(os.environ, PYTHONPATH=project_root())
        process = subprocess.Popen(["ip", "netns", "exec", ns, *argv], cwd=project_root(), env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.processes[name] = process
        return process

    def popen(self, host, argv, **kwargs):
        """``subprocess.Popen`` of ``argv`` on ``host``, killed at teardown (for ``Place``)."""
        process = subprocess.Popen(["ip", "netns", "exec", self.hosts[host][0], *argv], **kwargs)
        self.processes[f"{host}:{argv[0]}:{process.pid}"] = process
        return process

    def twistd(self, host, role, name, config_path):
        return self.spawn(host, name, [os.path.join(BIN, "twistd"), "-n", "--pidfile=", f"viabtc-{role}",
                                       "--config", config_path])

    def python(self, host, code, timeout=30):
        """Run Python ``code`` on ``host``; its stdout (it must exit 0)."""
        ns = self.hosts[host][0]
        result = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True,
                                text=True, timeout=timeout, cwd=project_root(),
                                env=dict(os.environ, PYTHONPATH=project_root()))
        if result.returncode != 0:
            raise OSError(f"on {host}: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def established(self, host, port, peer=None):
        """How many TCP connections to local ``port`` are established on ``host`` (from host ``peer`` only)."""
        ns = self.hosts[host][0]
        match = f"sport = :{port}" if peer is None else f"sport = :{port} and dst {self.address(peer)}"
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htn", "state", "established",
                              f"( {match} )"], capture_output=True, text=True).stdout
        return len([line for line in out.splitlines() if line.strip()])

    def listening(self, host, port):
        """True once a process on ``host`` listens on TCP ``port``."""
        ns = self.hosts[host][0]
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", f"( sport = :{port} )"],
                             capture_output=True, text=True).stdout
        return bool(out.strip())

    def kill(self, name, signum=signal.SIGKILL):
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signum)
            process.wait(30)

    def check_alive(self, *names):
        for name in names:
            code = self.processes[name].poll()
            if code is not None:
                raise AssertionError(f"{name} exited with {code}\n{self.logs()}")

    def logs(self):
        out = []
        for name in self.processes:
            try:
                with open(os.path.join(self.directory, f"{name}.log"), errors="replace") as f:
                    out.append(f"----- {name} -----\n{f.read()[-6000:]}")
            except OSError:
                pass
        return "\n".join(out)

    def teardown(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # ip netns exec's children may outlive it: kill whatever still runs in a namespace.
        for ns, _ in list(self.hosts.values()) + [(self.switch, None)]:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            _ip("netns", "del", ns, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


class Place:
    """A namespace host as a ``viabtc.devnet`` place: ``popen``, ``free_port``, ``connect``."""

    def __init__(self, network, host):
        self.network, self.host = network, host
        self.address = network.address(host)

    def popen(self, argv, **kwargs):
        return self.network.popen(self.host, argv, **kwargs)

    def free_port(self):
        with inside(self.network.hosts[self.host][0]):
            return free_port(self.address)

    def connect(self, port, timeout):
        return self.network.connect(self.host, port, timeout)


async def pause(seconds):
    await deferLater(reactor, seconds, lambda: None)
