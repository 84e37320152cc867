# -*- test-case-name: tests.bitpeer.test_relay -*-
"""
What bitpeer does with blocks (ref §6.3, §6.4): it learns of new blocks
from its P2P peers and hints them to the jobmasters, relays the pool's
blocks to its peers, and forwards blocks between the P2P network and the
blockmasters.

From peers (any of ``headers``, ``cmpctblock``, ``inv`` → ``getheaders``):
a header believed by ``HeaderChain`` (known parent, proof of work for its
own nBits) that is higher than anything hinted before makes one height
hint (``hint(entry)``), then the full block is fetched (``getdata``
``MSG_WITNESS_BLOCK``) and pushed to every blockmaster (``push(raw)``,
cmd 12).  A header with bad proof of work drops its peer; one with an
unknown parent is asked about (``getheaders``) and never hinted.

To peers (the pool's block, cmd 10; a foreign block from a blockmaster,
cmd 12): at once, BIP152 compact blocks to peers that asked for
high-bandwidth mode (``sendcmpct`` 1; at most ``broadcast_limit`` of them),
``headers`` to peers that sent ``sendheaders`` and ``inv`` to the rest;
then served on ``getdata`` as a full witness block (``MSG_WITNESS_BLOCK``,
which the seed never served), a legacy block (``MSG_BLOCK``) or a compact
block (``MSG_CMPCT_BLOCK``), with ``getheaders`` and ``getblocktxn``
answered from the blocks held.  Announcements go out before anything is
parsed beyond the header.

No I/O but sending to peers and the two callbacks; the service wires them.
"""

from collections import OrderedDict

from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.bitcoin.serialize import DecodeError
from viabtc.bitpeer.chain import BadHeader, HeaderChain, UnknownParent, check_proof_of_work
from viabtc.p2p.compact import RelayBlock
from viabtc.p2p.framing import encode_frame
from viabtc.p2p.messages import (
    MAX_HEADERS,
    MSG_BLOCK,
    MSG_CMPCT_BLOCK,
    MSG_WITNESS_BLOCK,
    MSG_WITNESS_FLAG,
    NODE_WITNESS,
    BlockMessage,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    NotFound,
)
from viabtc.p2p.protocol import IPeerHandler

#: Blocks held for serving and de-duplication.
KEEP_BLOCKS = 16

#: A block asked for and not received is asked again (of any peer) after this.
REQUEST_TIMEOUT = 10.0

#: Block hashes of one ``inv`` acted on (a peer announces one or two).
MAX_INV_BLOCKS = 8

#: Blocks one ``getdata`` is answered with (the rest: ``notfound``).
MAX_GETDATA_BLOCKS = 16


