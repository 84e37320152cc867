# -*- test-case-name: tests.mineragent.test_context -*-
"""
The mineragent's side of its gateway link: what goes up, what is kept while
the gateway is away, and the verdicts that come back.

Every share gets a sequence number when its miner's submit is accepted
locally.  With protocol v2 it stays here until the gateway's
``agent.results`` names it, and the miner's reply waits for that verdict,
so the miner is told the truth (accepted, duplicate, stale, low
difficulty).  Shares made while the link is down are kept (at most
``max_queued`` of them) and sent after the next ``agent.subscribe``; v2
shares sent but not yet judged when a link broke are sent again with their
old numbers, and the gateway counts each number once.  With v1 (a seed
gateway) a share is written once and forgotten, as the seed does: its miner
was answered ``true`` at once, and a share lost in a broken connection is
lost.

Miners' ``agent.sync`` lines are written before their first share on each
connection and whenever their difficulty changed (the gateway keeps the
difficulty and the one before it, so a share credited at the old
difficulty in its grace period is judged the same on both sides).
"""

import random
from collections import OrderedDict, deque

from twisted.logger import Logger
from zope.interface import implementer

from viabtc.stratum import agent
from viabtc.stratum.agent_client import IAgentUpstreamHandler
from viabtc.stratum.share import Reject

#: Events (connected, disconnected) kept while the link is down.
MAX_QUEUED_EVENTS = 100_000

#: Entries of one agent.rejects line: at most ~150 bytes each, so a line
#: stays far below the 10 kB a gateway's svr.max_pkg_size allows.
REJECTS_PER_LINE = 40

#: What a miner whose share had to be dropped is told.
UPSTREAM_LOST = Reject.OTHER


class PendingShare:
    """A share the gateway has not judged yet: its params, its miner and the reply held for it."""

    __slots__ = ("params", "link", "reply", "sent")

    def __init__(self, params, link, reply):
        self.params = params
        self.link = link
        self.reply = reply
        self.sent = False


