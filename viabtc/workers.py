# -*- test-case-name: tests.test_workers -*-
"""
``worker_num``: N worker processes serving the listening sockets of one
parent (ref §4.1, §5.1), for any role that scales across cores this way:
the gateway (``viabtc.gateway.workers``) and the mineragent
(``viabtc.mineragent.workers``).

The seed's listener process accepted every connection and passed its fd to
a worker over a unix socket.  Here the parent binds each stream address once
(with the listen backlog of ``viabtc.backlog``, not Twisted's 50), never
accepts on it, and hands the listening socket itself to each worker as an
inherited fd (``spawnProcess``'s ``childFDs``); the workers adopt it
(``reactor.adoptStreamPort``) and the kernel gives each new connection to
one of the workers waiting in ``accept``.  Chosen over ``SO_REUSEPORT``
because the port never closes while the role runs: a worker that dies
leaves its siblings accepting from the same queue (with ``SO_REUSEPORT`` the
connections hashed to the dead worker's socket are reset and new ones keep
being hashed to it until a replacement binds), the bind happens once, in
``privilegedStartService`` before twistd drops privileges, unix-socket
binds work the same way, and no other process of the same user can join the
port.

Each worker's stdout carries its log events as JSON lines; the parent
publishes them into its own log (``worker`` added), so ``log.path``, the
alert datagrams and twistd's output are written by one process.  A worker
that exits while the pool runs is started again (after ``restart_delay``,
doubled while it keeps dying young, up to ``MAX_RESTART_DELAY``).  Stopping
the pool sends SIGTERM to every worker, waits for each to finish its own
graceful stop (up to ``stop_timeout``, then SIGKILL) and only then closes
the listening sockets.

A role's parent is a ``RoleWorkers`` (the pool, the configuration handed to
each worker on its standard input, SIGHUP forwarded); a worker's program
reads its command line with ``worker_arguments`` and runs in ``run_worker``.
Addresses a worker serves on its own (the seed's ``cli`` + i, ``http_svr``
+ i) are moved by ``shifted``.
"""

import json
import os
import signal
import socket
import sys
import time

import attrs
from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger, eventFromJSON, globalLogPublisher

from viabtc.backlog import accept_eagerly, listen_backlog
from viabtc.config import ConfigError, load_json
from viabtc.reload import ReloadReport, reloadable_changes

#: The longest wait between restarts of a worker that keeps dying.
MAX_RESTART_DELAY = 30.0
#: A worker that lived this long is healthy: its next restart is immediate-ish again.
HEALTHY_AFTER = 60.0
#: The environment variable naming the parent's pid in a worker.
PARENT_PID = "VIABTC_WORKERS_PARENT"
#: The first fd of the inherited listening sockets in a worker.
FIRST_FD = 3
#: The most worker processes a role forks (``worker_num``).
MAX_WORKER_NUM = 256

_TRANSPORTS_WITH_BACKLOG = ("tcp", "ssl", "unix")


def shareable(address):
    """True when ``address`` (a config ``Address``) can be listened on once and shared with workers."""
    return address.transport in _TRANSPORTS_WITH_BACKLOG


def check_shared_binds(binds, key="svr.bind"):
    """ConfigError naming the first of ``binds`` (the config's ``key``) that workers cannot share."""
    for i, address in enumerate(binds):
        if not shareable(address):
            raise ConfigError(f"{key}[{i}]", f"{address.text!r}: worker processes share tcp, ssl and unix"
                              " binds only")


def shifted(address, index):
    """``address`` (tcp or unix, seed form) moved to the ``index``th worker: port + index, path + ".index"."""
    if index == 0:
        return address
    if address.description is None and address.transport == "tcp":
        port = address.port + index if address.port else 0
        host = f"[{address.host}]" if ":" in address.host else address.host
        return attrs.evolve(address, port=port, text=f"tcp@{host}:{port}")
    if address.description is None and address.transport == "unix":
        path = f"{address.path}.{index}"
        return attrs.evolve(address, path=path, text=f"stream@{path}")
    raise ConfigError(address.text, "with worker_num above 1 each worker listens on this port + its index:"
                      " use a tcp@ or stream@ address")


class _SharedOnly(protocol.Factory):
    """Never asked for a protocol: the parent does not accept on the sockets it shares."""

    def buildProtocol(self, addr):
        return None


