# -*- test-case-name: tests.bitpeer.test_metrics -*-
"""
The bitpeer's Prometheus metrics (``viabtc.metrics``), read at scrape time
from what the relay and the service count anyway (the CLI's ``status``
shows the same numbers): P2P peers configured and connected, blocks
announced, served and pushed to blockmasters, headers refused, height hints
sent, the best height, the blockmasters and jobmasters it talks to.

Bytes in and out are not counted by ``viabtc.p2p``, so they are not here.
"""

from prometheus_client.core import CounterMetricFamily

from viabtc.metrics import counter, gauge, labelled

#: ``Relay.counts`` keys ``served <kind>`` → the ``kind`` label.
_SERVED = "served "


def bitpeer_metrics(service):
    """A ``RoleMetrics`` source for a ``BitpeerService``."""

    def collect():
        relay = service.relay
        counts = relay.counts
        served = [((key[len(_SERVED):].replace(" ", "_"),), value)
                  for key, value in sorted(counts.items()) if key.startswith(_SERVED)]
        return [
            gauge("bitpeer_peers", "P2P peers in the peers file.", len(service.peerset.clients)),
            gauge("bitpeer_peers_connected", "P2P peers connected (version handshake done).", len(relay.peers)),
            gauge("bitpeer_best_height", "Height of the best header known (node tip or peers).",
                  relay.best_height),
            counter("bitpeer_blocks_announced", "The pool's blocks announced to P2P peers.", counts["announced"]),
            labelled(CounterMetricFamily, "bitpeer_blocks_served", "Blocks sent to P2P peers, by form.", ["kind"],
                     served),
            counter("bitpeer_blocks_pushed", "Blocks from P2P peers pushed to the blockmasters (cmd 12).",
                    counts["pushed"]),
            labelled(CounterMetricFamily, "bitpeer_headers_refused",
                     "Headers from P2P peers refused, by reason (bad_header: failed proof of work or"
                     " difficulty, the peer dropped; unknown_parent: not placeable, asked about).", ["reason"],
                     [(("bad_header",), counts["bad_headers"]), (("unknown_parent",), counts["unknown_parent"])]),
            counter("bitpeer_hints_sent", "Height hints (cmd 4) sent to the jobmasters.", service.hints_sent),
            gauge("bitpeer_jobmasters", "Jobmasters known to hint.", len(service.sender.addresses)),
            gauge("bitpeer_blockmasters_connected", "Blockmaster (svr) connections.",
                  len(service.svr_factory.connections)),
            gauge("bitpeer_node_up", "1 while the last poll of the node's tip succeeded.",
                  0 if service.tip.last_error is not None or service.tip.best_hash is None else 1),
        ]

    return collect
