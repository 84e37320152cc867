# -*- test-case-name: benchmarks -*-
"""
PNG plots of a benchmark run: throughput against connections, reply
latency percentiles against connections (closed loop) and offered load
(open loop), and the two latency targets push by push (fan-out) and block
by block (candidate share to the node).  matplotlib is a benchmark-only dependency
(``benchmarks/requirements.txt``); without it the runner skips the plots.
"""

import os


def plot(results, directory):
    """Write the plots of ``results`` (the runner's dict) into ``directory``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    paths = []
    sweep = results.get("throughput", [])
    if sweep:
        fig, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
        conns = [r["connections"] for r in sweep]
        left.plot(conns, [r["valid_per_s"] for r in sweep], "o-", label="valid shares/s")
        left.plot(conns, [r["shares_per_s"] for r in sweep], "x--", label="all replies/s (2% rejects)")
        left.axhline(40_000, color="red", linestyle="--", label="target 40,000")
        left.set_xlabel("connections (8 submits in flight each)")
        left.set_ylabel("per second")
        left.set_title("Throughput, one gateway core")
        left.set_ylim(bottom=0)
        left.legend()
        for key in ("p50", "p90", "p99"):
            right.plot(conns, [r["latency_ms"].get(key, 0) for r in sweep], "o-", label=key)
        right.set_xlabel("connections")
        right.set_ylabel("reply latency, ms")
        right.set_title("Latency, closed loop (saturated)")
        right.legend()
        fig.tight_layout()
        path = os.path.join(directory, "throughput.png")
        fig.savefig(path, dpi=100)
        pyplot.close(fig)
        paths.append(path)
    rates = results.get("latency", [])
    if rates:
        fig, ax = pyplot.subplots(figsize=(6, 4))
        offered = [r["rate"] for r in rates]
        for key in ("p50", "p90", "p99"):
            ax.plot(offered, [r["latency_ms"].get(key, 0) for r in rates], "o-", label=key)
        ax.set_xlabel("offered shares/s (open loop)")
        ax.set_ylabel("reply latency, ms")
        ax.set_yscale("log")
        ax.set_title(f"Latency against load, {rates[0]['connections']} connections")
        ax.legend()
        fig.tight_layout()
        path = os.path.join(directory, "latency.png")
        fig.savefig(path, dpi=100)
        pyplot.close(fig)
        paths.append(path)
    fan, block = results.get("fanout", []), results.get("block", [])
    if fan or block:
        fig, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
        for steered, label in ((False, "loopback as is"), (True, "receive work steered")):
            part = [r for r in fan if r["steered"] is steered]
            if part:
                left.plot(range(1, len(part) + 1), [r["gateway_written_ms"] for r in part], "o-",
                          label=f"written, {label}")
                left.plot(range(1, len(part) + 1), [r["last_notify_ms"] for r in part], "x:",
                          label=f"received, {label}")
        left.axhline(100, color="red", linestyle="--", label="target 100 ms")
        left.set_xlabel("job pushed")
        left.set_ylabel("ms to the last notify")
        left.set_title(f"Fan-out to {fan[0]['sessions']:,} sessions" if fan else "Fan-out")
        left.set_ylim(bottom=0)
        left.legend(fontsize="small")
        if block:
            for key, label in (("to_jobmaster_ms", "at the jobmaster"), ("to_sent_ms", "submitblock sent"),
                               ("to_submitblock_ms", "at the node")):
                right.plot(range(1, len(block) + 1), [r[key] for r in block], "o-", label=label)
            right.axhline(5, color="red", linestyle="--", label="target 5 ms")
            right.set_yscale("log")
        right.set_xlabel("block candidate")
        right.set_ylabel("ms from the share")
        right.set_title("Block candidate share -> node")
        right.legend(fontsize="small")
        fig.tight_layout()
        path = os.path.join(directory, "targets.png")
        fig.savefig(path, dpi=100)
        pyplot.close(fig)
        paths.append(path)
    return paths
