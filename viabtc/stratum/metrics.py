# -*- test-case-name: tests.stratum.test_metrics -*-
"""
Prometheus families (``viabtc.metrics``) for a role serving miners with
``viabtc.stratum``'s server (the gateway, the mineragent): shares by result
and reject reason, sessions, the server's monitor counters.  Each is built
at scrape time from counters the role keeps anyway; the share path never
calls into Prometheus.
"""

from prometheus_client.core import CounterMetricFamily

from viabtc.metrics import gauge, labelled
from viabtc.stratum.share import Reject

#: Prefix of the ``reject_<code>`` keys both roles count rejects under.
REJECT_PREFIX = "reject_"


def reject_reason(code):
    """``23`` → ``"low_difficulty"``; an unknown code → ``"code_<n>"``."""
    try:
        return Reject(code).name.lower()
    except ValueError:
        return f"code_{code}"


def is_reject_key(key):
    """True for a ``reject_<code>`` counter key."""
    return key.startswith(REJECT_PREFIX) and key[len(REJECT_PREFIX):].isdigit()


def reject_samples(counts):
    """``[(("rejected", reason), n)]`` from the ``reject_<code>`` keys of ``counts``."""
    return [(("rejected", reject_reason(int(key[len(REJECT_PREFIX):]))), value)
            for key, value in sorted(counts.items()) if is_reject_key(key)]


def share_families(accepted, counts, name="shares", documentation="Shares submitted, by result and reject reason."):
    """
    ``viabtc_<name>_total{result, reason}``: ``accepted`` shares (reason
    ``""``) and the rejects counted as ``reject_<code>`` in ``counts``.
    """
    samples = [(("accepted", ""), accepted)] + reject_samples(counts)
    return [labelled(CounterMetricFamily, name, documentation, ["result", "reason"], samples)]


def event_families(name, documentation, counts, skip=()):
    """``viabtc_<name>_total{event}``: every key of ``counts`` but ``skip`` and the reject keys."""
    samples = [((key,), value) for key, value in sorted(counts.items()) if key not in skip and not is_reject_key(key)]
    return [labelled(CounterMetricFamily, name, documentation, ["event"], samples)]


def session_families(factory):
    """``viabtc_sessions``: the connections of a ``StratumServerFactory``."""
    return [gauge("sessions", "Miner sessions connected.", len(factory.sessions))]
