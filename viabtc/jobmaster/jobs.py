# -*- test-case-name: tests.jobmaster.test_jobs -*-
"""
Jobs from block templates (ref §3.3–3.6, §3.9), pure.

A job is what every gateway needs to let miners work on one block: the
coinbase split around the scriptSig the gateway inserts, the merkle branch,
the header fields and the pool's tag texts.  Alongside each job the
jobmaster keeps a ``JobContext``: what it needs, when a gateway reports a
share meeting the block target, to rebuild and check the whole block (the
template's transactions, whether the coinbase commits to witnesses).

Differences from the seed, all deliberate:

- payout outputs pay any address kind (checked at config load);
- the witness commitment is added only when the template's ``rules`` name
  ``segwit`` (a commitment before activation makes the block invalid);
- ``coinbaseaux`` is dropped rather than sent when it would leave no room for
  the configured tag within the 100-byte scriptSig;
- empty-block jobs carry the next block's own ``nbits`` and exact subsidy
  (the caller computes them, ``viabtc.jobmaster.nextbits``);
- on a signet (the template's ``rules`` name ``signet``) every job, empty
  ones included, carries the witness commitment a signet block needs, with
  the empty solution an ``OP_TRUE`` challenge takes; a challenge needing a
  signature cannot be mined without its signer and no job is made for it
  (``viabtc.bitcoin.signet``);
- every job carries ``mintime``, the earliest valid block time (the
  template's, raised to BIP94's timewarp floor when the caller knows the
  parent's time), and its ``curtime`` is never below it, so gateways neither
  give miners nor accept from them a time the block would be invalid with.
"""

import attrs

from viabtc.bitcoin.coinbase import (
    MAX_SCRIPT_SIG,
    Recipient,
    coinbase_halves,
    coinbase_tag,
    split_reward,
    tag_budget,
)
from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.bitcoin.merkle import merkle_branch, merkle_root
from viabtc.bitcoin.signet import challenge_needs_signer, with_solution
from viabtc.bitcoin.subsidy import block_subsidy
from viabtc.bitcoin.target import bits_to_target
from viabtc.bitcoin.transaction import TxOut, witness_commitment_script
from viabtc.stratum.job import Job

#: The largest height we size tags for (its BIP34 push is the longest, 5
#: bytes), so a tag that fits today still fits at any future height.
MAX_HEIGHT = 2**31 - 1

#: Job ids are a 16-bit counter that skips 0 (ref §3.3).
JOB_ID_MODULUS = 1 << 16


def next_job_id(last):
    """The id after ``last``: pre-increment, wrapping at 16 bits, skipping 0."""
    n = (last + 1) % JOB_ID_MODULUS
    return n or 1


def format_job_id(n):
    """The seed's job id text: lowercase hex without padding (1–4 chars)."""
    return format(n, "x")


def tag_room(coinbaseaux_size=0):
    """
    The tag length every gateway can always fit: the budget at the largest
    height, beside ``coinbaseaux_size`` bytes of coinbaseaux (the merged
    mining commitment, when aux chains are mined), in the mineragent's
    (longer) layout.
    """
    return tag_budget(MAX_HEIGHT, bytes(coinbaseaux_size), agent=True)


def check_coinbase_text(pool_name, message, coinbaseaux_size=0):
    """
    ``ValueError`` unless ``/pool_name/message/`` fits the scriptSig at every
    height (beside ``coinbaseaux_size`` bytes of coinbaseaux).  Gateways
    leave out a tag part that does not fit, so without this check a
    too-long pool name would silently vanish from every block.
    """
    needed = 1 + sum(len(part.encode("utf-8")) + 1 for part in (pool_name, message) if part)
    room = tag_room(coinbaseaux_size)
    if needed > room:
        raise ValueError(
            f"the coinbase tag /{pool_name}/{message}/ is {needed} bytes; at most {room} fit "
            f"in the {MAX_SCRIPT_SIG}-byte scriptSig"
        )


@attrs.frozen
class Payout:
    """
    Where the block reward goes: each recipient's share in order, the rest
    to ``main_script`` (``None`` only when the recipients take it all).
    """

    main_script: bytes | None
    recipients: tuple[Recipient, ...] = attrs.field(default=(), converter=tuple)

    def outputs(self, coinbase_value):
        return split_reward(coinbase_value, self.recipients, self.main_script)


