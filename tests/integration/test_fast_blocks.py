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

A block the pool finds leaves the jobmaster's courier as cmd 10 to
blockmaster A only, and reaches the outside node through bitpeer and
region B's node through the thin-block relay.  A block mined on the outside
node reaches bitpeer, which pushes it (cmd 12) to blockmaster A, which
submits it to the pool's node and relays it to region B, whose node takes
it (its BIP34 height is above B's node's, so it is not dropped as stale).
"""

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.bitpeer.test_end_to_end import copy_chain, seed_config, start_bitpeer
from tests.blockmaster.regions import config_for as blockmaster_config
from tests.jobmaster.mining import TestGateway, in_thread, solve, wait_for
from tests.jobmaster.test_service import config_for as jobmaster_config
from tests.support import bcoin_node
from viabtc.blockmaster.service import BlockmasterService
from viabtc.devnet import free_port
from viabtc.jobmaster.tap import build_service

#: Blocks shared by every node before the test (BIP34 heights above 16 are pushes, not OP_N).
CHAIN = 20


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
        hashes = await in_thread(pool.generate, CHAIN)
        await in_thread(copy_chain, pool, [outside, node_b], hashes)

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
        self.assertEqual(job.height, CHAIN + 1)

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
