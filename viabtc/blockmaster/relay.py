# -*- test-case-name: tests.blockmaster.test_relay -*-
"""
What a blockmaster does with a block (ref §6.1, §6.2), apart from sockets.

Two paths, as in the seed:

- a pool block (cmd 10 from the jobmaster, or a rebuilt cmd 13): pushed
  raw (cmd 10) to every bitpeer, as a thin block (cmd 13) to every peer
  blockmaster, remembered as seen, then submitted to the local node;
- a foreign block (cmd 12 from a bitpeer, or a rebuilt cmd 14): ignored
  when its BIP34 height is not above the local node's; else pushed raw
  (cmd 12) to the bitpeers, as cmd 14 to the blockmasters, remembered,
  submitted.

A thin block whose transactions are not all in the cache is parked for
``request_timeout`` seconds (the seed's state table) while the missing
ones are asked for (cmd 15, or cmd 18 in compact mode) on the connection
it came on.  Nothing is pushed or submitted before the transactions make
the header's merkle root (ref §12.16): a full block that does not is
dropped; a thin block that does has every transaction asked for once
(a colliding key picked a wrong one), then is dropped.

Links are anything with ``send(packet) -> bool``; the service owns them.
"""

import collections
import os

import attrs
from twisted.logger import Logger

from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.serialize import DecodeError, read_bip34_height
from viabtc.bitcoin.transaction import Transaction
from viabtc.p2p.thin import (
    COMPACT_BLOCK,
    COMPACT_TX,
    THIN_SUBMIT,
    THIN_UPDATE,
    CachedTx,
    CompactBlock,
    Mismatch,
    Missing,
    Rebuilt,
    ThinBlock,
    ThinBlockError,
    assemble,
    decode_index_reply,
    decode_index_request,
    decode_tx_reply,
    decode_tx_request,
    encode_index_reply,
    encode_index_request,
    encode_tx_reply,
    encode_tx_request,
    reconstruct,
    reconstruct_compact,
    split_block,
)
from viabtc.rpc.codec import Command, Packet, PacketType

POOL = "pool"
FOREIGN = "foreign"

_KIND_OF_THIN = {THIN_SUBMIT: POOL, THIN_UPDATE: FOREIGN}
_THIN_OF_KIND = {POOL: THIN_SUBMIT, FOREIGN: THIN_UPDATE}
_RAW_OF_KIND = {POOL: Command.SUBMIT_BLOCK, FOREIGN: Command.UPDATE_BLOCK}

#: Block hashes remembered as seen (the seed's set grew for ever, ref §12.17).
SEEN_LIMIT = 4096
#: Recent blocks kept to answer requests for their transactions.
RECENT_LIMIT = 16
#: Thin blocks waiting for transactions at once; more are dropped (a flood
#: of thin blocks naming unknown transactions must not hold megabytes each).
PENDING_LIMIT = 64


@attrs.define
class _Pending:
    """A thin or compact block waiting for transactions (the seed's state entry)."""

    kind: str
    message: object
    conn: object
    compact: bool
    asked: tuple
    full: bool
    supplied: dict = attrs.Factory(dict)
    timer: object = None


def _display(block_hash):
    return hash_to_display_hex(block_hash)


