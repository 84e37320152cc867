"""
THE end-to-end test: regtest blocks mined through the pool.

A real bcoin regtest node; the jobmaster and the gateway as real ``twistd``
processes with configs written here on free ports; ``viabtc-miner`` as a
real process mining through the gateway until it has found the blocks.  The
node must accept every block, its height must grow by that many, and each
block's coinbase must pay the configured outputs (the coinbase value split
by the recipients' percentages), carry the BIP34 height, the pool tag and
the gateway's unique id.  A second run on a fresh node after 440 blocks
(segwit active) checks the witness commitment too.  Statistics go to a UDP
writer in the test, which must hear of every block.
"""

import os
import signal
import time

from twisted.internet import reactor, threads
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.network import get_network
from viabtc.bitcoin.subsidy import block_subsidy
from viabtc.devnet import free_port
from viabtc.stats import records

from tests.gateway.support import StatsWriter, wait_for
from tests.integration.processes import Processes
from tests.support import bcoin_node

BLOCKS = 5
#: Bound of the wait for the blocks, mined on a loaded machine.
MINING_DEADLINE = 600.0
WORKER_ID = 0x2a
MAIN_PROGRAM = bytes(range(20))
SHARE_PROGRAM = bytes(range(20, 40))
POOL_NAME = "viabtc-e2e"
MESSAGE = "through the pool"


def jobmaster_config(node, port, found_dir):
    return {
        "network": "regtest",
        "svr": {"bind": [f"tcp@127.0.0.1:{port}"], "max_pkg_size": 1 << 20},
        "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": node.rpc_port, "user": "viabtc",
                      "pass": node.api_key},
        "main_coin_recipient": encode_segwit_address("bcrt", 0, MAIN_PROGRAM),
        "coin_recipients": [{"address": encode_segwit_address("bcrt", 0, SHARE_PROGRAM), "percent": 0.25}],
        "pool_name": POOL_NAME,
        "coinbase_message": MESSAGE,
        "coinbase_account": True,
        "found_blocks_dir": found_dir,
    }


def gateway_config(stratum_port, jobmaster_port, writer, queue, **changes):
    data = {
        "alert": {"host": "gw-e2e"},
        "svr": {"bind": [f"tcp@127.0.0.1:{stratum_port}"], "max_pkg_size": 10240},
        "job": {"name": "jobmaster", "addr": [f"tcp@127.0.0.1:{jobmaster_port}"], "max_pkg_size": 1 << 20,
                "reconnect_timeout": 0.2},
        "writer": {"name": "writer", "addr": [writer.address], "max_pkg_size": 1 << 20},
        "coin": "btc",
        "queue": queue,
        "worker_id": WORKER_ID,
        "worker_num": 1,
        "diff_min": 0.0001,
        "diff_max": 16384,
        "diff_default": 0.001,
        "target_time": 4,
        "retarget_time": 120,
    }
    data.update(changes)
    return data


def alice_shares(writer):
    return sum(r.num for _, r in writer.records(records.META_SHARE) if r.key == "alice")


async def in_thread(f, *args):
    return await threads.deferToThread(f, *args)


class MiningThroughThePool(TestCase):
    timeout = 900

    async def mine(self, node):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        procs = Processes(self, directory)
        return await procs.run(self.scenario(node, procs, directory))

    async def scenario(self, node, procs, directory):
        writer = StatsWriter()
        self.addCleanup(writer.stop)
        jobmaster_port, stratum_port = free_port(), free_port()
        procs.role("jobmaster", jobmaster_config(node, jobmaster_port, os.path.join(directory, "found")))
        await procs.wait_port("jobmaster", jobmaster_port)
        procs.role("gateway", gateway_config(stratum_port, jobmaster_port, writer,
                                             os.path.join(directory, "queue")))
        await procs.wait_port("gateway", stratum_port)
        start = await in_thread(node.rpc, "getblockcount")

        # On regtest every share is a block: a second solution may come in
        # before the clean job for the next height and lose that height (the
        # node keeps it off its best chain), so the miner's own count can run
        # ahead of the node's.  Mine until the node has grown by BLOCKS.
        procs.miner("miner", "-o", f"stratum+tcp://127.0.0.1:{stratum_port}", "-u", "alice.rig1",
                    "--max-blocks", str(BLOCKS * 10), "--report-interval", "5")
        deadline = time.monotonic() + MINING_DEADLINE
        while (height := await in_thread(node.rpc, "getblockcount")) < start + BLOCKS:
            procs.check_alive("jobmaster", "gateway", "miner")
            if time.monotonic() > deadline:
                break
            await deferLater(reactor, 0.2, lambda: None)
        self.assertGreaterEqual(height, start + BLOCKS, "the node's height grew by the blocks mined")
        self.assertIn(await procs.terminate("miner"), (0, -signal.SIGTERM),
                      "the miner stops cleanly")

        blocks = []
        for h in range(start + 1, start + BLOCKS + 1):
            block_hash = await in_thread(node.rpc, "getblockhash", h)
            raw = await in_thread(node.rpc, "getblock", block_hash, False)
            block = parse_block(bytes.fromhex(raw))
            self.assertEqual(block.hash()[::-1].hex(), block_hash)
            self.check_coinbase(block, h)
            blocks.append((block_hash, block))

        # Graceful stop: the gateway flushes every minute it holds; the
        # writer hears of every block and every accepted share.
        self.assertIn(await procs.terminate("gateway"), (0, -signal.SIGTERM))
        mined = {h for h, _ in blocks}
        await wait_for(lambda: mined <= {r.hash for _, r in writer.records(records.META_BLOCK)},
                       what="a block record for every block")
        await wait_for(lambda: alice_shares(writer) >= BLOCKS, what="the flushed share records")
        return blocks

    def check_coinbase(self, block, height):
        coinbase = block.transactions[0]
        script_sig = coinbase.inputs[0].script_sig
        self.assertEqual(block.coinbase_height(), height)
        self.assertIn(f"/{POOL_NAME}/{MESSAGE}/Mined by alice/".encode(), script_sig)
        self.assertLessEqual(len(script_sig), 100)
        # ... 0x14, u32 (worker_id << 16) + job id, u32 nonce_id, extranonce1, extranonce2
        self.assertEqual(script_sig[-21], 0x14)
        self.assertEqual(int.from_bytes(script_sig[-20:-16], "little") >> 16, WORKER_ID)
        paid = [(out.value, out.script) for out in coinbase.outputs if out.value]
        total = sum(value for value, _ in paid)
        self.assertEqual(total, block_subsidy(height, get_network("regtest")))  # no fees on an idle node
        self.assertEqual(paid, [(total // 4, bytes.fromhex("0014") + SHARE_PROGRAM),
                                (total - total // 4, bytes.fromhex("0014") + MAIN_PROGRAM)])
        self.assertTrue(block.check_merkle_root())

    async def test_blocks_mined_through_the_pool(self):
        node = bcoin_node(self)
        await self.mine(node)

    async def test_segwit_blocks_carry_a_valid_witness_commitment(self):
        node = bcoin_node(self)
        await in_thread(node.generate, 440)
        blocks = await self.mine(node)
        for _, block in blocks:
            self.assertIsNotNone(block.witness_commitment())
            self.assertTrue(block.transactions[0].has_witness())
            self.assertTrue(block.check_witness_commitment())
