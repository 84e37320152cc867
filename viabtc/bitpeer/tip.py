# -*- test-case-name: tests.bitpeer.test_service -*-
"""
Our node's tip, the anchor of every header bitpeer believes: polled every
second (the seed polled ``getblockcount`` as often), fetched as a header
only when it changed: the raw 80 bytes (``getblockheader`` with
``verbose=false``, which bitcoind and bcoin both answer) and the height from
the verbose form, checked against the hash the node gave, so a node
answering nonsense anchors nothing.
"""

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.bitcoin.header import BlockHeader

#: Seconds between two looks at the node's tip.
POLL_INTERVAL = 1.0


def header_from_rpc(display_hash, raw_hex, verbose):
    """
    ``(header, height)`` from ``getblockheader`` of ``display_hash``: the
    raw header (``verbose=false``, 80 bytes of hex) and the verbose reply's
    ``height``; ``ValueError`` if they do not fit together.
    """
    try:
        header = BlockHeader.parse(bytes.fromhex(raw_hex))
        height = verbose["height"]
    except (TypeError, KeyError, ValueError) as e:
        raise ValueError(f"malformed getblockheader reply: {e}") from None
    if not isinstance(height, int) or height < 0:
        raise ValueError(f"malformed getblockheader height {height!r}")
    if header.hash() != hash_from_display_hex(display_hash) or verbose.get("hash") != display_hash:
        raise ValueError("getblockheader answered for another block")
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
        self._busy = None
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
        if self._busy is None:
            return None
        # Let a look in flight end (the node's calls have their timeouts), so
        # its connection is idle when the role closes the node's connections.
        ended = defer.Deferred()
        self._busy.addBoth(lambda result: (ended.callback(None), result)[1])
        return ended

    def poll(self):
        if self._busy is not None:
            return None
        d = self._busy = self.nodes.call("getbestblockhash")
        d.addCallback(lambda h: defer.Deferred.fromCoroutine(self._got_hash(h)))
        d.addErrback(self._failed)
        d.addBoth(self._done)
        return d

    async def _got_hash(self, display_hash):
        if display_hash == self.best_hash:
            return
        raw = await self.nodes.call("getblockheader", display_hash, False)
        verbose = await self.nodes.call("getblockheader", display_hash, True)
        header, height = header_from_rpc(display_hash, raw, verbose)
        self.best_hash = display_hash
        self.last_error = None
        self.tip(header, height)

    def _failed(self, failure):
        error = failure.getErrorMessage()
        if error != self.last_error:
            self._log.warn("node tip not read: {error}", error=error, role=self.role)
        self.last_error = error

    def _done(self, _):
        self._busy = None
