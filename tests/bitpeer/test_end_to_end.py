"""
Bitpeer with real bcoin regtest nodes, the real jobmaster, gateway and
``viabtc-miner`` (in-process services), and bitpeer started from the seed's
sample config (only hosts, ports and addresses changed): the pool's node
and two outside nodes, none connected to another, segwit active.

- A block our miner finds reaches both outside nodes through bitpeer: one
  fetches it as a compact block, the other (``--compact=false``) as a full
  witness block.
- A block mined on an outside node reaches bitpeer, which hints it: the
  jobmaster switches to an empty-block job on it while the pool's node
  still does not have it; the block our miner finds on that job is
  accepted by the outside node; the outside block went to the blockmaster
  link as cmd 12.
"""

import json
import os
import socket

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase
from twisted.web import server

from tests.gateway.support import StatsWriter
from tests.gateway.test_service import gateway_data
from tests.jobmaster.mining import TestGateway, in_thread, wait_for
from tests.jobmaster.test_service import config_for
from tests.rpc.test_addresslist import FakeListService
from tests.support import bcoin_node
from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitpeer import tap as bitpeer_tap
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.service import GatewayService
from viabtc.jobmaster.tap import build_service
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command
from viabtc.tools.miner import Miner, MinerConfig

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "bitpeer.json")

#: bcoin's regtest activates segwit (BIP9, 144-block windows) from this height.
SEGWIT_HEIGHT = 432

#: The miner's share difficulty: a share in ~40,000 hashes, and every share
#: is a regtest block.
DIFFICULTY = 0.00001


def copy_chain(source, targets, hashes):
    """Give ``targets`` the blocks ``hashes`` of ``source`` (no P2P link between them)."""
    for block_hash in hashes:
        raw = source.rpc("getblock", block_hash, False)
        for target in targets:
            target.rpc("submitblock", raw)


class Blockmaster:
    """A blockmaster's link to bitpeer's svr (a real ``FailoverClient``), recording pushes."""

    def __init__(self, port):
        self.packets = []
        self.client = FailoverClient([TCP4ClientEndpoint(reactor, "127.0.0.1", port)],
                                     max_size=32 << 20, reactor=reactor, role="test-blockmaster",
                                     reconnect_timeout=0.2)
        self.client.add_observer(self)

    def on_connect(self, link):
        pass

    def on_packet(self, link, packet):
        self.packets.append(packet)

    def on_disconnect(self, link):
        pass


