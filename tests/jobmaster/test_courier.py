"""
``BlockCourier`` on a real bcoin regtest node: the ``submitblock`` request
goes out first, the found-block file is written and synced two reactor
turns later (its docstring says why), and holds the block's hex; the
block's bytes are pushed (cmd 10) to every connected blockmaster link,
and a link that is down delays nothing.
"""

import os

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest

from tests.gateway.support import TestJobmaster
from tests.jobmaster.test_jobs import settings, solve
from tests.support import bcoin_node, wait_for
from viabtc.devnet import free_port
from viabtc.jobmaster.candidate import check_candidate
from viabtc.jobmaster.courier import BlockCourier, block_file_name
from viabtc.jobmaster.jobs import build_job
from viabtc.node.jsonrpc import NodeConfig, NodeGroup, NodeRPCClient
from viabtc.node.submit import BlockSubmitter
from viabtc.node.template import Template
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, PacketType


class CourierOrderTests(unittest.TestCase):
    def setUp(self):
        self.bcoin = bcoin_node(self, shared=True)
        client = NodeRPCClient(NodeConfig(url=self.bcoin.rpc_url, user="x", password=self.bcoin.api_key))
        self.addCleanup(client.close)
        self.nodes = NodeGroup([client])
        self.clock = task.Clock()
        self.found_dir = self.mktemp()

    @defer.inlineCallbacks
    def test_submitted_first_then_saved(self):
        template = Template.from_rpc(self.bcoin.rpc("getblocktemplate", {"rules": ["segwit"]}))
        _, context = build_job(template, settings(), 1, True)
        candidate = check_candidate(solve(context), context)
        courier = BlockCourier(BlockSubmitter(self.nodes), self.nodes, [], self.found_dir, self.clock)
        path = os.path.join(self.found_dir, block_file_name(candidate))

        delivered = courier.deliver(candidate)
        # The request is issued; the file waits for later reactor turns
        # (a Clock runs both hops of the real reactor's two turns at once).
        self.assertFalse(os.path.exists(path), "the file was written before the submit left")
        self.clock.advance(0)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), candidate.block.hex().encode() + b"\n")

        yield delivered
        self.assertEqual(self.bcoin.rpc("getbestblockhash"), candidate.display_hash)

    def link(self, port):
        """The jobmaster's link to a blockmaster at ``port`` (the real client)."""
        link = FailoverClient([TCP4ClientEndpoint(reactor, "127.0.0.1", port)], max_size=8 << 20,
                              reactor=reactor, role="jobmaster")
        link.startService()
        self.addCleanup(link.stopService)
        return link

    async def test_pushed_to_blockmasters(self):
        # A real RPC server where a blockmaster listens, and one that is down.
        blockmaster = TestJobmaster()
        self.addCleanup(blockmaster.stop)
        up = self.link(await blockmaster.listen())
        down = self.link(free_port())
        await wait_for(lambda: up.connected, what="the blockmaster link")
        template = Template.from_rpc(self.bcoin.rpc("getblocktemplate", {"rules": ["segwit"]}))
        _, context = build_job(template, settings(), 1, True)
        candidate = check_candidate(solve(context), context)
        courier = BlockCourier(BlockSubmitter(self.nodes), self.nodes, [down, up], self.found_dir, reactor)

        await courier.deliver(candidate)
        self.assertEqual(self.bcoin.rpc("getbestblockhash"), candidate.display_hash)
        (packet,) = await wait_for(lambda: blockmaster.received, what="the push")
        self.assertEqual((packet.command, packet.pkg_type), (Command.SUBMIT_BLOCK, PacketType.PUSH))
        self.assertEqual(packet.body, candidate.block)

    async def test_stop_ends_the_wait_between_retries(self):
        """No node answers: the courier waits to retry; ``stop`` ends the wait, leaving no call."""
        template = Template.from_rpc(self.bcoin.rpc("getblocktemplate", {"rules": ["segwit"]}))
        _, context = build_job(template, settings(), 1, True)
        candidate = check_candidate(solve(context), context)
        down = NodeRPCClient(NodeConfig(url=f"http://127.0.0.1:{free_port()}", user="x", password="y"))
        self.addCleanup(down.close)
        nodes = NodeGroup([down])
        courier = BlockCourier(BlockSubmitter(nodes), nodes, [], self.found_dir, self.clock)
        delivered = courier.deliver(candidate)
        self.clock.advance(0)  # the file is saved
        [pause] = await wait_for(self.clock.getDelayedCalls, what="the wait before the second attempt")
        stopped = courier.stop()
        self.assertFalse(pause.active())
        await stopped  # after one last attempt, on the real reactor
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertTrue(delivered.called)
