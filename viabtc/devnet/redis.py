# -*- test-case-name: tests.devnet.test_redis -*-
"""
Start and stop a real ``redis-server`` on a free loopback port (or at another
*place*, ``viabtc.devnet.Loopback`` describes what one offers).

Used by the tests (metawriter, alertcenter) and by the local demo.  The server
keeps no files unless a ``directory`` is given (``--save ''``,
``--appendonly no``), so nothing survives a test.
"""

import shutil
import subprocess
import tempfile

import attrs

from viabtc.devnet import Loopback, ServiceUnavailable
from viabtc.devnet.process import stop_process, wait_ready


@attrs.define
class RedisServer:
    """
    A running redis-server child process.

    ``start()`` blocks (at most ``timeout`` seconds) until the server answers
    PING, so callers may connect at once.  ``stop()`` terminates it.
    """

    port: int = 0
    host: str = "127.0.0.1"
    directory: str | None = None
    process: subprocess.Popen | None = None
    #: where it runs: ``Loopback(host)`` unless given (then ``host`` is its address)
    place: object = None
    _tempdir: str | None = None

    def __attrs_post_init__(self):
        if self.place is None:
            self.place = Loopback(self.host)
        self.host = self.place.address

    def start(self, timeout=10.0):
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServiceUnavailable(
                "redis-server not found; install the Debian package "
                "'redis-server' (scripts/bootstrap does this)"
            )
        if self.directory is None:
            self._tempdir = tempfile.mkdtemp(prefix="viabtc-redis-")
            self.directory = self._tempdir
        for _attempt in range(5):
            if not self.port:
                self.port = self.place.free_port()
            self.process = self.place.popen(
                [exe, "--port", str(self.port), "--bind", self.host,
                 "--save", "", "--appendonly", "no", "--dir", self.directory,
                 "--protected-mode", "no", "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(timeout):
                return self
            self.stop()
            self.port = 0
        raise ServiceUnavailable("redis-server did not start")

    def _wait_ready(self, timeout):
        return wait_ready(self.process, self._answers_ping, timeout, 0.05)

    def _answers_ping(self):
        with self.place.connect(self.port, 0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def stop(self):
        """Terminate the server (and remove its temporary directory)."""
        stop_process(self.process)
        self.process = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
            self.directory = None

    def command(self, *args):
        """
        Run one Redis command synchronously and return the raw RESP reply
        decoded to Python values.  For test assertions and the demo only: the
        roles use txredisapi.
        """
        with self.place.connect(self.port, 5) as s:
            s.sendall(encode_command(args))
            return _read_reply(s.makefile("rb"))


def encode_command(args):
    """RESP-encode one command (a sequence of str/bytes/int)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_reply(f) for _ in range(n)]
    raise RuntimeError("bad RESP reply %r" % (line,))


def start_redis():
    """Start a throw-away redis-server and return the ``RedisServer``."""
    return RedisServer().start()


__all__ = ["RedisServer", "start_redis", "encode_command"]
