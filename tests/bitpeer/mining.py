"""Headers with real proof of work at regtest difficulty, for bitpeer's tests."""

import attrs

from viabtc.bitcoin.hashing import hash_to_int
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.network import REGTEST
from viabtc.bitcoin.target import bits_to_target

REGTEST_BITS = 0x207FFFFF

#: Regtest's easy proof of work, with mainnet's rule that nBits follow the parent.
STRICT = attrs.evolve(REGTEST, name="strict", pow_allow_min_difficulty_blocks=False)


def mine(prev_hash, time=1700000000, bits=REGTEST_BITS, merkle=bytes(32), valid=True):
    """A header on ``prev_hash`` whose hash meets ``bits`` (or, ``valid=False``, does not)."""
    target = bits_to_target(bits)
    for nonce in range(1 << 20):
        header = BlockHeader(0x20000000, prev_hash, merkle, time, bits, nonce)
        if (hash_to_int(header.hash()) <= target) == valid:
            return header
    raise AssertionError("no nonce found")


def mine_chain(prev_hash, count, time=1700000000, bits=REGTEST_BITS):
    """``count`` headers, each on the one before."""
    headers = []
    for i in range(count):
        header = mine(prev_hash, time + i, bits)
        headers.append(header)
        prev_hash = header.hash()
    return headers


def mine_block(prev_hash, transactions, time=1700000000, bits=REGTEST_BITS):
    """Block bytes on ``prev_hash`` holding ``transactions`` (parsed), with valid proof of work."""
    from viabtc.bitcoin.merkle import merkle_root
    from viabtc.bitcoin.serialize import compact_size

    header = mine(prev_hash, time, bits, merkle_root([tx.txid() for tx in transactions]))
    return header.serialize() + compact_size(len(transactions)) + b"".join(
        tx.serialize() for tx in transactions)
