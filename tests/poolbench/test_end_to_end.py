"""
End to end with a real bcoin regtest node and the real jobmaster: a rival
pool mines on a block our node does not have, poolbench hints it, and the
jobmaster's gateways get an empty-block job on top of it.
"""

import os

import attrs
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.jobmaster.mining import TestGateway, wait_for
from tests.jobmaster.test_service import config_for
from tests.poolbench.test_config import local_config
from tests.support import bcoin_node
from tests.tools.fakepool import FakePool, make_job
from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.config import ConfigReader
from viabtc.jobmaster.tap import build_service
from viabtc.poolbench.config import PoolbenchConfig
from viabtc.poolbench.service import PoolbenchService

SECRET = "poolbench-e2e-shared-secret"


class EndToEndTests(TestCase):
    timeout = 120

    def setUp(self):
        self.node = bcoin_node(self, shared=True)

    def start(self, service):
        service.startService()
        self.addCleanup(service.stopService)
        return service

    async def test_rival_block_makes_the_jobmaster_mine_empty_blocks(self):
        config, tcp, udp, _cli = config_for(self.node, os.path.abspath(self.mktemp()),
                                            secret=SECRET, spv_mining_timeout=1)
        jobmaster = self.start(build_service(config, reactor))
        gateway = TestGateway(tcp, secret=SECRET.encode())
        gateway.start()
        self.addCleanup(gateway.stop)
        [first, *_] = await wait_for(gateway.jobs, what="a job")
        await wait_for(lambda: jobmaster.work.facts, what="chain facts")
        node_height = first.height - 1

        # Somewhere else a block at node_height + 1 was found; the rival
        # already mines node_height + 2 on it.
        elsewhere = sha256d(b"a block our node has not seen")
        rival = FakePool(difficulty=1)
        rival.job = attrs.evolve(make_job("1", node_height + 2, first.nbits), prev_hash=elsewhere)
        port = reactor.listenTCP(0, rival, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        poolbench = self.start(PoolbenchService(PoolbenchConfig.from_reader(ConfigReader(local_config(
            pool_list=[{"name": "rival", "host": "127.0.0.1", "port": port.getHost().port,
                        "user": "watcher"}],
            jobmaster=[f"udp@127.0.0.1:{udp}"], secret=SECRET))), reactor))

        prevhash = hash_to_display_hex(elsewhere)
        [empty] = await wait_for(lambda: [j for j in gateway.jobs() if j.prevhash == prevhash],
                                 what="the empty-block job")
        self.assertEqual((empty.height, empty.merkle_branch, empty.clean_jobs),
                         (node_height + 2, (), True))
        self.assertEqual(poolbench.hints_sent, 1)
        # The block never reaches our node: after spv_mining_timeout the
        # jobmaster is back on full templates (and its timer is done).
        await wait_for(lambda: jobmaster.work.mode == "normal", what="the end of empty mode")
