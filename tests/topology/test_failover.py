"""
The pool on several hosts, each a network namespace (``tests.topology.netns``),
under failure.

Hosts: ``core`` (a bcoin regtest node and the primary jobmaster), ``jm2``
(the standby jobmaster, on the same node), ``gw1`` and ``gw2`` (gateways of
two worker processes each, ``job.addr`` = primary then standby),
``miner1`` and ``miner2`` (``viabtc-miner``, resolving ``pool.test`` to
both gateways, DNS round robin, each host listing another gateway first).
The job links between hosts are TLS (a pool CA, the jobmasters'
certificates verified by name) and carry the shared HMAC secret.  On
regtest every share is a block, so the node's height is the proof that
mining goes on.

Shown: two miners mine, one through each gateway; a rolling upgrade of
gw2 (SIGTERM, start again) moves only gw2's miner, the other's session is
never touched; gw1 is killed (SIGKILL) and its miner reconnects to gw2 and
keeps mining; the primary jobmaster is killed and the gateway moves to the
standby within seconds and mining goes on.
"""

import json
import os
import signal
import sys
import time

from twisted.trial.unittest import TestCase

from twisted.internet.endpoints import quoteStringArgument

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.devnet.bcoin import BcoinNode

from tests.tools.test_tls import issue, make_ca, pem
from tests.topology.netns import Network, pause

SECRET = "topology-test-shared-secret"
BIN = os.path.dirname(sys.executable)
RPC_PORT, P2P_PORT = 18443, 18444


