# -*- test-case-name: tests.devnet.test_process -*-
"""
Stopping a local service's child process (redis-server, bcoin) for good.

A test run must not leave servers behind: ask politely first (SIGTERM, so
the program shuts down cleanly), and kill it if it has not gone within
``grace`` seconds.
"""

import subprocess


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
