# -*- test-case-name: tests.bitcoin.test_block -*-
"""
Whole blocks: assembling the block a found share completes (ref §3.5), and
parsing blocks to check them (merkle root, witness commitment, BIP34 height).

The seed submitted a legacy coinbase without the witness reserved value
(§12.8); nodes repair that on ``submitblock`` but not when the block is
relayed raw, so ``assemble_block`` adds it whenever the block is segwit.
"""

import attrs

from viabtc.bitcoin.coinbase import add_coinbase_witness
from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.header import HEADER_SIZE, BlockHeader
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.serialize import DecodeError, compact_size, read_bip34_height, read_compact_size
from viabtc.bitcoin.transaction import WITNESS_COMMITMENT_HEADER, Transaction


def assemble_block(header, coinbase_legacy, transactions, segwit):
    """
    Block bytes: ``header`` (80) ‖ CompactSize(1 + n) ‖ coinbase ‖ each
    template transaction's ``data`` as given.  With ``segwit`` the coinbase
    gets its witness reserved value.
    """
    if len(header) != HEADER_SIZE:
        raise ValueError(f"a block header is {HEADER_SIZE} bytes, got {len(header)}")
    coinbase = add_coinbase_witness(coinbase_legacy) if segwit else coinbase_legacy
    return b"".join([header, compact_size(1 + len(transactions)), coinbase, *transactions])


@attrs.frozen
class Block:
    """A parsed block."""

    header: BlockHeader
    transactions: tuple = attrs.field(converter=tuple)

    def hash(self):
        """The block hash, internal order."""
        return self.header.hash()

    def check_merkle_root(self):
        """True when the header commits to exactly these transactions."""
        return merkle_root([tx.txid() for tx in self.transactions]) == self.header.merkle_root

    def witness_commitment(self):
        """
        The BIP141 commitment hash in the coinbase (from the last output that
        carries one), or ``None`` if there is none.
        """
        for out in reversed(self.transactions[0].outputs):
            if len(out.script) >= 38 and out.script[:6] == WITNESS_COMMITMENT_HEADER:
                return out.script[6:38]
        return None

    def check_witness_commitment(self):
        """
        True when the coinbase's witness commitment matches the witness
        merkle root and reserved value (BIP141), or when the block has no
        commitment and no witness data.
        """
        commitment = self.witness_commitment()
        if commitment is None:
            return not any(tx.has_witness() for tx in self.transactions)
        coinbase_witness = self.transactions[0].witnesses
        if len(coinbase_witness) != 1 or len(coinbase_witness[0]) != 1:
            return False
        reserved = coinbase_witness[0][0]
        if len(reserved) != 32:
            return False
        wtxids = [bytes(32)] + [tx.wtxid() for tx in self.transactions[1:]]
        return sha256d(merkle_root(wtxids) + reserved) == commitment

    def coinbase_height(self):
        """The BIP34 height in the coinbase scriptSig (``DecodeError`` if absent)."""
        return read_bip34_height(self.transactions[0].inputs[0].script_sig)


def parse_block(raw):
    """Parse block bytes; ``DecodeError`` on any malformation or trailing bytes."""
    header = BlockHeader.parse(raw[:HEADER_SIZE])
    transactions, _ = parse_transactions(raw)
    return Block(header, transactions)


def parse_transactions(raw):
    """
    ``(transactions, offsets)`` of block bytes ``raw`` (its header is not
    looked at): ``offsets`` has where each transaction starts and, last,
    where the block ends, so that ``raw[offsets[i]:offsets[i + 1]]`` are
    transaction ``i``'s bytes as they came.  ``DecodeError`` on any
    malformation or trailing bytes.
    """
    count, offset = read_compact_size(raw, HEADER_SIZE)
    if count == 0:
        raise DecodeError("a block has at least the coinbase transaction")
    transactions, offsets = [], [offset]
    for _ in range(count):
        tx, offset = Transaction.parse(raw, offset)
        transactions.append(tx)
        offsets.append(offset)
    if offset != len(raw):
        raise DecodeError(f"{len(raw) - offset} trailing bytes after the last transaction")
    if not transactions[0].inputs:
        raise DecodeError("the coinbase has no input")
    return transactions, offsets
