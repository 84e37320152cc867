# -*- test-case-name: tests.stratum.test_session -*-
"""
One miner connection's state, without any I/O.

The protocol (``viabtc.stratum.protocol``) moves bytes and answers methods;
this is what it remembers between lines: the lifecycle state, the accounts
the connection authorized, the difficulty in force and the one waiting for
the next job, the negotiated version mask, the coinbase of each job it was
sent and the record of valid and invalid shares that decides when a
misbehaving miner is dropped.  Statistics and the HTTP ``getclientsinfo``
read it too, so its public attributes are its documented surface.
"""

import enum
import time
from binascii import hexlify

from viabtc.stratum.account import parse_account
from viabtc.stratum.share import ShareTarget

#: The seed's error-rate rule (ref §4.5): once this many share results are
#: known, close the connection if more than ``MAX_INVALID_RATIO`` were invalid.
RESULT_RING = 256
MAX_INVALID_RATIO = 0.6
_MAX_INVALID = int(RESULT_RING * MAX_INVALID_RATIO)

#: A session keeps the coinbases of at most this many jobs; a clean job clears them.
MAX_CACHED_JOBS = 64


class State(enum.Enum):
    """Where a connection is in its lifecycle."""

    CONNECTED = "connected"
    SUBSCRIBED = "subscribed"
    AUTHORIZED = "authorized"
    CLOSING = "closing"


class Input(enum.Enum):
    """What moves a connection from one ``State`` to another."""

    SUBSCRIBE = "subscribe"
    AUTHORIZE = "authorize"
    CLOSE = "close"


#: The one transition table.  A pair that is missing is refused: authorizing
#: before subscribing, anything after closing except closing again.
TRANSITIONS = {
    (State.CONNECTED, Input.SUBSCRIBE): State.SUBSCRIBED,
    (State.SUBSCRIBED, Input.SUBSCRIBE): State.SUBSCRIBED,
    (State.AUTHORIZED, Input.SUBSCRIBE): State.AUTHORIZED,
    (State.SUBSCRIBED, Input.AUTHORIZE): State.AUTHORIZED,
    (State.AUTHORIZED, Input.AUTHORIZE): State.AUTHORIZED,
    (State.CONNECTED, Input.CLOSE): State.CLOSING,
    (State.SUBSCRIBED, Input.CLOSE): State.CLOSING,
    (State.AUTHORIZED, Input.CLOSE): State.CLOSING,
    (State.CLOSING, Input.CLOSE): State.CLOSING,
}


