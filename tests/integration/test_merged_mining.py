"""
Merged mining end to end: two aux chains, RSK and VCASH mined at once with
the main chain.

A real bcoin regtest node is the main chain; stand-ins (``tests.auxdaemon``:
no Namecoin-style daemon, RSK or VCASH node is on the package registries)
play a ``getauxblock`` chain and a ``createauxblock`` chain, each checking
every AuxPoW it receives the way Namecoin Core does, an RSK node checking
the partial merkle proofs as rskj does, and a VCASH pool API.  The
jobmaster, the gateway and the metawriter run as real ``twistd`` processes
with a real redis-server, and ``viabtc-miner`` mines through the gateway.

The aux chains accept blocks while the node keeps accepting main blocks;
one aux daemon is then stopped: every new main height still gets its job
and blocks, the other aux chain keeps being mined; restarted, its mining
resumes.  Redis's ``newblock`` list ends up with records for the main chain
and for every aux chain, with the aux block hashes the daemons accepted.
"""

import json
import os
import re
import signal

from twisted.internet import reactor, threads
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.bitcoin.auxpow import MERGED_MINING_HEADER
from viabtc.bitcoin.block import parse_block
from viabtc.devnet import free_port

from tests.auxdaemon import AuxDaemonStandIn, RskStandIn, VcashStandIn
from tests.integration.processes import Processes
from tests.support import bcoin_node, redis_server

#: Bound of each wait, on a loaded machine.
DEADLINE = 240.0
#: What each stand-in says to a second share for a block it has moved past.
STALE = {"stale or unknown block hash", "work not found", "unknown header hash"}
_JOB_LINE = re.compile(r"job [0-9a-f]+ height (\d+)")


async def in_thread(f, *args):
    return await threads.deferToThread(f, *args)


