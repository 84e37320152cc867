"""
Region to region with real bcoin nodes: a pool block pushed (cmd 10) into
region A's blockmaster, by a test's RPC client or by our jobmaster's own
``BlockCourier``, reaches region B's node through the thin-block relay; a transaction only A has is fetched by cmd 15 (seed mode) or cmd 18
(compact mode); a thin block whose transactions do not make its header's
merkle root is never submitted.  Both blockmasters' ``GET /metrics`` count
what happened.
"""

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.blockmaster.regions import (
    ANYONE_ADDRESS,
    jobmaster_link,
    push_pool_block,
    spend_coinbase,
    start_regions,
)
from tests.scrape import scrape
from tests.support import wait_for
from tests.node.blocks import mine_block
from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_display_hex
from viabtc.jobmaster.candidate import Candidate
from viabtc.jobmaster.courier import BlockCourier
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.node.submit import BlockSubmitter
from viabtc.node.template import Template
from viabtc.p2p.thin import ThinBlock, split_block
from viabtc.rpc.codec import Packet


class RegionRelayTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def relay(self, compact, with_private_tx):
        a, b, sa, sb = yield start_regions(self, compact)
        self.regions = (sa, sb)
        jobmaster = yield jobmaster_link(self, sa)
        if with_private_tx:
            spent = type(self)._spendable.pop(0)
            txid = a.rpc("sendrawtransaction", spend_coinbase(a, spent))
            self.assertEqual(b.rpc("getrawmempool"), [])
            key = hash_from_display_hex(txid)[::-1][:8]
            yield defer.ensureDeferred(wait_for(lambda: sa.cache.lookup(key), what="A caches the tx"))
        before = b.rpc("getblockcount")
        [block_hash] = a.rpc("generatetoaddress", 1, ANYONE_ADDRESS)
        raw = push_pool_block(jobmaster, a, block_hash)
        yield defer.ensureDeferred(wait_for(lambda: b.rpc("getbestblockhash") == block_hash,
                                            what="the block on node B"))
        self.assertEqual(b.rpc("getblockcount"), before + 1)
        self.assertIn(("pool", block_hash), sb.relay.submitted)
        _, txs = split_block(raw)
        return sb, len(txs)

    @defer.inlineCallbacks
    def test_pool_block_reaches_the_other_region(self):
        sb, count = yield self.relay(compact=False, with_private_tx=False)
        self.assertEqual(count, 1)
        self.assertEqual(sb.relay.counters["requests"], 0)

    @defer.inlineCallbacks
    def test_missing_transaction_by_cmd_15(self):
        sb, count = yield self.relay(compact=False, with_private_tx=True)
        self.assertEqual(count, 2)
        self.assertEqual(sb.relay.counters["requests"], 1)

    @defer.inlineCallbacks
    def test_missing_transaction_in_compact_mode(self):
        sb, count = yield self.relay(compact=True, with_private_tx=True)
        self.assertEqual(count, 2)
        self.assertEqual(sb.relay.counters["requests"], 1)
        sa = self.regions[0]
        yield defer.ensureDeferred(wait_for(lambda: sa.submit_outcomes and sb.submit_outcomes,
                                            what="both submitblock reports"))
        got = yield defer.ensureDeferred(scrape(sb.metrics))
        self.assertEqual(got.value("viabtc_role_info", role="blockmaster"), 1)
        self.assertEqual(got.named("viabtc_blockmaster_blocks_total"),
                         {frozenset({"kind": "pool", "form": "compact"}.items()): 1})
        self.assertEqual(got.value("viabtc_blockmaster_tx_requests_total", command="18", outcome="sent"), 1)
        self.assertEqual(got.value("viabtc_blockmaster_tx_requests_total", command="18", outcome="answered"), 1)
        self.assertEqual(got.value("viabtc_blockmaster_merkle_mismatches_total"), 0)
        self.assertEqual(got.value("viabtc_blockmaster_compact_links"), 1)
        [(node, outcome)] = sb.submit_outcomes
        self.assertEqual(got.value("viabtc_submitblock_results_total", node=node, outcome=outcome), 1)
        [peer] = sb.blockmasters.values()
        self.assertEqual(got.value("viabtc_link_up", link=f"blockmaster:{peer.peer}"), 1)
        got = yield defer.ensureDeferred(scrape(sa.metrics))
        self.assertEqual(got.named("viabtc_blockmaster_blocks_total"),
                         {frozenset({"kind": "pool", "form": "full"}.items()): 1})
        self.assertEqual(got.value("viabtc_blockmaster_tx_requests_total", command="18", outcome="served"), 1)
        self.assertEqual(got.value("viabtc_blockmaster_tx_cache_transactions"), len(sa.cache))
        self.assertGreaterEqual(len(sa.cache), 1)

    @defer.inlineCallbacks
    def test_mismatching_reconstruction_is_never_submitted(self):
        a, b, sa, sb = yield start_regions(self, compact=False)
        peer = yield jobmaster_link(self, sb)
        [block_hash] = a.rpc("generatetoaddress", 1, ANYONE_ADDRESS)
        header, txs = split_block(bytes.fromhex(a.rpc("getblock", block_hash, False)))
        coinbase = bytearray(txs[0].raw)
        coinbase[-30] ^= 1
        thin = ThinBlock(header, bytes(coinbase), ())
        peer.send(Packet(13, thin.encode()))
        yield defer.ensureDeferred(wait_for(lambda: sb.relay.mismatched, what="the mismatch"))
        self.assertEqual(list(sb.relay.mismatched), [block_hash])
        got = yield defer.ensureDeferred(scrape(sb.metrics))
        self.assertEqual(got.value("viabtc_blockmaster_merkle_mismatches_total"), 1)
        self.assertEqual(got.named("viabtc_blockmaster_blocks_total"), {})
        self.assertNotIn(("pool", block_hash), sb.relay.submitted)
        self.assertNotEqual(b.rpc("getbestblockhash"), block_hash)
        # The true block still relays afterwards: nothing was marked seen.
        jobmaster = yield jobmaster_link(self, sa)
        push_pool_block(jobmaster, a, block_hash)
        yield defer.ensureDeferred(wait_for(lambda: b.rpc("getbestblockhash") == block_hash,
                                            what="the true block on node B"))

    @defer.inlineCallbacks
    def test_block_found_by_the_pool_reaches_both_nodes_through_the_courier(self):
        """
        A block no node has yet, built on A's template as the jobmaster
        builds it, delivered by the jobmaster's ``BlockCourier``: cmd 10 to
        A's blockmaster, which relays it to B (asking for the transaction
        only A has) while the courier submits it to A.
        """
        a, b, sa, sb = yield start_regions(self, compact=True)
        link = yield jobmaster_link(self, sa)
        spent = type(self)._spendable.pop(0)
        a.rpc("sendrawtransaction", spend_coinbase(a, spent))
        yield defer.ensureDeferred(wait_for(lambda: len(a.rpc("getrawmempool")) == 1, what="A's mempool"))
        template = Template.from_rpc(a.rpc("getblocktemplate", {"rules": ["segwit"]}))
        self.assertEqual(len(template.transactions), 1)
        block, block_hash = mine_block(template)
        nodes = NodeGroup.from_configs([NodeConfig.from_host("127.0.0.1", a.rpc_port, user="x",
                                                             password=a.api_key)])
        self.addCleanup(nodes.close)
        courier = BlockCourier(BlockSubmitter(nodes), nodes, [link], self.mktemp(), reactor)
        self.addCleanup(courier.stop)
        candidate = Candidate(head=block, transactions=b"", transactions_hex=b"",
                              block_hash=block_hash, height=template.height, job_id="1")
        courier.deliver(candidate)
        display = hash_to_display_hex(block_hash)
        yield defer.ensureDeferred(wait_for(
            lambda: b.rpc("getbestblockhash") == display == a.rpc("getbestblockhash"),
            what="the block on both nodes"))
        self.assertIn(("pool", display), sb.relay.submitted)
        self.assertEqual(sb.relay.counters["requests"], 1)
