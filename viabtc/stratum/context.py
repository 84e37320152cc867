# -*- test-case-name: tests.stratum.test_protocol -*-
"""
The seam between the Stratum server and the role that runs it.

The server protocol knows Stratum; the role (gateway, mineragent) knows
where jobs come from, how coinbases are made unique, where statistics and
block candidates go.  Sessions talk to the role only through an object
providing ``IPoolContext``, so the protocol can be tested with a small
in-test context and reused unchanged by both roles.
"""

import secrets

import attrs
from zope.interface import Attribute, Interface

from viabtc.stratum.coinbase import coinbase1_tail
from viabtc.stratum.vardiff import VarDiffSettings

#: The version bits a miner may roll (BIP320: bits 13-28).
POOL_VERSION_MASK = 0x1FFFE000

_MASK64 = (1 << 64) - 1


@attrs.frozen
class Identity:
    """
    What makes a session's coinbase unique (ref §4.3): 4 bytes of
    extranonce1 and a 32-bit ``nonce_id``, both from one 64-bit counter.
    """

    extranonce1: bytes
    nonce_id: int

    @property
    def coinbase1_tail(self):
        """The bytes that end the session's coinbase1 (``nonce_id``, after the account's head)."""
        return coinbase1_tail(self.nonce_id)

    @property
    def subscription_id(self):
        """16 hex digits naming the subscription; derived, so nothing else to allocate."""
        return f"{self.nonce_id:08x}{self.extranonce1.hex()}"


class IdentityAllocator:
    """
    The seed's per-process connection counter (ref §4.3, §5.1), seeded at
    random: the gateway's and the mineragent's miner sessions take their
    ``Identity`` from one.

    Worker ``index`` of ``count`` worker processes (``worker_num``) puts its
    index in the top bits of every extranonce1, so that no two sessions of
    one gateway's workers ever share an extranonce1 (the seed's random
    counters only made it unlikely); one process keeps all 32 bits.
    """

    def __init__(self, seed=None, index=0, count=1):
        self._counter = secrets.randbits(64) if seed is None else seed & _MASK64
        free = 32 - (count - 1).bit_length()
        self._prefix = index << free
        self._low = (1 << free) - 1

    def allocate(self):
        self._counter = (self._counter + 1) & _MASK64
        value = self._counter
        extranonce1 = self._prefix | (value & self._low)
        return Identity(extranonce1=extranonce1.to_bytes(4, "big"), nonce_id=value >> 32)


@attrs.frozen
class StratumSettings:
    """The Stratum server's knobs, from the role's config (ref §10)."""

    vardiff: VarDiffSettings
    #: longest accepted line, newline included (config ``svr.max_pkg_size``)
    max_pkg_size: int = 10240
    #: seconds without a received line before a session is closed
    client_max_idle_time: float = 300
    #: the pool's side of BIP310 version rolling
    version_mask: int = POOL_VERSION_MASK
    #: authorized accounts one connection may submit for (proxies multiplex)
    max_accounts: int = 64


class IPoolContext(Interface):
    """
    What a Stratum server session needs from the role running it.

    Every method is called from the reactor thread and must not block; the
    event methods must not raise (an exception is logged and answered with
    error 20, but the event is lost).
    """

    role = Attribute("The role name for log events, e.g. 'gateway'.")
    settings = Attribute("The StratumSettings in force.")
    jobs = Attribute(
        "The JobBook of this role: current job, lookup by id, stale ids, duplicate shares."
    )

    def allocate_identity():
        """A fresh ``Identity`` for a new connection, unique within the pool."""

    def is_banned(host):
        """True if connections from IP address ``host`` must be refused."""

    def coinbase1_head(prepared, user):
        """
        The head of the real coinbase1 (bytes) of every session of account
        ``user`` on a ``PreparedJob``: the job's coinbase1, the scriptSig
        length and the scriptSig up to the session's ``nonce_id``, in the
        role's layout (``viabtc.stratum.coinbase``).  A session's coinbase1
        is this followed by its ``Identity.coinbase1_tail``.  Called once
        per account and job by a broadcast, so it may be cached.
        """

    def worker_authorized(session, user, worker):
        """A session authorized an account (the seed's ``connected`` event)."""

    def session_closed(session):
        """A session ended; ``session.accounts`` lists who it had authorized."""

    def share_accepted(session, user, worker, prepared, result):
        """A valid share (``ShareResult``), for statistics."""

    def share_rejected(session, user, worker, code):
        """A rejected share (``Reject`` code); user and worker may be empty."""

    def block_found(session, user, worker, prepared, result):
        """
        A share that meets the block target (or an aux target).  Called
        before the miner's reply is written: send it on at once.
        """
