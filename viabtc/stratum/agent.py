# -*- test-case-name: tests.stratum.test_agent -*-
"""
The ``agent.*`` protocol between a mineragent and a gateway (ref §4.7, §5),
as pure values and codecs shared by both ends.

A mineragent carries many miners over one Stratum connection.  It does not
split a gateway-given extranonce: the gateway sends it the jobmaster's job
raw (the cmd-1 JSON and a newline, no ``id``), the agent builds each miner's
coinbase itself in the agent layout (``0x12`` ‖ u16 job id ‖ u32 agent id ‖
u32 nonce id, then extranonce1 and extranonce2: ``viabtc.stratum.coinbase``)
and tells the gateway each miner's ``(miner_id, nonce_id, extranonce1,
difficulty)`` with ``agent.sync``, so that the gateway can rebuild the same
coinbase to check each ``agent.submit``.

Version 1 is the seed's, byte for byte: ``agent.subscribe [1, agent_id]``
answered ``true``; ``agent.sync`` answered ``true``; ``agent.submit``,
``agent.event`` and ``agent.status`` never answered.  Version 2 is ours and
is negotiated, so a v1 peer never sees it: the agent offers it as a third
``agent.subscribe`` parameter (a C gateway reads only the first two), and a
gateway that speaks it answers ``{"version": 2}`` instead of ``true``.  In
v2 each ``agent.submit`` carries a sequence number as a tenth parameter and
the gateway acknowledges shares in batches::

    {"id":null,"method":"agent.results","params":[[seq, code], ...]}

``code`` 0 is an accepted share, anything else the Stratum reject code the
miner is then told.  A share resent after a reconnect carries its old
sequence number; the gateway remembers recent numbers per agent
(``SeenShares``) and answers a repeat with the first verdict without
counting it again.  An agent rejects junk itself and never sends it up;
in v2 it reports how many of each miner's shares it rejected, per code,
once a second (``agent.rejects [[user, worker, code, count], ...]``, never
answered), so the pool's per-worker reject statistics are those of the
same miners connected directly.
"""

import json
from collections import OrderedDict
from typing import NamedTuple

import attrs

from viabtc.stratum.account import parse_account
from viabtc.stratum.share import ShareTarget

AGENT_V1 = 1
AGENT_V2 = 2

#: The seed's limit on an ``agent.event`` name.
MAX_EVENT_LENGTH = 64

_UINT32_MAX = 0xFFFFFFFF
_SEPARATORS = (",", ":")


class AgentProtocolError(ValueError):
    """An ``agent.*`` message that cannot be used; the text says why."""


def _uint32(params, index, name):
    value = params[index] if len(params) > index else None
    if type(value) is not int or not 0 <= value <= _UINT32_MAX:
        raise AgentProtocolError(f"{name} must be an integer from 0 to 2^32-1")
    return value


def _hex(value, size, name):
    if type(value) is not str or len(value) != 2 * size:
        raise AgentProtocolError(f"{name} must be {2 * size} hex digits")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise AgentProtocolError(f"{name} must be {2 * size} hex digits") from None
    if len(raw) != size:
        raise AgentProtocolError(f"{name} must be {2 * size} hex digits")
    return raw


# -- agent.subscribe ----------------------------------------------------------


@attrs.frozen
class Subscribe:
    """``agent.subscribe``: the protocol version (always 1 on the wire), the agent id and the best version offered."""

    agent_id: int
    offered: int = AGENT_V1


def parse_subscribe(params):
    """
    ``[1, agent_id]`` or ``[1, agent_id, offered]``.  Like the seed, any
    first parameter but the integer 1 is refused.
    """
    version = params[0] if params else None
    if type(version) is not int or version != AGENT_V1:
        raise AgentProtocolError("agent.subscribe: version must be 1")
    agent_id = _uint32(params, 1, "agent.subscribe: agent_id")
    offered = AGENT_V1
    if len(params) > 2:
        offered = params[2]
        if type(offered) is not int or offered < AGENT_V1:
            raise AgentProtocolError("agent.subscribe: the offered version must be an integer >= 1")
    return Subscribe(agent_id, offered)


