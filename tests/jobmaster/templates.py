"""
Block templates (the real ``viabtc.node.template.Template``) for the
jobmaster's pure tests, built from transactions made here, so that txids,
wtxids and the witness commitment are real values.
"""

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.target import bits_to_target
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut, witness_commitment_script
from viabtc.jobmaster.merge import AuxBlock
from viabtc.node.template import Template, TemplateTransaction


def spend(n):
    """A segwit transaction spending a made-up outpoint ``n``."""
    tx = Transaction(
        version=2,
        inputs=[TxIn(sha256d(n.to_bytes(4, "little")), 0, b"", 0xFFFFFFFF)],
        outputs=[TxOut(1000 + n, bytes.fromhex("0014") + bytes(20))],
        locktime=0,
        witnesses=[[b"\x01" * 72, b"\x02" * 33]],
    )
    return TemplateTransaction(txid=tx.txid(), wtxid=tx.wtxid(), data=tx.serialize())


def make_template(height=1000, n_txs=3, segwit=True, coinbaseaux=b"", prevhash=None,
                  coinbase_value=625_000_000 + 12345, bits=0x207FFFFF, curtime=1_700_000_000,
                  commitment=True):
    txs = tuple(spend(i) for i in range(n_txs))
    wtxids = [bytes(32)] + [tx.wtxid for tx in txs]
    return Template(
        version=0x20000000,
        previous_hash=prevhash if prevhash is not None else sha256d(height.to_bytes(4, "little")),
        height=height,
        bits=bits,
        target=bits_to_target(bits),
        curtime=curtime,
        mintime=curtime - 600,
        coinbase_value=coinbase_value,
        coinbaseaux=coinbaseaux,
        transactions=txs,
        default_witness_commitment=witness_commitment_script(merkle_root(wtxids)) if commitment else None,
        rules=("csv", "segwit") if segwit else ("csv",),
        longpollid=None,
    )


def aux_block(name, chain_id, target=2**256 - 1, seed=None):
    """An aux chain's block (``viabtc.jobmaster.merge.AuxBlock``) with a made-up hash."""
    block_hash = sha256d((seed or name).encode())
    return AuxBlock(name, block_hash[::-1].hex(), block_hash, chain_id, target)
