# -*- test-case-name: tests.stratum.test_agent_server -*-
"""
The server side of the ``agent.*`` protocol (ref §4.7): the gateway's
Stratum protocol with the agent methods added, on the same port.

An agent session is a Stratum connection whose first request is
``agent.subscribe``.  It then receives every job raw (the jobmaster's JSON
and a newline) and sends ``agent.sync`` for each of its miners and
``agent.submit`` for each of their shares.  Each share is checked exactly as
a directly connected miner's (``check_share``, the duplicate filter, the
block target even below the share difficulty), against the miner's coinbase
rebuilt in the agent layout, and credited to the miner's ``user.worker``
through the same ``IPoolContext`` events.  One agent carries thousands of
miners, so its connection is exempt from the per-connection request rate
and from the invalid-share ratio that would drop a single miner.

Answers keep the seed's forms (``viabtc.stratum.agent``): v1 submits are
never answered; v2 submits are acknowledged once per read, in one
``agent.results`` line, and v2's ``agent.rejects`` (the shares the agent
refused itself) are counted for each miner as its direct rejects would be.  What the seed closed the connection for (a
malformed agent message, an unknown miner, an account that does not parse)
is closed here too, after an error line naming the problem.
"""

import math

import attrs
from twisted.logger import Logger

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.stratum import agent
from viabtc.stratum.account import parse_account
from viabtc.stratum.coinbase import agent_coinbase1_head, coinbase1_tail
from viabtc.stratum.protocol import StratumServerFactory, StratumServerProtocol, _error, _ok, _render_id
from viabtc.stratum.session import Input, State
from viabtc.stratum.share import Reject, check_share

_ACCEPTED = 0

#: Seconds the v2 verdicts of an agent that stopped sending shares are kept:
#: long enough for any reconnect, then its memory is freed.
SEEN_SHARES_AGE = 3600.0


