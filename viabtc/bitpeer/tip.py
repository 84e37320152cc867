# -*- test-case-name: tests.bitpeer.test_service -*-
"""
Our node's tip, the anchor of every header bitpeer believes: polled every
second (the seed polled ``getblockcount`` as often), fetched as a header
only when it changed.  The header is rebuilt from ``getblockheader``'s
fields (bitcoind's and bcoin's agree on them) and checked against the hash
the node gave, so a node answering nonsense anchors nothing.
"""

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.bitcoin.header import BlockHeader

#: Seconds between two looks at the node's tip.
POLL_INTERVAL = 1.0


def header_from_rpc(reply):
    """``(header, height)`` from a verbose ``getblockheader`` reply; ``ValueError`` if malformed."""
    try:
        prev = reply.get("previousblockhash")
        header = BlockHeader(
            version=int(reply["version"]) & 0xFFFFFFFF,
            prev_hash=hash_from_display_hex(prev) if prev else bytes(32),
            merkle_root=hash_from_display_hex(reply["merkleroot"]),
            time=int(reply["time"]),
            bits=int(reply["bits"], 16),
            nonce=int(reply["nonce"]),
        )
        height = int(reply["height"])
        if hash_from_display_hex(reply["hash"]) != header.hash():
            raise ValueError("the fields do not hash to the block's hash")
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"malformed getblockheader reply: {e!r}") from None
    return header, height


class NodeTip(Service):
    """Feeds ``tip(header, height)`` whenever the node's best block changes."""

    _log = Logger()

    def __init__(self, nodes, reactor, tip, role="bitpeer", interval=POLL_INTERVAL):
        self.nodes = nodes
        self.reactor = reactor
        self.tip = tip
        self.role = role
        self.best_hash = None
        self.last_error = None
        self._busy = False
        self._loop = LoopingCall(self.poll)
        self._loop.clock = reactor
        self._interval = interval

    def startService(self):
        super().startService()
        self._loop.start(self._interval, now=True)

    def stopService(self):
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def poll(self):
        if self._busy:
            return None
        self._busy = True
        d = self.nodes.call("getbestblockhash")
        d.addCallback(self._got_hash)
        d.addErrback(self._failed)
        d.addBoth(self._done)
        return d

    def _got_hash(self, display_hash):
        if display_hash == self.best_hash:
            return None
        d = self.nodes.call("getblockheader", display_hash, True)
        d.addCallback(self._got_header, display_hash)
        return d

    def _got_header(self, reply, display_hash):
        header, height = header_from_rpc(reply)
        self.best_hash = display_hash
        self.last_error = None
        self.tip(header, height)

    def _failed(self, failure):
        error = failure.getErrorMessage()
        if error != self.last_error:
            self._log.warn("node tip not read: {error}", error=error, role=self.role)
        self.last_error = error

    def _done(self, _):
        self._busy = False
