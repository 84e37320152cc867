# -*- test-case-name: benchmarks -*-
"""
Fast-block latencies of bitpeer with the real roles (issue 12):

- **block → empty notify**: a new block's header arrives at bitpeer over
  P2P (``headers``, from a stand-in Bitcoin node bitpeer is connected to)
  → bitpeer's height hint (UDP cmd 4) → the jobmaster's empty-block job →
  the gateway's ``mining.notify`` received by a miner on loopback.
  Target ≤ 20 ms.
- **share → first byte to a peer**: a miner's share that is a block,
  written to the gateway → cmd 2 → the jobmaster's block (cmd 10) →
  bitpeer's compact block (BIP152 high-bandwidth: the stand-in node asked
  for it) received by the stand-in node.  Target ≤ 10 ms.

Processes: a bcoin regtest node (the pool's), ``twistd -n viabtc-jobmaster``,
``viabtc-gateway`` and ``viabtc-bitpeer`` (configs in the seed's format,
as ``viabtc.devnet.pool`` writes them, plus ``blockmaster`` = bitpeer's
``svr`` in the jobmaster's), and this process: the stand-in P2P node
(``viabtc.p2p.protocol``) and the miner.  Both clocks are this process's
``time.monotonic``: the stamp is taken just before the write, the arrival
when the bytes are read.  Each round first moves the node one block on
(``generatetoaddress``), so every hint is for the node's next block.

Beside them, without sockets: bitpeer's cost of a full block's compact
form (3,011 transactions), what a high-bandwidth peer waits for beyond the
announcements.

``python -m benchmarks.fastblock [--rounds N]``; prints one JSON object.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time

from twisted.internet import defer, protocol, reactor, task, threads
from twisted.internet.error import ConnectError
from twisted.protocols.basic import LineOnlyReceiver
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_int
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.target import bits_to_target, difficulty_to_target
from viabtc.devnet import free_port
from viabtc.devnet.bcoin import BcoinNode
from viabtc.devnet.pool import LocalPool, Ports, payout_address, role_configs
from viabtc.p2p.messages import Headers
from viabtc.p2p.protocol import IPeerHandler, PeerFactory, PeerSettings
from viabtc.stratum.client import StratumJob
from viabtc.tools.mining import extranonce2_bytes, grind, header_prefix

REGTEST_MAGIC = bytes.fromhex("fabfb5da")
DIFFICULTY = 0.00001


@implementer(IPeerHandler)
class StandInNode:
    """The Bitcoin node bitpeer is connected to: sends headers, stamps blocks announced to it."""

    def __init__(self):
        self.peer = None
        self.arrivals = {}

    def peerReady(self, peer):
        self.peer = peer

    def messageReceived(self, peer, message):
        header = getattr(message, "header", None)
        headers = getattr(message, "headers", None) or ([header] if header is not None else [])
        now = time.monotonic()
        for h in headers:
            self.arrivals.setdefault(h.hash(), (now, message.command))

    def peerLost(self, peer, reason):
        self.peer = None


class Miner(LineOnlyReceiver):
    """One Stratum session: subscribe, authorize, record notifies, submit."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self):
        self.jobs = []
        self.extranonce1 = None
        self.extranonce2_size = None
        self.replies = {}
        self.next_id = 3

    def connectionMade(self):
        self.sendLine(b'{"id":1,"method":"mining.subscribe","params":[]}')
        self.sendLine(b'{"id":2,"method":"mining.authorize","params":["bench.fast","d=%g"]}'
                      % DIFFICULTY)

    def lineReceived(self, line):
        now = time.monotonic()
        message = json.loads(line)
        if message.get("method") == "mining.notify":
            self.jobs.append((now, StratumJob.from_notify(message["params"]), message["params"]))
        elif message.get("id") == 1:
            _, extranonce1, size = message["result"]
            self.extranonce1, self.extranonce2_size = bytes.fromhex(extranonce1), size
        elif message.get("id") is not None:
            self.replies[message["id"]] = message

    def submit(self, job, extranonce2, nonce):
        """Write a submit; returns the stamp taken just before the write."""
        line = json.dumps({"id": self.next_id, "method": "mining.submit", "params": [
            "bench.fast", job.job_id, extranonce2.hex(), f"{job.time:08x}", f"{nonce:08x}"]})
        self.next_id += 1
        stamp = time.monotonic()
        self.sendLine(line.encode())
        return stamp


