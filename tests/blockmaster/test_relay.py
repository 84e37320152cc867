"""
Tests for ``viabtc.blockmaster.relay`` on a ``task.Clock``: both paths,
the packets each link gets, requests and their 10 s state, collisions and
mismatches (never submitted), dedupe and the foreign-height rule.  Links
are stand-ins recording what is sent (``Link``); blocks are the segwit
test block of ``tests.p2p.test_thin`` and real mainnet/testnet blocks.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.bitcoin.vectors import block_bytes
from tests.p2p.blocks import segwit_block
from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.blockmaster.relay import FOREIGN, POOL, Relay
from viabtc.blockmaster.txcache import TxCache
from viabtc.p2p.thin import (
    COMPACT_BLOCK,
    COMPACT_TX,
    CachedTx,
    CompactBlock,
    ThinBlock,
    decode_index_request,
    decode_tx_reply,
    decode_tx_request,
    encode_index_reply,
    encode_tx_reply,
    encode_tx_request,
    split_block,
)
from viabtc.rpc.codec import Command, Packet, PacketType


class Link:
    """A stand-in link or connection: records the packets sent on it."""

    def __init__(self, name="peer", up=True):
        self.peer = name
        self.up = up
        self.sent = []

    def send(self, packet):
        if self.up:
            self.sent.append(packet)
        return self.up


class RelayCase(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.cache = TxCache()
        self.height = 100
        self.bitpeer = Link("bitpeer")
        self.peer = Link("blockmaster")
        self.compact_peer = None
        self.submits = []
        self.relay = Relay(cache=self.cache, clock=self.clock, submit=self.submit,
                           local_height=lambda: self.height, bitpeers=lambda: [self.bitpeer],
                           blockmasters=self.blockmasters, nonce=lambda: 42)
        self.raw = segwit_block()
        self.header, self.txs = split_block(self.raw)
        self.hash = sha256d(self.header)

    def blockmasters(self):
        links = [(self.peer, False)]
        if self.compact_peer is not None:
            links.append((self.compact_peer, True))
        return links

    def submit(self, block, block_hash):
        self.submits.append((block, block_hash))

    def thin_packet(self, command=13, txs=None):
        return Packet(command, ThinBlock.from_block(self.header, txs or self.txs).encode())


class FullBlockTests(RelayCase):
    def test_pool_block_goes_everywhere_then_to_the_node(self):
        self.relay.full_block(POOL, self.raw)
        self.assertEqual([(p.command, p.body) for p in self.bitpeer.sent], [(10, self.raw)])
        self.assertEqual([(p.command, p.body) for p in self.peer.sent],
                         [(13, ThinBlock.from_block(self.header, self.txs).encode())])
        self.assertEqual(self.submits, [(self.raw, self.hash)])
        self.assertIn(self.hash, self.relay.seen)
        self.assertEqual(len(self.cache), 6)

    def test_same_body_twice_is_handled_once(self):
        self.relay.full_block(POOL, self.raw)
        self.relay.full_block(POOL, self.raw)
        self.assertEqual(len(self.submits), 1)

    def test_merkle_mismatch_is_never_relayed_nor_submitted(self):
        raw = bytearray(self.raw)
        raw[-5] ^= 1  # inside the last transaction
        self.relay.full_block(POOL, bytes(raw))
        self.assertEqual((self.submits, self.bitpeer.sent, self.peer.sent), ([], [], []))
        self.assertEqual(list(self.relay.mismatched), [hash_to_display_hex(self.hash)])

    def test_garbage_is_dropped(self):
        self.relay.full_block(POOL, b"\x00" * 100)
        self.assertEqual(self.relay.counters["bad_block"], 1)

    def test_foreign_block_not_above_the_node_is_ignored(self):
        self.height = 500  # the block's BIP34 height
        self.relay.full_block(FOREIGN, self.raw)
        self.assertEqual(self.submits, [])
        self.height = 499
        self.relay.full_block(FOREIGN, self.raw + b"")  # same body: deduplicated
        self.assertEqual(self.submits, [])
        self.relay._last_digest[FOREIGN] = None
        self.relay.full_block(FOREIGN, self.raw, origin=self.bitpeer)
        self.assertEqual(len(self.submits), 1)
        self.assertEqual(self.bitpeer.sent, [])  # not echoed to the bitpeer it came from
        self.assertEqual([p.command for p in self.peer.sent], [14])

    def test_compact_peers_get_the_compact_form(self):
        self.compact_peer = Link("ours")
        self.relay.full_block(POOL, self.raw)
        [packet] = self.compact_peer.sent
        self.assertEqual(packet.command, COMPACT_BLOCK)
        self.assertEqual(CompactBlock.decode(packet.body),
                         CompactBlock.from_block(13, self.header, self.txs, 42))
        self.assertEqual([p.command for p in self.peer.sent], [13])


class ThinTests(RelayCase):
    def test_complete_thin_block_is_rebuilt_and_submitted(self):
        for tx in self.txs[1:]:
            self.cache.add(tx, 0)
        conn = Link("sender")
        self.relay.packet(conn, self.thin_packet())
        self.assertEqual(self.submits, [(self.raw, self.hash)])
        self.assertEqual(conn.sent, [])
        # Seen: the same thin block again does nothing.
        self.relay.packet(conn, self.thin_packet())
        self.assertEqual(len(self.submits), 1)

    def test_missing_transactions_are_requested_on_the_same_connection(self):
        for tx in self.txs[3:]:
            self.cache.add(tx, 0)
        conn = Link("sender")
        self.relay.packet(conn, self.thin_packet())
        [request] = conn.sent
        self.assertEqual((request.command, request.pkg_type), (15, PacketType.REQUEST))
        self.assertEqual(decode_tx_request(request.body), (self.txs[1].key, self.txs[2].key))
        reply = request.reply(encode_tx_reply([self.txs[1].raw, self.txs[2].raw]))
        self.relay.packet(conn, reply)
        self.assertEqual(self.submits, [(self.raw, self.hash)])
        self.assertEqual(self.relay.pending, {})

    def test_request_expires_after_the_timeout(self):
        conn = Link("sender")
        self.relay.packet(conn, self.thin_packet())
        [request] = conn.sent
        self.clock.advance(10)
        self.assertEqual(self.relay.pending, {})
        self.relay.packet(conn, request.reply(encode_tx_reply([tx.raw for tx in self.txs[1:]])))
        self.assertEqual(self.submits, [])
        self.assertEqual(dict(self.relay.requests), {(15, "sent"): 1, (15, "timed_out"): 1})

    def test_collision_asks_for_everything_then_submits_the_right_block(self):
        impostor = CachedTx(self.txs[2].raw, sha256d(b"x"), self.txs[4].wtxid)
        for tx in self.txs[1:]:
            if tx is not self.txs[4]:
                self.cache.add(tx, 0)
        self.cache.add(impostor, 0)
        conn = Link("sender")
        self.relay.packet(conn, self.thin_packet())
        self.assertEqual(self.submits, [])
        [request] = conn.sent
        self.assertEqual(decode_tx_request(request.body), tuple(tx.key for tx in self.txs[1:]))
        self.relay.packet(conn, request.reply(encode_tx_reply([tx.raw for tx in self.txs[1:]])))
        self.assertEqual(self.submits, [(self.raw, self.hash)])

    def test_a_lying_peer_gets_its_block_dropped(self):
        impostor = CachedTx(self.txs[2].raw, sha256d(b"x"), self.txs[4].wtxid)
        for tx in self.txs[1:]:
            if tx is not self.txs[4]:
                self.cache.add(tx, 0)
        self.cache.add(impostor, 0)
        conn = Link("sender")
        self.relay.packet(conn, self.thin_packet())
        [request] = conn.sent
        lies = [tx.raw for tx in self.txs[1:]]
        lies[3] = self.txs[2].raw
        self.relay.packet(conn, request.reply(encode_tx_reply(lies)))
        self.assertEqual(self.submits, [])
        self.assertEqual(self.relay.counters["incomplete"], 1)

    def test_a_bad_coinbase_is_dropped_after_asking_once(self):
        for tx in self.txs[1:]:
            self.cache.add(tx, 0)
        coinbase = bytearray(self.txs[0].raw)
        coinbase[50] ^= 1
        conn = Link("sender")
        thin = ThinBlock(self.header, bytes(coinbase), tuple(tx.key for tx in self.txs[1:]))
        self.relay.packet(conn, Packet(13, thin.encode()))
        [request] = conn.sent
        self.relay.packet(conn, request.reply(encode_tx_reply([tx.raw for tx in self.txs[1:]])))
        self.assertEqual(self.submits, [])
        self.assertEqual(list(self.relay.mismatched), [hash_to_display_hex(self.hash)])
        self.assertEqual(len(conn.sent), 1)

    def test_answers_requests_from_cache_and_recent_blocks(self):
        self.relay.full_block(POOL, self.raw)
        conn = Link("requester")
        request = Packet(15, encode_tx_request([self.txs[2].key, b"\x00" * 8]), PacketType.REQUEST, 9)
        self.relay.packet(conn, request)
        [reply] = conn.sent
        self.assertEqual((reply.command, reply.pkg_type, reply.sequence), (15, PacketType.REPLY, 9))
        self.assertEqual(decode_tx_reply(reply.body), (self.txs[2].raw,))

    def test_compact_round_trip_between_two_relays(self):
        sender_link = Link("to-receiver")
        sender = Relay(cache=TxCache(), clock=self.clock, submit=lambda b, h: None,
                       local_height=lambda: 0, bitpeers=list, blockmasters=lambda: [(sender_link, True)],
                       nonce=lambda: 7)
        sender.full_block(POOL, self.raw)
        [compact] = sender_link.sent
        for tx in self.txs[2:]:
            self.cache.add(tx, 0)
        back = Link("to-sender")
        self.relay.packet(back, compact)
        [request] = back.sent
        self.assertEqual(request.command, COMPACT_TX)
        self.assertEqual(decode_index_request(request.body), (self.hash, (0,)))
        answer = Link("answer")
        sender.packet(answer, request)
        [reply] = answer.sent
        self.relay.packet(back, reply)
        self.assertEqual(self.submits, [(self.raw, self.hash)])

    def test_malformed_messages_are_dropped(self):
        conn = Link("sender")
        for packet in (Packet(13, b"short"), Packet(COMPACT_BLOCK, b"\x0d"),
                       Packet(15, b"\x01", PacketType.REQUEST),
                       Packet(COMPACT_TX, encode_index_reply(self.hash, ()), PacketType.REPLY, 77)):
            self.relay.packet(conn, packet)
        self.assertEqual(self.relay.counters["bad_message"], 3)
        self.assertEqual(self.submits, [])

    def test_waiting_thin_blocks_are_bounded(self):
        from viabtc.blockmaster.relay import PENDING_LIMIT
        conn = Link("flooder")
        for i in range(PENDING_LIMIT + 3):
            header = self.header[:76] + i.to_bytes(4, "little")
            self.relay.packet(conn, Packet(13, ThinBlock(header, self.txs[0].raw, (b"\x01" * 8,)).encode()))
        self.assertEqual(len(self.relay.pending), PENDING_LIMIT)
        self.assertEqual(self.relay.counters["pending_full"], 3)

    def test_datagram_thin_block_cannot_ask(self):
        self.relay.packet(None, self.thin_packet())
        self.assertEqual(self.relay.pending, {})
        self.assertEqual(self.submits, [])

    def test_testnet_block_relays(self):
        raw = block_bytes("testnet-924634")
        self.relay.full_block(FOREIGN, raw)
        self.assertEqual(self.submits[0][0], raw)
        self.assertEqual(Command(self.bitpeer.sent[0].command), Command.UPDATE_BLOCK)


class BadInputTests(RelayCase):
    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from([10, 12, 13, 14, 15, 16, 17, 18, 99]), st.sampled_from(list(PacketType)),
           st.integers(0, 3), st.binary(max_size=300), st.booleans())
    def test_any_packet_is_answered_or_dropped_never_raised(self, command, kind, sequence, body, udp):
        conn = None if udp else Link("anyone")
        if command in (10, 12):
            self.relay.full_block(POOL if command == 10 else FOREIGN, body, conn)
        else:
            self.relay.packet(conn, Packet(command, body, kind, sequence))
        self.assertEqual(self.submits, [])

    def test_requests_by_datagram_are_ignored(self):
        self.relay.packet(None, Packet(15, encode_tx_request([b"\x00" * 8]), PacketType.REQUEST))
        self.assertEqual(self.relay.counters, {})
