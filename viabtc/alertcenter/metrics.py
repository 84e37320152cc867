# -*- test-case-name: tests.integration.test_operating -*-
"""
The alertcenter's Prometheus metrics (``viabtc.metrics``): alerts received,
pushed to Redis, dropped while Redis was away, and waiting.
"""

from viabtc.metrics import counter, gauge


def alertcenter_metrics(service):
    """A ``RoleMetrics`` source for an ``AlertCenterService`` (parts exist once it started)."""

    def collect():
        center = service.center
        if center is None:
            return []
        delivery = center.delivery
        return [
            counter("alerts_received", "Alert frames accepted from roles.", center.received_count),
            counter("alerts_sent", "Alert entries pushed to alert:message.", delivery.delivered),
            counter("alerts_dropped", "Alerts dropped from the full queue while Redis was away.", delivery.dropped),
            gauge("alerts_queued", "Alerts waiting for Redis.", len(delivery)),
        ]

    return collect
