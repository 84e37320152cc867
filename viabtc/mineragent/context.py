# -*- test-case-name: tests.mineragent.test_context -*-
"""
The mineragent's side of the Stratum seam (``IPoolContext``): the same
server protocol, checks and vardiff as the gateway's, with the agent's
answers to where jobs come from and where shares go.

* Jobs come from the gateway raw (``job_received``), are checked and
  prepared exactly as the gateway does, and go to every authorized miner.
* Each miner's coinbase is the seed's agent layout (ref §4.4, §5.2): the
  job, this agent's id and the miner's ``nonce_id``.
* Local checks (stale and unknown jobs, duplicates, low difficulty, ntime,
  version bits) answer the miner and never go upstream; a share accepted
  here goes up as ``agent.submit`` to be checked again and credited to the
  miner's ``user.worker`` by the gateway.  A block candidate is one too
  (``check_share`` accepts a share meeting the block target below the
  share difficulty); like every share it is written upstream at once, in
  the order found (nothing is held back: the transport sends whatever one
  reactor turn wrote in one segment).
"""

import itertools
import random

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.stratum import agent
from viabtc.stratum.coinbase import agent_coinbase1_head
from viabtc.stratum.context import IdentityAllocator, IPoolContext
from viabtc.stratum.job import Job, JobError, PreparedJob
from viabtc.stratum.jobs import JobBook
from viabtc.stratum.session import State

ROLE = "mineragent"

#: Seconds after which a miner without shares is synced again before its
#: next share: well inside the seed's default ``client_max_idle_time`` (300).
SYNC_REFRESH = 120.0


class MinerLink:
    """One miner as the gateway knows it: its protocol, its ``miner_id`` and the difficulties last synced."""

    __slots__ = ("proto", "miner_id", "synced", "touched")

    def __init__(self, proto, miner_id):
        self.proto = proto
        self.miner_id = miner_id
        #: (current, previous) difficulty as the gateway has them on this link, or None
        self.synced = None
        #: when the gateway last heard of this miner (a sync or a share)
        self.touched = 0.0

    @property
    def authorized(self):
        return self.proto.session.state is State.AUTHORIZED


