# -*- test-case-name: tests.integration.test_operating -*-
"""
The metawriter's Prometheus metrics (``viabtc.metrics``): packets taken,
duplicates and drops, Redis batches waiting and for how long (the flush
time), the seed's ``meta_flush_cost`` summed, the brother link.
"""

from viabtc.metrics import counter, gauge, link_families


def metawriter_metrics(service):
    """A ``RoleMetrics`` source for a ``MetaWriterService`` (parts exist once it started)."""

    def collect():
        writer, store = service.writer, service.store
        if writer is None or store is None:
            return []
        families = [
            counter("metawriter_packets", "Statistics packets journaled and counted.", writer.accepted),
            counter("metawriter_duplicate_packets", "Packets dropped as already counted.", writer.duplicates),
            counter("metawriter_dropped_packets", "Malformed packets dropped.", writer.dropped),
            counter("metawriter_redis_batches_applied", "Write batches Redis confirmed.", store.applied),
            gauge("metawriter_redis_queue_batches", "Write batches waiting for Redis.", len(store)),
            gauge("metawriter_redis_wait_seconds", "How long the oldest waiting batch has waited (flush time).",
                  store.waited()),
            counter("metawriter_redis_busy_seconds", "Seconds with batches waiting for Redis (meta_flush_cost).",
                    writer.flush_cost_total),
        ]
        if writer.brother is not None:
            families += link_families({"brother": writer.brother})
        return families

    return collect
