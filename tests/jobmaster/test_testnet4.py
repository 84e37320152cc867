"""
The jobmaster starting against a node that says ``testnet4``.

No testnet4 node can run here (bcoin knows no testnet4, and Bitcoin Core is
not installed), so the node is a STAND-IN (``tests.node.fakenode``) that
answers the handful of calls start-up makes from real testnet4 data: the
chain name, the headers of real blocks 0 and 2015 (Bitcoin Core's
functional test data) and a template for block 2016 with the bits Core
requires there.  The rules themselves are pure functions with vectors
(``tests.bitcoin.test_retarget``).
"""

import json
import os

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.config import ConfigReader
from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.tap import build_service

from tests.bitcoin.test_retarget import TESTNET4_HEADERS
from tests.jobmaster.mining import TestGateway, free_ports, wait_for
from tests.node.fakenode import FakeHTTPNode, listen_fake

PROGRAM = bytes(range(20))


def _header(height):
    raw = bytes.fromhex(TESTNET4_HEADERS[height])
    return BlockHeader.parse(raw), hash_to_display_hex(sha256d(raw))


class Testnet4StandIn:
    """
    A STAND-IN testnet4 node at real block 2015: ``getblockchaininfo``,
    ``getbestblockhash``, ``getblockhash``/``getblockheader`` and
    ``getblocktemplate`` for block 2016 (bits 1c3fffc0).  Blocks 0, 1, 2014
    and 2015 are the real headers; the testnet walk back visits every block
    of the period, so blocks 2 to 2013 are made up in their image (minimum
    bits, linked by the real hashes at both ends).
    """

    def __init__(self):
        self.headers = {}
        for height in (0, 1, 2014, 2015):
            header, display = _header(height)
            self.headers[display] = (height, header)
        below = hash_to_display_hex(_header(2014)[0].prev_hash)
        block1 = sha256d(bytes.fromhex(TESTNET4_HEADERS[1]))
        for height in range(2013, 1, -1):
            previous = sha256d(b"stand-in block %d" % (height - 1)) if height > 2 else block1
            header = BlockHeader(0x20000000, previous, bytes(32), 1715000928 + height, 0x1D00FFFF, 0)
            self.headers[below] = (height, header)
            below = hash_to_display_hex(previous)
        self.tip = _header(2015)
        self.hashes = {height: display for display, (height, _) in self.headers.items()}

    def answer(self, request, call):
        method, params = call["method"], call.get("params", [])
        tip_header, tip_hash = self.tip
        if method == "getblockchaininfo":
            result = {"chain": "testnet4", "blocks": 2015, "bestblockhash": tip_hash}
        elif method == "getbestblockhash":
            result = tip_hash
        elif method == "getblockhash":
            result = self.hashes[params[0]]
        elif method == "getblockheader":
            height, header = self.headers[params[0]]
            previous = hash_to_display_hex(header.prev_hash) if height else None
            result = {"height": height, "bits": format(header.bits, "08x"), "time": header.time,
                      "previousblockhash": previous}
        elif method == "getblocktemplate":
            result = {
                "version": 0x20000000, "previousblockhash": tip_hash, "height": 2016,
                "bits": "1c3fffc0", "curtime": tip_header.time + 600,
                "mintime": tip_header.time - 600, "coinbasevalue": 50_0000_0000,
                "transactions": [], "rules": ["csv", "!segwit", "taproot"],
            }
        else:
            body = {"result": None, "error": {"code": -32601, "message": "Method not found"},
                    "id": call["id"]}
            return json.dumps(body).encode()
        return json.dumps({"result": result, "error": None, "id": call["id"]}).encode()


class Testnet4StartTests(TestCase):

    timeout = 60

    @defer.inlineCallbacks
    def test_starts_and_builds_the_block_after_2015(self):
        yield defer.ensureDeferred(self._start())

    async def _start(self):
        node = FakeHTTPNode(Testnet4StandIn().answer)
        url = listen_fake(self, node)
        tcp, udp, _ = free_ports()
        config = JobmasterConfig.from_reader(ConfigReader({
            # The seed's form: no network key; a testnet address.
            "svr": {"bind": [f"tcp@127.0.0.1:{tcp}", f"udp@127.0.0.1:{udp}"],
                    "max_pkg_size": 1 << 20},
            "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": 1, "user": "u",
                          "pass": "p", "url": url},
            "main_coin_recipient": encode_segwit_address("tb", 0, PROGRAM),
            "found_blocks_dir": os.path.abspath(self.mktemp()),
        }))
        service = build_service(config, reactor)
        errors = []
        service.config_failed = errors.append
        service.startService()
        self.addCleanup(service.stopService)
        gateway = TestGateway(tcp)
        gateway.start()
        self.addCleanup(gateway.stop)
        jobs = await wait_for(gateway.jobs, what="a job")
        job = jobs[0]
        self.assertEqual(errors, [])
        self.assertEqual((job.network, job.height, job.nbits), ("testnet4", 2016, 0x1C3FFFC0))
        # Block 2016 opens a period: never older than block 2015 - 600 s.
        self.assertGreaterEqual(job.mintime, _header(2015)[0].time - 600)
        facts = await wait_for(lambda: service.work.facts, what="the chain facts")
        self.assertEqual((facts.network.name, facts.tip_height), ("testnet4", 2015))
