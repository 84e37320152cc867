"""
The jobmaster service against a real bcoin regtest node, over real TCP, UDP
and CLI connections.
"""

import json
import os
import time

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.serialize import read_bip34_height
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.service import JobmasterService
from viabtc.jobmaster.tap import build_service
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.node.submit import BlockSubmitter
from viabtc.node.template import TemplateSource
from viabtc.rpc.codec import Command, Packet, PacketType

from tests.jobmaster.mining import (
    ClosingProxyFactory, TestGateway, free_ports, in_thread, send_datagram, solve, wait_for,
)
from tests.auxdaemon import AuxDaemonStandIn
from tests.support import bcoin_node

MAIN_PROGRAM = bytes(range(20))
SHARE_PROGRAM = bytes(range(20, 40))
#: How long a block may take to become the node's tip: generous, for a
#: node sharing a loaded machine.
NODE_DEADLINE = 60.0


def config_for(node, found_dir, **changes):
    tcp, udp, cli = free_ports()
    data = {
        "network": "regtest",
        "svr": {"bind": [f"tcp@127.0.0.1:{tcp}", f"udp@127.0.0.1:{udp}"], "max_pkg_size": 1 << 20},
        "cli": f"tcp@127.0.0.1:{cli}",
        "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": node.rpc_port,
                      "user": "viabtc", "pass": node.api_key},
        "main_coin_recipient": encode_segwit_address("bcrt", 0, MAIN_PROGRAM),
        "coin_recipients": [{"address": encode_segwit_address("bcrt", 0, SHARE_PROGRAM),
                             "percent": 0.25}],
        "pool_name": "viabtc-test",
        "coinbase_message": "hello",
        "coinbase_account": False,
        "job_rebroadcast_timeout": 50,
        "spv_mining_timeout": 60,
        "found_blocks_dir": found_dir,
    }
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    config = JobmasterConfig.from_reader(ConfigReader(data))
    return config, tcp, udp, cli


class LineClient(Protocol):
    """A CLI connection collecting reply bytes."""

    def __init__(self):
        self.data = b""

    def dataReceived(self, data):
        self.data += data


