# -*- test-case-name: tests.mineragent.test_service -*-
"""
The mineragent's admin commands (ref §11, served by ``viabtc.cli``):
``list`` (one line per miner) and ``upstream`` (the gateway link).
"""

from viabtc.stratum.session import sessions_table


def mineragent_commands(agent_service):
    """The ``{name: handler}`` table for ``viabtc.cli`` over a ``MinerAgentService``."""
    context = agent_service.context

    def list_sessions(args):
        """list miner connections"""
        return sessions_table([link.proto.session for link in context.links.values()])

    def upstream(args):
        """the gateway link: address, protocol version, shares sent and waiting"""
        link = agent_service.upstream
        state = f"v{link.version}" if link.ready else "down"
        return (f"gateway {agent_service.endpoint.current} {state} agent_id {context.agent_id}"
                f" sent {link.sent} queued {link.queued} dropped {link.dropped}\n")

    return {"list": list_sessions, "upstream": upstream}