class AgentServerProtocol(StratumServerProtocol):
    """``StratumServerProtocol`` that also serves ``agent.*``; needs an ``AgentServerFactory``."""

    _log = Logger()

    #: set by agent.subscribe: the agent's id and the version in force
    agent_id = None
    agent_version = 0
    #: miners the agent last reported (agent.status)
    agent_connections = 0
    _last_status = None
    _results = None

    def dataReceived(self, data):
        super().dataReceived(data)
        self._send_results()

    def close(self):
        # The verdicts of what was read before a close still go out first.
        self._send_results()
        super().close()

    def _send_results(self):
        """The v2 verdicts gathered during one read, in one ``agent.results`` line."""
        results = self._results
        if results:
            self._results = []
            self.write(agent.results_line(results))

    # -- agent.* ----------------------------------------------------------------

    def _agent_error(self, msg_id, why, out, close=True):
        self.factory.count("request_invalid")
        self._log.info("agent {peer}: {why}", role=self.context.role, peer=self.session.peer, why=why)
        out.append(_error(msg_id, Reject.OTHER, why))
        if close:
            self.session.transition(Input.CLOSE)

    def _not_agent(self, msg_id, out):
        out.append(_error(msg_id, Reject.NOT_SUBSCRIBED, "Not an agent session"))

    def _agent_params(self, msg_id, params, out, parse):
        """
        ``parse(params)`` for an agent session; None once the error is
        answered (not an agent session, or params the seed refuses).
        ``agent.submit`` does the same inline: no call more per share.
        """
        if self.agent_id is None:
            self._not_agent(msg_id, out)
            return None
        try:
            return parse(params)
        except agent.AgentProtocolError as e:
            self._agent_error(msg_id, str(e), out)
            return None

    def _agent_subscribe(self, msg_id, params, out, now):
        session = self.session
        if self.agent_id is not None or session.state is not State.CONNECTED:
            self._agent_error(msg_id, "agent.subscribe must be the first request", out)
            return
        try:
            subscribe = agent.parse_subscribe(params)
        except agent.AgentProtocolError as e:
            self._agent_error(msg_id, str(e), out)
            return
        factory = self.factory
        version = agent.AGENT_V2 if subscribe.offered >= agent.AGENT_V2 and factory.agent_v2 else agent.AGENT_V1
        self.agent_id = subscribe.agent_id
        self.agent_version = version
        # The seed names the session by the version asked for (always 1).
        session.user_agent = "agent_1"
        self.limits = factory.agent_limits
        # One connection carries every share and verdict of a farm: no Nagle delays.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        self._tokens = math.inf
        self._results = []
        factory.agent_subscribed(self)
        out.append(_ok(msg_id, agent.subscribe_result(version)))
        prepared = self.context.jobs.current
        if prepared is not None:
            out.append(factory.agent_job_line(prepared))
        self._log.info("agent {agent_id} (protocol v{version}) subscribed from {peer}", role=self.context.role,
                       peer=session.peer, agent_id=self.agent_id, version=version)

    def _agent_sync(self, msg_id, params, out, now):
        sync = self._agent_params(msg_id, params, out, agent.parse_sync)
        if sync is None:
            return
        self.factory.agent_miners.sync(self.agent_id, sync, now)
        out.append(_render_id(msg_id) + b',"error":null,"result":true}\n')

    def _agent_event(self, msg_id, params, out, now):
        parsed = self._agent_params(msg_id, params, out, agent.parse_event)
        if parsed is None:
            return
        user, worker, event = parsed
        self.factory.agent_event(self, user, worker, event)

    def _agent_status(self, msg_id, params, out, now):
        parsed = self._agent_params(msg_id, params, out, agent.parse_status)
        if parsed is None:
            return
        timestamp, connections = parsed
        if timestamp != self._last_status:
            self._last_status = timestamp
            self.agent_connections = connections

    def _agent_rejects(self, msg_id, params, out, now):
        if self.agent_id is not None and self.agent_version < agent.AGENT_V2:
            self._agent_error(msg_id, "agent.rejects needs protocol v2", out)
            return
        rejects = self._agent_params(msg_id, params, out, agent.parse_rejects)
        if rejects is None:
            return
        session = self.session
        for user, worker, code, count in rejects:
            try:
                reject = Reject(code)
            except ValueError:
                reject = Reject.OTHER
            session.share_error += count
            for _ in range(count):
                self.context.share_rejected(session, user, worker, reject)

    def _agent_submit(self, msg_id, params, out, now):
        if self.agent_id is None:
            self._not_agent(msg_id, out)
            return
        try:
            submit = agent.parse_submit(params)
        except agent.AgentProtocolError as e:
            self._agent_error(msg_id, str(e), out)
            return
        factory = self.factory
        seq = submit.seq
        if seq is not None:
            if self.agent_version < agent.AGENT_V2:
                self._agent_error(msg_id, "agent.submit: a sequence number needs protocol v2", out)
                return
            code = factory.seen_shares.verdict(self.agent_id, seq)
            if code is not None:
                # Resent after a reconnect: the first verdict again, counted once.
                self._results.append([seq, code])
                return
        miner = factory.agent_miners.get(self.agent_id, submit.miner_id)
        if miner is None:
            factory.count("agent_not_found")
            self._agent_error(msg_id, f"agent.submit: miner {submit.miner_id} was never synced", out)
            return
        try:
            user, worker = parse_account(submit.account)
        except ValueError as e:
            self._agent_error(msg_id, f"agent.submit: {e}", out)
            return
        miner.last_active = now
        code = self._check(submit, miner, user, worker, now)
        if code:
            miner.share_error += 1
            self.session.share_error += 1
            self.context.share_rejected(self.session, user, worker, Reject(code))
        if seq is not None:
            factory.seen_shares.remember(self.agent_id, seq, code, now)
            self._results.append([seq, code])

    def _check(self, submit, miner, user, worker, now):
        """Check one agent share; returns 0 if accepted (and credited), else its reject code."""
        if submit.version_bits & ~submit.mask_miner:
            return Reject.INVALID_VERSION_BITS
        mask = submit.mask_negotiated & self.settings.version_mask
        jobs = self.context.jobs
        prepared = jobs.lookup(submit.job_id)
        if prepared is None:
            return Reject.STALE_JOB if jobs.is_stale(submit.job_id) else Reject.JOB_NOT_FOUND
        prefix = (agent_coinbase1_head(prepared, user, self.agent_id) + coinbase1_tail(miner.nonce_id)
                  + miner.extranonce1)
        result = check_share(prepared, prefix, submit.extranonce2, submit.ntime, submit.nonce,
                             submit.version_bits & mask, mask, miner.current, miner.previous, now)
        if result.reject is not None:
            return result.reject
        if jobs.is_duplicate(prepared, result.hash):
            return Reject.DUPLICATE_SHARE
        session = self.session
        if result.is_block or result.aux:
            self._block(user, worker, prepared, result)
        miner.share_valid += 1
        session.share_valid += 1
        session.share_pow += result.difficulty
        self.context.share_accepted(session, user, worker, prepared, result)
        if result.is_block:
            self._log.info("agent {agent_id} miner {miner_id}: block candidate {hash}", role=self.context.role,
                           peer=session.peer, user=user, worker=worker, agent_id=self.agent_id,
                           miner_id=submit.miner_id, hash=hash_to_display_hex(result.hash))
        return _ACCEPTED

    METHODS = dict(
        StratumServerProtocol.METHODS,
        **{
            "agent.subscribe": _agent_subscribe,
            "agent.sync": _agent_sync,
            "agent.submit": _agent_submit,
            "agent.event": _agent_event,
            "agent.status": _agent_status,
            "agent.rejects": _agent_rejects,
        },
    )


