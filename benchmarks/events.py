# -*- test-case-name: benchmarks -*-
"""
How the benchmark's child processes (load generators, the jobmaster end,
the stamping proxy) report: one JSON object per line on stdout, flushed at
once, which ``benchmarks.runner.Proc`` reads as events.
"""

import json
import sys


def emit(**event):
    """Write ``event`` as one JSON line and flush it (the runner is waiting on it)."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()