class Relay:
    """
    The relay of one blockmaster.  ``cache`` a ``TxCache``; ``clock`` an
    ``IReactorTime``; ``submit(block, block_hash)`` hands a checked block
    to the local node; ``local_height()`` the node's height or None;
    ``bitpeers()`` the bitpeer links; ``blockmasters()`` ``(link,
    compact)`` pairs.
    """

    _log = Logger()

    def __init__(self, *, cache, clock, submit, local_height, bitpeers, blockmasters,
                 request_timeout=10.0, nonce=None, role="blockmaster"):
        self.cache = cache
        self.clock = clock
        self._submit = submit
        self._local_height = local_height
        self._bitpeers = bitpeers
        self._blockmasters = blockmasters
        self.request_timeout = request_timeout
        self._nonce = nonce or (lambda: int.from_bytes(os.urandom(8), "little"))
        self.role = role
        self.seen = collections.OrderedDict()
        self.recent = collections.OrderedDict()
        self._recent_keys = {}
        self.pending = {}
        self._next_sequence = 0
        self._last_digest = {POOL: None, FOREIGN: None}
        #: (kind, display hash) of every block handed to the node, latest last
        self.submitted = collections.deque(maxlen=256)
        #: display hashes of blocks dropped because their transactions did not match the header
        self.mismatched = collections.deque(maxlen=256)
        self.counters = collections.Counter()
        #: accepted blocks by (kind, form): form "full" (cmd 10/12), "thin" (cmd 13/14), "compact" (cmd 17)
        self.accepted = collections.Counter()
        #: transaction requests by (command, outcome): 15 or 18; "sent", "answered", "timed_out", "served"
        self.requests = collections.Counter()

    # -- full blocks (cmd 10 / cmd 12) ---------------------------------------

    def full_block(self, kind, raw, origin=None):
        """A raw pool (cmd 10) or foreign (cmd 12) block from ``origin`` (a link, or None)."""
        digest = sha256d(raw)
        if digest == self._last_digest[kind]:
            return
        self._last_digest[kind] = digest
        try:
            header, txs = split_block(raw)
        except ThinBlockError as e:
            self.counters["bad_block"] += 1
            self._log.warn("dropped {kind} block: {error}", kind=kind, error=str(e), role=self.role)
            return
        result = assemble(header, txs[0].raw, txs[1:])
        if isinstance(result, Mismatch):
            self._mismatch(kind, sha256d(header), result)
            return
        self._accept(kind, result, origin)

    # -- packets from peer blockmasters -------------------------------------

    def packet(self, conn, packet):
        """
        A cmd 13/14/15/17/18 packet on ``conn`` (anything with ``send``; None
        for a datagram, which cannot be answered).  Malformed bodies are
        logged and dropped.
        """
        if conn is None and packet.command in (Command.THIN_BLOCK_TX, COMPACT_TX):
            self._log.warn("ignored command {command} by datagram: requests and replies need a "
                           "connection", command=packet.command, role=self.role)
            return
        try:
            if packet.command in (THIN_SUBMIT, THIN_UPDATE):
                self._thin(conn, _KIND_OF_THIN[packet.command], ThinBlock.decode(packet.body))
            elif packet.command == COMPACT_BLOCK:
                compact = CompactBlock.decode(packet.body)
                self._thin(conn, _KIND_OF_THIN[compact.kind], compact)
            elif packet.command == Command.THIN_BLOCK_TX and packet.pkg_type == PacketType.REQUEST:
                self._answer_keys(conn, packet)
            elif packet.command == COMPACT_TX and packet.pkg_type == PacketType.REQUEST:
                self._answer_indexes(conn, packet)
            elif packet.command in (Command.THIN_BLOCK_TX, COMPACT_TX):
                self._reply(packet)
            else:
                self._log.warn("ignored command {command} from {peer}", command=packet.command,
                               peer=_peer(conn), role=self.role)
        except ThinBlockError as e:
            self.counters["bad_message"] += 1
            self._log.warn("dropped command {command} from {peer}: {error}", command=packet.command,
                           peer=_peer(conn), error=str(e), role=self.role)

    def _thin(self, conn, kind, message):
        block_hash = message.block_hash
        if block_hash in self.seen:
            return
        compact = isinstance(message, CompactBlock)
        pending = _Pending(kind, message, conn, compact, (), False)
        self._settle(pending, self._rebuild(pending))

    def _rebuild(self, pending):
        message = pending.message
        if pending.compact:
            pool = () if pending.full else self.cache.values()
            return reconstruct_compact(message, pool, pending.supplied)
        lookup = (lambda key: ()) if pending.full else self.cache.lookup
        return reconstruct(message, lookup, pending.supplied)

    def _settle(self, pending, result):
        block_hash = pending.message.block_hash
        if isinstance(result, Rebuilt):
            self._accept(pending.kind, result, pending.conn, form="compact" if pending.compact else "thin")
        elif isinstance(result, Missing):
            if pending.full or pending.asked:
                self._log.warn("block {hash}: {count} transaction(s) still missing after the peer's "
                               "reply; dropped", hash=_display(block_hash),
                               count=len(result.positions), role=self.role)
                self.counters["incomplete"] += 1
            else:
                self._ask(pending, result.positions)
        elif pending.full or pending.conn is None or not _tx_count(pending.message):
            self._mismatch(pending.kind, block_hash, result)
        else:
            self._log.warn("block {hash}: {reason}; asking the peer for every transaction",
                           hash=_display(block_hash), reason=result.reason, role=self.role)
            pending.full = True
            pending.supplied = {}
            self._ask(pending, tuple(range(_tx_count(pending.message))))

    def _ask(self, pending, positions):
        if pending.conn is None:
            self._log.warn("block {hash}: {count} transaction(s) missing and no connection to ask "
                           "(datagram); dropped", hash=_display(pending.message.block_hash),
                           count=len(positions), role=self.role)
            return
        if len(self.pending) >= PENDING_LIMIT:
            self.counters["pending_full"] += 1
            self._log.warn("block {hash}: {limit} thin blocks already wait for transactions; dropped",
                           hash=_display(pending.message.block_hash), limit=PENDING_LIMIT,
                           role=self.role)
            return
        self._next_sequence = (self._next_sequence % 0xFFFFFFFF) + 1
        sequence = self._next_sequence
        message = pending.message
        if pending.compact:
            pending.asked = positions
            packet = Packet(COMPACT_TX, encode_index_request(message.block_hash, positions),
                            PacketType.REQUEST, sequence)
        else:
            keys = tuple(dict.fromkeys(message.keys[i] for i in positions))
            pending.asked = keys
            packet = Packet(Command.THIN_BLOCK_TX, encode_tx_request(keys), PacketType.REQUEST, sequence)
        pending.timer = self.clock.callLater(self.request_timeout, self._expire, sequence)
        self.pending[sequence] = pending
        self.counters["requests"] += 1
        self.requests[(packet.command, "sent")] += 1
        self._log.info("block {hash}: asking {peer} for {count} transaction(s) (sequence {sequence})",
                       hash=_display(message.block_hash), peer=_peer(pending.conn),
                       count=len(pending.asked), sequence=sequence, role=self.role)
        pending.conn.send(packet)

    def _expire(self, sequence):
        pending = self.pending.pop(sequence, None)
        if pending is not None:
            self.counters["request_timeouts"] += 1
            self.requests[(COMPACT_TX if pending.compact else Command.THIN_BLOCK_TX, "timed_out")] += 1
            self._log.warn("block {hash}: no transactions from {peer} within {timeout:g} s; dropped",
                           hash=_display(pending.message.block_hash), peer=_peer(pending.conn),
                           timeout=self.request_timeout, role=self.role)

    def _reply(self, packet):
        pending = self.pending.pop(packet.sequence, None)
        if pending is None:
            self._log.warn("reply {sequence} matches no request (late or unknown)",
                           sequence=packet.sequence, role=self.role)
            return
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        if pending.compact != (packet.command == COMPACT_TX):
            raise ThinBlockError(f"reply command {packet.command} does not match the request")
        self.requests[(packet.command, "answered")] += 1
        if pending.compact:
            block_hash, raws = decode_index_reply(packet.body)
            if block_hash != pending.message.block_hash or len(raws) != len(pending.asked):
                raise ThinBlockError("index reply does not answer the request")
            for position, raw in zip(pending.asked, raws):
                pending.supplied[position] = CachedTx.parse(raw)
        else:
            asked = set(pending.asked)
            for raw in decode_tx_reply(packet.body):
                tx = CachedTx.parse(raw)
                if tx.key in asked:
                    pending.supplied[tx.key] = tx
        self._settle(pending, self._rebuild(pending))

    def _answer_keys(self, conn, packet):
        keys = decode_tx_request(packet.body)
        raws = []
        for key in keys:
            raw = self._recent_keys.get(key) or self.cache.get_raw(key)
            if raw is not None:
                raws.append(raw)
        self._log.info("{peer} asked for {count} transaction(s); sending {sent}", peer=_peer(conn),
                       count=len(keys), sent=len(raws), role=self.role)
        conn.send(packet.reply(encode_tx_reply(raws)))
        self.requests[(packet.command, "served")] += 1

    def _answer_indexes(self, conn, packet):
        block_hash, indexes = decode_index_request(packet.body)
        txs = self.recent.get(block_hash)
        if txs is None or any(i >= len(txs) for i in indexes):
            raws = ()
        else:
            raws = tuple(txs[i].raw for i in indexes)
        conn.send(packet.reply(encode_index_reply(block_hash, raws)))
        self.requests[(packet.command, "served")] += 1

    # -- accepted blocks ---------------------------------------------------

    def _mismatch(self, kind, block_hash, result):
        self.counters["mismatch"] += 1
        self.mismatched.append(_display(block_hash))
        self._log.error("{kind} block {hash} NOT relayed or submitted: {reason}", kind=kind,
                        hash=_display(block_hash), reason=result.reason, role=self.role)

    def _accept(self, kind, rebuilt, origin, form="full"):
        header = rebuilt.block[:80]
        block_hash = sha256d(header)
        display = _display(block_hash)
        if block_hash in self.seen:
            return
        if kind == FOREIGN:
            height = _coinbase_height(rebuilt.txs[0].raw)
            local = self._local_height()
            if height is not None and local is not None and height <= local:
                self._log.info("foreign block {hash} at height {height} is not above the node's "
                               "{local}; ignored", hash=display, height=height, local=local,
                               role=self.role)
                return
        self.seen[block_hash] = None
        while len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)
        raw_packet = Packet(_RAW_OF_KIND[kind], rebuilt.block)
        pushed = sum(1 for link in self._bitpeers() if link is not origin and link.send(raw_packet))
        thin = ThinBlock.from_block(header, rebuilt.txs)
        thin_packet = Packet(_THIN_OF_KIND[kind], thin.encode())
        compact_packet = None
        relays = 0
        for link, compact in self._blockmasters():
            if link is origin:
                continue
            if compact:
                if compact_packet is None:
                    body = CompactBlock.from_block(_THIN_OF_KIND[kind], header, rebuilt.txs,
                                                   self._nonce()).encode()
                    compact_packet = Packet(COMPACT_BLOCK, body)
                relays += link.send(compact_packet)
            else:
                relays += link.send(thin_packet)
        self.counters[f"{kind}_blocks"] += 1
        self.accepted[(kind, form)] += 1
        self._log.info("{kind} block {hash} ({count} transactions{how}): pushed to {pushed} "
                       "bitpeer(s), thin to {relays} blockmaster(s), submitting",
                       kind=kind, hash=display, count=len(rebuilt.txs),
                       how=f", rebuilt from a {form} block" if form != "full" else "", pushed=pushed,
                       relays=relays, role=self.role)
        self.submitted.append((kind, display))
        self._submit(rebuilt.block, block_hash)
        # After the block has left: its transactions answer later requests.
        self._remember(block_hash, rebuilt.txs)

    def _remember(self, block_hash, txs):
        now = self.clock.seconds()
        for tx in txs[1:]:
            self.cache.add(tx, now)
        self.recent[block_hash] = tuple(txs[1:])
        for tx in txs[1:]:
            self._recent_keys[tx.key] = tx.raw
        while len(self.recent) > RECENT_LIMIT:
            _, old = self.recent.popitem(last=False)
            for tx in old:
                if self._recent_keys.get(tx.key) is tx.raw:
                    del self._recent_keys[tx.key]

    def stop(self):
        """Cancel the requests in flight."""
        for pending in self.pending.values():
            if pending.timer is not None and pending.timer.active():
                pending.timer.cancel()
        self.pending.clear()


def _tx_count(message):
    return len(message.short_ids) if isinstance(message, CompactBlock) else len(message.keys)


def _coinbase_height(coinbase):
    """The BIP34 height of a coinbase, or None when it carries none."""
    try:
        tx, _ = Transaction.parse(coinbase)
        return read_bip34_height(tx.inputs[0].script_sig)
    except (DecodeError, IndexError):
        return None


def _peer(conn):
    return getattr(conn, "peer", None) or getattr(conn, "name", None) or repr(conn)