@implementer(IAgentUpstreamHandler)
class UpstreamLink:
    """
    The agent's state towards its gateway.  ``context`` is the
    ``MinerAgentContext`` (jobs, miners' syncs); ``offer_v2`` whether to
    offer protocol v2.
    """

    _log = Logger()

    def __init__(self, context, clock, offer_v2=True, max_queued=1_000_000, role="mineragent"):
        self.context = context
        self.clock = clock
        self.offer_v2 = offer_v2
        self.max_queued = max_queued
        self.role = role
        self.proto = None
        #: 0 until the gateway answered agent.subscribe, then 1 or 2
        self.version = 0
        self._last_version = agent.AGENT_V2 if offer_v2 else agent.AGENT_V1
        self._seq = random.getrandbits(32)
        self._shares = OrderedDict()
        self._events = deque(maxlen=MAX_QUEUED_EVENTS)
        self._rejects = {}
        #: counters for the CLI, /metrics and the tests
        self.sent = 0
        self.dropped = 0
        #: the v2 gateway's verdicts on this agent's shares: ``reject_<code>`` counts, ``acknowledged`` the rest
        self.acknowledged = 0
        self.verdicts = {}

    @property
    def ready(self):
        return self.version != 0

    @property
    def holds_replies(self):
        """True while miners' replies wait for the gateway's verdict (v2, or v2 expected)."""
        return self.offer_v2 and self._last_version == agent.AGENT_V2

    @property
    def queued(self):
        """Shares waiting to be sent or judged."""
        return len(self._shares)

    # -- IAgentUpstreamHandler -------------------------------------------------

    def upstream_connected(self, proto):
        self.proto = proto
        self._log.info("upstream {peer} connected; subscribing as agent {agent_id}", role=self.role,
                       peer=proto.peer, agent_id=proto.agent_id)
        # The seed syncs every miner right after the subscribe, before its answer.
        links = self.context.links.values()
        for link in links:
            link.synced = None
        self.context.resync(link for link in links if link.authorized)

    def upstream_ready(self, proto, version):
        self.version = self._last_version = version
        self._log.info("upstream {peer} speaks agent protocol v{version}; {count} queued shares to send",
                       role=self.role, peer=proto.peer, version=version, count=len(self._shares))
        # Miners that left with shares still here must be known upstream too
        # (those still connected were synced when the link came up).
        live = self.context.links
        self.context.resync({id(e.link): e.link for e in self._shares.values()
                             if e.link.proto.session not in live}.values())
        while self._events:
            proto.write(self._events.popleft())
        if version == agent.AGENT_V2:
            for seq, entry in self._shares.items():
                if not entry.sent:
                    entry.sent = True
                    self._write_share(entry.params, seq)
        else:
            shares, self._shares = self._shares, OrderedDict()
            for entry in shares.values():
                self._write_share(entry.params, None)
                self._answer(entry.reply, 0)

    def upstream_lost(self, proto, reason):
        if proto is not self.proto:
            return
        self.proto = None
        self.version = 0
        for entry in self._shares.values():
            entry.sent = False
        self._log.warn("upstream {peer} lost ({reason}); {count} shares kept for the next link", role=self.role,
                       peer=proto.peer, reason=reason.getErrorMessage() if reason is not None else "closed",
                       count=len(self._shares))

    def job_received(self, message):
        self.context.job_received(message)

    def results_received(self, results):
        shares = self._shares
        for seq, code in results:
            entry = shares.pop(seq, None)
            if entry is None:
                continue
            if code:
                key = f"reject_{int(code)}"
                self.verdicts[key] = self.verdicts.get(key, 0) + 1
            else:
                self.acknowledged += 1
            self._answer(entry.reply, code)

    # -- from the agent ----------------------------------------------------------

    def send(self, line):
        """A control line (sync, status) for the current connection; dropped when there is none."""
        if self.proto is not None:
            self.proto.write(line)

    def event(self, user, worker, name):
        line = agent.request_line(self._next_id(), "agent.event", [user, worker, name])
        if self.ready:
            self.proto.write(line)
        else:
            self._events.append(line)

    def reject(self, user, worker, code):
        """A share this agent rejected itself; reported upstream in v2 (``flush_rejects``)."""
        if not self.offer_v2 or self._last_version != agent.AGENT_V2 or not user:
            return
        key = (user, worker, int(code))
        self._rejects[key] = self._rejects.get(key, 0) + 1

    def flush_rejects(self):
        """Send the rejects counted since the last call (v2 links only; kept while the link is down)."""
        if self.version != agent.AGENT_V2 or not self._rejects:
            return
        rejects, self._rejects = self._rejects, {}
        entries = [[user, worker, code, count] for (user, worker, code), count in rejects.items()]
        # Lines well under a gateway's max_pkg_size (the seed's sample: 10240).
        for i in range(0, len(entries), REJECTS_PER_LINE):
            self.proto.write(agent.request_line(self._next_id(), "agent.rejects", entries[i:i + REJECTS_PER_LINE]))

    def share(self, params, link, reply):
        """
        A locally accepted share (``agent.submit`` params without a
        sequence number) of miner ``link``; ``reply`` is ``(protocol,
        msg_id)`` when its miner's answer was held, else ``None``.
        """
        seq = self._seq = (self._seq + 1) & 0xFFFFFFFF
        if self.version == agent.AGENT_V1:
            self._write_share(params, None)
            self._answer(reply, 0)
            return
        entry = PendingShare(params, link, reply)
        self._shares[seq] = entry
        if self.version == agent.AGENT_V2:
            entry.sent = True
            self._write_share(params, seq)
        elif len(self._shares) > self.max_queued:
            _, oldest = self._shares.popitem(last=False)
            self.dropped += 1
            self._answer(oldest.reply, UPSTREAM_LOST)

    def _write_share(self, params, seq):
        self.sent += 1
        self.proto.write(agent.request_line(self._next_id(), "agent.submit",
                                            params if seq is None else params + [seq]))

    def _answer(self, reply, code):
        if reply is not None:
            proto, msg_id = reply
            proto.answer_share(msg_id, code)

    def _next_id(self):
        # The seed's request ids: the time in milliseconds.
        return int(self.clock.seconds() * 1000)
