"""
The bitpeer service on the real reactor with a real bcoin node: the node's
tip as anchor, blocks pushed to ``svr``, the peers file reloaded (CLI and
SIGUSR1), the CLI's status.
"""

import json
import os
import signal

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase

from tests.bitcoin.vectors import block_bytes
from tests.bitpeer.mining import mine_block
from tests.bitpeer.test_config import local_config
from tests.support import bcoin_node, wait_for
from viabtc.bitcoin.block import parse_block
from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.bitpeer.commands import bitpeer_commands
from viabtc.bitpeer.config import BitpeerConfig
from viabtc.bitpeer.reload import reload_bitpeer
from viabtc.bitpeer.service import BitpeerService
from viabtc.bitpeer.tap import Options
from viabtc.bitpeer.tip import header_from_rpc
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.reload import HangupReload, ReloadReport
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet


class ServiceTests(TestCase):
    timeout = 60

    def setUp(self):
        self.node = bcoin_node(self, shared=True)
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.write_peers(["127.0.0.1:1"])
        self.svr_port = free_port()
        config = BitpeerConfig.from_reader(ConfigReader(local_config(
            svr={"bind": f"tcp@127.0.0.1:{self.svr_port}", "max_pkg_size": 1 << 22},
            coin={"name": "BTC", "host": "127.0.0.1", "port": self.node.rpc_port, "user": "viabtc",
                  "pass": self.node.api_key})), self.directory)
        nodes = NodeGroup.from_configs([NodeConfig.from_entry(e) for e in config.coin.nodes], reactor)
        self.service = BitpeerService(config, reactor, nodes, install_signals=True)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def write_peers(self, peers):
        with open(os.path.join(self.directory, "peer.json"), "w") as f:
            f.write(json.dumps({"peers": peers}) if peers is not None else "{")

    async def test_node_tip_anchors_the_chain(self):
        height = self.node.rpc("getblockcount")
        best = hash_from_display_hex(self.node.rpc("getbestblockhash"))
        await wait_for(lambda: self.service.relay.chain.best is not None, what="the node's tip")
        self.assertEqual((self.service.relay.best_height, self.service.relay.chain.best.hash), (height, best))

    async def test_blocks_pushed_to_svr(self):
        await wait_for(lambda: self.service.relay.chain.best is not None, what="the node's tip")
        client = FailoverClient([TCP4ClientEndpoint(reactor, "127.0.0.1", self.svr_port)],
                                max_size=1 << 22, reactor=reactor, role="test")
        client.startService()
        self.addCleanup(client.stopService)
        await wait_for(lambda: client.connected, what="the svr link")
        raw = mine_block(self.service.relay.chain.best.hash, parse_block(block_bytes("testnet-924634")).transactions)
        client.send(Packet(Command.SUBMIT_BLOCK, raw))
        client.send(Packet(Command.HEIGHT_UPDATE, b"{}"))
        await wait_for(lambda: self.service.relay.blocks, what="the block held for relay")
        self.assertEqual(self.service.hints_sent, 1)

    async def test_reload_by_cli_and_signal(self):
        commands = bitpeer_commands(self.service)
        self.assertEqual(list(self.service.peerset.clients), [("127.0.0.1", 1)])
        self.write_peers(["127.0.0.1:2", "127.0.0.1:3"])
        self.assertEqual(commands["update"]([]), "ok: 2 peers (2 added, 1 removed)\n")
        self.write_peers(None)
        self.assertTrue(commands["update"]([]).startswith("error: "))
        self.assertEqual(len(self.service.peerset.clients), 2)
        self.write_peers(["127.0.0.1:4"])
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_for(lambda: list(self.service.peerset.clients) == [("127.0.0.1", 4)],
                       what="the reload on SIGUSR1")
        status = commands["status"]([])
        self.assertIn("127.0.0.1:4 connected no", status)
        self.assertIn("jobmasters 127.0.0.1:6000", status)

    def test_reload_on_sighup(self):
        """SIGHUP (viabtc.bitpeer.reload): the peers file, the static jobmasters; a broken file changes nothing."""
        path = os.path.join(self.directory, "bitpeer.json")
        data = local_config(
            svr={"bind": f"tcp@127.0.0.1:{self.svr_port}", "max_pkg_size": 1 << 22},
            coin={"name": "BTC", "host": "127.0.0.1", "port": self.node.rpc_port, "user": "viabtc",
                  "pass": self.node.api_key},
            jobmaster=["udp@127.0.0.1:6001", "udp@127.0.0.1:6002"], broadcast_limit=5)
        with open(path, "w") as f:
            json.dump(data, f)
        self.write_peers(["127.0.0.1:5"])
        hup = HangupReload("bitpeer", path, Options().parse_config, self.service, reactor)
        self.service.reload = lambda new: reload_bitpeer(self.service, new)
        self.assertEqual(hup.reload(), ReloadReport(("peer_config_path", "jobmasters"), ("broadcast_limit",)))
        self.assertEqual(list(self.service.peerset.clients), [("127.0.0.1", 5)])
        self.assertEqual(self.service.sender.addresses, (("127.0.0.1", 6001), ("127.0.0.1", 6002)))
        self.assertEqual(self.service.config.broadcast_limit, 60)
        # A peers file that does not read keeps the peers; a config file that does not load, everything.
        self.write_peers(None)
        self.assertEqual(hup.reload(), ReloadReport((), ("broadcast_limit",)))
        self.assertEqual(list(self.service.peerset.clients), [("127.0.0.1", 5)])
        with open(path, "w") as f:
            f.write("{")
        self.assertIsNone(hup.reload())
        self.assertEqual([a.text for a in self.service.config.jobmasters],
                         ["udp@127.0.0.1:6001", "udp@127.0.0.1:6002"])


class TipTests(TestCase):
    def test_header_must_match_the_hash(self):
        raw = block_bytes("mainnet-000170")[:80]
        display = parse_block(block_bytes("mainnet-000170")).hash()[::-1].hex()
        header, height = header_from_rpc(display, raw.hex(), {"hash": display, "height": 170})
        self.assertEqual((header.serialize(), height), (raw, 170))
        self.assertRaises(ValueError, header_from_rpc, "00" * 32, raw.hex(), {"hash": display, "height": 1})
        self.assertRaises(ValueError, header_from_rpc, display, "zz", {"hash": display, "height": 1})
        self.assertRaises(ValueError, header_from_rpc, display, raw.hex(), {"hash": display})