@attrs.frozen
class JobSettings:
    """
    What the configuration (and the CLI's ``setcoinbase``) decides about
    every job: payout, tag texts, coin name, header version override (0 =
    the template's) and whether witness commitments may be added at all.
    """

    payout: Payout
    network: object
    pool_name: str = ""
    coinbase_message: str = ""
    coinbase_account: bool = True
    main_name: str = "BTC"
    block_version: int = 0
    segwit_commitment: bool = True


@attrs.frozen
class JobContext:
    """
    One job and what block assembly needs for it.  ``prevhash`` is internal
    order; ``transactions`` are the template's raw transactions in block
    order; ``segwit`` says the coinbase carries a witness commitment, so the
    block needs the coinbase witness reserved value.
    """

    job: Job
    height: int
    prevhash: bytes
    version: int
    nbits: int
    target: int
    coinbase1: bytes
    coinbase2: bytes
    coinbaseaux: bytes
    branch: tuple
    transactions: tuple
    segwit: bool
    empty: bool = False
    #: the signet's challenge (blocks must satisfy it), None elsewhere
    signet_challenge: bytes | None = None
    #: the template's coinbaseaux did not fit beside the tag and was left out
    coinbaseaux_dropped: bool = False
    #: the aux blocks this job's coinbase commits to (``viabtc.jobmaster.merge``)
    merge: object = None
    #: ``transactions`` serialised back to back, and as lowercase hex (ASCII
    #: bytes): made once per job, so that a found block is the header, the
    #: count and the coinbase joined to these, and its ``submitblock``
    #: body needs no hex encoding of a megabyte while a block waits
    transactions_bytes: bytes = attrs.field(
        default=attrs.Factory(lambda self: b"".join(self.transactions), takes_self=True),
        eq=False, repr=False)
    transactions_hex: bytes = attrs.field(
        default=attrs.Factory(lambda self: self.transactions_bytes.hex().encode(), takes_self=True),
        eq=False, repr=False)

    @property
    def job_id(self):
        return self.job.job_id


def _fit_coinbaseaux(height, coinbaseaux, settings, merge=None):
    """
    ``coinbaseaux`` after the merged-mining commitment of ``merge`` (if
    any); without the template's part, or at all, when it would not leave
    room for the tag.
    """
    head = merge.commitment if merge is not None else b""
    tag = coinbase_tag(settings.pool_name, settings.coinbase_message, None, MAX_SCRIPT_SIG)
    for candidate in (head + coinbaseaux, head):
        if not candidate or tag_budget(height, candidate, agent=True) >= len(tag):
            return candidate
    return b""


def _job(job_id, clean, settings, *, version, curtime, nbits, height, prevhash,
         coinbaseaux, coinbase1, coinbase2, branch, segwit, mintime=None, merge=None):
    return Job(
        job_id=format_job_id(job_id),
        version=version,
        curtime=curtime,
        nbits=nbits,
        height=height,
        prevhash=hash_to_display_hex(prevhash),
        target=format(bits_to_target(nbits), "064x"),
        pool_name=settings.pool_name,
        coinbase_message=settings.coinbase_message,
        coinbase_account=settings.coinbase_account,
        coinbaseaux=coinbaseaux.hex(),
        coinbase1=coinbase1.hex(),
        coinbase2=coinbase2.hex(),
        clean_jobs=clean,
        main_name=settings.main_name,
        aux_target="",
        merkle_branch=[h.hex() for h in branch],
        auxes=_auxes(coinbaseaux, merge),
        segwit=segwit,
        network=settings.network.name,
        mintime=mintime or None,
    )


def _auxes(coinbaseaux, merge):
    """The job's aux targets: the tree's only when the coinbase does carry its commitment."""
    if merge is None:
        return ()
    return merge.auxes(committed=bool(merge.commitment) and coinbaseaux.startswith(merge.commitment))


def witness_commitment_output(template):
    """
    The zero-value output committing to the template's witnesses: the
    template's ``default_witness_commitment`` when given, else computed from
    the transactions' wtxids (BIP141, reserved value of 32 zero bytes).
    """
    if template.default_witness_commitment:
        return TxOut(0, template.default_witness_commitment)
    wtxids = [bytes(32)] + [tx.wtxid for tx in template.transactions]
    return TxOut(0, witness_commitment_script(merkle_root(wtxids)))


def _signet_commitment(challenge, commitment):
    """``commitment`` (a ``TxOut``) with the signet solution for ``challenge`` added."""
    if challenge_needs_signer(challenge):
        raise ValueError(
            f"the signet challenge {challenge.hex()} needs a signature: a pool cannot mine this "
            f"signet without its signer (only the challenge 51, OP_TRUE, can be)")
    return TxOut(0, with_solution(commitment.script))


