"""
Jobs built by hand for the stratum tests: real coinbase halves from
``viabtc.bitcoin.coinbase`` and a merkle branch over three made-up
transactions, so share checks hash exactly what a block would contain.
"""

from viabtc.bitcoin.coinbase import coinbase_halves
from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.merkle import merkle_branch
from viabtc.bitcoin.transaction import TxOut
from viabtc.stratum.coinbase import agent_coinbase1_head, coinbase1_tail, miner_coinbase1_head
from viabtc.stratum.context import Identity, StratumSettings
from viabtc.stratum.job import Job, PreparedJob
from viabtc.stratum.vardiff import VarDiffSettings

#: regtest's proof-of-work limit: about half of all hashes meet it
REGTEST_BITS = 0x207FFFFF
REGTEST_TARGET = "7fffff0000000000000000000000000000000000000000000000000000000000"
#: a mainnet-like target (block 100000): no hash in a test will meet it
HARD_BITS = 0x1B04864C
HARD_TARGET = "000000000004864c000000000000000000000000000000000000000000000000"

PREVHASH = "000000000000000000024bead8df69990852c202db0e0097c1a12ea637d7e96d"
CURTIME = 1_700_000_000
TXIDS = [sha256d(bytes([i])) for i in (1, 2, 3)]
P2PKH = bytes.fromhex("76a914") + bytes(range(20)) + bytes.fromhex("88ac")


def job_dict(**changes):
    """A valid job body (as decoded JSON), with ``changes`` applied."""
    coinbase1, coinbase2 = coinbase_halves([TxOut(50_0000_0000, P2PKH)])
    body = {
        "job_id": "1a",
        "version": 0x20000000,
        "curtime": CURTIME,
        "nbits": HARD_BITS,
        "height": 800_000,
        "prevhash": PREVHASH,
        "target": HARD_TARGET,
        "pool_name": "viabtc",
        "coinbase_message": "test",
        "coinbase_account": True,
        "coinbaseaux": "",
        "coinbase1": coinbase1.hex(),
        "coinbase2": coinbase2.hex(),
        "clean_jobs": True,
        "main_name": "BTC",
        "aux_target": "",
        "merkle_branch": [h.hex() for h in merkle_branch(TXIDS)],
        "auxes": [],
    }
    body.update(changes)
    return body


def make_job(**changes):
    return Job.from_json(job_dict(**changes))


def prepared_job(received=0.0, **changes):
    return PreparedJob.prepare(make_job(**changes), received)


def regtest_job(received=0.0, **changes):
    """A job whose block target is regtest's: most shares are blocks."""
    changes.setdefault("nbits", REGTEST_BITS)
    changes.setdefault("target", REGTEST_TARGET)
    return prepared_job(received, **changes)


def settings(**vardiff):
    knobs = dict(diff_min=0.0001, diff_max=1024, diff_default=0.0001, target_time=4, retarget_time=120)
    knobs.update(vardiff)
    return StratumSettings(vardiff=VarDiffSettings(**knobs))


IDENTITY = Identity(extranonce1=bytes.fromhex("0a0b0c0d"), nonce_id=0x01020304)


def miner_coinbase1(prepared, user, worker_id, nonce_id):
    """A gateway session's whole coinbase1: its account's head, then its ``nonce_id``."""
    return miner_coinbase1_head(prepared, user, worker_id) + coinbase1_tail(nonce_id)


def agent_coinbase1(prepared, user, agent_id, nonce_id):
    """A mineragent session's whole coinbase1: its account's head, then its ``nonce_id``."""
    return agent_coinbase1_head(prepared, user, agent_id) + coinbase1_tail(nonce_id)