class Session:
    """
    The state of one Stratum connection.  Plain attributes, read on the hot
    path without indirection; the protocol is the only writer.  Slotted:
    a gateway holds one per miner (memory per idle session, attribute
    reads in the job broadcast).
    """

    __slots__ = (
        "identity", "host", "port", "connect_time", "last_active", "state", "user_agent", "accounts",
        "user", "worker", "current", "previous", "pending", "vardiff", "version_mask", "share_valid",
        "share_error", "share_pow", "coinbase1_tail_hex", "_coinbases", "_results", "_result_count",
        "_invalid",
    )

    def __init__(self, identity, host, port, now, difficulty):
        self.identity = identity
        self.host = host
        self.port = port
        self.connect_time = now
        self.last_active = now
        self.state = State.CONNECTED
        self.user_agent = ""
        #: account text as submitted -> (user, worker); the first authorized
        #: account names the coinbase ("Mined by")
        self.accounts = {}
        self.user = ""
        self.worker = ""
        #: the difficulty shares are judged by now, and the one before it
        self.current = ShareTarget.for_difficulty(difficulty)
        self.previous = self.current
        #: a vardiff change waiting to be sent with the next job
        self.pending = None
        #: ``VarDiff`` or ``None`` when the miner fixed its difficulty
        self.vardiff = None
        self.version_mask = 0
        self.share_valid = 0
        self.share_error = 0
        self.share_pow = 0.0
        #: the end of this session's coinbase1 in every job, as notify hex
        self.coinbase1_tail_hex = hexlify(identity.coinbase1_tail)
        self._coinbases = {}
        self._results = bytearray(RESULT_RING)
        self._result_count = 0
        self._invalid = 0

    @property
    def peer(self):
        return f"{self.host}:{self.port}"

    @property
    def difficulty(self):
        return self.current.difficulty

    def transition(self, event):
        """
        Apply ``event`` (an ``Input``); returns the new state, or ``None``
        (state unchanged) if the table has no such transition.
        """
        new = TRANSITIONS.get((self.state, event))
        if new is not None:
            self.state = new
        return new

    def authorize(self, account, max_accounts):
        """
        Parse and remember an account; returns ``(user, worker, is_new)``.
        Raises ``ValueError`` for an invalid account or one too many.
        """
        user, worker = parse_account(account)
        known = (user, worker) in self.accounts.values()
        if account not in self.accounts:
            if len(self.accounts) >= max_accounts:
                raise ValueError(f"more than {max_accounts} accounts on one connection")
            self.accounts[account] = (user, worker)
        if not self.user:
            self.user, self.worker = user, worker
        return user, worker, not known

    def account_for_submit(self, account, max_accounts):
        """
        The ``(user, worker)`` a submit is credited to, or ``None``.  Only
        accounts this connection authorized are paid (the seed credited any
        name a submit gave, ref §12.3); spelling variants of one are learnt.
        """
        pair = self.accounts.get(account)
        if pair is not None:
            return pair
        try:
            pair = parse_account(account)
        except ValueError:
            return None
        if pair not in self.accounts.values() or len(self.accounts) >= max_accounts:
            return None
        self.accounts[account] = pair
        return pair

    def set_difficulty(self, difficulty):
        """Judge shares by ``difficulty`` from now on, the old one kept for grace."""
        self.previous = self.current
        self.current = ShareTarget.for_difficulty(difficulty)
        self.pending = None

    def fix_difficulty(self, difficulty, authorized):
        """
        A miner's own difficulty (``d=`` password, ``mining.suggest_difficulty``):
        vardiff stops.  Before authorization nothing was sent yet, so there is
        nothing to grant grace for.
        """
        self.vardiff = None
        self.set_difficulty(difficulty)
        if not authorized:
            self.previous = self.current

    def coinbase(self, prepared, context):
        """
        ``(coinbase prefix, coinbase1 hex)`` for a job: the bytes the share
        check hashes before extranonce2 (real coinbase1 ‖ extranonce1), and
        the notify field.  Built once per session and job.
        """
        entry = self._coinbases.get(prepared.job_id)
        if entry is not None and entry[0] is prepared:
            return entry[1], entry[2]
        if prepared.clean or len(self._coinbases) >= MAX_CACHED_JOBS:
            self._coinbases.clear()
        coinbase1 = context.coinbase1_head(prepared, self.user) + self.identity.coinbase1_tail
        prefix = coinbase1 + self.identity.extranonce1
        hex_ = hexlify(coinbase1)
        self._coinbases[prepared.job_id] = (prepared, prefix, hex_)
        return prefix, hex_

    def record(self, valid):
        """
        Record a share result; true when the connection has now earned a
        close: the last ``RESULT_RING`` results are known and more than 60 %
        of them were invalid.
        """
        if valid and not self._invalid:
            # Every result in the ring is valid: only the count moves.
            self._result_count += 1
            return False
        slot = self._result_count % RESULT_RING
        if self._result_count >= RESULT_RING:
            self._invalid -= self._results[slot]
        invalid = 0 if valid else 1
        self._results[slot] = invalid
        self._invalid += invalid
        self._result_count += 1
        return self._result_count >= RESULT_RING and self._invalid > _MAX_INVALID


def sessions_table(sessions):
    """
    The admin CLI's ``list`` (the gateway's and the mineragent's): a header,
    one line per session, oldest first, and the total.
    """
    lines = ["peer user worker difficulty valid error connected user_agent"]
    for s in sorted(sessions, key=lambda s: s.connect_time):
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.connect_time))
        lines.append(f"{s.peer} {s.user or '-'} {s.worker or '-'} {s.difficulty:g} {s.share_valid}"
                     f" {s.share_error} {since} {s.user_agent or '-'}")
    lines.append(f"total {len(sessions)}")
    return "\n".join(lines) + "\n"