class MergedMiningThroughThePool(TestCase):
    timeout = 900

    async def wait(self, procs, what, predicate,
                   alive=("jobmaster", "gateway", "metawriter", "miner")):
        """Poll ``predicate`` (maybe async) while the processes ``alive`` stay up."""
        for _ in range(int(DEADLINE / 0.2)):
            procs.check_alive(*alive)
            value = predicate()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return value
            await deferLater(reactor, 0.2, lambda: None)
        raise AssertionError(f"timed out waiting for {what}")

    async def height(self, node):
        return await in_thread(node.rpc, "getblockcount")

    async def test_aux_chains_mined_with_the_main_chain(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        procs = Processes(self, directory)
        await procs.run(self.scenario(directory, procs))

    async def scenario(self, directory, procs):
        node = bcoin_node(self)
        redis = redis_server(self)
        nmc = AuxDaemonStandIn("NMC", 1)
        sys_ = AuxDaemonStandIn("SYS", 2)
        rsk, vcash = RskStandIn(), VcashStandIn()
        for daemon in (nmc, sys_, rsk, vcash):
            await daemon.start()
            self.addCleanup(daemon.stop)

        writer_port = free_port()
        with open(os.path.join(directory, "trust.json"), "w") as f:
            json.dump({"127.0.0.1": "test"}, f)
        procs.role("metawriter", {
            "alert": {"host": "mw-mm"},
            "svr": {"bind": [f"tcp@127.0.0.1:{writer_port}", f"udp@127.0.0.1:{writer_port}"],
                    "max_pkg_size": 1 << 20},
            "redis": {"host": "127.0.0.1", "port": redis.port},
            "trust_file": "trust.json",
            "journal": "journal",
            "redis_retry_interval": 0.1,
        })
        await procs.wait_port("metawriter", writer_port)

        jobmaster_port, stratum_port = free_port(), free_port()
        procs.role("jobmaster", {
            "network": "regtest",
            "svr": {"bind": [f"tcp@127.0.0.1:{jobmaster_port}"], "max_pkg_size": 1 << 20},
            "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": node.rpc_port,
                          "user": "viabtc", "pass": node.api_key},
            "main_coin_recipient": encode_segwit_address("bcrt", 0, bytes(range(20))),
            "aux_coin": [nmc.coin_config(), sys_.coin_config(address="sys-pool-address")],
            "aux_merkle_size": 4,
            "aux_merkle_nonce": 0,
            "aux_job_timeout": 15,
            "rsk_coin": rsk.coin_config(),
            "rsk_job_interval": 1,
            "vcash_coin": vcash.coin_config(),
            "pool_name": "viabtc-mm",
            "coinbase_account": True,
            "found_blocks_dir": os.path.join(directory, "found"),
        })
        await procs.wait_port("jobmaster", jobmaster_port)
        procs.role("gateway", {
            "alert": {"host": "gw-mm"},
            "svr": {"bind": [f"tcp@127.0.0.1:{stratum_port}"], "max_pkg_size": 10240},
            "job": {"name": "jobmaster", "addr": [f"tcp@127.0.0.1:{jobmaster_port}"],
                    "max_pkg_size": 1 << 20, "reconnect_timeout": 0.2},
            "writer": {"name": "writer", "addr": [f"udp@127.0.0.1:{writer_port}"],
                       "max_pkg_size": 1 << 20},
            "coin": "btc",
            "queue": os.path.join(directory, "queue"),
            "worker_id": 7,
            "worker_num": 1,
            "diff_min": 0.0001,
            "diff_max": 0.0001,
            "diff_default": 0.0001,
            "target_time": 4,
            "retarget_time": 120,
        })
        await procs.wait_port("gateway", stratum_port)
        start = await self.height(node)
        rsk_start = rsk.number
        procs.miner("miner", "-o", f"stratum+tcp://127.0.0.1:{stratum_port}", "-u", "alice.rig1",
                    "--max-blocks", "1000", "--report-interval", "5")

        # Both aux chains and the main chain get blocks.
        await self.wait(procs, "blocks on every aux chain",
                        lambda: all(len(d.accepted) >= 2 for d in (nmc, sys_, rsk, vcash)))
        # From here every job commits to the aux tree (the first second's
        # jobs, before any aux daemon answered, did not).
        merged_from = await self.height(node)
        self.assertGreater(merged_from, start)

        # The NMC daemon dies: main blocks and their jobs keep coming, SYS
        # keeps being mined, NMC is left out of the work.
        await nmc.stop()
        nmc_before = len(nmc.accepted)

        def jobmaster_log():
            with open(procs.log_path("jobmaster")) as f:
                return f.read()

        await self.wait(procs, "the NMC alert",
                        lambda: "aux chain NMC unavailable, mining without it" in jobmaster_log())
        dropped_at = await self.height(node)
        sys_before = len(sys_.accepted)

        async def mined_without_nmc():
            return await self.height(node) >= dropped_at + 4 and len(sys_.accepted) >= sys_before + 2

        await self.wait(procs, "main and SYS blocks with NMC down", mined_without_nmc)
        resumed_at = await self.height(node)
        self.assertEqual(len(nmc.accepted), nmc_before)
        job_heights = {int(h) for h in _JOB_LINE.findall(jobmaster_log())}
        self.assertLessEqual(set(range(dropped_at + 1, resumed_at + 1)), job_heights,
                             "every new main height got a job while NMC was down")

        # Back: NMC mining resumes.
        await nmc.start()
        await self.wait(procs, "NMC blocks again", lambda: len(nmc.accepted) >= nmc_before + 2)
        self.assertIn("aux chain NMC answers again", jobmaster_log())

        self.assertIn(await procs.terminate("miner"), (0, -signal.SIGTERM))
        end = await self.height(node)
        # Every AuxPoW a daemon refused was for a block it had moved past
        # (two shares racing for one aux block), never a bad proof.
        for daemon in (nmc, sys_, rsk, vcash):
            self.assertEqual({reason for _, reason in daemon.rejected} - STALE, set())

        # Main blocks carry the commitment once, in the 100-byte scriptSig.
        for h in range(start + 1, end + 1):
            raw = await in_thread(node.rpc, "getblock", await in_thread(node.rpc, "getblockhash", h), False)
            script = parse_block(bytes.fromhex(raw)).transactions[0].inputs[0].script_sig
            markers = script.count(MERGED_MINING_HEADER)
            self.assertIn(markers, (1,) if h > merged_from else (0, 1))
            self.assertLessEqual(len(script), 100)

        # newblock in Redis: the main chain's blocks and both aux chains', by name and hash.
        self.assertIn(await procs.terminate("gateway"), (0, -signal.SIGTERM))
        main_hashes = set()
        for h in range(start + 1, end + 1):
            main_hashes.add(await in_thread(node.rpc, "getblockhash", h))

        def recorded():
            entries = [json.loads(v) for v in redis.command("LRANGE", "newblock", "0", "-1")]
            by_name = {}
            for entry in entries:
                by_name.setdefault(entry["name"], set()).add(entry["hash"])
            ok = (main_hashes <= by_name.get("BTC", set())
                  and all({h for h, _ in d.accepted} <= by_name.get(d.name, set())
                          for d in (nmc, sys_, vcash))
                  and "RSK" in by_name)
            return entries if ok else None

        entries = await self.wait(procs, "newblock records", recorded,
                                  alive=("jobmaster", "metawriter"))
        self.assertEqual({e["user"] for e in entries}, {"alice"})
        self.assertEqual({e["name"] for e in entries}, {"BTC", "NMC", "SYS", "RSK", "VCASH"})
        # RSK's record carries the RSK height mined, in hex, as the seed's does.
        self.assertTrue(all(int(e["hash"], 16) > rsk_start for e in entries if e["name"] == "RSK"))
