# -*- test-case-name: tests.poolbench.test_hints -*-
"""
From a rival pool's ``mining.notify`` to the height hint (cmd 4) the
jobmaster accepts, pure.

A job mines block ``height``, so the network's tip is ``height - 1`` and the
job's prevhash is that tip's hash (ref §7).  The hint says exactly that:
``{"height": tip, "curtime": ..., "prevhash": <display hex of the tip>}``,
the body ``viabtc.jobmaster.messages.parse_height_hint`` reads.

``nbits`` is never sent: a rival's job carries the bits of the block *it*
mines (the one after the tip), and the empty job the jobmaster builds mines
the same next block, but a rival's nbits is only as trustworthy as the rival
and the jobmaster computes the right bits itself from its node's chain
(``viabtc.jobmaster.nextbits``).  Sending none keeps the seed's body.

A rival pool is not trusted (ref §12.1): a malicious or broken one must not
push our pool into empty-block mode on a height that does not exist.  The
rule for believing a tip is ``check_tip`` (see there); the jobmaster
independently accepts only ``node height + 1``.
"""

import attrs

from viabtc.rpc.heighthint import height_hint_body

#: A tip further above the reference height than this is not believed from
#: one rival pool: two blocks found elsewhere within seconds happens, three
#: before our own pool saw the first does not.
MAX_HEIGHT_JUMP = 2

#: The jobmaster reads heights as 31-bit numbers; anything larger is absurd.
MAX_HEIGHT = 2**31 - 1

#: An ntime further ahead of our clock than this is a broken clock, not a
#: block time: the jobmaster would put it in its empty blocks' headers.
MAX_NTIME_AHEAD = 600


class SuspiciousTip(ValueError):
    """A tip height a rival pool reported that is not believed; says why."""


@attrs.frozen
class Sighting:
    """
    What one ``mining.notify`` says about the network: ``tip`` (the height
    of the block the job builds on), its hash ``prevhash`` (internal order)
    and the job's ``ntime``.
    """

    tip: int
    prevhash: bytes
    ntime: int

    @classmethod
    def from_job(cls, job):
        """
        The sighting in ``job`` (a ``StratumJob``); ``MalformedMessage``
        when its coinbase1 has no BIP34 height.
        """
        return cls(job.coinbase_height() - 1, job.prev_hash, job.time)


def check_tip(tip, reference, trusted=False):
    """
    Raise ``SuspiciousTip`` unless ``tip`` is believable.

    - ``1 <= tip <= MAX_HEIGHT`` always (a job at height 0 or 1 has no tip
      to hint, a larger one is garbage);
    - a ``trusted`` pool (``is_self``: our own) is otherwise believed;
    - with no ``reference`` (nothing believed yet) the tip is believed;
    - else ``tip <= reference + MAX_HEIGHT_JUMP``.

    ``reference`` is what the caller knows best: our own pool's tip when it
    has one, else the best tip believed so far (``Bench.reference``).
    """
    if not 1 <= tip <= MAX_HEIGHT:
        raise SuspiciousTip(f"tip height {tip} out of range 1..{MAX_HEIGHT}")
    if trusted or reference is None:
        return
    if tip > reference + MAX_HEIGHT_JUMP:
        raise SuspiciousTip(f"tip height {tip} is {tip - reference} above the reference "
                            f"{reference} (at most {MAX_HEIGHT_JUMP} believed)")


def hint_curtime(ntime, now):
    """
    The hint's ``curtime``: ``max(ntime, now)`` as the seed sends it, except
    that an ntime more than ``MAX_NTIME_AHEAD`` seconds ahead of ``now`` is
    ignored (``now`` is used) rather than copied into our empty blocks,
    which nodes would reject as too far in the future.
    """
    now = int(now)
    if now < ntime <= now + MAX_NTIME_AHEAD:
        return ntime
    return now


def hint_body(sighting, now):
    """The cmd 4 JSON body for ``sighting`` at time ``now`` (bytes)."""
    return height_hint_body(sighting.tip, hint_curtime(sighting.ntime, now), sighting.prevhash)
