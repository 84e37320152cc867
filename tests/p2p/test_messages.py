"""P2P payloads: a known version message, round trips, limits, and fuzzing (only P2PError)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.bitcoin.vectors import block_bytes
from viabtc.bitcoin.header import BlockHeader
from viabtc.p2p.framing import P2PError
from viabtc.p2p.messages import (
    MESSAGES,
    MSG_WITNESS_BLOCK,
    BlockMessage,
    BlockTxn,
    CmpctBlock,
    FeeFilter,
    GetBlockTxn,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    NetAddress,
    Ping,
    PrefilledTx,
    SendCmpct,
    Verack,
    WtxidRelay,
    decode,
)

#: The developer reference's example ``version`` (protocol 70002, /Satoshi:0.9.3/).
VERSION_70002 = bytes.fromhex(
    "72110100" "0100000000000000" "bc8f5e5400000000"
    "0100000000000000" "00000000000000000000ffffc61b6409" "208d"
    "0100000000000000" "00000000000000000000ffffcb0071c0" "208d"
    "128035cbc97953f8" "0f" "2f5361746f7368693a302e392e332f" "cf050500" "01"
)

HEADER = BlockHeader(0x20000000, bytes(range(32)), bytes(range(32, 64)), 1700000000, 0x207FFFFF, 7)
hashes = st.binary(min_size=32, max_size=32)


class KnownVectorTests(SynchronousTestCase):
    def test_version_70002(self):
        v = decode("version", VERSION_70002)
        self.assertEqual((v.version, v.services, v.timestamp, v.nonce, v.user_agent, v.start_height, v.relay),
                         (70002, 1, 1415483324, 0xF85379C9CB358012, b"/Satoshi:0.9.3/", 329167, True))
        self.assertEqual(v.addr_recv, NetAddress(1, bytes.fromhex("00000000000000000000ffffc61b6409"), 8333))
        self.assertEqual(v.serialize(), VERSION_70002)

    def test_version_without_relay_flag(self):
        self.assertTrue(decode("version", VERSION_70002[:-1]).relay)

    def test_old_short_version(self):
        v = decode("version", VERSION_70002[:46])
        self.assertEqual(v.version, 70002)

    def test_real_block_message(self):
        raw = block_bytes("testnet-924634")
        message = decode("block", raw)
        self.assertEqual(message.header.serialize(), raw[:80])
        self.assertEqual(message.serialize(), raw)

    def test_unknown_commands_ignored(self):
        self.assertIsNone(decode("addr", b"\xff" * 10))
        self.assertIsNone(decode("tx", b""))

    def test_empty_messages_ignore_payload(self):
        self.assertEqual(decode("verack", b"x"), Verack())
        self.assertEqual(WtxidRelay().serialize(), b"")


class RoundTripTests(SynchronousTestCase):
    def check(self, message):
        self.assertEqual(decode(message.command, message.serialize()), message)

    @given(st.integers(0, 2**64 - 1))
    def test_ping(self, nonce):
        self.check(Ping(nonce))

    @given(st.booleans(), st.integers(0, 2**64 - 1))
    def test_sendcmpct(self, announce, version):
        self.check(SendCmpct(announce, version))

    @given(st.integers(-(2**63), 2**63 - 1))
    def test_feefilter(self, rate):
        self.check(FeeFilter(rate))

    @given(st.lists(st.builds(InvItem, st.integers(0, 2**32 - 1), hashes), max_size=20))
    def test_inventory(self, items):
        self.check(Inv(items))
        self.check(GetData(items))

    @given(st.lists(hashes, max_size=101), hashes)
    def test_getheaders(self, locator, stop):
        self.check(GetHeaders(locator, stop))

    def test_headers(self):
        self.check(Headers([HEADER, HEADER]))

    @given(st.lists(st.integers(0, 2000), unique=True, max_size=30))
    def test_getblocktxn(self, indexes):
        self.check(GetBlockTxn(bytes(32), sorted(indexes)))

    def test_cmpctblock_and_blocktxn_with_real_transactions(self):
        from viabtc.bitcoin.block import parse_block
        block = parse_block(block_bytes("testnet-924634"))
        raws = [tx.serialize() for tx in block.transactions]
        self.check(CmpctBlock(block.header, 99, [1, 2**48 - 1, 5],
                              [PrefilledTx(0, raws[0]), PrefilledTx(3, raws[3])]))
        self.check(BlockTxn(block.hash(), raws[1:4]))


class LimitTests(SynchronousTestCase):
    def test_inventory_count_checked_before_reading(self):
        with self.assertRaises(P2PError) as e:
            decode("inv", b"\xfe\xff\xff\xff\x00" + bytes(36))
        self.assertIn("inventory items", str(e.exception))

    def test_inventory_over_protocol_limit(self):
        self.assertRaises(P2PError, decode, "getdata", b"\xfe\x51\xc3\x00\x00" + bytes(36 * 50001))

    def test_too_many_headers(self):
        self.assertRaises(P2PError, decode, "headers", b"\xfd\xd1\x07" + bytes(81 * 2001))

    def test_header_with_transactions(self):
        self.assertRaises(P2PError, decode, "headers", b"\x01" + HEADER.serialize() + b"\x01")

    def test_long_locator(self):
        self.assertRaises(P2PError, decode, "getheaders", bytes(4) + b"\x66" + bytes(32 * 103))

    def test_long_user_agent(self):
        payload = VERSION_70002[:80] + b"\xfd\x01\x01" + b"a" * 257 + bytes(5)
        self.assertRaises(P2PError, decode, "version", payload)

    def test_trailing_bytes(self):
        self.assertRaises(P2PError, decode, "ping", bytes(9))
        self.assertRaises(P2PError, decode, "inv", Inv([InvItem(MSG_WITNESS_BLOCK, bytes(32))]).serialize() + b"x")

    def test_tiny_block(self):
        self.assertRaises(P2PError, decode, "block", HEADER.serialize() + b"\x01")

    def test_non_canonical_count(self):
        self.assertRaises(P2PError, decode, "inv", b"\xfd\x01\x00" + bytes(36))

    def test_prefilled_index_beyond_block(self):
        from viabtc.bitcoin.block import parse_block
        coinbase = parse_block(block_bytes("testnet-924634")).transactions[0].serialize()
        message = CmpctBlock(HEADER, 1, [], [PrefilledTx(1, coinbase)])
        self.assertRaises(P2PError, decode, "cmpctblock", message.serialize())

    def test_differential_index_past_0xffff(self):
        # a gap of 0xFFFF after index 1 lands on 0x10001
        with self.assertRaises(P2PError) as e:
            decode("getblocktxn", bytes(32) + b"\x02\x01\xfd\xff\xff")
        self.assertIn("index 65537 out of range", str(e.exception))
        with self.assertRaises(P2PError) as e:
            decode("cmpctblock", HEADER.serialize() + bytes(8) + b"\x00\x01\xfe\x00\x00\x01\x00" + bytes(60))
        self.assertIn("prefilled index 65536 out of range", str(e.exception))

    def test_block_message_keeps_raw(self):
        raw = block_bytes("mainnet-000170")
        self.assertEqual(BlockMessage.parse(raw).raw, raw)


class FuzzTests(SynchronousTestCase):
    """Whatever a peer sends, decoding raises nothing but ``P2PError``."""

    @settings(max_examples=60)
    @given(st.sampled_from(sorted(MESSAGES)), st.binary(max_size=400))
    def test_random_payloads(self, command, payload):
        try:
            decode(command, payload)
        except P2PError:
            pass

    @settings(max_examples=150)
    @given(st.sampled_from(sorted(MESSAGES)), st.data())
    def test_mutated_valid_payloads(self, command, data):
        from viabtc.bitcoin.block import parse_block
        block = parse_block(block_bytes("testnet-924634"))
        raws = [tx.serialize() for tx in block.transactions]
        samples = {
            "version": VERSION_70002,
            "cmpctblock": CmpctBlock(block.header, 1, [1, 2], [PrefilledTx(0, raws[0])]).serialize(),
            "blocktxn": BlockTxn(bytes(32), raws[:2]).serialize(),
            "headers": Headers([HEADER]).serialize(),
            "getheaders": GetHeaders([bytes(32)]).serialize(),
            "getblocktxn": GetBlockTxn(bytes(32), [0, 5]).serialize(),
            "inv": Inv([InvItem(2, bytes(32))]).serialize(),
        }
        payload = bytearray(samples.get(command, b"\x01" * 40))
        for _ in range(data.draw(st.integers(1, 4))):
            if not payload:
                break
            i = data.draw(st.integers(0, len(payload) - 1))
            payload[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(payload)))
        try:
            decode(command, bytes(payload[:cut]))
        except P2PError:
            pass
