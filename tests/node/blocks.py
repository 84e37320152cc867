"""
Build and mine (by grinding the nonce in Python) a block on a template, for
tests against a real regtest node, whose target accepts about every other
header.  Uses the pure layer (``viabtc.bitcoin``) as the jobmaster does.
"""

from viabtc.bitcoin.address import p2pkh_script
from viabtc.bitcoin.block import assemble_block
from viabtc.bitcoin.coinbase import coinbase_halves
from viabtc.bitcoin.hashing import hash_to_int, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.serialize import bip34_height_push, compact_size, push_data
from viabtc.bitcoin.transaction import TxOut

#: A throw-away payout: nobody has the key of this hash160.
PAYOUT_HASH = bytes(range(1, 21))


def coinbase_for(template, tag=b"viabtc-test", value_delta=0, extra_outputs=()):
    """
    A legacy-serialised coinbase for ``template`` paying ``PAYOUT_HASH``,
    then ``extra_outputs`` (``TxOut``s: e.g. bulk that makes a block large).
    """
    outputs = [TxOut(template.coinbase_value + value_delta, p2pkh_script(PAYOUT_HASH)), *extra_outputs]
    if template.segwit_active and template.default_witness_commitment:
        outputs.append(TxOut(0, template.default_witness_commitment))
    cb1, cb2 = coinbase_halves(outputs)
    script_sig = bip34_height_push(template.height) + push_data(tag)
    return cb1 + compact_size(len(script_sig)) + script_sig + cb2


def mine_block(template, **coinbase_kw):
    """``(block_bytes, block_hash)``: a block on ``template`` meeting its target."""
    coinbase = coinbase_for(template, **coinbase_kw)
    txids = [sha256d(coinbase)] + [tx.txid for tx in template.transactions]
    root = merkle_root(txids)
    for nonce in range(1 << 32):
        header = BlockHeader(template.version, template.previous_hash, root,
                             template.curtime, template.bits, nonce).serialize()
        block_hash = sha256d(header)
        if hash_to_int(block_hash) <= template.target:
            break
    block = assemble_block(header, coinbase, [tx.data for tx in template.transactions],
                           template.segwit_active)
    return block, block_hash