@implementer(IPoolContext)
class MinerAgentContext:
    """
    One agent's pool context.  ``upstream`` (an ``UpstreamLink``) and
    ``server`` (the miners' factory) are set once they exist.
    """

    role = ROLE
    _log = Logger()

    def __init__(self, settings, agent_id, clock, identities=None):
        self.settings = settings
        self.agent_id = agent_id
        self.jobs = JobBook()
        self.upstream = None
        self.server = None
        #: session -> MinerLink of every miner connected
        self.links = {}
        #: when the last job came from the gateway (None: none yet)
        self.last_job_time = None
        #: shares accepted here, and ``reject_<code>`` counts of those rejected here (for /metrics)
        self.accepted = 0
        self.counts = {}
        self._clock = clock
        self._identities = IdentityAllocator() if identities is None else identities
        self._miner_ids = itertools.count(random.getrandbits(31) + 1)

    # -- IPoolContext: sessions -------------------------------------------------

    def allocate_identity(self):
        return self._identities.allocate()

    def is_banned(self, host):
        return False

    def coinbase1_head(self, prepared, user):
        return agent_coinbase1_head(prepared, user, self.agent_id)

    def session_opened(self, proto):
        """A miner connected (called by the miners' protocol)."""
        self.links[proto.session] = MinerLink(proto, next(self._miner_ids) & 0xFFFFFFFF)

    def session_gone(self, session):
        self.links.pop(session, None)

    # -- IPoolContext: events ---------------------------------------------------

    def worker_authorized(self, session, user, worker):
        self.upstream.event(user, worker, "connected")

    def session_closed(self, session):
        for user, worker in set(session.accounts.values()):
            self.upstream.event(user, worker, "disconnected")

    def share_accepted(self, session, user, worker, prepared, result):
        self.accepted += 1
        link = self.links[session]
        self.sync(link)
        extranonce2, ntime, nonce, version = agent.share_fields(result.header, result.coinbase,
                                                                len(prepared.coinbase2))
        mask = session.version_mask
        params = agent.submit_params(link.miner_id, f"{user}.{worker}", prepared.job_id, extranonce2, ntime, nonce,
                                     mask, mask, version & mask)
        self.upstream.share(params, link, link.proto.take_held())

    def share_rejected(self, session, user, worker, code):
        key = f"reject_{int(code)}"
        self.counts[key] = self.counts.get(key, 0) + 1
        self.upstream.reject(user or session.user, worker or session.worker, code)

    def block_found(self, session, user, worker, prepared, result):
        # The share goes up in share_accepted, called right after this.
        self._log.info("block candidate {hash} at height {height} by {user}.{worker}; sending it upstream",
                       role=ROLE, peer=session.peer, user=user, worker=worker,
                       hash=hash_to_display_hex(result.hash), height=prepared.height)

    # -- agent.sync ---------------------------------------------------------------

    def sync(self, link):
        """
        Tell the gateway ``link``'s difficulties if it does not have them, or
        if it has not heard of the miner for ``SYNC_REFRESH`` seconds (a
        gateway forgets miners idle for its ``client_max_idle_time``, and a
        share for a miner it forgot costs the whole agent link).  No-op while
        the link is down.
        """
        session = link.proto.session
        state = (session.current.difficulty, session.previous.difficulty)
        now = self._clock.seconds()
        if self.upstream.proto is None:
            return
        if link.synced == state and now - link.touched < SYNC_REFRESH:
            link.touched = now
            return
        link.touched = now
        if link.synced == state:
            # A refresh: the gateway keeps the pair as it is after these two lines.
            link.synced = None
        identity = session.identity
        lines = []
        # The gateway moves its difficulty to the previous one at each sync:
        # two lines leave it with exactly the session's pair.
        if link.synced is None or link.synced[0] != state[1]:
            lines.append(agent.sync_params(link.miner_id, identity.nonce_id, identity.extranonce1, state[1]))
        if state[0] != state[1] or not lines:
            lines.append(agent.sync_params(link.miner_id, identity.nonce_id, identity.extranonce1, state[0]))
        for params in lines:
            self.upstream.send(agent.request_line(int(self._clock.seconds() * 1000), "agent.sync", params))
        link.synced = state

    def resync(self, links):
        """A new gateway link: what it knows of ``links`` is nothing; sync them all."""
        for link in links:
            link.synced = None
            self.sync(link)

    # -- from the gateway ---------------------------------------------------------

    def job_received(self, message):
        """A job line from the gateway: checked, made current and sent to every authorized miner."""
        try:
            job = Job.from_json(message)
            current = self.jobs.current
            now = self._clock.seconds()
            if current is not None and attrs.evolve(job, clean_jobs=current.job.clean_jobs) == current.job:
                # A reconnect's copy of the job the miners have: keep it, and its shares.
                self.last_job_time = now
                return
            prepared = PreparedJob.prepare(job, now)
            # A job whose coinbase cannot hold the agent layout in 100 bytes
            # would fail at every miner's notify: refuse it here, once.
            try:
                agent_coinbase1_head(prepared, "", self.agent_id)
            except ValueError as e:
                raise JobError(f"coinbase: {e}") from None
            self.jobs.add(prepared)
        except JobError as e:
            self._log.error("job from the gateway refused: {error}", error=str(e), role=ROLE)
            return
        self.last_job_time = now
        if self.server is not None:
            self.server.broadcast_job(prepared)
        self._log.info("job {job_id} at height {height} (clean {clean}) sent to {miners} miners", role=ROLE,
                       job_id=prepared.job_id, height=prepared.height, clean=prepared.clean,
                       miners=len(self.links))

    def retire_jobs(self):
        """
        The last job is no longer known to be valid: every miner is sent
        ``client.reconnect`` and closed, and new ones are refused until the
        gateway sends a job.  Returns how many miners were sent away.
        """
        self.jobs = JobBook()
        self.last_job_time = None
        if self.server is None:
            return 0
        protos = [link.proto for link in self.links.values()]
        for proto in protos:
            proto.send_away()
        return len(protos)
