"""stop_process ends real child processes: politely, or by force when they ignore SIGTERM."""

import signal
import subprocess
import sys

from twisted.trial import unittest

from viabtc.devnet.process import stop_process

SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")


class StopProcessTests(unittest.TestCase):
    def child(self, code):
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        self.addCleanup(process.stdout.close)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        self.assertEqual(process.stdout.readline(), "ready\n")
        return process

    def test_terminated(self):
        process = self.child(SLEEPER)
        stop_process(process)
        self.assertEqual(process.returncode, -signal.SIGTERM)

    def test_killed_when_it_ignores_sigterm(self):
        process = self.child(STUBBORN)
        stop_process(process, grace=0.2)
        self.assertEqual(process.returncode, -signal.SIGKILL)

    def test_nothing_to_stop(self):
        stop_process(None)
        process = self.child(SLEEPER)
        process.kill()
        process.wait()
        stop_process(process)
        self.assertEqual(process.returncode, -signal.SIGKILL)