def subscribe_params(agent_id, offer_v2):
    """What our agent sends: the seed's two parameters, and the v2 offer if wanted."""
    return [AGENT_V1, agent_id, AGENT_V2] if offer_v2 else [AGENT_V1, agent_id]


def subscribe_result(version):
    """The gateway's reply: ``true`` for v1 (the seed's), ``{"version": 2}`` for v2."""
    return True if version == AGENT_V1 else {"version": version}


def negotiated_version(result):
    """The version a gateway's ``agent.subscribe`` result grants; ``AgentProtocolError`` if neither form."""
    if result is True:
        return AGENT_V1
    if type(result) is dict and result.get("version") == AGENT_V2:
        return AGENT_V2
    raise AgentProtocolError(f"agent.subscribe: unexpected result {str(result)[:80]!r}")


# -- agent.sync ---------------------------------------------------------------


class Sync(NamedTuple):
    """``agent.sync``: one miner's coinbase identity and difficulty."""

    miner_id: int
    nonce_id: int
    extranonce1: bytes
    difficulty: float


def parse_sync(params):
    """``[miner_id, nonce_id, extranonce1 (8 hex), difficulty]``; difficulty a number > 0."""
    if len(params) < 4:
        raise AgentProtocolError("agent.sync: expected [miner_id, nonce_id, extranonce1, difficulty]")
    miner_id = _uint32(params, 0, "agent.sync: miner_id")
    nonce_id = _uint32(params, 1, "agent.sync: nonce_id")
    extranonce1 = _hex(params[2], 4, "agent.sync: extranonce1")
    difficulty = params[3]
    if type(difficulty) not in (int, float) or not 0 < difficulty < float("inf"):
        raise AgentProtocolError("agent.sync: difficulty must be a number > 0")
    return Sync(miner_id, nonce_id, extranonce1, difficulty)


def sync_params(miner_id, nonce_id, extranonce1, difficulty):
    """
    The seed's parameters.  The seed's difficulties are integers (a C
    gateway refuses anything else); a fractional one (a regtest pool) is
    sent as a float, which our gateway accepts.
    """
    if difficulty == int(difficulty):
        difficulty = int(difficulty)
    return [miner_id, nonce_id, extranonce1.hex(), difficulty]


# -- agent.submit -------------------------------------------------------------


class Submit(NamedTuple):
    """``agent.submit``: a share one miner found, already checked by its agent."""

    miner_id: int
    account: str
    job_id: str
    extranonce2: bytes
    ntime: int
    nonce: int
    #: the mask the agent negotiated with its miner, and the miner's own request
    mask_negotiated: int
    mask_miner: int
    version_bits: int
    #: v2 only: the agent's sequence number for the acknowledgement
    seq: int | None = None


def parse_submit(params):
    """
    ``[miner_id, account, job_id, extranonce2, ntime, nonce,
    mask_negotiated, mask_miner, version_bits]`` and, in v2, ``seq``.
    """
    if not 9 <= len(params) <= 10:
        raise AgentProtocolError("agent.submit: expected 9 params (10 with a sequence number)")
    miner_id = _uint32(params, 0, "agent.submit: miner_id")
    account, job_id = params[1], params[2]
    if type(account) is not str or type(job_id) is not str:
        raise AgentProtocolError("agent.submit: account and job_id must be strings")
    extranonce2 = _hex(params[3], 8, "agent.submit: extranonce2")
    ntime = int.from_bytes(_hex(params[4], 4, "agent.submit: ntime"), "big")
    nonce = int.from_bytes(_hex(params[5], 4, "agent.submit: nonce"), "big")
    masks = [_uint32(params, i, "agent.submit: version masks and bits") for i in (6, 7, 8)]
    seq = _uint32(params, 9, "agent.submit: seq") if len(params) == 10 else None
    return Submit(miner_id, account, job_id, extranonce2, ntime, nonce, *masks, seq)


