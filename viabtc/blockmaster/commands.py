# -*- test-case-name: tests.blockmaster.test_tap -*-
"""
Blockmaster's admin commands (ref §11): the seed's ``blocknotify`` (read
the node's height now) and ``tx_info`` (cache size), and ``status`` (links,
compact mode, counters), served by ``viabtc.cli`` on the ``cli`` address.
"""


def blockmaster_commands(service):
    """Name → handler over a ``BlockmasterService``."""

    def blocknotify(args):
        """read the local node's height now"""
        d = service.poll_height()
        d.addCallback(lambda _: f"height {service.local_height}\n")
        return d

    def tx_info(args):
        """size of the transaction cache"""
        return f"tx count: {len(service.cache)}\n"

    def status(args):
        """links to bitpeers and blockmasters, counters"""
        lines = [f"height {service.local_height} cache {len(service.cache)} "
                 f"pending {len(service.relay.pending)}"]
        for link in service.bitpeers:
            lines.append(f"bitpeer {link.peer} connected {'yes' if link.client.connected else 'no'}")
        for link in service.blockmasters.values():
            lines.append(f"blockmaster {link.peer} connected "
                         f"{'yes' if link.client.connected else 'no'}"
                         f"{' compact' if link.compact else ''}")
        lines.extend(f"{name} {count}" for name, count in sorted(service.relay.counters.items()))
        return "\n".join(lines) + "\n"

    return {"blocknotify": blocknotify, "tx_info": tx_info, "status": status}
