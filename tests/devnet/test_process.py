"""
The launchers' process helpers on real child processes: waiting until a
probe answers, and stopping politely, or by force when SIGTERM is ignored.
"""

import signal
import subprocess
import sys

from twisted.trial import unittest

from viabtc.devnet.process import stop_process, wait_ready

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


class WaitReadyTests(unittest.TestCase):
    def sleeper(self):
        process = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.DEVNULL)
        self.addCleanup(stop_process, process)
        return process

    def test_ready_once_the_probe_says_so(self):
        answers = iter([False, OSError("refused"), True])
        probes = []

        def probe():
            probes.append(1)
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer

        self.assertTrue(wait_ready(self.sleeper(), probe, 30, 0.01))
        self.assertEqual(len(probes), 3)

    def test_exited_process_is_never_ready(self):
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        process.wait()
        self.assertFalse(wait_ready(process, lambda: True, 30, 0.01))

    def test_time_up(self):
        self.assertFalse(wait_ready(self.sleeper(), lambda: False, 0.1, 0.01))

    def test_other_errors_propagate(self):
        def probe():
            raise KeyError("a bug in the probe")
        self.assertRaises(KeyError, wait_ready, self.sleeper(), probe, 30, 0.01)