class MultiHostFailover(TestCase):
    timeout = 300

    def write(self, name, data):
        path = os.path.join(self.dir, f"{name}.json")
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
        return path

    def height(self):
        code = (f"from viabtc.devnet.bcoin import BcoinNode; "
                f"print(BcoinNode(host={self.core!r}, rpc_port={RPC_PORT}, api_key={self.node.api_key!r})"
                f".rpc('getblockcount', timeout=5))")
        return int(self.net.python("core", code))

    async def wait(self, predicate, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except OSError:
                pass
            await pause(0.3)
        raise AssertionError(f"timed out waiting for {what}\n{self.net.logs()}")

    async def grows(self, blocks, what, timeout=90.0):
        start = self.height()
        await self.wait(lambda: self.height() >= start + blocks, what, timeout)

    def certificates(self):
        """A pool CA and one certificate per jobmaster host (``jobmaster.pool`` and its address)."""
        ca = make_ca("topology pool CA")
        self.ca_file = os.path.join(self.dir, "ca.pem")
        with open(self.ca_file, "wb") as f:
            f.write(pem(ca))
        for host in ("core", "jm2"):
            certificate = issue(ca, ["jobmaster.pool", self.net.address(host)])
            for kind, data in (("key", certificate.key_pem), ("cert", certificate.cert_pem)):
                with open(os.path.join(self.dir, f"{host}-{kind}.pem"), "wb") as f:
                    f.write(data)

    def jobmaster(self, host, name):
        key, cert = (quoteStringArgument(os.path.join(self.dir, f"{host}-{kind}.pem")) for kind in ("key", "cert"))
        return self.net.twistd(host, "jobmaster", name, self.write(name, {
            "network": "regtest",
            "svr": {"bind": [f"ssl:6000:privateKey={key}:certKey={cert}"], "max_pkg_size": 1 << 20},
            "main_coin": {"name": "BTC", "host": self.core, "port": RPC_PORT, "user": "viabtc",
                          "pass": self.node.api_key},
            "main_coin_recipient": encode_segwit_address("bcrt", 0, bytes(range(20))),
            "pool_name": "topology",
            "found_blocks_dir": os.path.join(self.dir, f"{name}-found"),
            "secret": SECRET,
        }))

    def tls_client(self, address):
        return (f"ssl:host={address}:port=6000:caCertFile={quoteStringArgument(self.ca_file)}"
                ":hostname=jobmaster.pool")

    def gateway(self, host, worker_id):
        return self.net.twistd(host, "gateway", host, self.write(host, {
            "alert": {"host": host},
            "svr": {"bind": ["tcp@0.0.0.0:3333"], "max_pkg_size": 10240},
            "job": {"name": "jobmaster", "addr": [self.tls_client(self.core), self.tls_client(self.jm2)],
                    "max_pkg_size": 1 << 20, "reconnect_timeout": 0.5, "heartbeat_timeout": 3},
            "writer": {"name": "writer", "addr": [f"udp@{self.core}:3000"], "max_pkg_size": 1 << 16},
            "coin": "btc",
            "queue": os.path.join(self.dir, f"{host}-queue"),
            "worker_id": worker_id,
            "worker_num": 2,
            "diff_min": 0.0001, "diff_max": 16384, "diff_default": 0.001,
            "target_time": 4, "retarget_time": 120,
            "secret": SECRET,
        }))

    async def test_rolling_upgrade_then_a_gateway_and_the_primary_jobmaster_killed(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.net = net = Network(self, self.dir)
        try:
            await self.scenario(net)
        except BaseException:
            print(f"\nlogs in {self.dir}:\n{net.logs()}")
            raise

    async def scenario(self, net):
        self.core = net.add_host("core", 2)
        self.jm2 = net.add_host("jm2", 3)
        gw1, gw2 = net.add_host("gw1", 11), net.add_host("gw2", 12)
        net.add_host("miner1", 21)
        net.add_host("miner2", 22)
        # DNS round robin, each miner host's resolver listing another gateway first.
        net.names("miner1", {"pool.test": [gw1, gw2]})
        net.names("miner2", {"pool.test": [gw2, gw1]})

        self.certificates()
        self.node = BcoinNode(host=self.core, rpc_port=RPC_PORT, p2p_port=P2P_PORT,
                              directory=os.path.join(self.dir, "bcoin"))
        os.makedirs(self.node.directory)
        net.spawn("core", "bcoin", self.node.command_line())
        await self.wait(lambda: self.height() >= 0, "the node answering")
        self.jobmaster("core", "jm1")
        self.jobmaster("jm2", "jm2")
        self.gateway("gw1", 100)
        self.gateway("gw2", 200)
        # Each miner takes the first address its resolver lists that answers:
        # both gateways must listen before they start, or a slow start (a
        # loaded machine) sends both miners to the same gateway.
        await self.wait(lambda: net.listening("gw1", 3333) and net.listening("gw2", 3333),
                        "both gateways listening")
        for miner in ("miner1", "miner2"):
            net.spawn(miner, miner, [os.path.join(BIN, "viabtc-miner"), "-o", "stratum+tcp://pool.test:3333",
                                     "-u", f"alice.{miner}", "--report-interval", "2"])
        await self.wait(lambda: net.established("gw1", 3333) == 1 and net.established("gw2", 3333) == 1,
                        "a miner on each gateway")
        await self.grows(2, "blocks mined through both gateways")

        # A rolling upgrade: gw2 stops gracefully and starts again; miner2
        # moves to gw1, miner1's session there is never touched.
        retries = self.reconnects("miner1")
        net.kill("gw2", signal.SIGTERM)
        await self.wait(lambda: net.established("gw1", 3333) == 2, "miner2 moved to gw1")
        self.gateway("gw2", 200)
        await self.grows(1, "blocks mined while gw2 restarted")
        self.assertEqual(self.reconnects("miner1"), retries)

        # gw1 dies; both miners reconnect to gw2 and keep mining.
        net.kill("gw1", signal.SIGKILL)
        await self.wait(lambda: net.established("gw2", 3333) == 2, "both miners on gw2")
        await self.grows(2, "blocks mined through gw2")

        # The primary jobmaster dies; the gateway moves to the standby.
        net.kill("jm1", signal.SIGKILL)
        killed = time.monotonic()
        await self.grows(2, "blocks mined on the standby jobmaster's jobs")
        self.assertLess(time.monotonic() - killed, 60)
        with open(os.path.join(self.dir, "gw2.log")) as f:
            self.assertIn(f"RPC link up to {self.jm2}:6000", f.read())
        net.check_alive("gw2", "jm2", "miner1", "miner2", "bcoin")

    def reconnects(self, miner):
        with open(os.path.join(self.dir, f"{miner}.log")) as f:
            return f.read().count("Scheduling retry")
