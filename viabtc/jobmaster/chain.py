# -*- test-case-name: tests.jobmaster.test_chain -*-
"""
Fetching from the node what an empty-block job's ``nbits`` will need
(``viabtc.jobmaster.nextbits.ChainFacts``), and checking the node's chain.

The facts are fetched when a template arrives, so that a height hint, which
must turn into work within milliseconds, needs no node call.  Header fields
come from ``getblockheader``: bitcoind gives ``bits`` as hex text, bcoin as
a number; both are accepted.
"""

from twisted.internet import defer

from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_display_hex
from viabtc.bitcoin.network import get_network
from viabtc.bitcoin.target import target_to_bits
from viabtc.jobmaster.nextbits import (
    ChainFacts, last_non_min_bits, needs_walk_back, period_start_height,
)

#: Core's walk back never passes a period start, so it visits at most this many headers.
MAX_WALK_BACK = 2016


class ChainMismatch(Exception):
    """The node's chain is not one we know (its name says which)."""


class PinnedChainMismatch(ChainMismatch):
    """The node follows another chain than the config's ``network`` pins: a config error."""


def node_network(blockchain_info):
    """The ``Network`` a ``getblockchaininfo`` reply names (``ValueError`` if unknown)."""
    chain = blockchain_info.get("chain") if isinstance(blockchain_info, dict) else None
    if not isinstance(chain, str):
        raise ValueError("getblockchaininfo has no chain name")
    return get_network(chain)


def header_fields(header):
    """``(height, bits, time, previous hash or None)`` of a ``getblockheader`` reply."""
    bits = header["bits"]
    if isinstance(bits, str):
        bits = int(bits, 16)
    previous = header.get("previousblockhash")
    return (int(header["height"]), int(bits), int(header["time"]),
            hash_from_display_hex(previous) if previous else None)


class ChainWatch:
    """
    Fetches ``ChainFacts`` for templates through ``call(method, *params)``
    (a ``NodeGroup``'s call, returning a Deferred).  On testnet-like
    networks the walk-back result is remembered per block hash, so after the
    first template each new tip costs one header.
    """

    def __init__(self, call, network=None):
        self._call = call
        #: the chain facts are for; None until ``check_network`` names it
        #: when the config pins no network
        self.network = network
        self._walked = {}

    @defer.inlineCallbacks
    def check_network(self):
        """
        The node's ``Network`` (Deferred): ``ChainMismatch`` when it names
        no chain we know, ``PinnedChainMismatch`` when it is not the pinned
        ``self.network``.  Unpinned, the node's chain becomes ``self.network``.
        """
        info = yield self._call("getblockchaininfo")
        try:
            theirs = node_network(info)
        except ValueError as e:
            raise ChainMismatch(str(e)) from None
        if self.network is None:
            self.network = theirs
        elif theirs != self.network:
            raise PinnedChainMismatch(
                f"the config pins {self.network.name}, but the node (getblockchaininfo) is "
                f"on {theirs.name}; remove the key to follow the node, or point main_coin "
                f"at a {self.network.name} node")
        return theirs

    def _header(self, block_hash):
        return self._call("getblockheader", hash_to_display_hex(block_hash)).addCallback(header_fields)

    @defer.inlineCallbacks
    def facts_for(self, template):
        """The ``ChainFacts`` below ``template`` (Deferred)."""
        network = self.network
        tip_height, tip_bits, tip_time, _ = yield self._header(template.previous_hash)
        period_time = period_bits = None
        start = period_start_height(tip_height, network)
        if start is not None:
            start_hash = yield self._call("getblockhash", start)
            _, period_bits, period_time, _ = yield self._header(hash_from_display_hex(start_hash))
        walked = None
        if needs_walk_back(network):
            walked = yield self._walk_back(template.previous_hash)
        return ChainFacts(
            network=network, tip_height=tip_height, tip_hash=template.previous_hash,
            tip_bits=tip_bits, tip_time=tip_time, template_bits=template.bits,
            tip_last_non_min_bits=walked, period_start_time=period_time,
            period_start_bits=period_bits,
        )

    @defer.inlineCallbacks
    def _walk_back(self, tip_hash):
        """Core's walk back from ``tip_hash``: bits of the last real-difficulty block."""
        limit = target_to_bits(self.network.pow_limit)
        path = []
        block_hash = tip_hash
        result = None
        for _ in range(MAX_WALK_BACK):
            if block_hash in self._walked:
                result = self._walked[block_hash]
                break
            height, bits, _, previous = yield self._header(block_hash)
            path.append((block_hash, height, bits))
            if bits != limit or height % self.network.retarget_interval == 0 or previous is None:
                result = bits
                break
            block_hash = previous
        if result is None:
            raise ValueError("walk back found no period start")
        for block_hash, height, bits in reversed(path):
            result = last_non_min_bits(self.network, height, bits, result)
            self._walked[block_hash] = result
        if len(self._walked) > 4 * MAX_WALK_BACK:
            self._walked.clear()
        return result
