# -*- test-case-name: benchmarks -*-
"""
Reconnect storms (issue 16): every miner at once, and how long until the
last one has work.

When a gateway restarts, fails over, or a farm's uplink comes back,
thousands of miners connect in the same second.  This load generator opens
``--connections`` sessions in one go from the loopback source addresses
127.0.0.2, 127.0.0.3, ... (``--sources`` of them, so that each stays under
the gateway's per-address limit), each writing ``mining.subscribe`` and
``mining.authorize`` in one send as soon as its handshake is done, and
stamps the moment every session receives its first ``mining.notify``.

It speaks through raw non-blocking sockets on one ``epoll`` (no protocol
objects, no JSON parsing beyond finding the notify), so the 18,000
sessions cost it far less than they cost the gateway.  A session closed
before its first job (a refused connection, a gateway that is not
listening yet) tries again after ``--retry`` seconds, as a miner does.

Once every session had its job the generator prints ``storm`` and holds
them.  When the gateway goes away (the runner's SIGTERM) every session
sees its end and reconnects at once, retrying until the new gateway
listens; when all have a job again it prints ``storm`` for that round.

Output is one JSON object per line on stdout; times are
``time.monotonic()`` seconds, comparable across processes on one host.
``scenario(suite)`` is the runner's ``storm`` step: a first storm against
a fresh gateway, then SIGTERM, a restart, and the miners' storm back.
"""

import argparse
import errno
import os
import resource
import select
import socket
import sys
import time
from collections import deque

from benchmarks.events import emit

_monotonic = time.monotonic
_NOTIFY = b'"mining.notify"'
_IN, _OUT, _ERR = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR | select.EPOLLHUP


class Session:
    """One miner: its socket, and when it connected and got its first job in this round."""

    __slots__ = ("index", "source", "sock", "connected", "job", "attempts", "tail")

    def __init__(self, index, source):
        self.index = index
        self.source = source
        self.sock = None
        self.connected = None
        self.job = None
        self.attempts = 0
        self.tail = b""


