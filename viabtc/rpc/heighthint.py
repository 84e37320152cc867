# -*- test-case-name: tests.rpc.test_heighthint -*-
"""
The height hint's body (cmd 4, ref §2.4, §6.4), written once for every
module that hints: poolbench (a rival pool's job) and bitpeer (a block
header seen on the P2P network).

The seed's body is ``{"height": H, "curtime": T, "prevhash": "<display hex
of block H>"}``; ``nbits`` (block H's own bits) is the optional field the
seed's jobmaster already reads and no seed module ever sent.  A module that
has checked block H's proof of work against its bits sends them, so the
jobmaster need not guess them (ref §3.9's "nbits issue");
``viabtc.jobmaster.messages.parse_height_hint`` reads the result.
"""

import json

from viabtc.bitcoin.hashing import hash_to_display_hex


def height_hint_body(height, curtime, prevhash, nbits=None):
    """
    The cmd 4 JSON body (bytes): block ``height`` with hash ``prevhash``
    (internal order) exists; ``curtime`` is the hinting module's idea of
    the time (seconds).
    """
    body = {"height": height, "curtime": int(curtime), "prevhash": hash_to_display_hex(prevhash)}
    if nbits is not None:
        body["nbits"] = nbits
    return json.dumps(body, separators=(",", ":")).encode()
