"""
Scraping a role's ``RoleMetrics`` the way Prometheus does: ``GET /metrics``
over a real loopback socket, parsed by prometheus-client's own parser.
"""

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from viabtc.metrics import metrics_site


class Scrape:
    """The samples of one scrape: ``scrape.value(name, **labels)``."""

    def __init__(self, text):
        self.samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name, **labels):
        return self.samples[(name, frozenset(labels.items()))]

    def named(self, name):
        """``{frozenset(labels): value}`` of every sample called ``name``."""
        return {labels: value for (n, labels), value in self.samples.items() if n == name}


async def scrape(metrics):
    """A ``Scrape`` of ``metrics`` served on a loopback port for the one request."""
    port = reactor.listenTCP(0, metrics_site(metrics, reactor), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
        response = await Agent(reactor).request(b"GET", url)
        body = await readBody(response)
        if response.code != 200:
            raise AssertionError(f"GET /metrics: {response.code} {body!r}")
    finally:
        await port.stopListening()
    return Scrape(body.decode())