class _WorkerProtocol(protocol.ProcessProtocol):
    """One worker process: relays its log lines, reports its end to the pool."""

    def __init__(self, pool, index):
        self.pool = pool
        self.index = index
        self.started = pool.reactor.seconds()
        self.started_pid = None
        self.ended = defer.Deferred()
        self._buffers = {1: b"", 2: b""}

    @property
    def pid(self):
        """The pid while the process runs, else None."""
        return self.transport.pid if self.transport is not None else None

    def childDataReceived(self, fd, data):
        if fd not in self._buffers:
            return
        lines = (self._buffers[fd] + data).split(b"\n")
        self._buffers[fd] = lines.pop()
        for line in lines:
            self.pool.relay(self.index, fd, line)

    def processEnded(self, reason):
        for fd, rest in self._buffers.items():
            if rest:
                self.pool.relay(self.index, fd, rest)
        self._buffers = {1: b"", 2: b""}
        self.pool.worker_ended(self, reason)
        self.ended.callback(None)


class WorkerPool(service.Service):
    """
    ``count`` workers sharing the listening sockets of ``addresses``
    (stream ``Address``es, each ``shareable``).  ``argv(index, fds)`` gives
    the command line of worker ``index`` whose inherited listening sockets
    are ``fds`` (in the order of ``addresses``); ``env`` its environment,
    ``stdin`` what it reads on its standard input (then end of file).
    ``workers`` maps an index to the ``ProcessProtocol`` of its live process.
    """

    _log = Logger()

    def __init__(self, addresses, count, argv, reactor, *, role, env=None, stdin=b"", restart_delay=1.0,
                 stop_timeout=15.0):
        self.addresses = tuple(addresses)
        self.count = count
        self._argv = argv
        self.reactor = reactor
        self.role = role
        self._env = dict(os.environ if env is None else env, **{PARENT_PID: str(os.getpid())})
        self._stdin = stdin
        self.restart_delay = restart_delay
        self.stop_timeout = stop_timeout
        self.ports = []
        self.workers = {}
        self.restarts = 0
        self._delays = {}
        self._pending = {}

    # -- the listening sockets --------------------------------------------------

    def privilegedStartService(self):
        # Bind here so a port that cannot be bound stops twistd at start-up.
        self._listen()
        super().privilegedStartService()

    def _listen(self):
        if self.ports:
            return
        for address in self.addresses:
            d = address.server_endpoint(self.reactor).listen(_SharedOnly())
            # Every shareable endpoint listens synchronously.
            port = _result(d)
            port.stopReading()
            self.ports.append(port)

    # -- the workers ------------------------------------------------------------

    def startService(self):
        self._listen()
        super().startService()
        for index in range(self.count):
            self._spawn(index)

    def _spawn(self, index):
        self._pending.pop(index, None)
        fds = [FIRST_FD + i for i in range(len(self.ports))]
        child_fds = {0: "w", 1: "r", 2: "r"}
        for fd, port in zip(fds, self.ports):
            child_fds[fd] = port.fileno()
        argv = self._argv(index, fds)
        worker = _WorkerProtocol(self, index)
        self.reactor.spawnProcess(worker, argv[0], argv, env=self._env, childFDs=child_fds)
        worker.started_pid = worker.pid
        worker.transport.write(self._stdin)
        worker.transport.closeStdin()
        self.workers[index] = worker
        self._log.info("worker {worker} started (pid {pid})", worker=index, pid=worker.pid, role=self.role)

    def worker_ended(self, worker, reason):
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        status = reason.value
        how = (f"killed by signal {status.signal}" if getattr(status, "signal", None)
               else f"exited with status {getattr(status, 'exitCode', None)}")
        if not self.running:
            self._log.info("worker {worker} (pid {pid}) stopped: {how}", worker=worker.index,
                           pid=worker.started_pid, how=how, role=self.role)
            return
        lived = self.reactor.seconds() - worker.started
        delay = self._delays.get(worker.index, self.restart_delay)
        if lived >= HEALTHY_AFTER:
            delay = self.restart_delay
        self._delays[worker.index] = min(delay * 2, MAX_RESTART_DELAY)
        self.restarts += 1
        self._log.critical("worker {worker} (pid {pid}) {how} after {lived:.0f} s; starting it again in {delay:g} s",
                           worker=worker.index, pid=worker.started_pid, how=how, lived=lived, delay=delay,
                           role=self.role)
        self._pending[worker.index] = self.reactor.callLater(delay, self._spawn, worker.index)

    def relay(self, index, fd, line):
        """A line a worker wrote: its JSON log events go into this process's log."""
        if not line.strip():
            return
        event = None
        if fd == 1:
            try:
                event = eventFromJSON(line.decode("utf-8", "replace"))
            except (ValueError, TypeError, json.JSONDecodeError):
                event = None
        if not isinstance(event, dict) or "log_level" not in event:
            self._log.error("worker {worker}: {line}", worker=index,
                            line=line.decode("utf-8", "replace"), role=self.role)
            return
        event["worker"] = index
        event.setdefault("role", self.role)
        event.setdefault("log_time", time.time())
        level = event.get("log_level")
        event["log_system"] = "worker {}: {}#{}".format(index, event.get("log_namespace", "-"),
                                                       getattr(level, "name", level))
        globalLogPublisher(event)

    # -- stopping ---------------------------------------------------------------

    def reconfigure(self, stdin):
        """Workers started from now on read ``stdin`` (a reloaded configuration)."""
        self._stdin = stdin

    def signal_all(self, signum):
        """Send ``signum`` to every running worker (SIGHUP: each reloads its configuration)."""
        for worker in list(self.workers.values()):
            _signal(worker, signum)

    def stopService(self):
        super().stopService()
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        workers = list(self.workers.values())
        for worker in workers:
            _signal(worker, signal.SIGTERM)
        ended = defer.DeferredList([w.ended for w in workers])
        killer = self.reactor.callLater(self.stop_timeout, self._kill, workers)
        ended.addCallback(lambda _: killer.active() and killer.cancel())
        ended.addCallback(lambda _: self._close_ports())
        return ended

    def _kill(self, workers):
        for worker in workers:
            if worker.pid is not None:
                self._log.error("worker {worker} (pid {pid}) did not stop within {timeout:g} s; killing it",
                                worker=worker.index, pid=worker.pid, timeout=self.stop_timeout, role=self.role)
                _signal(worker, signal.SIGKILL)

    def _close_ports(self):
        ports, self.ports = self.ports, []
        return defer.DeferredList([defer.maybeDeferred(p.stopListening) for p in ports])