class JobmasterNodeTests(TestCase):
    """One bcoin node for the class; each test runs its own jobmaster."""

    timeout = 180

    def setUp(self):
        self.node = bcoin_node(self, shared=True)
        self.found_dir = os.path.abspath(self.mktemp())

    def start(self, service_factory=None, **changes):
        config, self.tcp, self.udp, self.cli = config_for(self.node, self.found_dir, **changes)
        self.config = config
        service = (service_factory or build_service)(config, reactor)
        # The real one stops the reactor: here it must only be seen.
        self.config_errors = []
        service.config_failed = self.config_errors.append
        service.startService()
        self.addCleanup(service.stopService)
        self.service = service
        return service

    def gateway(self):
        gateway = TestGateway(self.tcp)
        gateway.start()
        self.addCleanup(gateway.stop)
        return gateway

    async def first_job(self, gateway):
        jobs = await wait_for(gateway.jobs, what="a job")
        return jobs[0]

    async def height(self):
        return await in_thread(self.node.rpc, "getblockcount")

    async def land(self, gateway, job):
        """Solve ``job``, report it, and wait until the node's tip is that block."""
        body = solve(job)
        self.assertTrue(gateway.send_found(body))
        deadline = time.monotonic() + NODE_DEADLINE
        while (best := await in_thread(self.node.rpc, "getbestblockhash")) != body["hash"]:
            if time.monotonic() > deadline:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(best, body["hash"])
        raw = await in_thread(self.node.rpc, "getblock", body["hash"], False)
        return body, parse_block(bytes.fromhex(raw))

    def check_payout(self, block, job):
        coinbase = block.transactions[0]
        script_sig = coinbase.inputs[0].script_sig
        self.assertEqual(read_bip34_height(script_sig), job.height)
        self.assertIn(b"/viabtc-test/hello/", script_sig)
        self.assertLessEqual(len(script_sig), 100)
        paid = [(o.value, o.script) for o in coinbase.outputs if o.value]
        total = sum(v for v, _ in paid)
        self.assertEqual(paid, [(total // 4, bytes.fromhex("0014") + SHARE_PROGRAM),
                                (total - total // 4, bytes.fromhex("0014") + MAIN_PROGRAM)])

    @defer.inlineCallbacks
    def test_gateway_job_and_found_block_lands(self):
        yield defer.ensureDeferred(self._gateway_job_and_found_block_lands())

    async def _gateway_job_and_found_block_lands(self):
        self.start()
        gateway = self.gateway()
        job = await self.first_job(gateway)
        self.assertTrue(job.clean_jobs)
        self.assertEqual(job.height, await self.height() + 1)
        body, block = await self.land(gateway, job)
        self.check_payout(block, job)
        self.assertTrue(block.check_merkle_root())
        saved = os.listdir(self.found_dir)
        self.assertEqual(saved, [f"{job.height}-{body['hash']}.hex"])
        # The new tip (our own block) makes a clean job for the next height.
        jobs = await wait_for(lambda: [j for j in gateway.jobs() if j.height == job.height + 1],
                              what="the next job")
        self.assertTrue(jobs[0].clean_jobs)

    @defer.inlineCallbacks
    def test_found_block_naming_another_jobmasters_job_lands(self):
        yield defer.ensureDeferred(self._found_block_naming_another_jobmasters_job_lands())

    async def _found_block_naming_another_jobmasters_job_lands(self):
        """
        A gateway that failed over resends candidates with the old
        jobmaster's job ids: one that assembles with a job of ours lands.
        """
        self.start()
        gateway = self.gateway()
        job = await self.first_job(gateway)
        body = dict(solve(job), job_id="ffff")
        with capturedLogs() as events:
            self.assertTrue(gateway.send_found(body))
            await wait_for(lambda: [e for e in events if "assembles with our job" in e.get("log_format", "")],
                           what="the candidate assembled")
        deadline = time.monotonic() + NODE_DEADLINE
        while (best := await in_thread(self.node.rpc, "getbestblockhash")) != body["hash"]:
            if time.monotonic() > deadline:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(best, body["hash"])
        # A share of no job of ours is still refused, and said so.
        other = dict(solve(job, nonce_id=3), job_id="ffff", coinbase=solve(job, nonce_id=4)["coinbase"])
        with capturedLogs() as events:
            gateway.send_found(other)
            await wait_for(lambda: [e for e in events if "cannot be assembled" in e.get("log_format", "")],
                           what="the refusal")

    @defer.inlineCallbacks
    def test_aux_chain_mined_and_dropped(self):
        yield defer.ensureDeferred(self._aux_chain_mined_and_dropped())

    async def _aux_chain_mined_and_dropped(self):
        daemon = AuxDaemonStandIn("NMC", 1)
        await daemon.serve(self)
        self.start(aux_coin=[daemon.coin_config()], aux_merkle_size=2, aux_merkle_nonce=0,
                   aux_job_timeout=15)
        gateway = self.gateway()
        jobs = await wait_for(lambda: [j for j in gateway.jobs() if j.auxes], what="an aux job")
        job = jobs[-1]
        self.assertEqual(job.auxes[0].aux_name, "NMC")
        self.assertEqual(job.auxes[0].aux_hash, daemon._block()[::-1].hex())
        self.assertTrue(job.coinbaseaux.startswith("fabe6d6d"))
        # A share meeting the aux target only is reported as the seed's gateway does.
        body = dict(solve(job), type="aux", name="NMC")
        self.assertTrue(gateway.send_found(body))
        await wait_for(lambda: daemon.accepted, what="the aux block accepted")
        self.assertEqual(daemon.rejected, [])
        # The accepted block moved the chain: the next poll gives a new block and a new job.
        await wait_for(lambda: [j for j in gateway.jobs()
                                if j.auxes and j.auxes[0].aux_hash == daemon._block()[::-1].hex()],
                       what="a job for the next aux block")
        client = LineClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.cli), client)
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(b"aux_blocknotify NMC\naux_blocknotify XYZ\nauxstatus\n")
        await wait_for(lambda: b"current job" in client.data, what="the CLI replies")
        lines = client.data.decode().splitlines()
        self.assertEqual(lines[:2], ["ok", "error: no aux chain named 'XYZ'"])
        self.assertTrue(lines[2].startswith("NMC: ok"))
        # The daemon dies: the next job has no aux part, and main jobs go on.
        await daemon.stop()
        count = len(gateway.jobs())
        with capturedLogs() as events:
            jobs = await wait_for(lambda: gateway.jobs()[count:], what="a job without NMC")
        self.assertEqual(jobs[-1].auxes, ())
        self.assertNotIn("fabe6d6d", jobs[-1].coinbaseaux)
        self.assertTrue(any(e["log_level"] == LogLevel.critical for e in events))

    @defer.inlineCallbacks
    def test_segwit_block_with_commitment(self):
        yield defer.ensureDeferred(self._segwit_block())

    async def _segwit_block(self):
        height = await self.height()
        if height < 440:
            await in_thread(self.node.generate, 440 - height)
        self.start()
        gateway = self.gateway()
        job = await self.first_job(gateway)
        self.assertTrue(job.segwit)
        body, block = await self.land(gateway, job)
        self.assertIsNotNone(block.witness_commitment())
        self.assertTrue(block.transactions[0].has_witness())
        self.assertTrue(block.check_witness_commitment())
        self.check_payout(block, job)
        header = await in_thread(self.node.rpc, "getblockheader", body["hash"])
        self.assertEqual(header["height"], job.height)

    @defer.inlineCallbacks
    def test_new_tip_makes_clean_job(self):
        yield defer.ensureDeferred(self._new_tip())

    async def _new_tip(self):
        self.start()
        gateway = self.gateway()
        job = await self.first_job(gateway)
        [mined] = await in_thread(self.node.generate, 1)
        jobs = await wait_for(lambda: [j for j in gateway.jobs() if j.height == job.height + 1],
                              what="a job on the new tip")
        self.assertTrue(jobs[0].clean_jobs)
        self.assertEqual(jobs[0].prevhash, mined)
        # Every job before it was for the old tip.
        before = gateway.jobs()[:gateway.jobs().index(jobs[0])]
        self.assertTrue(all(j.height == job.height for j in before))

    @defer.inlineCallbacks
    def test_block_retried_until_a_node_is_reachable(self):
        yield defer.ensureDeferred(self._retry())

    async def _retry(self):
        # The submitter reaches the node only through a forwarder that is not
        # listening yet, as if the node were down when the block is found.
        proxy_port = free_port()
        down = NodeGroup.from_configs(
            [NodeConfig.from_host("127.0.0.1", proxy_port, user="viabtc",
                                  password=self.node.api_key)], reactor)

        def with_unreachable_submitter(config, reactor):
            nodes = NodeGroup.from_configs(
                [NodeConfig.from_entry(e) for e in config.main_coin.nodes], reactor)
            return JobmasterService(config, reactor, nodes, TemplateSource(nodes, reactor),
                                    BlockSubmitter(down, timeout=2, confirm_timeout=2))

        self.start(with_unreachable_submitter)
        gateway = self.gateway()
        job = await self.first_job(gateway)
        with capturedLogs() as events:
            body = solve(job)
            gateway.send_found(body)
            await wait_for(lambda: any("retrying" in e.get("log_format", "") for e in events),
                           what="a retry alert")
            self.assertNotEqual(await in_thread(self.node.rpc, "getbestblockhash"), body["hash"])
            self.assertEqual(os.listdir(self.found_dir), [f"{job.height}-{body['hash']}.hex"])
            proxy = ClosingProxyFactory("127.0.0.1", self.node.rpc_port)
            listening = await TCP4ServerEndpoint(reactor, proxy_port, interface="127.0.0.1").listen(proxy)
            self.addCleanup(lambda: defer.ensureDeferred(proxy.close()))
            self.addCleanup(listening.stopListening)
            self.addCleanup(down.close)
            await wait_for(lambda: any("accepted" in e.get("log_format", "")
                                       and e.get("hash") == body["hash"] for e in events),
                           timeout=30, what="acceptance")
        self.assertEqual(await in_thread(self.node.rpc, "getbestblockhash"), body["hash"])

    @defer.inlineCallbacks
    def test_malformed_packets_are_dropped(self):
        yield defer.ensureDeferred(self._malformed())

    async def _malformed(self):
        self.start()
        gateway = self.gateway()
        job = await self.first_job(gateway)
        disconnects = gateway.disconnects
        with capturedLogs() as events:
            gateway.send_found(b"not json")
            gateway.send_found({"job_id": job.job_id, "hash": "00" * 32})
            gateway.send_found(dict(solve(job), coinbase="00" * 100))
            gateway.client.send(Packet(Command.UPDATE_BAN, b'{"ip":"x"}', PacketType.REQUEST))
            send_datagram(self.udp, Packet(Command.HEIGHT_UPDATE, b"{}"))
            send_datagram(self.udp, Packet(Command.HEIGHT_UPDATE, b"\xff\xff"))
            await wait_for(lambda: len([e for e in events if "dropped" in e.get("log_format", "")
                                        or "not a valid block" in e.get("log_format", "")]) >= 6,
                           what="six drops")
        # Still serving: the same link carries a ban update both ways, and
        # one entry that is no address costs only itself.
        with capturedLogs() as events:
            gateway.client.send(Packet(Command.UPDATE_BAN, json.dumps(
                {"ip": ["10.1.2.3", "no-such-ip"], "op": "add", "limit": 60}).encode(), PacketType.REQUEST))
            bans = await wait_for(gateway.bans, what="the ban broadcast")
        self.assertEqual(bans[0], {"ip": ["10.1.2.3"], "op": "add", "limit": 60})
        self.assertEqual([e["dropped"] for e in events if "left out" in e.get("log_format", "")],
                         ["'ip' entry 'no-such-ip' is not an IP address"])
        self.assertEqual(gateway.disconnects, disconnects)
        self.assertEqual(await self.height(), job.height - 1)

    @defer.inlineCallbacks
    def test_height_hint_empty_block_job(self):
        yield defer.ensureDeferred(self._hint())

    async def _hint(self):
        self.start(spv_mining_timeout=3)
        gateway = self.gateway()
        job = await self.first_job(gateway)
        await wait_for(lambda: self.service.work.facts, what="chain facts")
        hinted = "ab" * 32
        hint = {"height": job.height, "curtime": job.curtime, "prevhash": hinted}
        send_datagram(self.udp, Packet(Command.HEIGHT_UPDATE, json.dumps(hint).encode()))
        empty = await wait_for(lambda: [j for j in gateway.jobs() if j.prevhash == hinted],
                               what="the empty-block job")
        self.assertEqual((empty[0].height, empty[0].merkle_branch, empty[0].clean_jobs),
                         (job.height + 1, (), True))
        self.assertEqual(empty[0].nbits, job.nbits)
        self.assertFalse(empty[0].segwit)
        # The node never reaches the hinted block: after the timeout, back to
        # a clean full job on the node's tip.
        with capturedLogs() as events:
            back = await wait_for(
                lambda: [j for j in gateway.jobs()[gateway.jobs().index(empty[0]):]
                         if j.height == job.height], what="the full job again")
        self.assertTrue(back[0].clean_jobs)
        self.assertTrue(any(e["log_level"] == LogLevel.critical for e in events))

    async def test_stop_in_empty_mode_leaves_no_call(self):
        def timeouts():
            return [c for c in reactor.getDelayedCalls()
                    if getattr(c.func, "__name__", None) == "_spv_expired"]

        def no_timeout_left():
            self.assertEqual(timeouts(), [], "the empty mode's timeout outlived the service")
        self.addCleanup(no_timeout_left)  # runs after the service's stopService
        self.start()  # spv_mining_timeout 60: the node never catches up within the test
        gateway = self.gateway()
        job = await self.first_job(gateway)
        await wait_for(lambda: self.service.work.facts, what="chain facts")
        hint = {"height": job.height, "curtime": job.curtime, "prevhash": "cd" * 32}
        send_datagram(self.udp, Packet(Command.HEIGHT_UPDATE, json.dumps(hint).encode()))
        await wait_for(lambda: self.service.work.mode == "empty", what="empty-block mode")
        self.assertEqual(len(timeouts()), 1)

    @defer.inlineCallbacks
    def test_cli(self):
        yield defer.ensureDeferred(self._cli())

    async def _cli(self):
        self.start()
        gateway = self.gateway()
        await self.first_job(gateway)
        client = LineClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.cli), client)
        self.addCleanup(client.transport.loseConnection)

        async def command(line):
            before = len(client.data)
            client.transport.write(line.encode() + b"\n")
            await wait_for(lambda: len(client.data) > before and client.data.endswith(b"\n"),
                           what=f"a reply to {line}")
            return client.data[before:].decode()

        self.assertIn("addban", await command("help"))
        self.assertEqual(await command("addban 60 10.0.0.1 10.0.0.2"), "banned 2 ip(s)\n")
        self.assertIn("10.0.0.1 60s left", await command("listban"))
        self.assertIn("error", await command("addban x 10.0.0.3"))
        self.assertEqual(await command("delban 10.0.0.1"), "unbanned 1 ip(s)\n")
        bans = await wait_for(lambda: len(gateway.bans()) >= 2 and gateway.bans(), what="bans")
        self.assertEqual(bans[:2], [{"ip": ["10.0.0.1", "10.0.0.2"], "op": "add", "limit": 60},
                                    {"ip": ["10.0.0.1"], "op": "del"}])
        self.assertEqual(await command('setcoinbase "new message"'), "ok\n")
        self.assertEqual(await command("getcoinbase"), "new message\n")
        self.assertIn("error", await command("setcoinbase " + "x" * 90))
        self.assertEqual(await command("clearcoinbase"), "ok\n")
        self.assertEqual(await command("getcoinbase"), "\n")
        self.assertEqual(await command("blocknotify"), "ok\n")
        with capturedLogs() as events:
            self.assertEqual(await command('alert "disk full"'), "ok\n")
        self.assertTrue(any(e["log_level"] == LogLevel.critical and e.get("text") == "disk full"
                            for e in events))

    @defer.inlineCallbacks
    def test_wrong_chain_refused(self):
        yield defer.ensureDeferred(self._wrong_chain())

    async def _wrong_chain(self):
        # The seed's sample addresses, pinned to mainnet, against a regtest node.
        self.start(network="mainnet",
                   main_coin_recipient="15sDLQav35eur1zqjafHhHYZ2xgwf4w874",
                   coin_recipients=[])
        errors = await wait_for(lambda: self.config_errors, what="the config error")
        self.assertEqual(len(errors), 1)
        self.assertTrue(errors[0].startswith("config error: network: "), errors[0])
        self.assertIn("mainnet", errors[0])
        self.assertIn("regtest", errors[0])
        self.assertNotIn("\n", errors[0])
        self.assertIsNone(self.service.work.current)
        gateway = self.gateway()
        await wait_for(lambda: gateway.disconnects >= 1, what="the refusal")
        self.assertEqual(gateway.jobs(), [])

    @defer.inlineCallbacks
    def test_network_from_the_node(self):
        yield defer.ensureDeferred(self._network_from_the_node())

    async def _network_from_the_node(self):
        # The seed's form: no network key.  The node says regtest, the
        # addresses are regtest ones, and a block lands.
        self.start(network=None)
        self.assertIsNone(self.config.network)
        gateway = self.gateway()
        job = await self.first_job(gateway)
        self.assertEqual(self.service.work.settings.network.name, "regtest")
        self.assertEqual(job.network, "regtest")
        body, block = await self.land(gateway, job)
        self.check_payout(block, job)
        self.assertEqual(self.config_errors, [])

    @defer.inlineCallbacks
    def test_address_of_another_chain_stops(self):
        yield defer.ensureDeferred(self._address_of_another_chain())

    async def _address_of_another_chain(self):
        # No pin, but a mainnet payout address: the node's regtest refuses it.
        self.start(network=None, coin_recipients=[
            {"address": "15sDLQav35eur1zqjafHhHYZ2xgwf4w874", "percent": 0.1}])
        errors = await wait_for(lambda: self.config_errors, what="the config error")
        self.assertEqual(errors, [
            "config error: coin_recipients[0].address: address 15sDLQav35eur1zqjafHhHYZ2xgwf4w874 "
            "has version byte 0x00 (mainnet), not one of regtest (the node's chain)"])
        self.assertIsNone(self.service.work.current)


