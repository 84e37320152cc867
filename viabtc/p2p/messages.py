# -*- test-case-name: tests.p2p.test_messages -*-
"""
The payloads of the P2P messages bitpeer and blockmaster speak, pure.

Each message is an attrs value with a ``command`` (the envelope's name),
``serialize()`` and a ``parse(payload)`` classmethod; ``decode(command,
payload)`` picks the class, and returns None for a command we do not speak
(``addr``, ``tx``, ...), which peers may send and we ignore.

Parsing checks every count against the bytes left before looping or
allocating (a count of 2**32 headers in a 100-byte payload is refused on
the spot), applies the protocol's own limits (50,000 inventory items,
2,000 headers, 101 locator hashes, a 256-byte user agent) and rejects
trailing bytes.  Any malformation is a ``P2PError``, never another
exception: the fuzz tests hold the codec to that.

Hashes are internal order, as on the wire.  Transactions inside
``cmpctblock`` and ``blocktxn`` are kept as their raw bytes (parsed once to
find where each ends): what arrives is forwarded unchanged.
"""

import struct

import attrs

from viabtc.bitcoin.header import HEADER_SIZE, BlockHeader
from viabtc.bitcoin.serialize import DecodeError, compact_size, read_compact_size
from viabtc.bitcoin.transaction import Transaction
from viabtc.p2p.framing import P2PError

#: The smallest transaction ``Transaction.parse`` accepts (one input, no
#: outputs): the floor used to bound transaction counts.
MIN_TX_SIZE = 51

#: The protocol version we speak (Core 0.21+: BIP339 wtxidrelay).
PROTOCOL_VERSION = 70016
#: Below this a peer cannot do what we need (sendheaders, BIP152).
MIN_PEER_VERSION = 70014
#: BIP339 and BIP155 (wtxidrelay, sendaddrv2) are negotiated from here on.
WTXID_RELAY_VERSION = 70016

NODE_NETWORK = 1
NODE_WITNESS = 1 << 3

# Inventory types (protocol.h), witness forms with MSG_WITNESS_FLAG.
MSG_TX = 1
MSG_BLOCK = 2
MSG_CMPCT_BLOCK = 4
MSG_WITNESS_FLAG = 1 << 30
MSG_WITNESS_BLOCK = MSG_BLOCK | MSG_WITNESS_FLAG
MSG_WITNESS_TX = MSG_TX | MSG_WITNESS_FLAG

MAX_INV_SIZE = 50_000
MAX_HEADERS = 2_000
MAX_LOCATOR = 101
MAX_USER_AGENT = 256