def _signal(worker, signum):
    try:
        worker.transport.signalProcess(signum)
    except (error.ProcessExitedAlready, OSError):
        pass


def _result(d):
    """The result of a Deferred that has already fired (raising its failure)."""
    box = []
    d.addBoth(box.append)
    if not box:
        raise RuntimeError("the listening endpoint did not listen at once")
    result = box[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


class RoleWorkers(service.MultiService):
    """
    The parent of a role's ``worker_num`` workers: ``pool``, a
    ``WorkerPool`` sharing ``binds`` (the role's listeners) between workers
    that run ``main`` (a Python statement calling the role's worker ``main``)
    with ``--config P --index I --fds F`` and ``extra`` (more ``--key
    value`` pairs).  Each reads on its standard input the configuration as
    the parent read it at start-up (``data``, a JSON object; by default the
    file ``config_path``): not in its environment, which other processes of
    the user can read, and not from the file, so an edited file cannot give a
    restarted worker settings its siblings do not have.

    SIGHUP in the parent (``reload``) is forwarded: each worker re-reads the
    file and applies what it can (keys in ``reloadable``) in its own log
    line, relayed here; a worker started later reads the new file.
    """

    def __init__(self, config, reactor, config_path, *, role, main, binds, reloadable, data=None, extra=(),
                 restart_delay=1.0, stop_timeout=15.0):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.role = role
        self.role_logging = None
        self.reloadable = reloadable
        path = self.config_path = os.path.abspath(config_path)
        text = json.dumps(load_json(path) if data is None else data).encode()
        extra = tuple(str(arg) for arg in extra)

        def argv(index, fds):
            return [sys.executable, "-c", main, "--config", path, "--index", str(index),
                    "--fds", ",".join(map(str, fds)), *extra]

        self.pool = WorkerPool(binds, config.worker_num, argv, reactor, role=role, stdin=text,
                               restart_delay=restart_delay, stop_timeout=stop_timeout)
        self.pool.setServiceParent(self)

    def reload(self, config):
        """SIGHUP in the parent (``config``: the file as re-read and checked): forwarded to every worker."""
        changed, restart = reloadable_changes(self.config, config, self.reloadable)
        self.pool.reconfigure(json.dumps(load_json(self.config_path)).encode())
        self.pool.signal_all(signal.SIGHUP)
        self.config = attrs.evolve(self.config, **{name: getattr(config, name) for name in changed})
        return ReloadReport(tuple(f"{name} (in each worker)" for name in changed), restart)


# -- the worker's side ------------------------------------------------------------


@attrs.frozen
class WorkerArguments:
    """
    A worker's command line as ``RoleWorkers`` wrote it: the config file
    ``path``, the worker's ``index``, its inherited listening sockets
    ``fds``, the configuration ``data`` read on its standard input (the file
    when that is empty), and the ``extra`` ``--key value`` pairs.
    """

    path: str
    index: int
    fds: tuple
    data: dict
    extra: dict


def worker_arguments(argv, stdin=None):
    """The ``WorkerArguments`` of ``argv`` (``sys.argv[1:]``), reading ``stdin`` (``sys.stdin``) to its end."""
    args = dict(zip(argv[0::2], argv[1::2]))
    path = args.pop("--config")
    index = int(args.pop("--index"))
    fds = tuple(int(fd) for fd in args.pop("--fds").split(",") if fd)
    text = (sys.stdin if stdin is None else stdin).read()
    data = json.loads(text) if text.strip() else load_json(path)
    return WorkerArguments(path, index, fds, data, {key.lstrip("-"): value for key, value in args.items()})


class AdoptedListener(service.Service):
    """
    In a worker: serves ``factory`` on the inherited listening socket
    ``fd`` while running (``tls``: an ``ssl:`` bind's context factory, the
    connections wrapped in TLS as the parent's endpoint would), taking up to
    ``backlog`` waiting connections a turn as every role's listener does
    (``viabtc.backlog.accept_eagerly``); ``on_listening(port)``, if given,
    is called once the port serves.
    """

    def __init__(self, fd, factory, reactor, tls=None, backlog=None, on_listening=None):
        self.fd = fd
        self.factory = factory
        self.reactor = reactor
        self.tls = tls
        self.backlog = listen_backlog(backlog)
        self.on_listening = on_listening
        self.port = None

    def startService(self):
        super().startService()
        probe = socket.socket(fileno=os.dup(self.fd))
        family = probe.family
        probe.close()
        factory = self.factory
        if self.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.tls, False, factory)
        self.port = accept_eagerly(self.reactor.adoptStreamPort(self.fd, family, factory), self.backlog)
        if self.on_listening is not None:
            self.on_listening(self.port)

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


