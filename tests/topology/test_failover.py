"""
The pool on several hosts, each a network namespace (``tests.topology.netns``),
under failure.

Hosts: ``core`` (a bcoin regtest node and the primary jobmaster), ``jm2``
(the standby jobmaster, on the same node), ``gw1``, ``gw2`` and ``gw3``
(gateways of two worker processes each, ``worker_id`` 100, 200 and 300,
``job.addr`` = primary then standby), ``miner1`` to ``miner3``
(``viabtc-miner``, resolving ``pool.test`` to the three gateways, DNS round
robin, each host listing another gateway first); the statistics path: the
gateways' ``writer`` is the metarelay on ``relay``, whose ``writer`` is the
metawriters ``mw1`` then ``mw2`` (brothers: each tells the other the
packets it wrote, ref §8.3), both writing the Redis master that three
Sentinels (on ``redis1``, ``redis2`` and ``relay``) elect between
``redis1`` and its replica on ``redis2``.  Every module link between hosts
(jobs, statistics, brothers) is TLS (a pool CA, each server's certificate
verified by name) and carries the shared HMAC secret.  On regtest every
share is a block, so the node's height is the proof that mining goes on.

Shown, in one topology and in this order: three miners mine, one through
each gateway.  The replication stream from the Redis master to its replica
is held on the wire (``Network.hold``), so from here every statistics write
reaches the master only and no ``WAIT`` is satisfied.  A rolling upgrade of
gw2 (SIGTERM, start again) moves only gw2's miner, the other two sessions
are never touched.  The metarelay and its metawriter stop; the
metawriter's stop flushes gw2's minute to the master, where it is seen
beside a replica that lacks it, and ``WAIT`` is seen failing for it; with
that flush unconfirmed and the metawriter still sending it, the master is
killed (SIGKILL), the Sentinels promote the replica (without those
writes), the killed server comes back empty and is made its replica, and
the metawriter's journal and retries write the flush to the new master.
Then every share is flushed (miners and gateways stopped, the relay's queue
empty, the metawriters crashed with the last minute only in their
journals, started again and stopped) and the Redis per-user and per-worker
share counts equal the shares the miners were told were accepted, and
``newblock`` lists every block candidate the gateways logged exactly once:
nothing lost, nothing doubled.  Then, the gateways and miners started
again: gw1 is killed (SIGKILL) and its miner reconnects to another gateway
and keeps mining; the primary jobmaster is killed and the gateways move to
the standby within seconds; every block candidate a miner found and a
gateway sent reached the node (a gateway resends to the standby those its
lost link may have swallowed).
"""

import json
import os
import re
import signal
import sys
import time
from collections import Counter

from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import encode_segwit_address
from viabtc.devnet.bcoin import BcoinNode, BcoinRPCError
from viabtc.devnet.sentinel import SentinelGroup

from tests.tools.test_tls import issue, make_ca, pem
from tests.topology.netns import Network, inside, pause

SECRET = "topology-test-shared-secret"
BIN = os.path.dirname(sys.executable)
RPC_PORT, P2P_PORT = 18443, 18444
JOB_PORT, RELAY_PORT, WRITER_PORT, RELAY_METRICS = 6000, 3200, 3000, 9300
#: The certificate name of each server host's role (module links verify it).
SERVER_NAMES = {"core": "jobmaster.pool", "jm2": "jobmaster.pool", "relay": "metarelay.pool",
                "mw1": "metawriter.pool", "mw2": "metawriter.pool"}
#: The gateway hosts and their ``worker_id`` (each runs ``worker_num`` 2: ids id and id + 1).
GATEWAYS = {"gw1": 100, "gw2": 200, "gw3": 300}
MINERS = ("miner1", "miner2", "miner3")
CANDIDATE = re.compile(r"block candidate ([0-9a-f]{64}) at height (\d+)")
#: A jobmaster's log: a block it took, and one naming a job it no longer has.
TAKEN = re.compile(r"block ([0-9a-f]{64}) found at height (\d+) \(job ([0-9a-f]+),")
UNKNOWN_JOB = re.compile(r"found block ([0-9a-f]{64}) from \S+ names unknown job ([0-9a-f]+);")
ACCEPTED = re.compile(r"(?:BLOCK ([0-9a-f]{64}) accepted \(height|accepted [0-9a-f]{64} \(job)")