async def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.001, lambda: None)


async def connect_miner(port, timeout=60.0):
    """A ``Miner`` with its first job (the gateway refuses miners until it has one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        miner = Miner()
        try:
            await protocol.ClientCreator(reactor, lambda: miner).connectTCP("127.0.0.1", port)
        except (OSError, ConnectError):
            await task.deferLater(reactor, 0.1, lambda: None)
            continue
        for _ in range(50):
            if miner.jobs:
                return miner
            await task.deferLater(reactor, 0.02, lambda: None)
        if miner.transport is not None:
            miner.transport.loseConnection()
    raise RuntimeError("no job from the gateway")


def start_roles(run_dir, node, p2p_port):
    """jobmaster, gateway and bitpeer as twistd processes; returns (LocalPool, stratum port)."""
    ports = Ports.choose(free_port())
    bitpeer_svr, bitpeer_cli = free_port(), free_port()
    redis = type("NoRedis", (), {"host": "127.0.0.1", "port": 1})()
    secret = secrets.token_hex(24)
    configs = role_configs(run_dir, ports, node, redis,
                           (payout_address(b"\x01" * 20), []), secret)
    configs["jobmaster"]["blockmaster"] = [f"tcp@127.0.0.1:{bitpeer_svr}"]
    configs["jobmaster"]["coin_recipients"] = []
    configs["gateway"].update(diff_min=DIFFICULTY, diff_default=DIFFICULTY)
    configs["bitpeer"] = {
        "log": {"path": os.path.join(run_dir, "bitpeer"), "flag": "fatal,error,warn,info"},
        "svr": {"bind": f"tcp@127.0.0.1:{bitpeer_svr}", "max_pkg_size": 33554432},
        "cli": f"tcp@127.0.0.1:{bitpeer_cli}",
        "coin": {"name": "BTC", "host": node.host, "port": node.rpc_port, "user": "viabtc",
                 "pass": node.api_key},
        "peer_config_path": "peer.json",
        "reconnect_timeout": 1,
        "broadcast_limit": 20,
        "start_string": REGTEST_MAGIC.hex(),
        "jobmaster": [f"udp@127.0.0.1:{ports.jobmaster}"],
        "secret": secret,
    }
    with open(os.path.join(run_dir, "peer.json"), "w") as f:
        json.dump({"peers": [f"127.0.0.1:{p2p_port}"]}, f)
    pool = LocalPool(run_dir, out=sys.stderr)
    pool.node = node
    pool.ports = ports
    for role in ("bitpeer", "jobmaster", "gateway"):
        path = os.path.join(run_dir, f"{role}.json")
        with open(path, "w") as f:
            json.dump(configs[role], f, indent=2)
        pool.start_role(role, path)
    pool.wait_for_port(ports.stratum, "gateway")
    return pool, ports.stratum


def solve(miner, job, target):
    """(extranonce2, nonce) whose header meets ``target``."""
    for counter in range(1 << 16):
        extranonce2 = extranonce2_bytes(counter, miner.extranonce2_size)
        prefix = header_prefix(job, miner.extranonce1, extranonce2, job.version)
        found = grind(prefix, 0, 1 << 22, target)
        if found:
            return extranonce2, found[0][0]
    raise RuntimeError("no share found")


async def run(rounds):
    node = BcoinNode().start()
    run_dir = tempfile.mkdtemp(prefix="viabtc-fastblock-")
    standin = StandInNode()
    p2p = reactor.listenTCP(0, PeerFactory(standin, PeerSettings(REGTEST_MAGIC), reactor=reactor,
                                           role="bench-node"), interface="127.0.0.1")
    pool = None
    try:
        await threads.deferToThread(node.generate, 1)
        pool, stratum = start_roles(run_dir, node, p2p.getHost().port)
        miner = await connect_miner(stratum)
        await wait_for(lambda: standin.peer is not None, 60, "bitpeer")
        empty_ms, first_byte_ms = [], []
        share_target = difficulty_to_target(DIFFICULTY)
        for _ in range(rounds):
            # A new tip on the node: the jobmaster's next full job.
            [tip] = await threads.deferToThread(node.generate, 1)
            tip_hash = hash_from_display_hex(tip)
            _, job, _ = await wait_for(lambda: next((j for j in reversed(miner.jobs)
                                                     if j[1].prev_hash == tip_hash), None),
                                       what="the job on the new tip")
            # Share → block announced to the stand-in node.
            block_target = min(bits_to_target(job.bits), share_target)
            extranonce2, nonce = solve(miner, job, block_target)
            header = BlockHeader.parse(header_prefix(job, miner.extranonce1, extranonce2,
                                                     job.version) + nonce.to_bytes(4, "little"))
            sent = miner.submit(job, extranonce2, nonce)
            arrived, _kind = await wait_for(lambda: standin.arrivals.get(header.hash()),
                                            what="our block at the stand-in node")
            first_byte_ms.append((arrived - sent) * 1e3)
            await wait_for(lambda: node.rpc("getbestblockhash") == header.hash()[::-1].hex(),
                           what="our block on the node")
            await task.deferLater(reactor, 1.5, lambda: None)  # bitpeer's tip poll (1 s)
            # A rival's block header on the node's tip → the empty notify.
            rival = _mine_header(header.hash(), job.bits)
            count = len(miner.jobs)
            stamp = time.monotonic()
            standin.peer.send(Headers([rival]))
            received, empty, _ = await wait_for(
                lambda: next((j for j in miner.jobs[count:] if j[1].prev_hash == rival.hash()), None),
                what="the empty job")
            if empty.branch:
                raise RuntimeError("the job on the rival block is not empty")
            empty_ms.append((received - stamp) * 1e3)
        inside = _bitpeer_announce_ms(os.path.join(run_dir, "bitpeer.log"))
        shutil.rmtree(run_dir, ignore_errors=True)
        return {"rounds": rounds, "block_to_empty_notify_ms": empty_ms,
                "share_to_first_byte_ms": first_byte_ms, "bitpeer_announce_ms": inside}
    finally:
        if pool is not None:
            from viabtc.devnet.process import stop_process

            for role in list(pool.processes):
                stop_process(pool.processes.pop(role), grace=10.0)
        await p2p.stopListening()
        node.stop()
        if os.path.exists(run_dir):
            print(f"fastblock: logs kept in {run_dir}", file=sys.stderr)


def compact_cost_ms(repeat=5):
    """
    Bitpeer's own cost of a full block's compact form, no sockets: a
    3,011-transaction block (the segwit block of the test vectors, its
    transactions repeated) from bytes to ``cmpctblock`` payload, best of
    ``repeat``.
    """
    from tests.bitcoin.vectors import block_bytes
    from viabtc.bitcoin.block import parse_block
    from viabtc.bitcoin.serialize import compact_size
    from viabtc.p2p.compact import RelayBlock

    block = parse_block(block_bytes("testnet-924634"))
    txs = [block.transactions[0]] + list(block.transactions[1:]) * 215
    raw = block.header.serialize() + compact_size(len(txs)) + b"".join(t.serialize() for t in txs)
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        RelayBlock(raw).compact(2).serialize()
        elapsed = (time.perf_counter() - started) * 1e3
        best = elapsed if best is None else min(best, elapsed)
    return {"txs": len(txs), "bytes": len(raw), "ms": best}


def _bitpeer_announce_ms(path):
    """Bitpeer's own time per pool block, cmd 10 read to announcements written (from its log)."""
    with open(path) as f:
        return [float(m.group(1)) for m in re.finditer(r"pool block \w+ from \S+ announced to \d+ "
                                                       r"peer\(s\) in ([0-9.]+) ms", f.read())]


def _mine_header(prev_hash, bits):
    target = bits_to_target(bits)
    for nonce in range(1 << 20):
        header = BlockHeader(0x20000000, prev_hash, secrets.token_bytes(32), int(time.time()), bits, nonce)
        if hash_to_int(header.hash()) <= target:
            return header
    raise RuntimeError("no header found")


def main(argv=None):
    parser = argparse.ArgumentParser(description="bitpeer's fast-block latencies")
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args(argv)
    result = {}

    async def go():
        result.update(await run(options.rounds))

    result["compact_block"] = compact_cost_ms()
    d = defer.Deferred.fromCoroutine(go())
    d.addErrback(lambda f: result.update(error=f.getTraceback()))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    print(json.dumps(result))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