def seed_config(testcase, pool, outside, udp_port):
    """
    The seed's bitpeer.json with only hosts, ports and addresses changed,
    for ``testcase``: bitpeer on ``pool``'s RPC, the peers file naming the
    ``outside`` nodes, hints to the jobmaster list (the fake list service
    naming UDP port ``udp_port``).  ``(path, svr_port)``.
    """
    listing = FakeListService("xxxxxxxxxxxxx")
    listing.reply = {"error": {"message": "ok"}, "result": [f"127.0.0.1:{udp_port}"]}
    http = reactor.listenTCP(0, server.Site(listing), interface="127.0.0.1")
    testcase.addCleanup(http.stopListening)
    with open(SEED) as f:
        data = json.load(f)
    directory = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    svr_port = free_port()
    data["svr"]["bind"] = f"tcp@127.0.0.1:{svr_port}"
    data["cli"] = f"tcp@127.0.0.1:{free_port()}"
    data["alert"]["addr"] = "127.0.0.1:10000"
    data["log"]["path"] = os.path.join(directory, "bitpeer")
    data["coin"].update(host="127.0.0.1", port=pool.rpc_port, user="viabtc", **{"pass": pool.api_key})
    data["http_svr"]["bind"] = [f"tcp@127.0.0.1:{free_port()}"]
    data["start_string"] = "fabfb5da"  # regtest's magic (the sample is mainnet's)
    data["jobmaster_url"] = f"http://127.0.0.1:{http.getHost().port}/jobmaster"
    data["process"] = {"file_limit": 0, "core_limit": 0}
    with open(os.path.join(directory, "peer.json"), "w") as f:
        json.dump({"peers": [n.p2p_address for n in outside]}, f)
    path = os.path.join(directory, "bitpeer.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path, svr_port


def start_bitpeer(testcase, path):
    """Bitpeer as ``twistd`` builds it from the config at ``path``, started, stopped by the cleanup."""
    options = bitpeer_tap.Options()
    options.parseOptions(["--config", path])
    bitpeer = bitpeer_tap.makeService(options, reactor)
    testcase.addCleanup(bitpeer.role_logging.remove)
    bitpeer.startService()
    testcase.addCleanup(bitpeer.stopService)
    return bitpeer


class BitpeerEndToEndTests(TestCase):
    timeout = 180

    def start(self, service):
        service.startService()
        self.addCleanup(service.stopService)
        return service

    async def mine_a_block(self, stratum_port):
        """
        ``viabtc-miner`` on the gateway until it found a block; the display
        hashes of the blocks it found (shares in flight may add one or two).
        """
        miner = Miner(MinerConfig(url=f"stratum+tcp://127.0.0.1:{stratum_port}", user="e2e.miner",
                                  max_blocks=1), reactor)
        miner.startService()
        stats = await miner.done
        if miner.running:
            await miner.stopService()
        self.assertTrue(stats.blocks)
        return stats.blocks

    async def test_blocks_both_ways(self):
        pool = bcoin_node(self)
        compact = bcoin_node(self, listen=True)
        whole = bcoin_node(self, listen=True, options=["--compact=false"])
        hashes = await in_thread(pool.generate, SEGWIT_HEIGHT)
        await in_thread(copy_chain, pool, [compact, whole], hashes)

        tcp, udp = free_port(), free_port(kind=socket.SOCK_DGRAM)
        path, svr_port = seed_config(self, pool, [compact, whole], udp)
        jobmaster_config, _tcp, _udp, _cli = config_for(
            pool, os.path.abspath(self.mktemp()),
            blockmaster=[f"tcp@127.0.0.1:{svr_port}"],
            svr={"bind": [f"tcp@127.0.0.1:{tcp}", f"udp@127.0.0.1:{udp}"], "max_pkg_size": 1 << 20})
        bitpeer = start_bitpeer(self, path)
        jobmaster = self.start(build_service(jobmaster_config, reactor))
        gateway = TestGateway(tcp)  # sees every job the miners get
        gateway.start()
        self.addCleanup(gateway.stop)
        writer = StatsWriter()
        self.addCleanup(writer.stop)
        gateway_config = GatewayConfig.from_reader(ConfigReader(gateway_data(
            tcp, writer.address, os.path.abspath(self.mktemp()), diff_min=DIFFICULTY,
            diff_default=DIFFICULTY)))
        self.start(GatewayService(gateway_config, reactor))
        stratum_port = gateway_config.svr.binds[0].port
        blockmaster = Blockmaster(svr_port)
        blockmaster.client.startService()
        self.addCleanup(blockmaster.client.stopService)

        relay = bitpeer.relay
        await wait_for(lambda: len(relay.peers) == 2 and relay.best_height == SEGWIT_HEIGHT,
                       what="bitpeer connected to both outside nodes, on the pool node's tip")
        await wait_for(lambda: blockmaster.client.connected and jobmaster.blockmasters[0].connected,
                       what="the svr links")
        [job, *_] = await wait_for(gateway.jobs, what="a job")
        self.assertEqual(job.height, SEGWIT_HEIGHT + 1)

        # 1. Our miner finds a block (segwit: its coinbase carries a witness).
        found = await self.mine_a_block(stratum_port)
        ours = await wait_for(lambda: (lambda best: best in found and best)(pool.rpc("getbestblockhash")),
                              what="the pool's block on the pool's node")
        for node in (compact, whole):
            await wait_for(lambda node=node: node.rpc("getbestblockhash") == ours,
                           what="the pool's block on the outside node")
        height = await in_thread(pool.rpc, "getblockcount")
        served = dict(relay.counts)
        self.assertGreaterEqual(served["served compact block"], 1)
        self.assertGreaterEqual(served["served witness block"], 1)
        await wait_for(lambda: jobmaster.work.current.job.height == height + 1, what="the next job")

        # 2. An outside node mines a block; the pool's node never hears of it.
        [outside_hash] = await in_thread(whole.generate, 1)
        [empty] = await wait_for(
            lambda: [j for j in gateway.jobs() if j.prevhash == outside_hash],
            what="the empty-block job on the outside block")
        self.assertEqual((empty.height, empty.merkle_branch, empty.clean_jobs),
                         (height + 2, (), True))
        self.assertEqual(await in_thread(pool.rpc, "getblockcount"), height)
        # One hint per block: the pool's own (hinted as the seed does, for
        # jobmasters of other regions) and the outside block.
        self.assertEqual(bitpeer.hints_sent, height - SEGWIT_HEIGHT + 1)
        pushed = await wait_for(lambda: [p for p in blockmaster.packets
                                         if p.command == Command.UPDATE_BLOCK],
                                what="the outside block pushed to the blockmaster")
        self.assertEqual(hash_to_display_hex(sha256d(pushed[0].body[:80])), outside_hash)

        # 3. Our miner finds a block on the empty job: the outside node takes it.
        found = await self.mine_a_block(stratum_port)
        best = await wait_for(lambda: (lambda best: best in found and best)(whole.rpc("getbestblockhash")),
                              what="our empty block on the outside node")
        block = await in_thread(whole.rpc, "getblock", best)
        self.assertEqual((block["previousblockhash"], len(block["tx"])), (outside_hash, 1))
        # The pool's node never gets these blocks: the jobmaster is still in
        # empty mode when the test stops it (and its stop cancels the timeout).
        self.assertEqual(jobmaster.work.mode, "empty")
