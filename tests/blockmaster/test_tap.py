"""
``twistd viabtc-blockmaster``: options, the one-line config error, and the
role started as a real twistd process from the seed's own sample with only
hosts, ports, addresses (and the log path) changed: it takes a pool block
on its TCP ``svr``, pushes it raw to its bitpeer, and relays it as a thin
block to the blockmaster its HTTP ``blockmaster_url`` names (checked with
the sample's ``request_auth``), whose node accepts it; the static
``blockmaster`` entry, dead here, harms nothing.
"""

import json
import os

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from tests.blockmaster.regions import (
    ANYONE_ADDRESS,
    config_for,
    shared_nodes,
    sync,
)
from tests.integration.processes import Processes
from tests.roles import RoleTapChecks
from tests.support import wait_for
from viabtc.blockmaster import tap
from viabtc.blockmaster.commands import blockmaster_commands
from viabtc.blockmaster.config import BlockmasterConfig
from viabtc.config import ConfigReader
from viabtc.blockmaster.service import BlockmasterService
from viabtc.devnet import free_port
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet
from viabtc.rpc.interfaces import IPacketHandler
from viabtc.rpc.protocol import RPCServerFactory

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "blockmaster.json")


def local_config(**changes):
    data = {
        "svr": {"bind": ["tcp@127.0.0.1:5000"], "max_pkg_size": 16 << 20},
        "coin": {"name": "BTC", "host": "127.0.0.1", "port": 18332, "user": "u", "pass": "p"},
    }
    data.update(changes)
    return data


class OptionsTests(RoleTapChecks, TestCase):
    tap = tap
    config_class = BlockmasterConfig
    service_class = BlockmasterService
    role = "blockmaster"
    good = local_config()
    bad = local_config(bitpeer=["tcp@127.0.0.1:0"])
    bad_key = "bitpeer[0]"


class CommandTests(TestCase):
    def test_cli_commands(self):
        config = BlockmasterConfig.from_reader(ConfigReader(local_config(
            bitpeer=["tcp@127.0.0.1:5100"], blockmaster=["tcp@127.0.0.1:5002"])))
        service = BlockmasterService(config, reactor)
        service.set_blockmasters(config.blockmasters)
        commands = blockmaster_commands(service)
        self.assertEqual(commands["tx_info"]([]), "tx count: 0\n")
        self.assertEqual(commands["status"]([]).splitlines(),
                         ["height None cache 0 pending 0", "bitpeer tcp@127.0.0.1:5100 connected no",
                          "blockmaster tcp@127.0.0.1:5002 connected no"])
        self.assertEqual(sorted(commands), ["blocknotify", "status", "tx_info"])


class ListResource(Resource):
    """The operator's blockmaster list service: the seed's JSON, behind ``request_auth``."""

    isLeaf = True

    def __init__(self, auth, entries):
        super().__init__()
        self.auth = auth
        self.entries = entries
        self.requests = 0

    def render_GET(self, request):
        self.requests += 1
        if request.getHeader(b"authorization") != self.auth:
            request.setResponseCode(403)
            return b"{}"
        return json.dumps({"error": {"message": "ok"}, "result": self.entries}).encode()


@implementer(IPacketHandler)
class BitpeerStandIn:
    """A stand-in for bitpeer's RPC server: records what blockmaster pushes to it."""

    def __init__(self):
        self.packets = []

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet):
        self.packets.append(packet)

    def peerDisconnected(self, protocol, reason):
        pass


class SeedSampleProcessTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_seed_sample_runs_as_a_twistd_process(self):
        a, b = shared_nodes(self)
        sync(a, b)
        # Region B: an in-process blockmaster on node B.
        port_b = free_port()
        sb = BlockmasterService(config_for(b, port_b, [], compact=True), reactor)
        sb.startService()
        self.addCleanup(sb.stopService)
        # The bitpeer and the list service.
        bitpeer = BitpeerStandIn()
        bitpeer_port = yield defer.maybeDeferred(
            reactor.listenTCP, 0, RPCServerFactory(bitpeer, max_size=16 << 20, role="bitpeer"),
            interface="127.0.0.1")
        self.addCleanup(bitpeer_port.stopListening)
        with open(SEED) as f:
            seed = json.load(f)
        listing = ListResource(seed["request_auth"].encode(), [f"127.0.0.1:{port_b}"])
        http_port = reactor.listenTCP(0, Site(listing), interface="127.0.0.1")
        self.addCleanup(http_port.stopListening)
        # The seed's sample, hosts/ports/addresses changed.
        port_a = free_port()
        seed["log"]["path"] = os.path.abspath(self.mktemp())
        seed["alert"]["addr"] = f"127.0.0.1:{free_port()}"
        seed["svr"]["bind"] = [f"tcp@127.0.0.1:{port_a}", f"udp@127.0.0.1:{port_a}"]
        seed["cli"] = f"tcp@127.0.0.1:{free_port()}"
        seed["blockmaster"] = ["tcp@127.0.0.1:1"]
        seed["bitpeer"] = [f"tcp@127.0.0.1:{bitpeer_port.getHost().port}"]
        seed["coin"]["port"] = a.rpc_port
        seed["coin"]["user"], seed["coin"]["pass"] = "viabtc", a.api_key
        seed["http_svr"]["bind"] = [f"tcp@127.0.0.1:{free_port()}"]
        seed["blockmaster_url"] = f"http://127.0.0.1:{http_port.getHost().port}/blockmaster"
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        processes = Processes(self, directory)
        processes.role("blockmaster", seed)
        yield defer.ensureDeferred(processes.wait_port("blockmaster", port_a))
        yield defer.ensureDeferred(wait_for(lambda: listing.requests, what="the list fetched"))
        # A pool block into A's svr, as the jobmaster sends it.
        client = FailoverClient([TCP4ClientEndpoint(reactor, "127.0.0.1", port_a)], max_size=16 << 20,
                                reactor=reactor, role="jobmaster")
        client.startService()
        self.addCleanup(client.stopService)
        yield defer.ensureDeferred(wait_for(lambda: client.connected, what="jobmaster link"))
        [block_hash] = a.rpc("generatetoaddress", 1, ANYONE_ADDRESS)
        raw = bytes.fromhex(a.rpc("getblock", block_hash, False))
        client.send(Packet(Command.SUBMIT_BLOCK, raw))
        yield defer.ensureDeferred(wait_for(lambda: b.rpc("getbestblockhash") == block_hash,
                                            what="the block on region B's node"))
        yield defer.ensureDeferred(wait_for(lambda: bitpeer.packets, what="the push to bitpeer"))
        self.assertEqual([(p.command, p.body) for p in bitpeer.packets], [(Command.SUBMIT_BLOCK, raw)])
        processes.check_alive("blockmaster")
        with open(processes.log_path("blockmaster")) as f:
            log = f.read()
        self.assertIn("accepts blocks by UDP only while they fit", log)
        self.assertNotIn("unknown key", log)