class AgentServerFactory(StratumServerFactory):
    """
    ``StratumServerFactory`` for a server that also takes agents: their
    miners (``agent_miners``), the v2 verdicts (``seen_shares``), the job
    sent to them raw, their events and their miners in the connection
    count.  ``agent_v2`` false makes the server speak only the seed's v1.
    """

    protocol = AgentServerProtocol
    _log = Logger()

    def __init__(self, context, clock, housekeeping_interval=None, limits=None, agent_v2=True):
        super().__init__(context, clock, housekeeping_interval, limits)
        self.agent_v2 = agent_v2
        self.agent_limits = attrs.evolve(self.limits, request_rate=math.inf, request_burst=math.inf)
        self.agent_miners = agent.AgentMiners()
        self.seen_shares = agent.SeenShares()
        self.agents = set()
        self._job_line = (None, b"")

    def agent_subscribed(self, proto):
        self.authorized_session(proto)
        self.agents.add(proto)

    def released(self, proto):
        super().released(proto)
        self.agents.discard(proto)

    def agent_event(self, proto, user, worker, event):
        """A miner behind ``proto`` connected or left: the same event as a direct miner's."""
        if event == "connected":
            self.count("new_authorized")
        self.context.agent_event(proto.session, user, worker, event)

    def agent_job_line(self, prepared):
        """The job as agents get it: the jobmaster's JSON and a newline, built once per job."""
        cached, line = self._job_line
        if cached is not prepared:
            line = prepared.job.to_json() + b"\n"
            self._job_line = (prepared, line)
        return line

    @property
    def miner_connections(self):
        """Miners connected directly and behind agents (the ``connections`` statistic)."""
        return len(self.sessions) - len(self.agents) + sum(p.agent_connections for p in self.agents)

    def broadcast_job(self, prepared):
        super().broadcast_job(prepared)
        if self.agents:
            line = self.agent_job_line(prepared)
            for proto in list(self.agents):
                try:
                    proto.write(line)
                except Exception:
                    self._log.failure("sending job {job_id} to agent failed", role=self.context.role,
                                      peer=proto.session.peer, job_id=prepared.job_id)
                    proto.close()

    def housekeeping(self):
        super().housekeeping()
        now = self.clock.seconds()
        self.seen_shares.prune(now, SEEN_SHARES_AGE)
        expired = self.agent_miners.expire(now, self.context.settings.client_max_idle_time)
        if expired:
            self._log.info("forgot {count} idle miners of agents", count=expired, role=self.context.role)
