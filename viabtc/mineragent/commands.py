# -*- test-case-name: tests.mineragent.test_service -*-
"""
The mineragent's admin commands (ref §11, served by ``viabtc.cli``):
``list`` (one line per miner) and ``upstream`` (the gateway link).
"""

import time


def mineragent_commands(agent_service):
    """The ``{name: handler}`` table for ``viabtc.cli`` over a ``MinerAgentService``."""
    context = agent_service.context

    def list_sessions(args):
        """list miner connections"""
        lines = ["peer user worker difficulty valid error connected user_agent"]
        for link in sorted(context.links.values(), key=lambda k: k.proto.session.connect_time):
            s = link.proto.session
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.connect_time))
            lines.append(f"{s.peer} {s.user or '-'} {s.worker or '-'} {s.difficulty:g} {s.share_valid}"
                         f" {s.share_error} {since} {s.user_agent or '-'}")
        lines.append(f"total {len(context.links)}")
        return "\n".join(lines) + "\n"

    def upstream(args):
        """the gateway link: address, protocol version, shares sent and waiting"""
        link = agent_service.upstream
        state = f"v{link.version}" if link.ready else "down"
        return (f"gateway {agent_service.endpoint.current} {state} agent_id {context.agent_id}"
                f" sent {link.sent} queued {link.queued} dropped {link.dropped}\n")

    return {"list": list_sessions, "upstream": upstream}
