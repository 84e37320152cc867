"""
A synthetic segwit block for the relay's tests and its benchmark
(``benchmarks.relay``): any number of transactions, half of them with
witness data, under a coinbase committing to their witness root.
"""

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.serialize import bip34_height_push, compact_size
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut, witness_commitment_script


def segwit_block(n=6):
    """
    A block (no proof of work: reconstruction does not look at it) with
    ``n`` transactions after the coinbase, every other one with witness
    data, and a coinbase committing to their witness root as BIP141 says.
    """
    spends = []
    for i in range(n):
        witnesses = [[bytes([i % 256]) * 72, b"\x02" * 33]] if i % 2 == 0 else []
        spends.append(Transaction(2, [TxIn(sha256d(i.to_bytes(4, "little")), 0, b"", 0xFFFFFFFD)],
                                  [TxOut(1000 + i, b"\x00\x14" + bytes(20))], 0, witnesses))
    wroot = merkle_root([bytes(32)] + [tx.wtxid() for tx in spends])
    coinbase = Transaction(1, [TxIn(bytes(32), 0xFFFFFFFF, bip34_height_push(500), 0xFFFFFFFF)],
                           [TxOut(50, b"\x51"), TxOut(0, witness_commitment_script(wroot))], 0,
                           [[bytes(32)]])
    root = merkle_root([coinbase.txid()] + [tx.txid() for tx in spends])
    header = BlockHeader(0x20000000, sha256d(b"prev"), root, 1_700_000_000, 0x207FFFFF, 1).serialize()
    txs = [coinbase, *spends]
    return header + compact_size(len(txs)) + b"".join(tx.serialize() for tx in txs)
