# -*- test-case-name: tests.mineragent.test_context -*-
"""
The miners' Stratum server of a mineragent: ``viabtc.stratum``'s own
server protocol and factory (the gateway's methods, checks and vardiff),
with three agent rules added by composition.

* No job, no miners (the seed's ``is_stratum_ok``): until the gateway sent
  a job, and after the last one expired, a new connection is closed at once.
* With protocol v2 upstream, the reply to an accepted share is held until
  the gateway's verdict arrives (``answer_share``), so a miner hears
  "duplicate" or "stale" when the pool says so.
* ``send_away``: ``client.reconnect`` and a close, when the agent has no
  valid job left for its miners.
"""

from twisted.logger import Logger

from viabtc.stratum.protocol import StratumServerFactory, StratumServerProtocol, share_reply
from viabtc.stratum.session import Input, State
from viabtc.stratum.share import Reject

_RECONNECT = b'{"id":null,"method":"client.reconnect","params":[]}\n'
_NOTHING = object()


class MinerAgentProtocol(StratumServerProtocol):
    """One miner of the farm; needs a ``MinerAgentContext``."""

    _log = Logger()
    _held = _NOTHING

    def connectionMade(self):
        super().connectionMade()
        if self.session is not None:
            self.context.session_opened(self)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.session is not None:
            self.context.session_gone(self.session)

    def _accepted(self, msg_id, out):
        if self.context.upstream.holds_replies:
            self._held = msg_id
        else:
            super()._accepted(msg_id, out)

    def take_held(self):
        """``(self, msg_id)`` of the share reply just held back, or ``None`` if it was sent."""
        held, self._held = self._held, _NOTHING
        return None if held is _NOTHING else (self, held)

    def answer_share(self, msg_id, code):
        """The gateway's verdict on a held share: ``true``, or its reject code."""
        session = self.session
        if session.state is State.CLOSING:
            return
        if code:
            try:
                reject = Reject(code)
            except ValueError:
                reject = Reject.OTHER
            session.share_valid -= 1
            session.share_error += 1
            self.write(share_reply(msg_id, reject))
        else:
            self.write(share_reply(msg_id))

    def send_away(self):
        """``client.reconnect``, then close."""
        if self.session.state is State.CLOSING:
            return
        self.write(_RECONNECT)
        self.session.transition(Input.CLOSE)
        self.close()


class MinerAgentFactory(StratumServerFactory):
    """``StratumServerFactory`` that refuses miners while the agent has no job."""

    protocol = MinerAgentProtocol
    _log = Logger()

    def __init__(self, context, clock, housekeeping_interval=None, limits=None):
        super().__init__(context, clock, housekeeping_interval, limits)
        self._refusing = False

    def buildProtocol(self, addr):
        if self.context.jobs.current is None:
            if not self._refusing:
                self._refusing = True
                self._log.warn("refusing miners until the gateway sends a job", role=self.context.role)
            return None
        self._refusing = False
        return super().buildProtocol(addr)
