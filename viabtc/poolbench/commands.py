# -*- test-case-name: tests.poolbench.test_service -*-
"""
Poolbench's admin command (ref §11): ``list``, per pool its job height, the
time of its last ``mining.notify`` and whether it is connected, and the best
height seen, served by ``viabtc.cli`` on the ``cli`` address.
"""

import time

from viabtc.rpc.addresslist import describe


def poolbench_commands(bench, jobmasters, clock):
    """
    Name → handler over ``bench`` (a ``Bench``), ``jobmasters`` (an
    ``AddressList``) and ``clock`` (``IReactorTime``, wall-clock seconds).
    """

    def list_(args):
        """per pool: job height, last notify, connected; the best height"""
        now = clock.seconds()
        lines = [f"best_height {bench.best_height} hinted {bench.hinted_height}",
                 "jobmasters " + (describe(jobmasters.addresses) or "none")]
        for pool in bench.pools.values():
            flags = [flag for flag, on in (("self", pool.is_self), ("notify", pool.is_notify)) if on]
            lines.append(" ".join([
                pool.name,
                f"height {pool.height if pool.height is not None else '-'}",
                f"last_notify {format_time(pool.last_notify, now)}",
                f"connected {'yes' if pool.connected else 'no'}",
                f"refused {pool.refused}",
                *flags,
            ]))
        return "\n".join(lines) + "\n"

    return {"list": list_}


def format_time(seconds, now):
    """``2024-01-02T03:04:05Z (1.5 s ago)``, or ``never`` for None."""
    if seconds is None:
        return "never"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    return f"{stamp} ({now - seconds:.1f} s ago)"
