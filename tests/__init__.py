"""
The viabtc trial suite; it mirrors the viabtc package.

Hypothesis runs with no per-example deadline and without its "too slow"
health check: both judge wall-clock time, which on a shared 2-core CI
machine running two trial workers says nothing about correctness (a
property that fails, fails on its inputs, not on the clock).
"""

from hypothesis import HealthCheck, settings

settings.register_profile("viabtc", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("viabtc")
