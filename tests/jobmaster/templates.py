"""
Block templates for the jobmaster's pure tests, built from transactions made
here (so txids, wtxids and the witness commitment are real values).
"""

import attrs

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut, witness_commitment_script


@attrs.frozen
class TemplateTx:
    txid: bytes
    wtxid: bytes
    data: bytes


@attrs.frozen
class Template:
    height: int
    prevhash: bytes
    version: int
    bits: int
    curtime: int
    coinbase_value: int
    transactions: tuple
    coinbaseaux: dict
    default_witness_commitment: bytes | None
    segwit_active: bool


def spend(n, witness=True):
    """A transaction spending a made-up outpoint ``n`` (with a witness item)."""
    tx = Transaction(
        version=2,
        inputs=[TxIn(sha256d(n.to_bytes(4, "little")), 0, b"", 0xFFFFFFFF)],
        outputs=[TxOut(1000 + n, bytes.fromhex("0014") + bytes(20))],
        locktime=0,
        witnesses=[[b"\x01" * 72, b"\x02" * 33]] if witness else [],
    )
    return TemplateTx(tx.txid(), tx.wtxid(), tx.serialize())


def make_template(height=1000, n_txs=3, segwit=True, coinbaseaux=None, prevhash=None,
                  coinbase_value=625_000_000 + 12345, bits=0x207FFFFF, curtime=1_700_000_000,
                  commitment=True):
    txs = tuple(spend(i) for i in range(n_txs))
    wtxids = [bytes(32)] + [tx.wtxid for tx in txs]
    return Template(
        height=height,
        prevhash=prevhash if prevhash is not None else sha256d(height.to_bytes(4, "little")),
        version=0x20000000,
        bits=bits,
        curtime=curtime,
        coinbase_value=coinbase_value,
        transactions=txs,
        coinbaseaux=coinbaseaux or {},
        default_witness_commitment=witness_commitment_script(merkle_root(wtxids)) if commitment else None,
        segwit_active=segwit,
    )
