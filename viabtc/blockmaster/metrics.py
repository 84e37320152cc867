# -*- test-case-name: tests.blockmaster.test_metrics -*-
"""
The blockmaster's Prometheus metrics (``viabtc.metrics``), read at scrape
time from what the relay and the service count anyway: blocks accepted by
kind (pool, foreign) and the form they came in (full; the seed's thin
block; our compact block), reconstructions refused by the merkle check,
the transaction cache, requests for missing transactions (cmd 15, cmd 18),
``submitblock`` outcomes, the links to bitpeers and peer blockmasters.
"""

from prometheus_client.core import CounterMetricFamily

from viabtc.metrics import counter, gauge, labelled, link_families


def blockmaster_metrics(service):
    """A ``RoleMetrics`` source for a ``BlockmasterService``."""

    def collect():
        relay = service.relay
        counters = relay.counters
        links = {f"bitpeer:{link.peer}": link.client for link in service.bitpeers}
        links.update({f"blockmaster:{link.peer}": link.client for link in service.blockmasters.values()})
        families = [
            labelled(CounterMetricFamily, "blockmaster_blocks",
                     "Blocks accepted (relayed and submitted), by kind and the form they came in.",
                     ["kind", "form"], [(key, n) for key, n in sorted(relay.accepted.items())]),
            counter("blockmaster_merkle_mismatches",
                    "Blocks or reconstructions whose transactions failed the merkle check (never relayed).",
                    counters["mismatch"]),
            counter("blockmaster_incomplete_blocks", "Thin blocks dropped with transactions still missing.",
                    counters["incomplete"]),
            counter("blockmaster_bad_messages", "Malformed blocks and thin-block packets dropped.",
                    counters["bad_block"] + counters["bad_message"]),
            labelled(CounterMetricFamily, "blockmaster_tx_requests",
                     "Requests for missing transactions (cmd 15 thin, cmd 18 compact), by outcome: sent,"
                     " answered and timed_out for ours, served for peers'.", ["command", "outcome"],
                     [((str(command), outcome), n) for (command, outcome), n in sorted(relay.requests.items())]),
            gauge("blockmaster_pending_requests", "Thin blocks waiting for requested transactions.",
                  len(relay.pending)),
            gauge("blockmaster_tx_cache_transactions", "Transactions in the cache (mempool and recent blocks).",
                  len(service.cache)),
            labelled(CounterMetricFamily, "submitblock_results", "submitblock outcomes, by node and outcome.",
                     ["node", "outcome"], [(key, n) for key, n in sorted(service.submit_outcomes.items())]),
            gauge("blockmaster_compact_links", "Peer blockmaster links that speak the compact mode.",
                  sum(1 for link in service.blockmasters.values() if link.compact)),
        ]
        families += link_families(links)
        return families

    return collect
