# -*- test-case-name: tests.bitcoin -*-
"""
Pure Bitcoin primitives: hashing, serialisation, scripts and addresses,
targets and difficulty, coinbase, merkle trees, block assembly and BIP152
short ids.

Nothing here imports Twisted or does I/O, so every function can be tested with
known vectors and properties and called from any layer.  Hashes are ``bytes``
in internal (SHA-256d output) order everywhere; display-order hex only crosses
this boundary through ``viabtc.bitcoin.hashing``.
"""
