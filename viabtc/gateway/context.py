# -*- test-case-name: tests.gateway.test_context -*-
"""
The gateway's side of the Stratum seam (``IPoolContext``, docs/stratum.md).

The Stratum server knows miners; this object knows the rest of the pool:
which jobs are live (``JobBook``), who is banned, how a session's coinbase
is made unique across every gateway of the pool, where block candidates go
(the jobmaster, before the miner's reply) and where statistics go.

Uniqueness (ref §4.3, §4.4): each connection takes the next value of a
64-bit counter seeded at random; its low 32 bits are the extranonce1, its
high 32 bits the ``nonce_id``; the scriptSig carries ``(worker_id << 16) +
job id`` and the ``nonce_id``.  Two gateways with different ``worker_id``
therefore never build the same coinbase, and within one gateway two live
connections never share an extranonce1.
"""

from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.rpc.bans import normalise_ip
from viabtc.gateway.blocks import found_block_body
from viabtc.stratum.coinbase import miner_coinbase1_head
from viabtc.stratum.context import IdentityAllocator, IPoolContext
from viabtc.stratum.job import PreparedJob

ROLE = "gateway"


@implementer(IPoolContext)
class GatewayContext:
    """
    One gateway's pool context.  ``stats`` is a ``GatewayStats``, ``courier``
    a ``BlockCourier``, ``bans`` a ``BanList``, ``jobs`` a ``JobBook``;
    ``server`` (the ``StratumServerFactory`` using this context) is set
    once the factory exists.
    """

    role = ROLE
    _log = Logger()

    def __init__(self, settings, worker_id, jobs, bans, stats, courier, clock, identities=None):
        self.settings = settings
        self.worker_id = worker_id
        self.jobs = jobs
        self.bans = bans
        self.stats = stats
        self.courier = courier
        self.server = None
        self._clock = clock
        self.identities = IdentityAllocator() if identities is None else identities
        self._stopping = False

    # -- IPoolContext: sessions -------------------------------------------------

    def allocate_identity(self):
        return self.identities.allocate()

    def is_banned(self, host):
        return self.bans.is_banned(host)

    def coinbase1_head(self, prepared, user):
        return miner_coinbase1_head(prepared, user, self.worker_id)

    # -- IPoolContext: events ---------------------------------------------------

    def worker_authorized(self, session, user, worker):
        self.stats.event(user, worker, session.host, "connected", self._clock.seconds())

    def agent_event(self, session, user, worker, event):
        """A miner behind the agent of ``session`` connected or left (``agent.event``)."""
        self.stats.event(user, worker, session.host, event, self._clock.seconds())

    def session_closed(self, session):
        if self._stopping:
            return
        self._disconnected(session)

    def _disconnected(self, session):
        now = self._clock.seconds()
        for user, worker in set(session.accounts.values()):
            self.stats.event(user, worker, session.host, "disconnected", now)

    def share_accepted(self, session, user, worker, prepared, result):
        self.stats.share(user, worker, result.difficulty, result.difficulty / prepared.block_difficulty,
                         self._clock.seconds())

    def share_rejected(self, session, user, worker, code):
        self.stats.reject(user or session.user, worker or session.worker, code, self._clock.seconds())

    def block_found(self, session, user, worker, prepared, result):
        # The jobmaster first: everything else can wait, a block cannot.
        if result.is_block:
            self.courier.send(found_block_body(prepared, result))
        for aux in result.aux:
            self.courier.send(found_block_body(prepared, result, "aux", aux.aux_name))
        now = self._clock.seconds()
        if result.is_block:
            self.stats.block(user, worker, prepared.job.main_name, hash_to_display_hex(result.hash), now)
        for aux in result.aux:
            self.stats.block(user, worker, aux.aux_name, aux.aux_hash, now, aux=True)

    # -- from the jobmaster -----------------------------------------------------

    def add_job(self, job):
        """
        Take a ``Job`` from the jobmaster: prepare it, make it current (a
        clean job retires the others) and send it to every authorized miner;
        returns the ``PreparedJob``.  A job that cannot be mined raises
        ``JobError`` and the current one stays.
        """
        prepared = PreparedJob.prepare(job, self._clock.seconds())
        self.jobs.add(prepared)
        if self.server is not None:
            self.server.broadcast_job(prepared)
        return prepared

    def apply_bans(self, update):
        """Apply a ``BanUpdate``; sessions from newly banned addresses are closed. Returns how many."""
        banned = self.bans.apply(update)
        if not banned or self.server is None:
            return 0
        closing = [proto for proto in self.server.sessions if normalise_ip(proto.session.host) in banned]
        for proto in closing:
            self._log.info("closing banned peer {peer}", peer=proto.session.peer, role=self.role)
            self.server.count("ip_banned")
            proto.close()
        return len(closing)

    # -- administration ---------------------------------------------------------

    def flush_workers(self):
        """Send ``connected`` again for every authorized account (CLI ``flushworker``); returns how many."""
        if self.server is None:
            return 0
        now = self._clock.seconds()
        sent = 0
        for proto in list(self.server.sessions):
            session = proto.session
            for user, worker in set(session.accounts.values()):
                self.stats.event(user, worker, session.host, "connected", now)
                sent += 1
        return sent

    def close_sessions(self):
        """
        Graceful stop: every session's ``disconnected`` events now (the
        connections' own ends come too late, after statistics were flushed),
        then close them.
        """
        self._stopping = True
        if self.server is None:
            return 0
        sessions = list(self.server.sessions)
        for proto in sessions:
            if proto.session.accounts:
                self._disconnected(proto.session)
            proto.close()
        return len(sessions)