_U16BE = struct.Struct(">H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_SHORT_ID_SIZE = 6


class _Reader:
    """Bounds-checked reads over one payload; every failure is a ``P2PError``."""

    def __init__(self, command, data):
        self.command = command
        self.data = data
        self.offset = 0

    @property
    def left(self):
        return len(self.data) - self.offset

    def _fail(self, what):
        raise P2PError(f"{self.command}: {what} at offset {self.offset}")

    def take(self, n):
        if n > self.left:
            self._fail(f"{n} bytes wanted, {self.left} left")
        start = self.offset
        self.offset += n
        return self.data[start:self.offset]

    def unpack(self, fmt):
        return fmt.unpack(self.take(fmt.size))[0]

    def compact(self):
        try:
            n, self.offset = read_compact_size(self.data, self.offset)
        except DecodeError as e:
            self._fail(str(e))
        return n

    def count(self, limit, item_size, what):
        """A CompactSize count of items at least ``item_size`` bytes each."""
        n = self.compact()
        if n > limit:
            self._fail(f"{n} {what} (at most {limit})")
        if n * item_size > self.left:
            self._fail(f"{n} {what} cannot fit in {self.left} bytes")
        return n

    def index(self, previous, what):
        """The next of BIP152's differentially encoded indexes (after ``previous``), at most 0xFFFF."""
        index = previous + self.compact() + 1
        if index > 0xFFFF:
            self._fail(f"{what} {index} out of range")
        return index

    def var_bytes(self, limit, what):
        n = self.compact()
        if n > limit:
            self._fail(f"{what} of {n} bytes (at most {limit})")
        return self.take(n)

    def transaction(self):
        """One transaction's raw bytes (parsed to find its end)."""
        start = self.offset
        try:
            _tx, self.offset = Transaction.parse(self.data, start)
        except DecodeError as e:
            self.offset = start
            self._fail(f"bad transaction: {e}")
        return self.data[start:self.offset]

    def done(self):
        if self.left:
            self._fail(f"{self.left} trailing bytes")


def _hash_list(hashes):
    return compact_size(len(hashes)) + b"".join(hashes)


def _check_hashes(hashes):
    if any(len(h) != 32 for h in hashes):
        raise ValueError("hashes are 32 bytes")


# -- handshake and keep-alive --------------------------------------------------


@attrs.frozen
class NetAddress:
    """An address inside ``version`` (no time field): services, 16-byte IP, port."""

    services: int = 0
    ip: bytes = b"\x00" * 10 + b"\xff\xff" + b"\x00" * 4
    port: int = 0

    def serialize(self):
        return _U64.pack(self.services) + self.ip + _U16BE.pack(self.port)

    @classmethod
    def read(cls, reader):
        return cls(reader.unpack(_U64), reader.take(16), reader.unpack(_U16BE))


@attrs.frozen
class Version:
    command = "version"

    version: int = PROTOCOL_VERSION
    services: int = NODE_WITNESS
    timestamp: int = 0
    addr_recv: NetAddress = NetAddress()
    addr_from: NetAddress = NetAddress()
    nonce: int = 0
    user_agent: bytes = b"/viabtc:0.1/"
    start_height: int = 0
    relay: bool = False

    def serialize(self):
        return b"".join([
            _I32.pack(self.version), _U64.pack(self.services), _I64.pack(self.timestamp),
            self.addr_recv.serialize(), self.addr_from.serialize(), _U64.pack(self.nonce),
            compact_size(len(self.user_agent)), self.user_agent, _I32.pack(self.start_height),
            b"\x01" if self.relay else b"\x00",
        ])

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        version = r.unpack(_I32)
        services = r.unpack(_U64)
        timestamp = r.unpack(_I64)
        addr_recv = NetAddress.read(r)
        # Everything after addr_recv is optional for very old versions; we
        # need none of them to talk, so an old peer is refused later, by
        # version number, not here.
        if not r.left:
            return cls(version, services, timestamp, addr_recv)
        addr_from = NetAddress.read(r)
        nonce = r.unpack(_U64)
        user_agent = r.var_bytes(MAX_USER_AGENT, "user agent")
        start_height = r.unpack(_I32)
        relay = bool(r.take(1)[0]) if r.left else True
        # Newer fields may follow (Core ignores them): no trailing check.
        return cls(version, services, timestamp, addr_recv, addr_from, nonce, user_agent,
                   start_height, relay)


def _empty(name, class_name, doc):
    @attrs.frozen
    class Empty:
        command = name

        def serialize(self):
            return b""

        @classmethod
        def parse(cls, payload):
            # Core ignores payload bytes of these messages; so do we.
            return cls()

    Empty.__name__ = Empty.__qualname__ = class_name
    Empty.__doc__ = doc
    return Empty


Verack = _empty("verack", "Verack", "The other side accepted our ``version``.")
SendHeaders = _empty("sendheaders", "SendHeaders", "BIP130: announce new blocks to me with ``headers``.")
WtxidRelay = _empty("wtxidrelay", "WtxidRelay",
                    "BIP339: announce transactions by wtxid (sent before verack).")
SendAddrV2 = _empty("sendaddrv2", "SendAddrV2", "BIP155: I understand ``addrv2`` (sent before verack).")


def _nonce_message(name, doc):
    @attrs.frozen
    class NonceMessage:
        command = name

        nonce: int = 0

        def serialize(self):
            return _U64.pack(self.nonce)

        @classmethod
        def parse(cls, payload):
            r = _Reader(cls.command, payload)
            nonce = r.unpack(_U64) if payload else 0
            r.done()
            return cls(nonce)

    NonceMessage.__name__ = NonceMessage.__qualname__ = name.capitalize()
    NonceMessage.__doc__ = doc
    return NonceMessage


Ping = _nonce_message("ping", "BIP31 keep-alive; answered with a ``pong`` of the same nonce.")
Pong = _nonce_message("pong", "The answer to a ``ping``.")


@attrs.frozen
class SendCmpct:
    """BIP152: ``announce`` = high-bandwidth mode (push ``cmpctblock`` unasked)."""

    command = "sendcmpct"

    announce: bool
    version: int

    def serialize(self):
        return (b"\x01" if self.announce else b"\x00") + _U64.pack(self.version)

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        announce = r.take(1)[0]
        version = r.unpack(_U64)
        r.done()
        return cls(bool(announce), version)


@attrs.frozen
class FeeFilter:
    """BIP133: do not announce me transactions below this fee rate (sat/kvB)."""

    command = "feefilter"

    feerate: int

    def serialize(self):
        return _I64.pack(self.feerate)

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        feerate = r.unpack(_I64)
        r.done()
        return cls(feerate)


# -- inventory and headers --------------------------------------------------------


@attrs.frozen
class InvItem:
    """One inventory entry: type (``MSG_*``) and hash (internal order)."""

    type: int
    hash: bytes

    def serialize(self):
        return _U32.pack(self.type) + self.hash


def _inventory(name, class_name, doc):
    @attrs.frozen
    class Inventory:
        command = name

        items: tuple = attrs.field(converter=tuple)

        def serialize(self):
            if any(len(i.hash) != 32 for i in self.items):
                raise ValueError("inventory hashes are 32 bytes")
            return compact_size(len(self.items)) + b"".join(i.serialize() for i in self.items)

        @classmethod
        def parse(cls, payload):
            r = _Reader(cls.command, payload)
            n = r.count(MAX_INV_SIZE, 36, "inventory items")
            items = tuple(InvItem(r.unpack(_U32), r.take(32)) for _ in range(n))
            r.done()
            return cls(items)

    Inventory.__name__ = Inventory.__qualname__ = class_name
    Inventory.__doc__ = doc
    return Inventory


Inv = _inventory("inv", "Inv", "Announces objects (blocks, transactions) by hash.")
GetData = _inventory("getdata", "GetData", "Asks for the objects named.")
NotFound = _inventory("notfound", "NotFound", "Answers ``getdata`` for objects the sender does not have.")


@attrs.frozen
class Headers:
    """Block headers (each followed on the wire by a transaction count of 0)."""

    command = "headers"

    headers: tuple = attrs.field(converter=tuple)

    def serialize(self):
        return compact_size(len(self.headers)) + b"".join(h.serialize() + b"\x00" for h in self.headers)

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        n = r.count(MAX_HEADERS, HEADER_SIZE + 1, "headers")
        headers = []
        for _ in range(n):
            header = BlockHeader.parse(r.take(HEADER_SIZE))
            if r.compact() != 0:
                r._fail("a header's transaction count must be 0")
            headers.append(header)
        r.done()
        return cls(headers)


@attrs.frozen
class GetHeaders:
    """Asks for headers after the first ``locator`` hash the peer knows, up to ``stop``."""

    command = "getheaders"

    locator: tuple = attrs.field(converter=tuple)
    stop: bytes = bytes(32)
    version: int = PROTOCOL_VERSION

    def serialize(self):
        _check_hashes(self.locator + (self.stop,))
        return _U32.pack(self.version) + _hash_list(self.locator) + self.stop

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        version = r.unpack(_U32)
        n = r.count(MAX_LOCATOR, 32, "locator hashes")
        locator = tuple(r.take(32) for _ in range(n))
        stop = r.take(32)
        r.done()
        return cls(locator, stop, version)


# -- blocks ----------------------------------------------------------------------


@attrs.frozen
class BlockMessage:
    """
    A whole block, kept as its bytes: relaying never re-serialises it.
    Only the header is looked at here; ``viabtc.bitcoin.block.parse_block``
    checks the rest when something needs the transactions.
    """

    command = "block"

    raw: bytes

    @property
    def header(self):
        return BlockHeader.parse(self.raw[:HEADER_SIZE])

    def serialize(self):
        return self.raw

    @classmethod
    def parse(cls, payload):
        if len(payload) < HEADER_SIZE + 1 + MIN_TX_SIZE:
            raise P2PError(f"block: {len(payload)} bytes cannot hold a header and a coinbase")
        return cls(payload)


def _differential(indexes):
    """BIP152's differential encoding of increasing absolute ``indexes``: each as its gap to the one before."""
    previous = -1
    parts = []
    for i in indexes:
        parts.append(compact_size(i - previous - 1))
        previous = i
    return parts


@attrs.frozen
class PrefilledTx:
    """A transaction sent whole inside a ``cmpctblock``: its block index and raw bytes."""

    index: int
    raw: bytes


@attrs.frozen
class CmpctBlock:
    """
    BIP152 ``HeaderAndShortIDs``: the header, the SipHash key nonce, the
    48-bit short ids (ints) of the transactions not sent, and the prefilled
    transactions with absolute indexes (differentially encoded on the wire).
    """

    command = "cmpctblock"

    header: BlockHeader
    nonce: int
    short_ids: tuple = attrs.field(converter=tuple)
    prefilled: tuple = attrs.field(converter=tuple)

    def serialize(self):
        parts = [self.header.serialize(), _U64.pack(self.nonce), compact_size(len(self.short_ids))]
        parts.extend(s.to_bytes(_SHORT_ID_SIZE, "little") for s in self.short_ids)
        parts.append(compact_size(len(self.prefilled)))
        for step, tx in zip(_differential(tx.index for tx in self.prefilled), self.prefilled):
            parts += (step, tx.raw)
        return b"".join(parts)

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        header = BlockHeader.parse(r.take(HEADER_SIZE))
        nonce = r.unpack(_U64)
        n = r.count(len(payload), _SHORT_ID_SIZE, "short ids")
        short_ids = tuple(int.from_bytes(r.take(_SHORT_ID_SIZE), "little") for _ in range(n))
        m = r.count(len(payload), 1 + MIN_TX_SIZE, "prefilled transactions")
        prefilled = []
        index = -1
        for _ in range(m):
            index = r.index(index, "prefilled index")
            prefilled.append(PrefilledTx(index, r.transaction()))
        r.done()
        if n + m == 0 or (prefilled and prefilled[-1].index >= n + m):
            raise P2PError(f"cmpctblock: prefilled indexes do not fit {n + m} transactions")
        return cls(header, nonce, short_ids, prefilled)


@attrs.frozen
class GetBlockTxn:
    """BIP152: asks for the transactions at ``indexes`` (absolute, increasing) of a block."""

    command = "getblocktxn"

    block_hash: bytes
    indexes: tuple = attrs.field(converter=tuple)

    def serialize(self):
        _check_hashes((self.block_hash,))
        return self.block_hash + compact_size(len(self.indexes)) + b"".join(_differential(self.indexes))

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        block_hash = r.take(32)
        n = r.count(len(payload), 1, "indexes")
        indexes = []
        index = -1
        for _ in range(n):
            index = r.index(index, "index")
            indexes.append(index)
        r.done()
        return cls(block_hash, indexes)


@attrs.frozen
class BlockTxn:
    """BIP152: the transactions a ``getblocktxn`` asked for, raw, in order."""

    command = "blocktxn"

    block_hash: bytes
    transactions: tuple = attrs.field(converter=tuple)

    def serialize(self):
        _check_hashes((self.block_hash,))
        return self.block_hash + compact_size(len(self.transactions)) + b"".join(self.transactions)

    @classmethod
    def parse(cls, payload):
        r = _Reader(cls.command, payload)
        block_hash = r.take(32)
        n = r.count(len(payload), MIN_TX_SIZE, "transactions")
        transactions = tuple(r.transaction() for _ in range(n))
        r.done()
        return cls(block_hash, transactions)


MESSAGES = {
    cls.command: cls
    for cls in (Version, Verack, Ping, Pong, SendHeaders, SendCmpct, FeeFilter, WtxidRelay,
                SendAddrV2, Inv, GetData, NotFound, Headers, GetHeaders, BlockMessage, CmpctBlock,
                GetBlockTxn, BlockTxn)
}


def decode(command, payload):
    """
    The message for ``command``'s ``payload``; None for a command we do
    not speak (ignored, as Core ignores unknown messages); ``P2PError``
    when the payload is malformed.
    """
    cls = MESSAGES.get(command)
    if cls is None:
        return None
    try:
        return cls.parse(payload)
    except DecodeError as e:
        raise P2PError(f"{command}: {e}") from None
