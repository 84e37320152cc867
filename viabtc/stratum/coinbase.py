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

from viabtc.bitcoin.coinbase import (
    agent_script_sig_prefix,
    coinbase_tag,
    miner_script_sig_prefix,
    real_coinbase1,
    tag_budget,
)


def _tag(prepared, user, agent):
    job = prepared.job
    budget = tag_budget(prepared.height, prepared.coinbaseaux, agent)
    return coinbase_tag(job.pool_name, job.coinbase_message, user if job.coinbase_account else None, budget)


def miner_coinbase1(prepared, user, worker_id, nonce_id):
    """
    The gateway layout: unique id ``(worker_id << 16) + job number`` (kept to
    32 bits, as the seed's u32 does), then ``nonce_id``.  ``user`` appears in
    the tag when the job asks for "Mined by" (``coinbase_account``).
    """
    unique_id = ((worker_id << 16) + prepared.number) & 0xFFFFFFFF
    prefix = miner_script_sig_prefix(
        prepared.height, _tag(prepared, user, False), prepared.coinbaseaux, unique_id, nonce_id
    )
    return real_coinbase1(prepared.coinbase1, prefix)


def agent_coinbase1(prepared, user, agent_id, nonce_id):
    """The mineragent layout: job number, ``agent_id``, ``nonce_id``."""
    prefix = agent_script_sig_prefix(
        prepared.height, _tag(prepared, user, True), prepared.coinbaseaux, prepared.number, agent_id, nonce_id
    )
    return real_coinbase1(prepared.coinbase1, prefix)