@implementer(IPeerHandler)
class Relay:
    """
    Bitpeer's block logic for ``network`` (a ``Network``) and the P2P
    ``magic``.  ``hint(entry)`` announces a believed new block to the
    jobmasters; ``push(raw)`` sends a block from the network to the
    blockmasters.
    """

    _log = Logger()

    def __init__(self, network, magic, clock, *, hint, push, broadcast_limit=60, role="bitpeer"):
        self.chain = HeaderChain(network)
        self.magic = magic
        self.clock = clock
        self.hint = hint
        self.push = push
        self.broadcast_limit = broadcast_limit
        self.role = role
        self.peers = []
        self.blocks = OrderedDict()
        self.requested = {}
        self.hinted_height = 0
        self.counts = {"hints": 0, "announced": 0, "pushed": 0, "bad_headers": 0, "unknown_parent": 0,
                       **{f"served {name}": 0 for name in _KIND_NAMES.values()}}

    # -- the node's tip ------------------------------------------------------

    def node_tip(self, header, height):
        """Our node's tip is ``header`` at ``height``: believe it (never hinted)."""
        if header.hash() not in self.chain:
            self.chain.anchor(header, height)
            self._log.debug("node tip {height} {hash}", height=height,
                            hash=hash_to_display_hex(header.hash()), role=self.role)
        self.hinted_height = max(self.hinted_height, height)

    @property
    def best_height(self):
        best = self.chain.best
        return best.height if best is not None else 0

    # -- peers -----------------------------------------------------------------

    def peerReady(self, peer):
        self.peers.append(peer)

    def peerLost(self, peer, reason):
        if peer in self.peers:
            self.peers.remove(peer)

    def messageReceived(self, peer, message):
        handler = getattr(self, "_on_" + message.command, None)
        if handler is not None:
            handler(peer, message)

    def _believe(self, peer, header, block_hash=None, hint=True):
        """
        The header's ``Entry`` when newly believed (hinted if highest), None
        when already known, not placeable (asked about) or bad (peer dropped).
        """
        try:
            entry, new = self.chain.connect(header, int(self.clock.seconds()), block_hash)
        except UnknownParent:
            self.counts["unknown_parent"] += 1
            if self.chain.best is not None:
                peer.send(GetHeaders(self.chain.locator()))
            return None
        except BadHeader as e:
            self.counts["bad_headers"] += 1
            peer.fail(f"bad block header {hash_to_display_hex(header.hash())}: {e}")
            return None
        if not new:
            return None
        self._log.info("block {height} {hash} from peer {peer}", height=entry.height,
                       hash=hash_to_display_hex(entry.hash), peer=peer.peer, role=self.role)
        if hint:
            self._maybe_hint(entry)
        return entry

    def _maybe_hint(self, entry):
        if entry.height > self.hinted_height and entry is self.chain.best:
            self.hinted_height = entry.height
            self.counts["hints"] += 1
            self.hint(entry)

    def _request(self, peer, block_hash):
        now = self.clock.seconds()
        asked = self.requested.get(block_hash)
        if block_hash in self.blocks or (asked is not None and now - asked < REQUEST_TIMEOUT):
            return
        self.requested = {h: t for h, t in self.requested.items() if now - t < REQUEST_TIMEOUT}
        self.requested[block_hash] = now
        peer.send(GetData([InvItem(MSG_WITNESS_BLOCK, block_hash)]))

    def _on_inv(self, peer, message):
        hashes = [i.hash for i in message.items if i.type & ~MSG_WITNESS_FLAG == MSG_BLOCK]
        unknown = [h for h in hashes[:MAX_INV_BLOCKS] if h not in self.chain and h not in self.blocks]
        if not unknown or self.chain.best is None:
            return
        peer.send(GetHeaders(self.chain.locator()))
        for block_hash in unknown:
            self._request(peer, block_hash)

    def _on_headers(self, peer, message):
        newest = None
        for header in message.headers:
            if header.prev_hash not in self.chain:
                # Ask once for the missing link, whatever the count.
                self.counts["unknown_parent"] += 1
                if self.chain.best is not None:
                    peer.send(GetHeaders(self.chain.locator()))
                break
            entry = self._believe(peer, header, hint=False)
            if peer.closing:
                return
            if entry is not None:
                newest = entry
        if newest is not None and newest is self.chain.best:
            self._maybe_hint(newest)
            self._request(peer, newest.hash)

    def _on_cmpctblock(self, peer, message):
        entry = self._believe(peer, message.header)
        if entry is not None and entry is self.chain.best:
            self._request(peer, entry.hash)

    def _on_block(self, peer, message):
        block = RelayBlock(message.raw)
        self.requested.pop(block.hash, None)
        if block.hash in self.blocks:
            return
        try:
            check_proof_of_work(self.chain.network, block.header, block.hash)
        except BadHeader as e:
            peer.fail(f"block {hash_to_display_hex(block.hash)}: {e}")
            return
        if block.hash not in self.chain:
            self._believe(peer, block.header, block.hash)
            if block.hash not in self.chain:
                self._log.info("block {hash} from {peer} does not extend a known block; not relayed",
                               hash=hash_to_display_hex(block.hash), peer=peer.peer, role=self.role)
                return
        self._hold(block)
        self.counts["pushed"] += 1
        self.push(block.raw)

    def _on_getdata(self, peer, message):
        missing = []
        served = 0
        for item in message.items:
            kind = item.type & ~MSG_WITNESS_FLAG
            block = self.blocks.get(item.hash) if kind in (MSG_BLOCK, MSG_CMPCT_BLOCK) else None
            if block is None or served >= MAX_GETDATA_BLOCKS:
                missing.append(item)
                continue
            try:
                self._serve(peer, item.type, block)
            except DecodeError as e:
                self._log.warn("block {hash} cannot be served: {error}",
                               hash=hash_to_display_hex(block.hash), error=str(e), role=self.role)
                missing.append(item)
                continue
            served += 1
        if missing:
            peer.send(NotFound(missing))

    def _serve(self, peer, kind, block):
        if kind == MSG_WITNESS_BLOCK:
            peer.send_frame(encode_frame(self.magic, "block", block.raw))
        elif kind == MSG_CMPCT_BLOCK:
            peer.send(block.compact(_compact_version(peer)))
        else:
            peer.send(BlockMessage(block.legacy))
        name = _KIND_NAMES.get(kind, "block")
        self.counts[f"served {name}"] += 1
        self._log.info("block {hash} served to {peer} ({kind})", hash=hash_to_display_hex(block.hash),
                       peer=peer.peer, kind=name, role=self.role)

    def _on_getheaders(self, peer, message):
        start = next((h for h in message.locator if h in self.chain or h in self.blocks), None)
        if start is None:
            return
        by_parent = {b.prev_hash: b for b in self.blocks.values()}
        headers = []
        current = start
        while current in by_parent and len(headers) < MAX_HEADERS and current != message.stop:
            block = by_parent[current]
            headers.append(block.header)
            current = block.hash
        peer.send(Headers(headers))

    def _on_getblocktxn(self, peer, message):
        block = self.blocks.get(message.block_hash)
        if block is None:
            return
        try:
            peer.send(block.transactions(message.indexes, witness=_compact_version(peer) == 2))
        except IndexError:
            peer.fail("getblocktxn index beyond the block")
        except DecodeError as e:
            self._log.warn("block {hash} cannot be served: {error}",
                           hash=hash_to_display_hex(block.hash), error=str(e), role=self.role)

    # -- blocks from blockmasters and jobmasters (svr) ---------------------------

    def our_block(self, raw, source):
        """The pool's block (cmd 10): relay it to every peer at once."""
        return self._relay(raw, source, "pool")

    def foreign_block(self, raw, source):
        """A block another region's blockmaster saw (cmd 12): relay it too."""
        return self._relay(raw, source, "foreign")

    def _relay(self, raw, source, kind):
        started = self.clock.seconds()
        try:
            block = RelayBlock(raw)
            check_proof_of_work(self.chain.network, block.header, block.hash)
        except (DecodeError, BadHeader) as e:
            self._log.warn("{kind} block from {source} dropped: {error}", kind=kind, source=source,
                           error=str(e), role=self.role)
            return False
        if block.hash in self.blocks:
            return False
        self._hold(block)
        count = self.announce(block)
        self._log.info("{kind} block {hash} from {source} announced to {count} peer(s) in {ms:.2f} ms",
                       kind=kind, hash=hash_to_display_hex(block.hash), source=source, count=count,
                       ms=(self.clock.seconds() - started) * 1e3, role=self.role)
        try:
            entry, new = self.chain.connect(block.header, int(self.clock.seconds()), block.hash)
        except BadHeader:
            return True
        if new:
            self._maybe_hint(entry)
        return True

    def _hold(self, block):
        self.blocks[block.hash] = block
        while len(self.blocks) > KEEP_BLOCKS:
            self.blocks.popitem(last=False)

    def announce(self, block):
        """Tell every ready peer about ``block``; returns how many were told."""
        peers = list(self.peers)
        compact = [p for p in peers if p.compact_announce and p.compact_version][:self.broadcast_limit]
        frames = {}
        for peer in peers:
            if peer in compact:
                continue
            if peer.wants_headers:
                key = "headers"
                if key not in frames:
                    frames[key] = encode_frame(self.magic, "headers", Headers([block.header]).serialize())
            else:
                key = "inv"
                if key not in frames:
                    frames[key] = encode_frame(self.magic, "inv",
                                               Inv([InvItem(MSG_BLOCK, block.hash)]).serialize())
            peer.send_frame(frames[key])
        for peer in compact:
            try:
                peer.send(block.compact(peer.compact_version))
            except DecodeError as e:
                self._log.warn("no compact form of block {hash}: {error}",
                               hash=hash_to_display_hex(block.hash), error=str(e), role=self.role)
                peer.send(Headers([block.header]))
        self.counts["announced"] += 1
        return len(peers)


_KIND_NAMES = {MSG_BLOCK: "block", MSG_WITNESS_BLOCK: "witness block", MSG_CMPCT_BLOCK: "compact block"}


def _compact_version(peer):
    if peer.compact_version:
        return peer.compact_version
    remote = peer.remote
    return 2 if remote is not None and remote.services & NODE_WITNESS else 1
