# -*- test-case-name: tests.bitcoin.test_retarget -*-
"""
The ``nBits`` the next block must carry, as Bitcoin Core's
``GetNextWorkRequired`` / ``CalculateNextWorkRequired`` compute it.

The seed's empty-block jobs reused the current job's ``nBits``, so a block
found across a retarget boundary (or under testnet's 20-minute rule) was
invalid (ref §3.9, §12.7).  The jobmaster calls this with what it knows of
the chain instead.

Testnet4 (BIP94) changes two things, both here: a retarget scales the bits
of the period's *first* block (its last block may be a 20-minute
min-difficulty block, which made testnet3's "block storms"), and the first
block of a period may not be dated more than ``MAX_TIMEWARP`` seconds
before its parent (``min_block_time``; the "timewarp" rule, which Core's
miner also applies on every network, so the floor we give miners is the
same everywhere).
"""

from viabtc.bitcoin.target import bits_to_target, target_to_bits

#: BIP94: a period's first block may be this much older than its parent, no more.
MAX_TIMEWARP = 600


def opens_period(network, height):
    """True when block ``height`` is the first of a difficulty period."""
    return height % network.retarget_interval == 0


def min_block_time(network, height, prev_time, median_time_past=None):
    """
    The earliest valid ``nTime`` of block ``height`` whose parent has time
    ``prev_time``: one second after the median time past (when given), and
    for a period's first block no earlier than ``prev_time - MAX_TIMEWARP``
    (BIP94's timewarp rule; consensus on testnet4, and what Bitcoin Core's
    ``getblocktemplate`` gives as ``mintime`` on every network).
    """
    floor = 0 if median_time_past is None else median_time_past + 1
    if opens_period(network, height):
        floor = max(floor, prev_time - MAX_TIMEWARP)
    return floor


def next_bits(
    network,
    prev_height,
    prev_bits,
    prev_time,
    first_time_of_period=None,
    new_block_time=None,
    last_non_min_bits=None,
    first_bits_of_period=None,
):
    """
    Bits required for block ``prev_height + 1``.

    - At a retarget boundary (``(prev_height + 1) % 2016 == 0``) this needs
      ``first_time_of_period``, the time of block ``prev_height - 2015``.
    - Elsewhere, on networks allowing min-difficulty blocks (testnet,
      regtest), it needs ``new_block_time``: a block more than 20 minutes
      after its parent may use the minimum difficulty; otherwise the bits of
      the last block that was not a min-difficulty block (or opened the
      period) apply: pass them as ``last_non_min_bits`` when ``prev_bits`` is
      the minimum (not needed on regtest, where every block is at the
      minimum).

    ``ValueError`` when a needed argument is missing.
    """
    limit_bits = target_to_bits(network.pow_limit)
    interval = network.retarget_interval
    height = prev_height + 1
    if height % interval != 0:
        if not network.pow_allow_min_difficulty_blocks:
            return prev_bits
        if new_block_time is None:
            raise ValueError(f"{network.name} needs the new block's time to choose its bits")
        if new_block_time > prev_time + 2 * network.target_spacing:
            return limit_bits
        if prev_bits != limit_bits or prev_height % interval == 0:
            return prev_bits
        if network.pow_no_retargeting:
            # Every block since genesis (whose bits are the limit on regtest)
            # carries the limit, so Core's walk back ends on the limit too.
            return prev_bits
        if last_non_min_bits is None:
            raise ValueError(
                "the parent is a min-difficulty block: pass the bits of the last block "
                "that was not (last_non_min_bits)"
            )
        return last_non_min_bits
    if network.pow_no_retargeting:
        return prev_bits
    if first_time_of_period is None:
        raise ValueError(f"block {height} starts a period: first_time_of_period is required")
    base_bits = prev_bits
    if network.enforce_bip94:
        if first_bits_of_period is None:
            raise ValueError(f"block {height} starts a {network.name} period: "
                             "first_bits_of_period is required (BIP94)")
        base_bits = first_bits_of_period
    timespan = network.target_timespan
    actual = min(max(prev_time - first_time_of_period, timespan // 4), timespan * 4)
    target = bits_to_target(base_bits) * actual // timespan
    return target_to_bits(min(target, network.pow_limit))
