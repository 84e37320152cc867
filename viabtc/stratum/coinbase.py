# -*- test-case-name: tests.stratum.test_coinbase -*-
"""
Each session's own coinbase1, in the two layouts the seed uses (ref §4.4).

Every session must hash a different coinbase, or two miners would do the same
work.  A gateway session's scriptSig carries ``(worker_id << 16) + job id``
and the session's ``nonce_id``; a mineragent's miner session carries the job
id, the agent id and the ``nonce_id`` (the gateway rebuilds the same bytes to
check ``agent.submit``).  The share check treats both alike: it only sees the
bytes before extranonce2.
"""

import struct

from viabtc.bitcoin.coinbase import (
    agent_script_sig_prefix,
    coinbase_tag,
    miner_script_sig_prefix,
    real_coinbase1,
    tag_budget,
)

_U32 = struct.Struct("<I")


def _tag(prepared, user, agent):
    job = prepared.job
    budget = tag_budget(prepared.height, prepared.coinbaseaux, agent)
    return coinbase_tag(job.pool_name, job.coinbase_message, user if job.coinbase_account else None, budget)


def coinbase1_tail(nonce_id):
    """
    The bytes that end every session's coinbase1 in both layouts: its
    ``nonce_id``, 4 bytes little-endian.  Everything before them is shared
    by the sessions of one account on one job (the "head").
    """
    try:
        return _U32.pack(nonce_id)
    except struct.error as e:
        raise ValueError(f"nonce_id must be 32-bit unsigned: {e}") from None


def _miner_head(prepared, user, unique_id):
    prefix = miner_script_sig_prefix(prepared.height, _tag(prepared, user, False), prepared.coinbaseaux, unique_id, 0)
    return real_coinbase1(prepared.coinbase1, prefix)[:-4]


def _agent_head(prepared, user, agent_id):
    prefix = agent_script_sig_prefix(
        prepared.height, _tag(prepared, user, True), prepared.coinbaseaux, prepared.number, agent_id, 0
    )
    return real_coinbase1(prepared.coinbase1, prefix)[:-4]


# The head of a real coinbase1 (everything before the trailing
# ``nonce_id``) is built once per job and key (the account, when the tag
# names it, and the worker or agent id) and kept in
# ``prepared.coinbase_heads``.  A broadcast to 10,000 sessions then costs
# a dict lookup per account and a join per session instead of a tag, a
# scriptSig and a coinbase1 per session (docs/benchmarks.md).


def miner_coinbase1_head(prepared, user, worker_id):
    """
    The gateway layout's head: unique id ``(worker_id << 16) + job number``
    (kept to 32 bits, as the seed's u32 does), the ``nonce_id`` follows.
    ``user`` appears in the tag when the job asks for "Mined by"
    (``coinbase_account``).
    """
    unique_id = ((worker_id << 16) + prepared.number) & 0xFFFFFFFF
    key = ("miner", user if prepared.job.coinbase_account else None, unique_id)
    heads = prepared.coinbase_heads
    head = heads.get(key)
    if head is None:
        head = heads[key] = _miner_head(prepared, user, unique_id)
    return head


def agent_coinbase1_head(prepared, user, agent_id):
    """The mineragent layout's head: job number and ``agent_id``; the ``nonce_id`` follows."""
    key = ("agent", user if prepared.job.coinbase_account else None, agent_id)
    heads = prepared.coinbase_heads
    head = heads.get(key)
    if head is None:
        head = heads[key] = _agent_head(prepared, user, agent_id)
    return head
