"""
Real blocks used as known vectors, stored as hex in ``data/``.

Each one verifies itself: its header hash meets its own ``nBits`` and equals
the published hash, and its merkle root commits to its transactions, so a
transcription error cannot pass unnoticed.

- ``mainnet-000000``: the genesis block.
- ``mainnet-000170``: the first bitcoin transfer (2 transactions).
- ``mainnet-100000``: 4 transactions, pre-BIP34 coinbase.
- ``testnet-924634``: a testnet3 segwit block (15 transactions, a BIP34
  height and a BIP141 witness commitment), the vector rust-bitcoin's
  ``segwit_block_test`` uses.
"""

import os

_DATA = os.path.join(os.path.dirname(__file__), "data")

BLOCK_HASHES = {
    "mainnet-000000": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    "mainnet-000170": "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",
    "mainnet-100000": "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506",
    "testnet-924634": "000000000000045e0b1660b6445b5e5c5ab63c9a4f956be7e1e69be04fa4497b",
}


def block_bytes(name):
    """Raw bytes of the stored block ``name``."""
    with open(os.path.join(_DATA, name + ".hex")) as f:
        return bytes.fromhex(f.read().strip())
