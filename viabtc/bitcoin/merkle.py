# -*- test-case-name: tests.bitcoin.test_merkle -*-
"""
Merkle roots and the Stratum merkle branch.

The jobmaster computes the branch once per job from the template's txids; the
gateway folds each share's coinbase hash through it (ref §3.5).  All hashes
are internal order.
"""

from viabtc.bitcoin.hashing import _compiled, sha256d


def merkle_root(hashes):
    """
    The merkle root of ``hashes`` (coinbase first), Bitcoin's way: pairs are
    hashed with SHA-256d and the last element of an odd level is paired with
    itself.
    """
    if not hashes:
        raise ValueError("a merkle tree needs at least one hash")
    level = list(hashes)
    while len(level) > 1:
        if len(level) & 1:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_branch(tx_hashes):
    """
    The Stratum branch for the coinbase, given the hashes of every *other*
    transaction in block order (the coinbase is excluded).

    At each level the coinbase's sibling is taken, then the level above is
    computed without the coinbase's own subtree, which the miner supplies.
    """
    branch = []
    # The coinbase slot is index 0; its value is never needed.
    level = [b""] + list(tx_hashes)
    while len(level) > 1:
        branch.append(level[1])
        if len(level) & 1:
            level.append(level[-1])
        level = [b""] + [sha256d(level[i] + level[i + 1]) for i in range(2, len(level), 2)]
    return branch


def merkle_root_from_branch_py(coinbase_hash, branch):
    """Fold the coinbase hash through a Stratum branch to get the root."""
    if len(coinbase_hash) != 32:
        raise ValueError("leaf must be 32 bytes")
    h = coinbase_hash
    for sibling in branch:
        if len(sibling) != 32:
            raise ValueError("branch hashes must be 32 bytes")
        h = sha256d(h + sibling)
    return h


#: The merkle root from the coinbase hash and a Stratum branch (32-byte
#: hashes; ``ValueError`` for another size): compiled when available
#: (``viabtc.bitcoin.hashing.COMPILED``), else the Python fold above.
merkle_root_from_branch = merkle_root_from_branch_py if _compiled is None else _compiled.fold_branch
