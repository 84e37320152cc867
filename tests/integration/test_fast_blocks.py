"""
Bitpeer and blockmaster together, wired as in production, with real bcoin
regtest nodes and the real jobmaster, bitpeer and blockmasters (in-process
services on real loopback sockets):

- region A: the pool's node, our jobmaster (its ``blockmaster`` list names
  blockmaster A's ``svr``), blockmaster A (its ``bitpeer`` list names
  bitpeer's ``svr``, its ``blockmaster`` list blockmaster B) and bitpeer,
  connected over P2P to an outside node that is not connected to the
  pool's node;
- region B: blockmaster B and its own node, connected to no node.

Segwit is active.  A block the pool finds, holding two transactions only
the pool's node has (one spent with a witness), leaves the jobmaster's
courier as cmd 10 to blockmaster A only, and reaches the outside node
through bitpeer and region B's node through the compact relay (the missing
transactions asked for by cmd 18).  A block mined on the outside
node reaches bitpeer, which pushes it (cmd 12) to blockmaster A, which
submits it to the pool's node (so the jobmaster, hinted by bitpeer, is soon
back on full templates) and relays it to region B, whose node takes it (its
BIP34 height is above B's node's, so it is not dropped as stale).
"""

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.bitpeer.test_end_to_end import SEGWIT_HEIGHT, copy_chain, seed_config, start_bitpeer
from tests.blockmaster.regions import ANYONE_ADDRESS, ANYONE_SCRIPT, OP_TRUE, spend_coinbase
from tests.blockmaster.regions import config_for as blockmaster_config
from tests.jobmaster.mining import TestGateway, in_thread, solve, wait_for
from tests.jobmaster.test_service import config_for as jobmaster_config
from tests.support import bcoin_node
from viabtc.bitcoin.hashing import sha256
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut
from viabtc.blockmaster.service import BlockmasterService
from viabtc.devnet import free_port
from viabtc.jobmaster.tap import build_service

#: Blocks shared by every node before the test: segwit active, coinbases paying P2SH(OP_TRUE).
CHAIN = SEGWIT_HEIGHT

#: P2WSH(OP_TRUE): spent by a witness holding only the script.
WITNESS_ANYONE_SCRIPT = b"\x00\x20" + sha256(OP_TRUE)


def private_transactions(node):
    """
    Two transactions into ``node``'s mempool only: the coinbase of block 1
    to P2WSH(OP_TRUE), and that output spent with a witness.
    """
    funding_hex = spend_coinbase(node, 1, script=WITNESS_ANYONE_SCRIPT)
    funding, _ = Transaction.parse(bytes.fromhex(funding_hex))
    spend = Transaction(2, [TxIn(funding.txid(), 0, b"", 0xFFFFFFFF)],
                        [TxOut(funding.outputs[0].value - 20_000, ANYONE_SCRIPT)], 0,
                        witnesses=[[OP_TRUE]])
    for tx in (funding, spend):
        node.rpc("sendrawtransaction", tx.serialize().hex())


class FastBlockTests(TestCase):
    timeout = 120

    def start(self, service):
        service.startService()
        self.addCleanup(service.stopService)
        return service

    async def test_blocks_through_bitpeer_and_both_regions(self):
        pool = bcoin_node(self)
        outside = bcoin_node(self, listen=True)
        node_b = bcoin_node(self)
        hashes = await in_thread(pool.rpc, "generatetoaddress", CHAIN, ANYONE_ADDRESS)
        await in_thread(copy_chain, pool, [outside, node_b], hashes)
        await in_thread(private_transactions, pool)
        self.assertEqual(await in_thread(outside.rpc, "getrawmempool"), [])
        self.assertEqual(await in_thread(node_b.rpc, "getrawmempool"), [])

        port_a, port_b = free_port(), free_port()
        jm_config, jm_tcp, jm_udp, _cli = jobmaster_config(
            pool, os.path.abspath(self.mktemp()), blockmaster=[f"tcp@127.0.0.1:{port_a}"])
        bitpeer_path, bitpeer_svr = seed_config(self, pool, [outside], jm_udp)
        bitpeer = start_bitpeer(self, bitpeer_path)
        region_a = self.start(BlockmasterService(blockmaster_config(
            pool, port_a, [port_b], True, bitpeer=[f"tcp@127.0.0.1:{bitpeer_svr}"]), reactor))
        region_b = self.start(BlockmasterService(blockmaster_config(
            node_b, port_b, [port_a], True), reactor))
        jobmaster = self.start(build_service(jm_config, reactor))
        gateway = TestGateway(jm_tcp)
        gateway.start()
        self.addCleanup(gateway.stop)

        relay = bitpeer.relay
        await wait_for(lambda: len(relay.peers) == 1 and relay.best_height == CHAIN,
                       what="bitpeer connected to the outside node, on the pool node's tip")
        links = [link for bm in (region_a, region_b) for link in bm.blockmasters.values()]
        await wait_for(lambda: all(link.client.connected and link.compact for link in links)
                       and region_a.bitpeers[0].client.connected
                       and len(bitpeer.svr_factory.connections) == 1
                       and jobmaster.blockmasters[0].connected
                       and region_b.local_height == CHAIN,
                       what="the links: jobmaster -> A -> bitpeer, A <-> B")
        [job, *_] = await wait_for(gateway.jobs, what="a job")
        self.assertEqual((job.height, len(job.merkle_branch)), (CHAIN + 1, 2))  # coinbase + 2 txs
        await wait_for(lambda: len(region_a.cache) == 2, what="blockmaster A caching the pool's mempool")

        # 1. The pool finds a block: cmd 10 to blockmaster A, and from there everywhere.
        found = solve(job)
        self.assertTrue(gateway.send_found(found))
        ours = found["hash"]
        for node, where in ((pool, "the pool's node"), (outside, "the outside node (via bitpeer)"),
                            (node_b, "region B's node (via the relay)")):
            await wait_for(lambda node=node: node.rpc("getbestblockhash") == ours,
                           what=f"the pool's block on {where}")
        self.assertIn(("pool", ours), region_a.relay.submitted)
        self.assertIn(("pool", ours), region_b.relay.submitted)
        self.assertEqual(region_a.relay.counters["pool_blocks"], 1)
        self.assertEqual(region_b.relay.counters["requests"], 1)  # cmd 18: the 2 transactions
        for node in (outside, node_b):
            block = await in_thread(node.rpc, "getblock", ours)
            self.assertEqual(len(block["tx"]), 3)
        self.assertGreaterEqual(relay.counts["announced"], 1)

        # 2. A block from outside: bitpeer -> cmd 12 -> blockmaster A -> region B.
        await wait_for(lambda: region_b.local_height == CHAIN + 1, what="B's node height polled")
        [foreign] = await in_thread(outside.generate, 1)
        await wait_for(lambda: ("foreign", foreign) in region_a.relay.submitted,
                       what="the outside block at blockmaster A")
        for node, where in ((node_b, "region B's node"), (pool, "the pool's node (A's submit)")):
            await wait_for(lambda node=node: node.rpc("getbestblockhash") == foreign,
                           what=f"the outside block on {where}")
        self.assertIn(("foreign", foreign), region_b.relay.submitted)
        self.assertGreaterEqual(relay.counts["pushed"], 1)
        self.assertEqual(await in_thread(node_b.rpc, "getblockcount"), CHAIN + 2)
        # The pool's node has it from A: the jobmaster mines full templates on it.
        await wait_for(lambda: jobmaster.work.mode == "normal"
                       and jobmaster.work.current.job.height == CHAIN + 3, what="a full job on it")
