# -*- test-case-name: tests.devnet.test_process -*-
"""
Waiting for a local service's child process (redis-server, bcoin) to
answer, and stopping it for good.

A launcher returns only once the program answers, or knows it never will
(it exited, or the time is up), so a test never races the start.  A test
run must not leave servers behind: ask politely first (SIGTERM, so the
program shuts down cleanly), and kill it if it has not gone within
``grace`` seconds.
"""

import subprocess
import time


def wait_ready(process, probe, timeout, interval, errors=(OSError,)):
    """
    Call ``probe()`` every ``interval`` seconds until it returns True; False
    or one of ``errors`` raised means not yet.  Returns False when
    ``process`` (a ``Popen``) exits first or ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if probe():
                return True
        except errors:
            pass
        time.sleep(interval)
    return False


def stop_process(process, grace=5.0):
    """Terminate ``process`` (a ``Popen``, or None) and wait until it is gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
