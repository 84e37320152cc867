"""
``viabtc.jobmaster.auxchains`` over real HTTP against the aux daemon
stand-in (``tests.auxdaemon``): blocks fetched and refreshed, both RPC
flavours, a dead or slow daemon dropped from the work with one alert, and
its return.
"""

from twisted.internet import reactor
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.jobmaster.auxchains import (
    AuxChain, AuxChains, AuxCoinConfig, RskChain, VcashChain, VcashHTTP, rsk_imported,
)
from viabtc.node.jsonrpc import NodeConfig, NodeGroup

from tests.auxdaemon import AuxDaemonStandIn, RskStandIn, VcashStandIn


class Clock:
    """The real reactor's time, moved ahead by hand for ``aux_job_timeout``."""

    def __init__(self):
        self.offset = 0.0

    def seconds(self):
        return reactor.seconds() + self.offset


class AuxChainTests(TestCase):

    async def daemon(self, name="NMC", chain_id=1, **kw):
        daemon = AuxDaemonStandIn(name, chain_id, **kw)
        await daemon.serve(self)
        return daemon

    def chain(self, daemon, address=None, call_timeout=2.0, job_timeout=15.0):
        entry = daemon.node_entry()
        nodes = NodeGroup.from_configs([NodeConfig.from_entry(entry, timeout=call_timeout)], reactor)
        self.changes = []
        self.clock = Clock()
        chain = AuxChain(AuxCoinConfig(daemon.name, (entry,), address), nodes, self.clock,
                         job_timeout, lambda: self.changes.append(chain.block),
                         call_timeout=call_timeout)
        self.addCleanup(chain.close)
        return chain

    async def test_fetch_and_new_height(self):
        daemon = await self.daemon(bits=0x1F00FFFF)
        chain = self.chain(daemon)
        await chain.poll()
        block = chain.block
        self.assertEqual(block.name, "NMC")
        self.assertEqual(block.chain_id, 1)
        self.assertEqual(block.target, 0xFFFF << (8 * (0x1F - 3)))
        self.assertEqual(block.display_hash, daemon._block()[::-1].hex())
        self.assertEqual(block.block_hash, daemon._block())
        self.assertEqual(len(self.changes), 1)
        self.assertEqual(daemon.calls, ["getblockcount", "getauxblock"])
        # Same height, block young: only getblockcount.
        await chain.poll()
        self.assertEqual(daemon.calls[2:], ["getblockcount"])
        self.assertEqual(len(self.changes), 1)
        # A new aux block height: a new block to mine.
        daemon.height += 1
        await chain.poll()
        self.assertEqual(daemon.calls[3:], ["getblockcount", "getauxblock"])
        self.assertEqual(chain.block.block_hash, daemon._block())
        self.assertEqual(len(self.changes), 2)

    async def test_refreshed_after_aux_job_timeout(self):
        daemon = await self.daemon()
        chain = self.chain(daemon, job_timeout=15.0)
        await chain.poll()
        self.clock.offset += 15.0
        await chain.poll()
        self.assertEqual(daemon.calls, ["getblockcount", "getauxblock"] * 2)
        # The daemon gave the same block: no new job is due.
        self.assertEqual(len(self.changes), 1)

    async def test_createauxblock_with_an_address(self):
        daemon = await self.daemon()
        chain = self.chain(daemon, address="n1pool")
        await chain.poll()
        self.assertEqual(daemon.calls, ["getblockcount", "createauxblock"])
        result = await chain.submit((chain.block.display_hash, "00"))
        self.assertIs(result, False)
        self.assertEqual(daemon.calls[-1], "submitauxblock")
        self.assertEqual(daemon.rejected, [(chain.block.display_hash, "bad-auxpow-encoding")])

    async def test_getauxblock_submission(self):
        daemon = await self.daemon()
        chain = self.chain(daemon)
        await chain.poll()
        self.assertIs(await chain.submit((chain.block.display_hash, "00")), False)
        self.assertEqual(daemon.calls[-1], "getauxblock")

    async def test_dead_daemon_dropped_with_one_alert_then_back(self):
        daemon = await self.daemon()
        chain = self.chain(daemon)
        await chain.poll()
        await daemon.stop()
        with capturedLogs() as events:
            await chain.poll()
            await chain.poll()
        self.assertIsNone(chain.block)
        self.assertTrue(chain.failing)
        self.assertEqual(self.changes[-1], None)
        critical = [e for e in events if e["log_level"] is LogLevel.critical]
        self.assertEqual(len(critical), 1)
        self.assertIn("NMC unavailable", critical[0]["log_format"].format(**critical[0]))
        await daemon.start()
        with capturedLogs() as events:
            await chain.poll()
        self.assertFalse(chain.failing)
        self.assertEqual(chain.block.block_hash, daemon._block())
        self.assertTrue(any("answers again" in e["log_format"] for e in events))

    async def test_slow_daemon_times_out(self):
        daemon = await self.daemon()
        chain = self.chain(daemon, call_timeout=0.2)
        await chain.poll()
        daemon.delay = 1.0
        with capturedLogs():
            await chain.poll()
        self.assertIsNone(chain.block)
        self.assertTrue(chain.failing)

    async def test_polls_do_not_pile_up(self):
        daemon = await self.daemon()
        chain = self.chain(daemon, call_timeout=0.5)
        daemon.delay = 0.1
        first = chain.poll()
        self.assertIs(chain.poll(), first)
        await first
        self.assertEqual(daemon.calls, ["getblockcount", "getauxblock"])

    async def test_bad_reply_is_a_failure(self):
        daemon = await self.daemon()
        daemon._reply = lambda: {"hash": "zz"}
        chain = self.chain(daemon)
        with capturedLogs() as events:
            await chain.poll()
        self.assertIsNone(chain.block)
        self.assertTrue(any(e["log_level"] is LogLevel.critical for e in events))