def tls_context(address, reactor):
    """The TLS context factory of an ``ssl:`` ``address`` (None for the others)."""
    if address.transport != "ssl":
        return None
    endpoint = serverFromString(reactor, address.server_description())
    return endpoint._sslContextFactory


def run_worker(build, role):
    """
    The body of a worker process: log events as JSON lines on stdout (the
    parent relays them), ``build(reactor)`` the service, started once the
    reactor runs and stopped gracefully on SIGTERM/SIGINT (once, however
    many arrive), or when the parent dies.  Returns the exit status.
    """
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, jsonFileLogObserver

    from viabtc.log import role_observer

    out = open(sys.stdout.fileno(), "w", buffering=1, encoding="utf-8", closefd=False)
    globalLogBeginner.beginLoggingTo([role_observer(role, jsonFileLogObserver(out, recordSeparator=""))],
                                     redirectStandardIO=False)
    _die_with_parent()
    top = build(reactor)
    stopping = []

    def stop(*_):
        if not stopping:
            stopping.append(True)
            reactor.callFromThread(reactor.stop)

    status = []

    def start():
        try:
            top.startService()
        except BaseException:
            Logger(namespace=__name__).failure("worker start-up failed", role=role)
            status.append(1)
            stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: top.running and top.stopService())
    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return status[0] if status else 0


def _die_with_parent():
    """Linux: SIGTERM this process when its parent dies (an orphaned worker would hold the port)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != os.environ.get(PARENT_PID, str(os.getppid())):
        os.kill(os.getpid(), signal.SIGTERM)
