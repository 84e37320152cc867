"""
Roles and tools as real processes for the integration tests: ``twistd -n
viabtc-<role>`` and ``viabtc-miner`` from the virtualenv, each with its log
file kept in the test's directory, stopped with SIGTERM (then SIGKILL), and
every log printed when a test fails.
"""

import json
import os
import signal
import socket
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater

from viabtc.devnet import project_root

BIN = os.path.dirname(sys.executable)


class Processes:
    """The processes of one test, started in ``directory``."""

    def __init__(self, testcase, directory):
        self.testcase = testcase
        self.directory = directory
        self.running = {}
        testcase.addCleanup(self.stop_all)

    def write_config(self, name, data):
        path = os.path.join(self.directory, f"{name}.json")
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
        return path

    def log_path(self, name):
        return os.path.join(self.directory, f"{name}.log")

    def spawn(self, name, argv):
        log = open(self.log_path(name), "ab")
        env = dict(os.environ, PYTHONPATH=project_root())
        process = subprocess.Popen(argv, cwd=project_root(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        log.close()
        self.running[name] = process
        return process

    def role(self, role, config):
        """``twistd -n viabtc-<role> --config <directory>/<role>.json``."""
        path = self.write_config(role, config)
        return self.spawn(role, [os.path.join(BIN, "twistd"), "-n", "--pidfile=", f"viabtc-{role}",
                                 "--config", path])

    def miner(self, name, *args):
        return self.spawn(name, [os.path.join(BIN, "viabtc-miner"), *args])

    def check_alive(self, *names):
        for name in names:
            code = self.running[name].poll()
            if code is not None:
                raise AssertionError(f"{name} exited with {code}\n{self.logs()}")

    async def wait_port(self, name, port, timeout=30.0):
        """Wait until ``port`` accepts TCP connections (the process ``name`` must stay up)."""
        for _ in range(int(timeout / 0.1)):
            self.check_alive(name)
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return
            except OSError:
                await deferLater(reactor, 0.1, lambda: None)
        raise AssertionError(f"{name} never listened on {port}\n{self.logs()}")

    def logs(self):
        out = []
        for name in self.running:
            try:
                with open(self.log_path(name), errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            out.append(f"----- {name} ({self.log_path(name)}) -----\n{text[-20000:]}")
        return "\n".join(out)

    def stop(self, name, timeout=10.0):
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        process = self.running[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    async def terminate(self, name, timeout=10.0):
        """
        SIGTERM, then SIGKILL after ``timeout``, waiting on the reactor (so
        peers in this process, such as a statistics writer, keep answering);
        returns the exit code.
        """
        process = self.running[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            for _ in range(int(timeout / 0.05)):
                if process.poll() is not None:
                    break
                await deferLater(reactor, 0.05, lambda: None)
        return self.stop(name, timeout=0.1) if process.poll() is None else process.returncode

    def stop_all(self):
        for name in reversed(list(self.running)):
            self.stop(name)

    async def run(self, scenario):
        """Await ``scenario`` (a coroutine); on any failure print every log, then fail."""
        try:
            return await scenario
        except BaseException:
            for name in list(self.running):
                self.stop(name)
            print(f"\nlogs kept in {self.directory}:\n{self.logs()}")
            raise