def unanswered_config():
    """A jobmaster config whose node is never answered (on a ``MemoryReactorClock``)."""
    return JobmasterConfig.from_reader(ConfigReader({
        "network": "regtest",
        "svr": {"bind": ["tcp@127.0.0.1:6000"], "max_pkg_size": 1 << 20},
        "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": 1, "user": "u", "pass": "p"},
        "main_coin_recipient": encode_segwit_address("bcrt", 0, MAIN_PROGRAM),
    }))


class StopTests(TestCase):
    """A stop while node calls are in flight, on a simulated reactor."""

    def test_stop_cancels_the_node_calls_in_flight(self):
        """
        Nothing of a stopped jobmaster stays behind waiting for the node:
        neither a call's timeout nor its connection.
        """
        memory = MemoryReactorClock()
        service = build_service(unanswered_config(), memory)
        service.startService()
        # The chain check, the first template and the tip check are asked.
        memory.advance(1)
        self.assertTrue(memory.getDelayedCalls())
        stopped = service.stopService()
        self.successResultOf(stopped)
        self.assertEqual(memory.getDelayedCalls(), [])


class WatchdogTests(TestCase):
    """The no-job watchdog, on a simulated reactor where the node never answers."""

    def test_no_job_for_600_seconds_closes_gateway_links(self):
        memory = MemoryReactorClock()
        service = build_service(unanswered_config(), memory)
        service.startService()
        self.addCleanup(service.stopService)

        def alerts():
            return [e for e in events
                    if e["log_level"] == LogLevel.critical and "no job" in e["log_format"]]

        with capturedLogs() as events:
            for _ in range(599):
                memory.advance(1)
            self.assertEqual(alerts(), [])
            memory.advance(1)
            self.assertEqual(len(alerts()), 1)
            for _ in range(59):
                memory.advance(1)
            self.assertEqual(len(alerts()), 1)
            memory.advance(1)
            self.assertEqual(len(alerts()), 2)
        self.assertIsNone(service.work.current)
