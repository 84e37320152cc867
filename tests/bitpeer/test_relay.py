"""Bitpeer's block logic over real peer protocols: hints from headers, relay of our blocks, serving."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.bitcoin.vectors import block_bytes
from tests.bitpeer.mining import mine, mine_block
from tests.p2p.test_protocol import MAGIC, Peer
from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.network import REGTEST
from viabtc.bitpeer.relay import Relay
from viabtc.p2p.compact import RelayBlock
from viabtc.p2p.messages import (
    MSG_BLOCK,
    MSG_CMPCT_BLOCK,
    MSG_WITNESS_BLOCK,
    BlockMessage,
    BlockTxn,
    CmpctBlock,
    GetBlockTxn,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    NotFound,
    SendCmpct,
    SendHeaders,
)
from viabtc.p2p.protocol import PeerFactory, PeerSettings

NOW = 1700000000
TIP = BlockHeader(0x20000000, b"\x07" * 32, bytes(32), NOW - 600, 0x207FFFFF, 0)
TXS = parse_block(block_bytes("testnet-924634")).transactions


class RelayCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.hints = []
        self.pushed = []
        self.relay = Relay(REGTEST, MAGIC, self.clock, hint=self.hints.append, push=self.pushed.append,
                           broadcast_limit=2)
        self.factory = PeerFactory(self.relay, PeerSettings(MAGIC), reactor=self.clock)
        self.relay.node_tip(TIP, 200)
        self.port = 1000

    def peer(self, *capabilities):
        self.port += 1
        peer = Peer(self.factory, self.port)
        peer.handshake()
        if capabilities:
            peer.receive(*capabilities)
        peer.sent()
        return peer


class FromPeersTests(RelayCase):
    def test_headers_make_one_hint_and_a_block_request(self):
        a, b = self.peer(), self.peer()
        header = mine(TIP.hash())
        a.receive(Headers([header]))
        [entry] = self.hints
        self.assertEqual((entry.height, entry.hash), (201, header.hash()))
        self.assertEqual(a.sent(), [GetData([InvItem(MSG_WITNESS_BLOCK, header.hash())])])
        b.receive(Headers([header]))
        self.assertEqual(len(self.hints), 1)
        self.assertEqual(b.sent(), [])

    def test_bad_proof_of_work_never_hints_and_drops(self):
        a = self.peer()
        a.receive(Headers([mine(TIP.hash(), valid=False)]))
        self.assertEqual(self.hints, [])
        self.assertTrue(a.dropped)
        self.assertEqual(self.relay.counts["bad_headers"], 1)

    def test_unknown_parent_never_hints(self):
        a = self.peer()
        a.receive(Headers([mine(b"\x09" * 32)]))
        self.assertEqual(self.hints, [])
        self.assertEqual(a.sent(), [GetHeaders([TIP.hash()])])
        self.assertFalse(a.dropped)
        self.assertEqual(self.relay.counts["unknown_parent"], 1)

    def test_many_unknown_headers_ask_once(self):
        a = self.peer()
        a.receive(Headers([mine(b"\x09" * 32, time=NOW + i) for i in range(5)]))
        self.assertEqual(a.sent(), [GetHeaders([TIP.hash()])])

    def test_headers_chain_after_known_one(self):
        from tests.bitpeer.mining import mine_chain
        a = self.peer()
        a.receive(Headers(mine_chain(TIP.hash(), 3, time=NOW)))
        self.assertEqual([e.height for e in self.hints], [203])
        self.assertEqual(len(a.sent()), 1)

    def test_node_tip_is_not_hinted_and_old_heights_are_not(self):
        header = mine(TIP.hash())
        self.relay.node_tip(header, 201)
        a = self.peer()
        a.receive(Headers([mine(TIP.hash(), merkle=b"\x01" * 32)]))
        self.assertEqual(self.hints, [])

    def test_compact_block_hints(self):
        a = self.peer()
        raw = mine_block(TIP.hash(), TXS[:3])
        compact = RelayBlock(raw).compact()
        a.receive(compact)
        self.assertEqual([e.height for e in self.hints], [201])
        self.assertEqual(a.sent(), [GetData([InvItem(MSG_WITNESS_BLOCK, compact.header.hash())])])

    def test_inv_asks_headers_and_block(self):
        a = self.peer()
        a.receive(Inv([InvItem(MSG_BLOCK, b"\x05" * 32)]))
        self.assertEqual(a.sent(), [GetHeaders([TIP.hash()]),
                                    GetData([InvItem(MSG_WITNESS_BLOCK, b"\x05" * 32)])])
        self.clock.advance(1)
        a.receive(Inv([InvItem(MSG_BLOCK, b"\x05" * 32)]))
        self.assertEqual(a.sent(), [GetHeaders([TIP.hash()])])

    def test_block_from_a_peer_goes_to_blockmasters(self):
        a = self.peer()
        raw = mine_block(TIP.hash(), TXS[:2])
        a.receive(BlockMessage(raw))
        self.assertEqual(self.pushed, [raw])
        self.assertEqual([e.height for e in self.hints], [201])
        a.receive(BlockMessage(raw))
        self.assertEqual(self.pushed, [raw])

    def test_block_without_known_parent_not_pushed(self):
        a = self.peer()
        a.receive(BlockMessage(mine_block(b"\x09" * 32, TXS[:1])))
        self.assertEqual(self.pushed, [])


class OurBlockTests(RelayCase):
    def setUp(self):
        super().setUp()
        self.raw = mine_block(TIP.hash(), TXS)
        self.block = RelayBlock(self.raw)

    def test_announced_each_way_its_peer_asked(self):
        hb = self.peer(SendCmpct(True, 2))
        low = self.peer(SendHeaders(), SendCmpct(False, 2))
        plain = self.peer()
        self.assertTrue(self.relay.our_block(self.raw, "jobmaster"))
        [compact] = hb.sent()
        self.assertIsInstance(compact, CmpctBlock)
        self.assertEqual(compact.header, self.block.header)
        self.assertEqual(len(compact.short_ids), len(TXS) - 1)
        self.assertEqual(low.sent(), [Headers([self.block.header])])
        self.assertEqual(plain.sent(), [Inv([InvItem(MSG_BLOCK, self.block.hash)])])
        self.assertEqual([e.height for e in self.hints], [201])

    def test_broadcast_limit_caps_unsolicited_compact_blocks(self):
        peers = [self.peer(SendCmpct(True, 2)) for _ in range(3)]
        self.relay.our_block(self.raw, "jobmaster")
        kinds = sorted(type(p.sent()[0]).__name__ for p in peers)
        self.assertEqual(kinds, ["CmpctBlock", "CmpctBlock", "Inv"])

    def test_served_on_getdata(self):
        self.relay.our_block(self.raw, "jobmaster")
        a = self.peer()
        a.receive(GetData([InvItem(MSG_WITNESS_BLOCK, self.block.hash)]))
        self.assertEqual(a.sent(), [BlockMessage(self.raw)])
        a.receive(GetData([InvItem(MSG_BLOCK, self.block.hash)]))
        [legacy] = a.sent()
        self.assertEqual(legacy.raw, self.block.legacy)
        self.assertLess(len(legacy.raw), len(self.raw))
        a.receive(GetData([InvItem(MSG_CMPCT_BLOCK, self.block.hash)]))
        [compact] = a.sent()
        self.assertIsInstance(compact, CmpctBlock)
        a.receive(GetData([InvItem(MSG_WITNESS_BLOCK, b"\x01" * 32)]))
        self.assertEqual(a.sent(), [NotFound([InvItem(MSG_WITNESS_BLOCK, b"\x01" * 32)])])
        self.assertEqual([self.relay.counts[f"served {k}"] for k in ("witness block", "block", "compact block")],
                         [1, 1, 1])

    def test_getheaders_and_getblocktxn(self):
        self.relay.our_block(self.raw, "jobmaster")
        a = self.peer(SendCmpct(False, 2))
        a.receive(GetHeaders([TIP.hash()]))
        self.assertEqual(a.sent(), [Headers([self.block.header])])
        a.receive(GetBlockTxn(self.block.hash, [1, 3]))
        self.assertEqual(a.sent(), [BlockTxn(self.block.hash, (TXS[1].serialize(), TXS[3].serialize()))])
        a.receive(GetBlockTxn(self.block.hash, [len(TXS)]))
        self.assertTrue(a.dropped)

    def test_duplicate_and_bad_blocks(self):
        self.assertTrue(self.relay.our_block(self.raw, "jobmaster"))
        self.assertFalse(self.relay.our_block(self.raw, "blockmaster"))
        bad = mine(TIP.hash(), valid=False).serialize() + self.raw[80:]
        self.assertFalse(self.relay.our_block(bad, "jobmaster"))
        self.assertFalse(self.relay.foreign_block(b"junk", "blockmaster"))

    def test_foreign_block_relayed_not_pushed_back(self):
        a = self.peer()
        self.assertTrue(self.relay.foreign_block(self.raw, "blockmaster"))
        self.assertEqual(a.sent(), [Inv([InvItem(MSG_BLOCK, self.block.hash)])])
        self.assertEqual(self.pushed, [])
