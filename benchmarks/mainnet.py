# -*- test-case-name: benchmarks -*-
"""
A mainnet-like block template and the job the jobmaster builds from it.

On regtest every hash that meets a tiny share target is also a block, so a
share benchmark run there measures block handling, not share checking.  The
share benchmarks therefore use a job made the way the jobmaster makes one
(``viabtc.jobmaster.jobs.build_job``) from a synthetic ``getblocktemplate``
answer shaped like mainnet's: real mainnet ``bits`` (0x17034219, from the
spring of 2024), segwit rules with a default witness commitment, and 4,000
transactions, which gives the 12-level merkle branch of a full block.  The
same template is the input of the jobmaster's template-to-job measure.

Everything is deterministic (one seed), so two runs hash the same bytes.
"""

import random

from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.network import MAINNET
from viabtc.bitcoin.target import bits_to_target
from viabtc.bitcoin.transaction import witness_commitment_script
from viabtc.jobmaster.jobs import JobSettings, Payout, build_job
from viabtc.node.template import Template

#: Mainnet bits of block 840,000's retarget period.
MAINNET_BITS = 0x17034219
MAINNET_HEIGHT = 840_000
#: Block 839,999, display order: the parent of the halving block.
MAINNET_PREVHASH = "0000000000000000000172014ba58d66455762add0512355ad651207918494ab"
#: A pay-to-witness-pubkey-hash script for the pool's payout.
PAYOUT_SCRIPT = bytes.fromhex("0014") + bytes(range(20))
#: Transactions in a full mainnet block: 2^12 > 4,000 > 2^11, so 12 branch levels.
FULL_BLOCK_TXS = 4000


def template_result(transactions=FULL_BLOCK_TXS, curtime=1_713_571_767, seed=840_000):
    """
    A ``getblocktemplate`` result (decoded JSON) with ``transactions``
    segwit-style entries of 180-400 random bytes, as Bitcoin Core answers:
    txid, hash (wtxid), data, fee, weight, and a default witness commitment.
    """
    rng = random.Random(seed)
    entries = []
    wtxids = [bytes(32)]
    for _ in range(transactions):
        data = rng.randbytes(rng.randrange(180, 400))
        txid = sha256d(data)
        wtxid = sha256d(data + b"w")
        wtxids.append(wtxid)
        entries.append(
            {
                "data": data.hex(),
                "txid": hash_to_display_hex(txid),
                "hash": hash_to_display_hex(wtxid),
                "depends": [],
                "fee": rng.randrange(1_000, 100_000),
                "sigops": 4,
                "weight": 4 * len(data),
            }
        )
    commitment = witness_commitment_script(merkle_root(wtxids))
    return {
        "version": 0x20000000,
        "rules": ["csv", "!segwit", "taproot"],
        "previousblockhash": MAINNET_PREVHASH,
        "transactions": entries,
        "coinbaseaux": {},
        "coinbasevalue": 312_500_000 + sum(e["fee"] for e in entries),
        "longpollid": MAINNET_PREVHASH + "1",
        "target": format(bits_to_target(MAINNET_BITS), "064x"),
        "mintime": curtime - 3600,
        "curtime": curtime,
        "bits": format(MAINNET_BITS, "08x"),
        "height": MAINNET_HEIGHT,
        "default_witness_commitment": commitment.hex(),
    }


def job_settings():
    """The jobmaster settings of the benchmarks: one payout, a pool tag, mainnet."""
    return JobSettings(
        payout=Payout(main_script=PAYOUT_SCRIPT),
        network=MAINNET,
        pool_name="viabtc-bench",
        coinbase_message="benchmark",
        coinbase_account=True,
    )


def mainnet_job(job_id=1, clean=True, curtime=1_713_571_767, transactions=FULL_BLOCK_TXS):
    """``(Job, JobContext)`` for the mainnet-like template, via the jobmaster's own build."""
    template = Template.from_rpc(template_result(transactions, curtime))
    return build_job(template, job_settings(), job_id, clean)
