# -*- test-case-name: tests.jobmaster.test_nextbits -*-
"""
The ``nbits`` of an empty-block job, from facts fetched before they are needed.

A height hint (cmd 4) says "block H exists" while our node still has H-1 as
its tip; the empty job is for block H+1, whose bits depend on block H (its
bits and time) and, at a retarget boundary, on the time of the block that
opened the period.  The seed reused the current job's bits (§12.7), which
is wrong at every boundary.  The hint path must stay fast (the point of
empty blocks is to start mining seconds earlier), so everything the
computation needs from the node is fetched when each template arrives
(``ChainFacts``) and the hint path is a pure function of those facts, the
hint and the clock.
"""

import attrs

from viabtc.bitcoin.retarget import next_bits
from viabtc.bitcoin.target import target_to_bits


@attrs.frozen
class ChainFacts:
    """
    What the node said about the chain below the current template (whose
    block is ``tip_height + 1``):

    - ``tip_bits``/``tip_time``: the tip's header fields;
    - ``template_bits``: the bits the node requires of block ``tip_height+1``;
    - ``tip_last_non_min_bits``: on networks with min-difficulty blocks, the
      bits of the last block at or below the tip that was not a
      min-difficulty block or opened a period (Core's walk back);
    - ``period_start_time``: when block ``tip_height + 2`` opens a period,
      the time of block ``tip_height + 2 - interval``, else None;
    - ``period_start_bits``: that block's bits (BIP94 networks retarget
      from them), else None.
    """

    network: object
    tip_height: int
    tip_hash: bytes
    tip_bits: int
    tip_time: int
    template_bits: int
    tip_last_non_min_bits: int | None = None
    period_start_time: int | None = None
    period_start_bits: int | None = None


def period_start_height(tip_height, network):
    """
    The height whose time the empty job after block ``tip_height + 1`` needs
    (the first block of the period ending there), or None when block
    ``tip_height + 2`` does not open a period.
    """
    interval = network.retarget_interval
    height = tip_height + 2
    if height % interval != 0 or network.pow_no_retargeting:
        return None
    return height - interval


def needs_walk_back(network):
    """True on networks where a min-difficulty block hides the real bits (testnet)."""
    return network.pow_allow_min_difficulty_blocks and not network.pow_no_retargeting


def last_non_min_bits(network, height, bits, parent_last_non_min_bits):
    """
    The walk-back result at block ``height`` with ``bits``, given the result
    at its parent: the block's own bits unless it is a min-difficulty block
    inside a period.
    """
    limit = target_to_bits(network.pow_limit)
    if bits != limit or height % network.retarget_interval == 0:
        return bits
    return parent_last_non_min_bits


def empty_block_bits(facts, hint, block_time):
    """
    Bits for the empty-block job at height ``hint.height + 1`` built on the
    hinted block, whose time is ``hint.curtime``; ``block_time`` is the job's
    ``curtime``.  ``ValueError`` when the facts do not cover this hint (it is
    not for ``tip_height + 1``) or lack a value the rules need.
    """
    network = facts.network
    height = facts.tip_height + 1
    if hint.height != height:
        raise ValueError(f"facts are for block {height}, the hint announces {hint.height}")
    if network.pow_no_retargeting:
        # Regtest: every block has the genesis bits, whatever the times.
        return facts.template_bits
    if hint.nbits is not None:
        hinted_bits = hint.nbits
    elif needs_walk_back(network) and height % network.retarget_interval != 0:
        # The template's bits assumed its own time; the real block H may have
        # been a min-difficulty block (or not), depending on its time.
        hinted_bits = next_bits(
            network, facts.tip_height, facts.tip_bits, facts.tip_time,
            new_block_time=hint.curtime, last_non_min_bits=facts.tip_last_non_min_bits,
        )
    else:
        hinted_bits = facts.template_bits
    walked = None
    if needs_walk_back(network):
        walked = last_non_min_bits(network, height, hinted_bits, facts.tip_last_non_min_bits)
    return next_bits(
        network, height, hinted_bits, hint.curtime,
        first_time_of_period=facts.period_start_time,
        new_block_time=block_time, last_non_min_bits=walked,
        first_bits_of_period=facts.period_start_bits,
    )