def submit_params(miner_id, account, job_id, extranonce2, ntime, nonce, mask_negotiated, mask_miner,
                  version_bits, seq=None):
    """The parameters of an ``agent.submit`` (bytes and integers in, the seed's hex out)."""
    params = [miner_id, account, job_id, extranonce2.hex(), f"{ntime:08x}", f"{nonce:08x}",
              mask_negotiated, mask_miner, version_bits]
    if seq is not None:
        params.append(seq)
    return params


def share_fields(header, coinbase, coinbase2_length):
    """
    ``(extranonce2, ntime, nonce, version)`` of a checked share, read back
    from the header and coinbase the share check built: what an agent sends
    upstream.  The extranonce2 is the 8 bytes before ``coinbase2``.
    """
    end = len(coinbase) - coinbase2_length
    return (
        coinbase[end - 8:end],
        int.from_bytes(header[68:72], "little"),
        int.from_bytes(header[76:80], "little"),
        int.from_bytes(header[0:4], "little"),
    )


# -- agent.event, agent.status ------------------------------------------------


def parse_event(params):
    """``[user, worker, event]``: names as the account rules allow them, an event of at most 64 characters."""
    if len(params) < 3 or not all(type(p) is str for p in params[:3]):
        raise AgentProtocolError("agent.event: expected [user, worker, event] strings")
    user, worker, event = params[:3]
    try:
        parsed = parse_account(f"{user}.{worker}")
    except ValueError as e:
        raise AgentProtocolError(f"agent.event: {e}") from None
    if parsed != (user.lower(), worker.lower()):
        raise AgentProtocolError("agent.event: user and worker must be 1..64 letters or digits")
    if not event or len(event) > MAX_EVENT_LENGTH:
        raise AgentProtocolError("agent.event: event must be 1..64 characters")
    return parsed[0], parsed[1], event


def parse_status(params):
    """``[minute_timestamp, connections]``, both non-negative integers."""
    if len(params) < 2:
        raise AgentProtocolError("agent.status: expected [timestamp, connections]")
    return (_uint32(params, 0, "agent.status: timestamp"), _uint32(params, 1, "agent.status: connections"))


# -- agent.rejects (v2) -------------------------------------------------------

#: Most rejects one ``agent.rejects`` entry may report.
MAX_REJECT_COUNT = 1_000_000


def parse_rejects(params):
    """
    ``[[user, worker, code, count], ...]``: shares an agent rejected itself
    (they never travel upstream), reported so that the gateway counts them
    for the miner exactly as it counts a direct miner's.
    """
    out = []
    for item in params:
        if type(item) is not list or len(item) != 4:
            raise AgentProtocolError("agent.rejects: expected [[user, worker, code, count], ...]")
        user, worker, code, count = item
        if type(user) is not str or type(worker) is not str:
            raise AgentProtocolError("agent.rejects: user and worker must be strings")
        try:
            parsed = parse_account(f"{user}.{worker}")
        except ValueError as e:
            raise AgentProtocolError(f"agent.rejects: {e}") from None
        if parsed != (user, worker):
            raise AgentProtocolError("agent.rejects: user and worker must be lower-case letters or digits")
        if type(code) is not int or not 20 <= code < 100:
            raise AgentProtocolError("agent.rejects: code must be a Stratum error code")
        if type(count) is not int or not 0 < count <= MAX_REJECT_COUNT:
            raise AgentProtocolError(f"agent.rejects: count must be 1..{MAX_REJECT_COUNT}")
        out.append((user, worker, code, count))
    return out


# -- agent.results (v2) -------------------------------------------------------


def results_line(results):
    """The v2 batched acknowledgement of ``[(seq, code), ...]`` (code 0: accepted)."""
    return (b'{"id":null,"method":"agent.results","params":'
            + json.dumps(results, separators=_SEPARATORS).encode() + b"}\n")


