"""
``viabtc.workers``: a pool of real worker processes sharing the parent's
listening socket, restarted when they die, stopped with SIGTERM (SIGKILL
after the timeout), their log lines relayed.  The workers here are small
Python programs, so each behaviour is shown without a whole role; then the
parts every role's workers share (command line, moved addresses, checks).
"""

import io
import os
import signal
import socket
import sys

from twisted.internet import defer, reactor, threads
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigError, parse_address
from viabtc.workers import WorkerPool, check_shared_binds, shifted, worker_arguments

from tests.support import wait_for

#: Accepts on the inherited socket forever, answering each connection with its
#: pid after a while (a busy worker: the kernel gives the next connection to a
#: worker waiting in accept).
SERVE_PID = """
import os, select, socket, time
s = socket.socket(fileno=3)  # non-blocking, as the parent and every sibling share it
while True:
    select.select([s], [], [])
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    time.sleep(0.1)
    c.sendall(str(os.getpid()).encode())
    c.close()
"""

#: One log event as a JSON line, one line on stderr, then waits for SIGTERM.
LOGS = """
import json, signal, sys
print(json.dumps({"log_format": "hello {name}", "name": "from a worker", "log_namespace": "w",
                  "log_level": {"__class_uuid__": "02E59486-F24D-46AD-8224-3ACDF2A5732A", "name": "info"}}),
      flush=True)
print("a traceback line", file=sys.stderr, flush=True)
signal.pause()
"""

#: Ignores SIGTERM.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("{}", flush=True)
while True:
    time.sleep(1)
"""


class WorkerPoolTests(TestCase):
    def pool(self, program, count=2, **kw):
        pool = WorkerPool([parse_address("tcp@127.0.0.1:0")], count,
                          lambda index, fds: [sys.executable, "-c", program], reactor, role="test",
                          restart_delay=0.1, **kw)
        pool.privilegedStartService()
        pool.startService()
        self.addCleanup(lambda: pool.running and pool.stopService())
        return pool

    def ask(self, port):
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            return int(s.recv(100))

    async def pids_served(self, port, until):
        seen = set()
        for _ in range(50):
            seen.update(await defer.gatherResults([threads.deferToThread(self.ask, port) for _ in range(4)]))
            if until(seen):
                return seen
        raise AssertionError(f"only {seen} answered")

    async def test_workers_share_the_port_a_dead_one_is_replaced_and_all_stop(self):
        pool = self.pool(SERVE_PID)
        port = pool.ports[0].getHost().port
        pids = {w.pid for w in pool.workers.values()}
        self.assertEqual(len(pids), 2)
        await self.pids_served(port, lambda seen: seen == pids)

        victim = pool.workers[0].pid
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: pool.restarts == 1 and 0 in pool.workers, what="worker 0 started again")
        self.assertNotEqual(pool.workers[0].pid, victim)
        await self.pids_served(port, lambda seen: pool.workers[0].pid in seen)

        await pool.stopService()
        # Every worker reaped, and then the port closed.
        self.assertEqual(pool.workers, {})
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), 1)

    async def test_log_lines_are_relayed_with_the_worker_index(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.pool(LOGS, count=1)
        await wait_for(lambda: len([e for e in events if e.get("worker") == 0 and "log_format" in e]) >= 2,
                       what="both lines relayed")
        relayed = [e for e in events if e.get("worker") == 0]
        hello = next(e for e in relayed if e.get("name") == "from a worker")
        self.assertEqual(hello["log_system"], "worker 0: w#info")
        self.assertTrue(any(e.get("line") == "a traceback line" for e in relayed))

    async def test_a_worker_deaf_to_sigterm_is_killed_after_the_timeout(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        pool = self.pool(STUBBORN, count=1, stop_timeout=1.0)
        await wait_for(lambda: any(e.get("worker") == 0 and e.get("line") == "{}" for e in events),
                       what="the worker deaf to SIGTERM")
        await pool.stopService()
        self.assertEqual(pool.workers, {})
        self.assertTrue(any("did not stop" in e.get("log_format", "") for e in events))


class WorkerPartsTests(TestCase):
    def test_a_worker_reads_its_command_line_and_the_config_on_stdin(self):
        argv = ["--config", "/etc/role.json", "--index", "3", "--fds", "3,4", "--agent-id", "7"]
        args = worker_arguments(argv, io.StringIO('{"worker_num": 4}'))
        self.assertEqual((args.path, args.index, args.fds), ("/etc/role.json", 3, (3, 4)))
        self.assertEqual((args.data, args.extra), ({"worker_num": 4}, {"agent-id": "7"}))

    def test_without_stdin_a_worker_reads_the_file(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('{"from": "the file"}')
        args = worker_arguments(["--config", path, "--index", "0", "--fds", ""], io.StringIO(""))
        self.assertEqual((args.data, args.fds, args.extra), ({"from": "the file"}, (), {}))

    def test_addresses_move_with_the_worker(self):
        self.assertEqual(shifted(parse_address("tcp@127.0.0.1:9000"), 2).text, "tcp@127.0.0.1:9002")
        self.assertEqual(shifted(parse_address("tcp@[::1]:9000"), 1).text, "tcp@[::1]:9001")
        self.assertEqual(shifted(parse_address("stream@/run/a.sock"), 1).path, "/run/a.sock.1")
        address = parse_address("tcp:9000")
        self.assertIs(shifted(address, 0), address)
        self.assertRaises(ConfigError, shifted, address, 1)

    def test_only_stream_binds_with_a_socket_are_shared(self):
        check_shared_binds([parse_address("tcp@0.0.0.0:1"), parse_address("stream@/run/a.sock")])
        e = self.assertRaises(ConfigError, check_shared_binds,
                              [parse_address("tcp@0.0.0.0:1"), parse_address("udp@0.0.0.0:2")])
        self.assertEqual(e.key, "svr.bind[1]")