class Storm:
    """The sessions on one epoll; ``round()`` runs until every one has a job."""

    def __init__(self, options):
        self.options = options
        self.epoll = select.epoll()
        self.by_fd = {}
        self.sessions = [Session(i, f"127.0.0.{2 + i % options.sources}") for i in range(options.connections)]
        self.retry_at = deque()  # (time, session), in order of time
        self.handshake = [
            b'{"id":1,"method":"mining.subscribe","params":["viabtc-storm"]}\n'
            b'{"id":2,"method":"mining.authorize","params":["farm%d.rig%d","x"]}\n' % (i % 100, i)
            for i in range(options.connections)
        ]
        self.waiting = 0
        self.refused = 0
        self.closed_early = 0
        self.lost = 0

    # -- connecting ---------------------------------------------------------------

    def connect(self, session):
        session.attempts += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        # The port is chosen at connect() for the pair of addresses, not at bind().
        sock.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
        sock.bind((session.source, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex((self.options.host, self.options.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.refused += 1
            self.retry_at.append((_monotonic() + self.options.retry, session))
            return
        session.sock = sock
        self.by_fd[sock.fileno()] = session
        self.epoll.register(sock.fileno(), _OUT | _IN | _ERR)

    def drop(self, session, now, retry):
        """Forget ``session``'s socket; connect again at once or after ``--retry`` seconds."""
        sock, session.sock = session.sock, None
        fd = sock.fileno()
        self.epoll.unregister(fd)
        del self.by_fd[fd]
        sock.close()
        session.connected = None
        session.tail = b""
        if retry:
            self.retry_at.append((now + self.options.retry, session))
        else:
            self.connect(session)

    # -- one round ------------------------------------------------------------------

    def round(self, name, reconnect):
        """
        Until every session has its first job: a fresh storm (``reconnect``
        False: every session connects now) or the return after the gateway
        went away (sessions reconnect as they see its end).  Prints the
        round's ``storm`` event and returns it.
        """
        options = self.options
        started = _monotonic()
        self.waiting = len(self.sessions)
        for session in self.sessions:
            session.job = None
        if not reconnect:
            self.refused = self.closed_early = 0
            for session in self.sessions:
                self.connect(session)
        opened = _monotonic()
        deadline = started + options.timeout
        while self.waiting:
            now = _monotonic()
            if now > deadline:
                break
            while self.retry_at and self.retry_at[0][0] <= now:
                self.connect(self.retry_at.popleft()[1])
            wait = 0.05 if not self.retry_at else max(0.0, min(0.05, self.retry_at[0][0] - now))
            for fd, mask in self.epoll.poll(wait, 1024):
                session = self.by_fd.get(fd)
                if session is None:
                    continue
                now = _monotonic()
                if session.connected is None and mask & (_OUT | _ERR):
                    if session.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self.refused += 1
                        self.drop(session, now, retry=True)
                        continue
                    session.connected = now
                    self.epoll.modify(fd, _IN | _ERR)
                    try:
                        session.sock.send(self.handshake[session.index])
                    except OSError:
                        self.closed_early += 1
                        self.drop(session, now, retry=True)
                        continue
                if mask & (_IN | _ERR):
                    self.read(session, now)
        ended = _monotonic()
        jobs = sorted(s.job for s in self.sessions if s.job is not None)
        connects = [s.connected for s in self.sessions if s.connected is not None]
        event = dict(
            event="storm", round=name, sessions=len(self.sessions), with_job=len(jobs),
            started=started, opened=opened, first_connected=min(connects) if connects else None,
            first_job=jobs[0] if jobs else None, last_job=jobs[-1] if jobs else None,
            median_job=jobs[len(jobs) // 2] if jobs else None, ended=ended,
            refused=self.refused, closed_before_job=self.closed_early,
            attempts_max=max(s.attempts for s in self.sessions),
            timed_out=bool(self.waiting),
        )
        emit(**event)
        return event

    def read(self, session, now):
        try:
            data = session.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if session.job is None:
                self.closed_early += 1
                self.drop(session, now, retry=True)
            else:
                # The gateway went away: back at once, as miners are.
                self.lost += 1
                self.drop(session, now, retry=False)
            return
        if session.job is None and _NOTIFY in session.tail + data:
            session.job = now
            self.waiting -= 1
        session.tail = data[-32:]

    def hold(self):
        """
        Keep the sessions (reading and dropping what arrives) until every one
        was lost, which is the gateway going away; print ``lost``.  Their
        reconnects are already under way when this returns.
        """
        self.lost = self.refused = self.closed_early = 0
        for session in self.sessions:
            session.attempts = 0
        first = None
        while self.lost < len(self.sessions):
            for fd, mask in self.epoll.poll(0.05, 1024):
                session = self.by_fd.get(fd)
                if session is not None and session.connected is not None:
                    before = self.lost
                    self.read(session, _monotonic())
                    if self.lost > before and first is None:
                        first = _monotonic()
        emit(event="lost", sessions=self.lost, first=first, last=_monotonic())


def raise_file_limit():
    """One descriptor per session: the soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=18_000)
    parser.add_argument("--sources", type=int, default=10, help="loopback source addresses 127.0.0.2 ...")
    parser.add_argument("--retry", type=float, default=1.0, help="seconds before a refused miner tries again")
    parser.add_argument("--rounds", type=int, default=2, help="1: one storm; 2: and the return after a restart")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a round may take")
    parser.add_argument("--cpu", type=int, default=None)
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    if options.cpu is not None:
        os.sched_setaffinity(0, {options.cpu})
    limit = raise_file_limit()
    if limit < options.connections + 64:
        emit(event="error", text=f"RLIMIT_NOFILE is {limit}, below {options.connections} sessions")
        sys.exit(1)
    storm = Storm(options)
    emit(event="starting", sessions=options.connections, sources=options.sources, t=_monotonic())
    first = storm.round("first", reconnect=False)
    for n in range(1, options.rounds if not first["timed_out"] else 1):
        storm.hold()
        storm.round(f"restart{n}", reconnect=True)
    # Hold until the runner closes stdin.
    sys.stdin.read()


# -- the runner's scenario ----------------------------------------------------------


def listening(port):
    """True when a TCP socket listens on ``port`` (from /proc/net/tcp, without connecting)."""
    needle = f":{port:04X} 00000000:0000 0A"
    with open("/proc/net/tcp") as f:
        return any(needle in line for line in f)


def listen_overflows():
    """The kernel's count of connections dropped because an accept queue was full (``TcpExt``)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return 0


def wait_listening(port, timeout, poll=0.002):
    deadline = _monotonic() + timeout
    while _monotonic() < deadline:
        if listening(port):
            return _monotonic()
        time.sleep(poll)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s")


def scenario(suite):
    """
    The ``storm`` step of ``benchmarks.runner``: ``--connections`` sessions
    at once against the running gateway, then SIGTERM, a restart of the
    gateway, and the same sessions coming back at once.
    """
    from benchmarks.context import BENCH_DIFFICULTY
    from benchmarks.role import GatewayRole
    from benchmarks.runner import GATEWAY_CPU, LOAD_CPU, Proc, cpu_seconds, rss_kib

    sessions = 3000 if suite.quick else 18_000
    sources = max(2, -(-sessions // 1800))  # under the default 2,000 connections per address
    gen = Proc("benchmarks.storm", "--port", suite.gateway_port, "--connections", sessions,
               "--sources", sources, "--cpu", LOAD_CPU, "--timeout", 120)
    load = os.getloadavg()
    cpu, overflows = cpu_seconds(suite.gateway.pid), listen_overflows()
    gen.expect("starting", 60)
    first = gen.expect("storm", 180)
    first_cpu = cpu_seconds(suite.gateway.pid) - cpu
    first_overflows = listen_overflows() - overflows
    rss = rss_kib(suite.gateway.pid)
    suite.results["storm"] = {
        "sessions": sessions,
        "sources": sources,
        "loadavg_before": load,
        "first": {**_round(first), "gateway_cpu_s": first_cpu, "listen_overflows": first_overflows},
        "gateway_rss_kib": rss,
    }
    if first["timed_out"]:
        gen.stop()  # no restart: the first storm never ended
        return
    terminated = _monotonic()
    old = suite.gateway
    old.popen.terminate()
    old.popen.wait(60)
    stopped = _monotonic()
    lost = gen.expect("lost", 60)
    overflows = listen_overflows()
    old.stop()
    # The same ports, its own directory (the first run's log stays to read).
    suite.gateway = GatewayRole(
        os.path.join(suite.options.out, "gateway-restarted"), suite.gateway_port, suite.jobmaster_port,
        suite.writer_port, BENCH_DIFFICULTY, GATEWAY_CPU,
    )
    up = wait_listening(suite.gateway_port, 60)
    back = gen.expect("storm", 180)
    back_cpu = cpu_seconds(suite.gateway.pid)
    back_overflows = listen_overflows() - overflows
    suite.gateway.expect_job(None, 60)
    gen.stop()
    suite.results["storm"]["restart"] = {
        **_round(back),
        "gateway_cpu_s": back_cpu,
        "listen_overflows": back_overflows,
        "sigterm_to_exit_s": stopped - terminated,
        "sessions_lost_s": (lost["last"] - lost["first"]) if lost["first"] else None,
        "exit_to_listening_s": up - stopped,
        "listening_to_last_job_s": back["last_job"] - up if back["last_job"] else None,
        "sigterm_to_last_job_s": back["last_job"] - terminated if back["last_job"] else None,
    }


def _round(event):
    """A round's figures in seconds from its start."""
    start = event["started"]
    figures = {k: event[k] for k in ("sessions", "with_job", "refused", "closed_before_job", "attempts_max",
                                     "timed_out")}
    for key in ("opened", "first_connected", "first_job", "median_job", "last_job"):
        if event[key] is not None:
            figures[f"{key}_s"] = event[key] - start
    return figures


if __name__ == "__main__":
    main()