class MultiHostFailover(TestCase):
    timeout = 300

    def write(self, name, data):
        path = os.path.join(self.dir, f"{name}.json")
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
        return path

    def rpc(self, method, *params):
        with inside(self.net.hosts["core"][0]):
            return self.node.rpc(method, *params, timeout=5)

    def height(self):
        return int(self.rpc("getblockcount"))

    async def wait(self, predicate, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (OSError, RuntimeError):
                pass
            await pause(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    async def grows(self, blocks, what, timeout=30.0):
        start = self.height()
        await self.wait(lambda: self.height() >= start + blocks, what, timeout)

    async def stop(self, *names):
        """
        SIGTERM ``names`` and wait (bounded) until each has exited cleanly
        (twistd, its services stopped, ends by the signal it was stopped with).
        """
        self.terminate(*names)
        await self.stopped(*names)

    def terminate(self, *names):
        for name in names:
            self.net.processes[name].send_signal(signal.SIGTERM)

    async def stopped(self, *names):
        """Wait (bounded) until each of ``names``, sent SIGTERM, has exited cleanly."""
        await self.wait(lambda: all(self.net.processes[n].poll() is not None for n in names),
                        f"{', '.join(names)} stopping", 20)
        for name in names:
            self.assertIn(self.net.processes[name].returncode, (0, -signal.SIGTERM), f"{name} exit status")

    def certificates(self):
        """A pool CA and one certificate per server host (its role's name and its address)."""
        ca = make_ca("topology pool CA")
        self.ca_file = os.path.join(self.dir, "ca.pem")
        with open(self.ca_file, "wb") as f:
            f.write(pem(ca))
        for host, name in SERVER_NAMES.items():
            certificate = issue(ca, [name, self.net.address(host)])
            for kind, data in (("key", certificate.key_pem), ("cert", certificate.cert_pem)):
                with open(os.path.join(self.dir, f"{host}-{kind}.pem"), "wb") as f:
                    f.write(data)

    def tls_server(self, host, port):
        key, cert = (quoteStringArgument(os.path.join(self.dir, f"{host}-{kind}.pem")) for kind in ("key", "cert"))
        return f"ssl:{port}:interface={self.net.address(host)}:privateKey={key}:certKey={cert}"

    def tls_client(self, host, port):
        return (f"ssl:host={self.net.address(host)}:port={port}:caCertFile={quoteStringArgument(self.ca_file)}"
                f":hostname={SERVER_NAMES[host]}")

    def jobmaster(self, host, name):
        return self.net.twistd(host, "jobmaster", name, self.write(name, {
            "network": "regtest",
            "svr": {"bind": [self.tls_server(host, JOB_PORT)], "max_pkg_size": 1 << 20},
            "main_coin": {"name": "BTC", "host": self.core, "port": RPC_PORT, "user": "viabtc",
                          "pass": self.node.api_key},
            "main_coin_recipient": encode_segwit_address("bcrt", 0, bytes(range(20))),
            "pool_name": "topology",
            "found_blocks_dir": os.path.join(self.dir, f"{name}-found"),
            "secret": SECRET,
        }))

    def gateway(self, host):
        return self.net.twistd(host, "gateway", host, self.write(host, {
            "alert": {"host": host},
            "svr": {"bind": ["tcp@0.0.0.0:3333"], "max_pkg_size": 10240},
            "job": {"name": "jobmaster", "addr": [self.tls_client("core", JOB_PORT), self.tls_client("jm2", JOB_PORT)],
                    "max_pkg_size": 1 << 20, "reconnect_timeout": 0.5, "heartbeat_timeout": 3},
            "writer": {"name": "writer", "addr": [self.tls_client("relay", RELAY_PORT)], "max_pkg_size": 1 << 20,
                       "reconnect_timeout": 0.5},
            "coin": "btc",
            "queue": os.path.join(self.dir, f"{host}-queue"),
            "worker_id": GATEWAYS[host],
            "worker_num": 2,
            "diff_min": 0.0001, "diff_max": 16384, "diff_default": 0.001,
            "target_time": 4, "retarget_time": 120,
            "secret": SECRET,
        }))

    def metarelay(self):
        return self.net.twistd("relay", "metarelay", "relay", self.write("relay", {
            "alert": {"host": "relay"},
            "svr": {"bind": [self.tls_server("relay", RELAY_PORT)], "max_pkg_size": 1 << 20},
            "writer": {"name": "writer", "addr": [self.tls_client("mw1", WRITER_PORT),
                                                  self.tls_client("mw2", WRITER_PORT)],
                       "max_pkg_size": 1 << 20, "reconnect_timeout": 0.5},
            "queue": os.path.join(self.dir, "relay-queue"),
            "trust": [self.net.address(gateway) for gateway in GATEWAYS],
            "metrics": f"tcp@{self.net.address('relay')}:{RELAY_METRICS}",
            "secret": SECRET,
        }))

    def metawriter(self, host, brother):
        trust = self.write(f"{host}-trust", {self.net.address("relay"): "metarelay",
                                              self.net.address(brother): "brother"})
        return self.net.twistd(host, "metawriter", host, self.write(host, {
            "alert": {"host": host},
            "svr": {"bind": [self.tls_server(host, WRITER_PORT)], "max_pkg_size": 1 << 20},
            "redis": {"name": self.redis.name, "addr": self.redis.sentinel_addresses},
            "brother": {"name": "brother", "addr": [self.tls_client(brother, WRITER_PORT)],
                        "max_pkg_size": 1 << 20, "reconnect_timeout": 0.5},
            "trust_file": trust,
            "journal": os.path.join(self.dir, f"{host}-journal"),
            "redis_retry_interval": 0.2, "redis_timeout": 3,
            "secret": SECRET,
        }))

    async def miners(self):
        """
        The miners, once every gateway listens (else a miner's resolver order
        may send it past its first gateway), then one session on each gateway.
        """
        await self.wait(lambda: all(self.net.listening(gateway, 3333) for gateway in GATEWAYS),
                        "the gateways listening")
        for miner in MINERS:
            self.net.spawn(miner, miner, [os.path.join(BIN, "viabtc-miner"), "-o", "stratum+tcp://pool.test:3333",
                                          "-u", f"alice.{miner}", "--report-interval", "2"])
        await self.wait(lambda: self.sessions() == {gateway: 1 for gateway in GATEWAYS}, "a miner on each gateway")

    def sessions(self):
        """Established Stratum sessions per gateway host."""
        return {gateway: self.net.established(gateway, 3333) for gateway in GATEWAYS}

    def accepted(self, miner):
        """Accepted shares in ``miner``'s log, and the hashes of those that were blocks."""
        with open(os.path.join(self.dir, f"{miner}.log")) as f:
            found = ACCEPTED.findall(f.read())
        return len(found), [block for block in found if block]

    def relay_queue(self):
        """Packets the metarelay holds that no metawriter acknowledged yet."""
        text = self.net.http_get("relay", RELAY_METRICS, "/metrics")
        values = [float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith("viabtc_") and "link_queue_packets" in line]
        if not values:
            raise OSError("no queue gauge yet")
        return sum(values)

    def relay_writer(self):
        """The metawriter the metarelay is linked to (None while it has none)."""
        linked = [mw for mw in ("mw1", "mw2") if self.net.established(mw, WRITER_PORT, peer="relay")]
        return linked[0] if len(linked) == 1 else None

    def redis_total(self, key, server=None):
        """The sum of hash ``key``'s values on ``server`` (default: the master)."""
        if server is None:
            server = self.redis.server_at(self.redis.master_address())
        values = server.command("HVALS", key) or []
        return sum(int(v) for v in values)

    def hold_replication(self):
        """
        The replication stream from the Redis master to its replica held on
        the wire (``Network.hold``): writes reach the master, the replica
        still acknowledges the offset it has, so ``WAIT 1`` times out.
        Returns the master, the replica and ``release()``.
        """
        master = self.redis.server_at(self.redis.master_address())
        replica = next(s for s in self.redis.servers if s is not master)
        (link,) = [line for line in master.command("CLIENT", "LIST", "TYPE", "replica").splitlines() if line]
        address = dict(field.split("=", 1) for field in link.split() if "=" in field)["addr"]
        host, port = address.rsplit(":", 1)
        self.assertEqual(host, replica.host)
        named = {address: name for name, (_, address) in self.net.hosts.items()}
        release = self.net.hold(named[master.host], master.port, named[replica.host], int(port))
        return master, replica, release

    def log_since(self, name, offset):
        """Process ``name``'s log from byte ``offset`` on."""
        with open(os.path.join(self.dir, f"{name}.log"), "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log_size(self, name):
        return os.path.getsize(os.path.join(self.dir, f"{name}.log"))

    async def test_statistics_failovers_then_a_gateway_and_the_primary_jobmaster_killed(self):
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
        gateways = [net.add_host(gateway, 11 + i) for i, gateway in enumerate(GATEWAYS)]
        for i, miner in enumerate(MINERS):
            net.add_host(miner, 21 + i)
            # DNS round robin, each miner host's resolver listing another gateway first.
            net.names(miner, {"pool.test": gateways[i:] + gateways[:i]})
        for host, number in (("relay", 31), ("mw1", 32), ("mw2", 33), ("redis1", 41), ("redis2", 42)):
            net.add_host(host, number)

        self.certificates()
        self.node = BcoinNode(host=self.core, rpc_port=RPC_PORT, p2p_port=P2P_PORT,
                              directory=os.path.join(self.dir, "bcoin"))
        os.makedirs(self.node.directory)
        net.spawn("core", "bcoin", self.node.command_line())
        self.redis = SentinelGroup(places=[net.place("redis1"), net.place("redis2")],
                                   sentinel_places=[net.place(h) for h in ("redis1", "redis2", "relay")])
        self.addCleanup(self.redis.stop)
        self.redis.start()
        await self.wait(lambda: self.height() >= 0, "the node answering")
        self.metawriter("mw1", "mw2")
        self.metawriter("mw2", "mw1")
        self.jobmaster("core", "jm1")
        self.jobmaster("jm2", "jm2")
        await self.wait(lambda: net.listening("mw1", WRITER_PORT) and net.listening("mw2", WRITER_PORT),
                        "the metawriters listening")
        self.metarelay()
        for gateway in GATEWAYS:
            self.gateway(gateway)
        await self.miners()
        await self.grows(2, "blocks mined through the gateways")
        # gw2's miner has a share in gw2's minute (the Redis case below writes it).
        await self.wait(lambda: self.accepted("miner2")[0] > 0, "a share accepted from miner2", 60)

        # From here until the Redis master dies, its replication stream to the
        # replica is held: every statistics write reaches the master only and
        # no WAIT is satisfied, so the metawriters hold all of them unconfirmed.
        old, replica, release = self.hold_replication()

        # A rolling upgrade: gw2 stops gracefully (its minute goes to the relay
        # and on to a metawriter) and starts again; only miner2 moves, to
        # another gateway, and the other miners' sessions are never touched.
        retries = {miner: self.reconnects(miner) for miner in MINERS}
        await self.stop("gw2")
        await self.wait(lambda: self.sessions()["gw2"] == 0 and sum(self.sessions().values()) == 3,
                        "miner2 moved to another gateway")
        self.gateway("gw2")
        await self.grows(1, "blocks mined while gw2 restarted")
        self.assertEqual(self.reconnects("miner1"), retries["miner1"])
        self.assertEqual(self.reconnects("miner3"), retries["miner3"])

        # The metarelay and its metawriter (mw1, unless the relay's link
        # failed over) stop; the relay's queue and the metawriter's journal
        # carry what is in flight.  The metawriter's stop flushes gw2's
        # minute: the batches reach the master, WAIT times out, the
        # metawriter keeps sending them, and the master holds shares the
        # replica does not.  Then the master dies under that flush (SIGKILL)
        # and the Sentinels promote the replica.
        await self.wait(self.relay_writer, "the metarelay linked to a metawriter")
        writer = self.relay_writer()
        brother = {"mw1": "mw2", "mw2": "mw1"}[writer]
        mark = self.log_size(writer)
        self.terminate("relay", writer)
        await self.wait(lambda: self.redis_total("btc:s:alice", old) > self.redis_total("btc:s:alice", replica),
                        f"{writer}'s flush on the master only", 10)
        # Two failed rounds after the flush: the second carried the flush's batches.
        await self.wait(lambda: re.search(r"flushed \d+ Redis batches" + r"(?s:.*)0 of 1 replicas acknowledged" * 2,
                                          self.log_since(writer, mark)), f"{writer}'s flush unconfirmed (WAIT)", 10)
        self.assertIsNone(net.processes[writer].poll(), f"{writer} still sending its flush")
        self.assertEqual(self.redis.kill_master(), old)
        await self.wait(lambda: self.redis.agreed_master_address() == (replica.host, replica.port),
                        "the Sentinels promoting the replica")
        release()
        # The killed server comes back empty, as the new master's replica.
        self.redis.restart(old, replica)
        await self.stopped("relay")
        self.metarelay()
        await self.stopped(writer)
        self.metawriter(writer, brother)
        await self.grows(1, "blocks mined after the statistics path and Redis failed over")

        # Every share flushed: miners, then gateways (they flush their minute
        # and wait for the relay's ACK), the relay's queue emptied, then the
        # metawriters (they flush to Redis and wait for it), after a crash.
        await self.stop(*MINERS)
        await self.stop(*GATEWAYS)
        await self.wait(lambda: self.relay_queue() == 0, "the metarelay's queue draining")
        # Both metawriters crash holding the last minute in their journals
        # only; started again, they replay it (and not what they wrote before).
        net.kill("mw1")
        net.kill("mw2")
        self.metawriter("mw1", "mw2")
        self.metawriter("mw2", "mw1")
        await self.wait(lambda: net.listening("mw1", WRITER_PORT) and net.listening("mw2", WRITER_PORT),
                        "the metawriters back")
        await self.stop("mw1", "mw2")
        counts = {miner: self.accepted(miner)[0] for miner in MINERS}
        self.assertGreater(sum(counts.values()), 0)
        for miner, count in counts.items():
            self.assertEqual(self.redis_total(f"btc:s:alice:{miner}"), count, f"alice.{miner}'s shares in Redis")
        self.assertEqual(self.redis_total("btc:s:alice"), sum(counts.values()))
        # Every block a gateway found is in ``newblock`` once, those written
        # while the replication was held too.
        master = self.redis.server_at(self.redis.master_address())
        listed = Counter(json.loads(entry)["hash"] for entry in master.command("LRANGE", "newblock", 0, -1))
        self.assertEqual(listed, Counter(self.candidates()), "newblock")
        # The promoted master's replica (the old master) holds the same.
        await self.wait(lambda: old.command("HVALS", "btc:s:alice") is not None
                        and sum(int(v) for v in old.command("HVALS", "btc:s:alice")) == sum(counts.values()),
                        "the old master replicating the new one", 10)

        # The pool again, for the job path's faults (statistics are not
        # compared from here: a killed gateway loses its unflushed minute).
        for gateway in GATEWAYS:
            self.gateway(gateway)
        await self.miners()

        # gw1 dies; miner1 reconnects to another gateway and keeps mining.
        shares = self.accepted("miner1")[0]
        net.kill("gw1", signal.SIGKILL)
        await self.wait(lambda: self.sessions()["gw1"] == 0 and sum(self.sessions().values()) == 3,
                        "miner1 on another gateway")
        await self.wait(lambda: self.accepted("miner1")[0] > shares, "miner1 mining through another gateway", 60)
        await self.grows(2, "blocks mined through gw2 and gw3")

        # The primary jobmaster dies; the gateways move to the standby.
        marks = {gateway: self.log_size(gateway) for gateway in ("gw2", "gw3")}
        net.kill("jm1", signal.SIGKILL)
        killed = time.monotonic()
        await self.grows(2, "blocks mined on the standby jobmaster's jobs")
        self.assertLess(time.monotonic() - killed, 30)
        for gateway in ("gw2", "gw3"):
            await self.wait(lambda: f"RPC link up to {self.jm2}:{JOB_PORT}" in self.log_since(gateway, marks[gateway]),
                            f"{gateway} linked to the standby", 10)
        net.check_alive("gw2", "gw3", "jm2", *MINERS, "bcoin")

        # No block candidate lost: every block a miner was told it found and
        # every candidate a gateway sent is known to the node (in the best
        # chain or, raced, beside it), those resent to the standby too; but
        # for the losers of a race on one job (see ``stale``).
        await self.stop(*MINERS)
        blocks = set(self.candidates())
        for miner in MINERS:
            blocks.update(self.accepted(miner)[1])
        blocks -= self.stale()
        self.assertGreater(len(blocks), 0)

        def unknown():
            missing = []
            for block in blocks:
                try:
                    self.rpc("getblockheader", block)
                except BcoinRPCError:
                    missing.append(block)
            return missing

        try:
            await self.wait(lambda: not unknown(), "every found block at the node", 10)
        except AssertionError:
            self.assertEqual(unknown(), [], f"of {len(blocks)} blocks the miners found")

    def candidates(self):
        """The block candidates the gateways logged, in their logs' order (a gateway's restarts append)."""
        return [block for block, _ in self.candidate_heights()]

    def candidate_heights(self):
        return [(block, int(height)) for gateway in GATEWAYS
                for block, height in CANDIDATE.findall(self.log_since(gateway, 0))]

    def stale(self):
        """
        The losers of a race on one job: two miners solve the same job; the
        jobmaster takes the first, its clean job for the next height forgets
        the old ones (as the seed's does), and the second, arriving after,
        names a job it no longer has.  That block could only have been an
        orphan at a height the chain has filled; it is told apart from a
        lost one by the jobmaster's own log: it took a block at that height
        on that very job before refusing this one.
        """
        heights = dict(self.candidate_heights())
        stale = set()
        for jobmaster in ("jm1", "jm2"):
            text = self.log_since(jobmaster, 0)
            taken = {(int(height), job) for _, height, job in TAKEN.findall(text)}
            stale.update(block for block, job in UNKNOWN_JOB.findall(text) if (heights.get(block), job) in taken)
        return stale

    def reconnects(self, miner):
        with open(os.path.join(self.dir, f"{miner}.log")) as f:
            return f.read().count("Scheduling retry")