class AuxChainsTests(TestCase):

    async def test_work_over_two_chains_and_collision(self):
        chains = []
        for name, chain_id in (("NMC", 1), ("SYS", 2), ("XYZ", 5)):
            daemon = AuxDaemonStandIn(name, chain_id)
            entry = await daemon.serve(self)
            nodes = NodeGroup.from_configs([NodeConfig.from_entry(entry)], reactor)
            chain = AuxChain(AuxCoinConfig(daemon.name, (entry,)), nodes, reactor, 15.0, lambda: None)
            self.addCleanup(chain.close)
            chains.append(chain)
        aux = AuxChains(chains, 4, 0)
        self.assertIsNone(aux.work())
        for chain in chains:
            await chain.poll()
        # Chain ids 1 and 5 share slot 3 of 4: XYZ is left out, with one alert.
        with capturedLogs() as events:
            work = aux.work()
            aux.work()
        self.assertEqual([e.block.name for e in work.entries], ["NMC", "SYS"])
        self.assertEqual([e.slot for e in work.entries], [3, 0])
        self.assertEqual(len([e for e in events if e["log_level"] is LogLevel.critical]), 1)
        self.assertIs(aux.get("SYS"), chains[1])
        self.assertIsNone(aux.get("BTC"))


class RskVcashChainTests(TestCase):

    def test_rsk_imported(self):
        self.assertTrue(rsk_imported({"blockImportedResult": "0x" + b"IMPORTED_BEST".hex()}))
        self.assertTrue(rsk_imported({"blockImportedResult": b"IMPORTED_NOT_BEST".hex()}))
        self.assertFalse(rsk_imported({"blockImportedResult": "0x" + b"INVALID_BLOCK".hex()}))
        self.assertFalse(rsk_imported(None))
        self.assertFalse(rsk_imported({"blockImportedResult": "0xzz"}))

    async def test_rsk_work_and_job_interval(self):
        rsk = RskStandIn()
        entry = await rsk.serve(self)
        nodes = NodeGroup.from_configs([NodeConfig.from_entry(entry)], reactor)
        clock = Clock()
        changes = []
        chain = RskChain("RSK", nodes, clock, 15.0, 30.0, lambda: changes.append(chain.work))
        self.addCleanup(chain.close)
        await chain.poll()
        self.assertEqual(rsk.calls, ["eth_blockNumber", "mnr_getWork", "eth_getBlockByHash"])
        self.assertEqual((chain.work.block_hash, chain.work.height), (rsk.work_hash(), 501))
        # New RSK work within rsk_job_interval waits; after it, it reaches jobs.
        rsk.number += 1
        clock.offset += 10
        await chain.poll()
        self.assertEqual(len(changes), 1)
        self.assertIsNotNone(chain.pending)
        clock.offset += 20
        await chain.poll()
        self.assertEqual(len(changes), 2)
        self.assertEqual(chain.work.block_hash, rsk.work_hash())
        # A found block: submitted with the partial merkle call; imported.
        with capturedLogs():
            self.assertIs(await chain.submit((rsk.work_hash().hex(), "00" * 80, "00", "", "1")),
                          False)
        self.assertEqual(rsk.calls[-1], "mnr_submitBitcoinBlockPartialMerkle")

    async def test_vcash_work(self):
        vcash = VcashStandIn()
        entry = await vcash.serve(self)
        changes = []
        chain = VcashChain("VCASH", VcashHTTP(entry, reactor), reactor, lambda: changes.append(1))
        self.addCleanup(chain.close)
        await chain.poll()
        self.assertEqual((chain.work.height, chain.work.block_hash), (900, vcash.header_hash()))
        await chain.poll()
        self.assertEqual(len(changes), 1)
        vcash.height += 1
        await chain.poll()
        self.assertEqual(len(changes), 2)
        self.assertIs(await chain.submit({"header_hash": "00"}), False)
        self.assertEqual(vcash.rejected, [("00", "unknown header hash")])
        await vcash.stop()
        with capturedLogs():
            await chain.poll()
        self.assertIsNone(chain.work)
