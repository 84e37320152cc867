# -*- test-case-name: tests.bitpeer.test_service -*-
"""
Bitpeer's admin commands (ref §11): ``update`` reloads the peers file (as
SIGUSR1 does), ``status`` lists every configured peer and whether it is
connected, with the best block and the counts of hints and relays.
"""

from viabtc.rpc.addresslist import describe


def bitpeer_commands(service):
    """Name → handler over a ``BitpeerService``."""

    def update(args):
        """reload the peers file"""
        return service.reload_peers() + "\n"

    def status(args):
        """peers and whether they are connected; best block; counters"""
        relay = service.relay
        ready = {p.transport.getPeer().host + ":" + str(p.transport.getPeer().port): p
                 for p in relay.peers}
        lines = [f"best_height {relay.best_height} hinted {relay.hinted_height} "
                 + " ".join(f"{k} {v}" for k, v in relay.counts.items()),
                 "jobmasters " + (describe(service.jobmasters.addresses) or "none"),
                 f"blockmasters {len(service.svr_factory.connections)}"]
        for host, port in service.peerset.clients:
            peer = ready.get(f"{host}:{port}")
            if peer is None:
                lines.append(f"{host}:{port} connected no")
                continue
            agent = peer.remote.user_agent.decode("ascii", "replace")
            mode = "compact-hb" if peer.compact_announce else ("headers" if peer.wants_headers else "inv")
            lines.append(f"{host}:{port} connected yes {agent} height {peer.remote.start_height} "
                         f"announce {mode}")
        return "\n".join(lines) + "\n"

    return {"update": update, "status": status}
