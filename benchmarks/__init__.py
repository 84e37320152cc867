# -*- test-case-name: benchmarks -*-
"""
Load generators and measurements of the pool's speed, cost and scale
(docs/benchmarks.md).  Run them with ``scripts/bench``; they are not part of
the trial suite and never assert timings.
"""
