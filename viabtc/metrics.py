# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics for every role: ``GET /metrics``.

Each role keeps one ``RoleMetrics`` (its own ``CollectorRegistry``; no
module-level state, so several roles or tests in one process never mix
their numbers).  A role adds *sources*: functions called at scrape time that
read the counters the role keeps anyway (the gateway's minute aggregator,
``ReliableSender.pending_count()``, link states...) and return metric
families.  Nothing is counted per share for Prometheus, so the share hot
path pays nothing for it.

Where the page is served (``viabtc.tap`` wires it):

- a role that serves the seed's ``http_svr`` itself (the gateway) routes
  ``/metrics`` there with ``with_metrics``; every other path keeps the
  seed's answer;
- a role whose seed config has an ``http_svr`` it does not otherwise use
  (jobmaster, bitpeer, blockmaster) serves ``/metrics`` on it;
- any role may give our optional ``metrics`` key (an address or a list of
  them, e.g. ``"tcp@127.0.0.1:9101"``).

``prometheus_client.twisted.MetricsResource`` renders in the reactor's
thread pool, where a source would read role state while the reactor changes
it; ``MetricsPage`` renders in the reactor thread instead (a scrape reads a
few hundred numbers).
"""

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.logger import Logger
from twisted.web.resource import NoResource, Resource
from twisted.web.server import Site

#: Prefix of every viabtc metric name.
NAMESPACE = "viabtc"


class _Source:
    """A registry collector calling one function at scrape time."""

    def __init__(self, collect):
        self._collect = collect

    def collect(self):
        return list(self._collect())


class RoleMetrics:
    """
    The metrics of one running role: ``registry`` holds the process
    collector (CPU, memory, open files) and the role's sources.
    """

    _log = Logger()

    def __init__(self, role):
        self.role = role
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.add(self._role_info)

    def add(self, collect):
        """Add a source: ``collect()`` returns metric families, read at every scrape."""
        self.registry.register(_Source(collect))

    def _role_info(self):
        info = GaugeMetricFamily(f"{NAMESPACE}_role_info", "The viabtc role this process runs.", labels=["role"])
        info.add_metric([self.role], 1)
        return [info]

    def render(self):
        """The text exposition format of every metric now."""
        return generate_latest(self.registry)


class MetricsPage(Resource):
    """``GET``: the role's metrics in Prometheus' text format (rendered in the reactor thread)."""

    isLeaf = True
    _log = Logger()

    def __init__(self, metrics):
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request):
        try:
            body = self._metrics.render()
        except Exception:
            self._log.failure("metrics: a source failed", role=self._metrics.role)
            request.setResponseCode(500)
            return b"metrics failed; see the role's log\n"
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return body


class WithMetrics(Resource):
    """
    ``/metrics`` from ``metrics``; every other path from ``resource`` (a
    leaf serving all paths, as the gateway's seed-compatible HTTP interface).
    """

    def __init__(self, resource, metrics):
        super().__init__()
        self._resource = resource
        self._page = MetricsPage(metrics)

    def getChild(self, name, request):
        if name == b"metrics" and not request.postpath:
            return self._page
        # Give the segment back: the wrapped resource sees the whole path.
        request.postpath.insert(0, request.prepath.pop())
        return self._resource

    def render(self, request):
        return self._resource.render(request)


class MetricsOnly(Resource):
    """A site with nothing but ``/metrics`` (404 elsewhere)."""

    def __init__(self, metrics):
        super().__init__()
        self.putChild(b"metrics", MetricsPage(metrics))

    def getChild(self, name, request):
        return NoResource()


def metrics_site(metrics, reactor):
    """The ``Site`` serving only ``/metrics`` for a ``metrics`` bind."""
    return Site(MetricsOnly(metrics), reactor=reactor)


# -- helpers for sources -------------------------------------------------------


def counter(name, documentation, value, labels=None):
    """A one-sample counter family ``viabtc_<name>_total`` (``labels``: a dict)."""
    labels = labels or {}
    family = CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def gauge(name, documentation, value, labels=None):
    """A one-sample gauge family ``viabtc_<name>``."""
    labels = labels or {}
    family = GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def labelled(kind, name, documentation, label_names, samples):
    """A family of ``kind`` (``CounterMetricFamily`` or ``GaugeMetricFamily``) from ``[(labels, value)]``."""
    family = kind(f"{NAMESPACE}_{name}", documentation, labels=list(label_names))
    for labels, value in samples:
        family.add_metric(list(labels), value)
    return family


def link_families(links):
    """
    ``viabtc_link_up{link}`` (1 connected, 0 not) for ``links``, a dict of
    name → link with a ``connected`` attribute (``FailoverClient``,
    ``DatagramSender``); None entries are skipped.
    """
    samples = [((name,), 1 if link.connected else 0) for name, link in links.items() if link is not None]
    return [labelled(GaugeMetricFamily, "link_up", "1 while the module link is connected.", ["link"], samples)]


def sender_families(sender, link):
    """Queue gauges of a ``ReliableSender`` (None: nothing) as link ``link``."""
    if sender is None:
        return []
    return [
        gauge("link_queue_packets", "Packets journaled and not yet acknowledged.", sender.pending_count(),
              {"link": link}),
        gauge("link_in_flight_packets", "Packets sent and awaiting their ACK.", sender.in_flight_count,
              {"link": link}),
    ]
