# -*- test-case-name: tests.gateway.test_service -*-
"""
The gateway's admin commands (ref §4.12, served by ``viabtc.cli``):
``list`` (one line per miner connection), ``setcoinname <name>`` and
``getcoinname`` (the coin prefix of statistics), ``flushworker`` (send every
authorized worker's ``connected`` event again, so the metawriter's worker
list can be rebuilt).
"""

from viabtc.stratum.session import sessions_table


def gateway_commands(context):
    """The ``{name: handler}`` table for ``viabtc.cli`` over a ``GatewayContext``."""

    def list_sessions(args):
        """list miner connections"""
        return sessions_table([proto.session for proto in context.server.sessions])

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