def parse_results(params):
    """``[(seq, code), ...]`` from ``agent.results`` params; ``AgentProtocolError`` if malformed."""
    out = []
    for item in params:
        if (type(item) is not list or len(item) != 2 or type(item[0]) is not int or type(item[1]) is not int
                or not 0 <= item[0] <= _UINT32_MAX or not 0 <= item[1] < 1000):
            raise AgentProtocolError("agent.results: expected [[seq, code], ...]")
        out.append((item[0], item[1]))
    return out


def request_line(msg_id, method, params):
    """One request line, compact JSON and a newline."""
    return json.dumps({"id": msg_id, "method": method, "params": params}, separators=_SEPARATORS).encode() + b"\n"


# -- the gateway's memory of agents' miners ------------------------------------


class AgentMiner:
    """
    What a gateway knows of one miner behind an agent: its coinbase
    identity and the two difficulties its shares may be credited at (the
    seed's ``difficulty`` and ``difficulty_last``).
    """

    __slots__ = ("nonce_id", "extranonce1", "current", "previous", "last_active", "share_valid", "share_error")

    def __init__(self, sync, now):
        self.nonce_id = sync.nonce_id
        self.extranonce1 = sync.extranonce1
        self.current = self.previous = ShareTarget.for_difficulty(sync.difficulty)
        self.last_active = now
        self.share_valid = 0
        self.share_error = 0

    def update(self, sync, now):
        """A later sync: the difficulty before it stays good for grace, as in the seed."""
        self.nonce_id = sync.nonce_id
        self.extranonce1 = sync.extranonce1
        self.previous = self.current
        if sync.difficulty != self.current.difficulty:
            self.current = ShareTarget.for_difficulty(sync.difficulty)
        self.last_active = now


class AgentMiners:
    """Miners of every agent, by ``(agent_id, miner_id)``; records idle too long are dropped (ref §4.7)."""

    def __init__(self):
        self._miners = {}

    def __len__(self):
        return len(self._miners)

    def sync(self, agent_id, sync, now):
        key = (agent_id, sync.miner_id)
        miner = self._miners.get(key)
        if miner is None:
            self._miners[key] = AgentMiner(sync, now)
        else:
            miner.update(sync, now)

    def get(self, agent_id, miner_id):
        return self._miners.get((agent_id, miner_id))

    def expire(self, now, max_idle):
        """Forget miners without a sync or submit for ``max_idle`` seconds; returns how many."""
        stale = [key for key, miner in self._miners.items() if now - miner.last_active > max_idle]
        for key in stale:
            del self._miners[key]
        return len(stale)


class SeenShares:
    """
    The v2 verdicts a gateway gave each agent's recent shares, by sequence
    number, so that a share resent after a reconnect is answered again but
    counted once.  At most ``size`` per agent are kept, the oldest dropped;
    an agent not heard of for ``prune``'s ``max_age`` is forgotten (each
    start of an agent without a configured ``agent_id`` is a new agent).
    """

    def __init__(self, size=1 << 16):
        self.size = size
        self._agents = {}
        self._used = {}

    def __len__(self):
        return len(self._agents)

    def verdict(self, agent_id, seq):
        """The code given to ``seq`` before, or ``None``."""
        seen = self._agents.get(agent_id)
        return None if seen is None else seen.get(seq)

    def remember(self, agent_id, seq, code, now=0.0):
        seen = self._agents.get(agent_id)
        if seen is None:
            seen = self._agents[agent_id] = OrderedDict()
        self._used[agent_id] = now
        seen[seq] = code
        if len(seen) > self.size:
            seen.popitem(last=False)

    def prune(self, now, max_age):
        """Forget agents whose last share is older than ``max_age`` seconds; returns how many."""
        old = [agent_id for agent_id, used in self._used.items() if now - used > max_age]
        for agent_id in old:
            del self._agents[agent_id], self._used[agent_id]
        return len(old)
