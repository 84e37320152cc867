# -*- test-case-name: tests.stratum.test_agent_client -*-
"""
The client side of the ``agent.*`` protocol: a mineragent's connection to
its gateway (ref §5.3), as a Twisted protocol that only moves lines.

On connect it sends ``agent.subscribe`` (with our v2 offer when asked) and
tells its handler, which sends the miners' ``agent.sync`` at once, as the
seed does.  The gateway's answer fixes the version (``true``: the seed's v1;
``{"version": 2}``: ours).  A line without an ``id`` key is a job (the
jobmaster's JSON); ``agent.results`` carries v2 verdicts; other replies
(``agent.sync``'s ``true``) need nothing.

The upstream is not trusted more than a miner: a line that is not a JSON
object, a malformed ``agent.results``, an ``agent.subscribe`` refused or
answered oddly, or a line longer than ``max_line`` is logged with its peer and
the connection dropped; the agent reconnects and nothing else is affected.
A job the handler cannot use is its business (logged there, the link kept).
"""

import json

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from zope.interface import Interface

from viabtc.stratum import agent

#: Longest line accepted from a gateway: a job with a 4 kB coinbase2 and a
#: 13-level branch is under 10 kB.
MAX_LINE_LENGTH = 256 * 1024

_decode = json.JSONDecoder().decode


class IAgentUpstreamHandler(Interface):
    """What an ``AgentClientProtocol`` tells the mineragent."""

    def upstream_connected(protocol):
        """The connection is up and ``agent.subscribe`` written; send the miners' syncs now."""

    def upstream_ready(protocol, version):
        """The gateway accepted the subscription with protocol ``version`` (1 or 2)."""

    def job_received(message):
        """A job line, decoded (a dict); the handler checks it."""

    def results_received(results):
        """v2 verdicts: ``[(seq, code), ...]``."""

    def upstream_lost(protocol, reason):
        """The connection ended."""


class AgentClientProtocol(Protocol):
    """One connection to a gateway.  ``write(data)`` sends raw bytes (whole lines)."""

    _log = Logger()

    def __init__(self, handler, agent_id, offer_v2, clock, role="mineragent", max_line=MAX_LINE_LENGTH):
        self.handler = handler
        self.agent_id = agent_id
        self.offer_v2 = offer_v2
        self.clock = clock
        self.role = role
        self.max_line = max_line
        self.version = 0
        self._buffer = b""
        self._subscribe_id = None
        self._closing = False

    @property
    def peer(self):
        peer = self.transport.getPeer()
        return f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', '')}"

    def connectionMade(self):
        # Verdicts and block candidates must not wait for Nagle's algorithm.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        # The seed's request ids: the time in milliseconds.
        self._subscribe_id = int(self.clock.seconds() * 1000)
        self.transport.write(agent.request_line(self._subscribe_id, "agent.subscribe",
                                                agent.subscribe_params(self.agent_id, self.offer_v2)))
        self.handler.upstream_connected(self)

    def connectionLost(self, reason):
        self.handler.upstream_lost(self, reason)

    def write(self, data):
        self.transport.write(data)

    def drop(self, why, **fields):
        """Log ``why`` and drop the connection (a hostile or broken upstream)."""
        if self._closing:
            return
        self._closing = True
        self._log.error("upstream {peer}: " + why + "; dropping the connection", role=self.role, peer=self.peer,
                        **fields)
        self.transport.abortConnection()

    def dataReceived(self, data):
        if self._closing:
            return
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if len(line) > self.max_line:
                self.drop("line of {length} bytes", length=len(line))
                return
            try:
                self._line(line)
            except Exception:
                self._log.failure("upstream {peer}: handling a line failed", role=self.role, peer=self.peer)
            if self._closing:
                return
        if len(self._buffer) > self.max_line:
            self.drop("no newline in {length} bytes", length=len(self._buffer))

    def _line(self, line):
        line = line.strip()
        if not line:
            return
        try:
            message = _decode(line.decode())
        except (ValueError, RecursionError):
            message = None
        if type(message) is not dict:
            self.drop("not a JSON object: {line!r}", line=line[:100])
            return
        if "id" not in message:
            self.handler.job_received(message)
            return
        msg_id = message["id"]
        if msg_id is None:
            if message.get("method") == "agent.results":
                params = message.get("params")
                try:
                    results = agent.parse_results(params if type(params) is list else None)
                except (agent.AgentProtocolError, TypeError) as e:
                    self.drop("{error}", error=str(e))
                    return
                self.handler.results_received(results)
            else:
                self._log.debug("upstream {peer} sent {method!r}; ignored", role=self.role, peer=self.peer,
                                method=str(message.get("method"))[:64])
            return
        if msg_id == self._subscribe_id and not self.version:
            self._subscribed(message)

    def _subscribed(self, message):
        if message.get("error") is not None:
            self.drop("agent.subscribe refused: {error!r}", error=str(message.get("error"))[:200])
            return
        try:
            self.version = agent.negotiated_version(message.get("result"))
        except agent.AgentProtocolError as e:
            self.drop("{error}", error=str(e))
            return
        if self.version > agent.AGENT_V1 and not self.offer_v2:
            self.drop("granted protocol v{version}, which was not offered", version=self.version)
            return
        self.handler.upstream_ready(self, self.version)