def build_job(template, settings, job_id, clean, time_floor=0, merge=None):
    """
    The job (id number ``job_id``) for ``template`` (a
    ``viabtc.node.template.Template``) and its ``JobContext``.
    ``time_floor`` is a lower bound on the block's time the caller knows
    beyond the template's ``mintime`` (``retarget.min_block_time``).

    ``ValueError`` if the template cannot make a valid block with these
    settings (a payout the coinbase value cannot cover).
    """
    challenge = template.signet_challenge if template.signet else None
    segwit = challenge is not None or (settings.segwit_commitment and template.segwit_active)
    outputs = settings.payout.outputs(template.coinbase_value)
    if merge is not None:
        outputs.extend(merge.outputs())
    if challenge is not None:
        outputs.append(_signet_commitment(challenge, witness_commitment_output(template)))
    elif segwit:
        outputs.append(witness_commitment_output(template))
    coinbase1, coinbase2 = coinbase_halves(outputs)
    wanted_aux = template.coinbaseaux
    coinbaseaux = _fit_coinbaseaux(template.height, wanted_aux, settings, merge)
    merged = merge.commitment if merge is not None else b""
    branch = tuple(merkle_branch([tx.txid for tx in template.transactions]))
    version = settings.block_version or template.version
    mintime = max(template.mintime, time_floor)
    job = _job(
        job_id, clean, settings,
        version=version, curtime=max(template.curtime, mintime), nbits=template.bits,
        height=template.height, prevhash=template.previous_hash, coinbaseaux=coinbaseaux,
        coinbase1=coinbase1, coinbase2=coinbase2, branch=branch, segwit=segwit, mintime=mintime,
        merge=merge,
    )
    context = JobContext(
        job=job, height=template.height, prevhash=template.previous_hash, version=version,
        nbits=template.bits, target=bits_to_target(template.bits),
        coinbase1=coinbase1, coinbase2=coinbase2, coinbaseaux=coinbaseaux, branch=branch,
        transactions=tuple(tx.data for tx in template.transactions), segwit=segwit,
        coinbaseaux_dropped=coinbaseaux != merged + wanted_aux, signet_challenge=challenge,
        merge=merge if job.auxes else None,
    )
    return job, context


def build_empty_job(base, height, prevhash, nbits, curtime, settings, job_id, clean,
                    time_floor=0, merge=None):
    """
    An empty-block job (ref §3.9) for block ``height`` on top of ``prevhash``
    (the block a height hint announced): no transactions and so no witness
    commitment, the exact subsidy of ``height`` as the only value, the bits
    the caller computed for this height, and the version and coinbaseaux of
    ``base`` (the current job's context).  ``time_floor`` is the earliest
    valid time the caller knows (the timewarp floor; 0: none known).
    """
    outputs = settings.payout.outputs(block_subsidy(height, settings.network))
    if merge is not None:
        outputs.extend(merge.outputs(empty=True))
    challenge = base.signet_challenge
    if challenge is not None:
        # A signet block needs the commitment even without transactions.
        empty_commitment = TxOut(0, witness_commitment_script(merkle_root([bytes(32)])))
        outputs.append(_signet_commitment(challenge, empty_commitment))
    segwit = challenge is not None
    coinbase1, coinbase2 = coinbase_halves(outputs)
    template_aux = base.coinbaseaux
    if base.merge is not None and template_aux.startswith(base.merge.commitment):
        template_aux = template_aux[len(base.merge.commitment):]
    coinbaseaux = _fit_coinbaseaux(height, template_aux, settings, merge)
    job = _job(
        job_id, clean, settings,
        version=base.version, curtime=curtime, nbits=nbits, height=height, prevhash=prevhash,
        coinbaseaux=coinbaseaux, coinbase1=coinbase1, coinbase2=coinbase2, branch=(),
        segwit=segwit, mintime=time_floor, merge=merge,
    )
    context = JobContext(
        job=job, height=height, prevhash=prevhash, version=base.version, nbits=nbits,
        target=bits_to_target(nbits), coinbase1=coinbase1, coinbase2=coinbase2,
        coinbaseaux=coinbaseaux, branch=(), transactions=(), segwit=segwit, empty=True,
        signet_challenge=challenge,
        merge=merge if job.auxes else None,
    )
    return job, context
