# -*- test-case-name: tests.metarelay.test_reload -*-
"""
The metarelay's Prometheus metrics (``viabtc.metrics``): the writer link and
its store-and-forward queue.
"""

from viabtc.metrics import sender_families


def metarelay_metrics(service):
    """A ``RoleMetrics`` source for a ``MetaRelayService`` (parts exist once it started)."""

    def collect():
        return sender_families(service.sender, "writer")

    return collect
