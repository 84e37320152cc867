# -*- test-case-name: tests.gateway.test_commands -*-
"""
The gateway's admin commands (ref §4.12, served by ``viabtc.cli``):
``list`` (one line per miner connection), ``setcoinname <name>`` and
``getcoinname`` (the coin prefix of statistics), ``flushworker`` (send every
authorized worker's ``connected`` event again, so the metawriter's worker
list can be rebuilt).
"""

import time


def gateway_commands(context):
    """The ``{name: handler}`` table for ``viabtc.cli`` over a ``GatewayContext``."""

    def list_sessions(args):
        """list miner connections"""
        header = "peer user worker difficulty valid error connected user_agent"
        lines = [header]
        for proto in sorted(context.server.sessions, key=lambda p: p.session.connect_time):
            s = proto.session
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.connect_time))
            lines.append(f"{s.peer} {s.user or '-'} {s.worker or '-'} {s.difficulty:g} {s.share_valid}"
                         f" {s.share_error} {since} {s.user_agent or '-'}")
        lines.append(f"total {len(context.server.sessions)}")
        return "\n".join(lines) + "\n"

    def setcoinname(args):
        """setcoinname <name>: the coin prefix of statistics keys"""
        if len(args) != 1 or not args[0]:
            return "usage: setcoinname <name>\n"
        context.stats.aggregator.coin = args[0]
        return "ok\n"

    def getcoinname(args):
        """the coin prefix of statistics keys"""
        return context.stats.aggregator.coin + "\n"

    def flushworker(args):
        """send every authorized worker's connected event again"""
        return f"ok {context.flush_workers()}\n"

    return {
        "list": list_sessions,
        "setcoinname": setcoinname,
        "getcoinname": getcoinname,
        "flushworker": flushworker,
    }
