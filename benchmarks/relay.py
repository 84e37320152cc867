# -*- test-case-name: tests.blockmaster.test_regions -*-
"""
Region-to-region block relay latency (blockmaster → blockmaster), never
asserted: ``python -m benchmarks.relay [--blocks N] [--txs M]``, run by
``scripts/bench --only relay``; one JSON line on stdout.

Two real bcoin regtest nodes (not connected; node B is given A's chain by
``submitblock``) and two real ``BlockmasterService`` s in this process on
loopback sockets, linked both ways.  For each block mined on A and pushed
to A's blockmaster as cmd 10 (as the jobmaster does), the clock runs from
the push to (1) B's blockmaster handing the rebuilt, merkle-checked block
to its node (``submitblock`` issued) and (2) node B reporting it in its
best chain.  Both services share one reactor, so A's encoding and B's
reconstruction run one after the other, as they would on two idle hosts
minus the network.  Modes: seed thin blocks (cmd 13) and the compact form
(cmd 17), each with every transaction already in B's cache and with one
transaction only A has (fetched by cmd 15 / cmd 18).

Also the relay's own cost without sockets or nodes (``pure``): A's
``Relay.full_block`` (split, merkle check, thin encoding) and B's
reconstruction of the thin or compact block, best of 7, for a synthetic
segwit block of ``--txs`` transactions with all of them in B's cache.
"""

import argparse
import json
import sys
import time

from twisted.internet import defer, task

from viabtc.bitcoin.address import b58check_encode
from viabtc.bitcoin.hashing import hash160, hash_from_display_hex
from viabtc.bitcoin.serialize import push_data
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut
from viabtc.blockmaster.config import BlockmasterConfig
from viabtc.blockmaster.service import BlockmasterService
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.devnet.bcoin import start_bcoin
from viabtc.blockmaster.relay import POOL, Relay
from viabtc.blockmaster.txcache import TxCache
from viabtc.p2p.thin import split_block
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet

from tests.p2p.blocks import segwit_block

OP_TRUE = b"\x51"
ANYONE_SCRIPT = b"\xa9\x14" + hash160(OP_TRUE) + b"\x87"
ANYONE_ADDRESS = b58check_encode(bytes([0x26]) + hash160(OP_TRUE))


def sync(a, b):
    for height in range(b.rpc("getblockcount") + 1, a.rpc("getblockcount") + 1):
        b.rpc("submitblock", a.rpc("getblock", a.rpc("getblockhash", height), False))


def fan_out(node_a, node_b, height, count, private):
    """
    ``count`` transactions in both mempools (and one in A's only when
    ``private``); the txids (internal order) B should cache.
    """
    block = node_a.rpc("getblock", node_a.rpc("getblockhash", height), True)
    value = 50_0000_0000 - 100_000
    n = count + (1 if private else 0)
    each = value // n - 10_000
    parent = Transaction(2, [TxIn(hash_from_display_hex(block["tx"][0]), 0, push_data(OP_TRUE), 0xFFFFFFFF)],
                         [TxOut(value // n, ANYONE_SCRIPT) for _ in range(n)], 0)
    for node in (node_a, node_b):
        node.rpc("sendrawtransaction", parent.serialize().hex())
    shared = [parent.txid()]
    for i in range(n):
        child = Transaction(2, [TxIn(parent.txid(), i, push_data(OP_TRUE), 0xFFFFFFFF)],
                            [TxOut(each, ANYONE_SCRIPT)], 0)
        only_a = private and i == n - 1
        if not only_a:
            shared.append(child.txid())
        for node in ((node_a,) if only_a else (node_a, node_b)):
            node.rpc("sendrawtransaction", child.serialize().hex())
    return shared


def config(node, port, peer, compact):
    return BlockmasterConfig.from_reader(ConfigReader({
        "svr": {"bind": [f"tcp@127.0.0.1:{port}"], "max_pkg_size": 16 << 20},
        "blockmaster": [f"tcp@127.0.0.1:{peer}"],
        "coin": {"name": "BTC", "host": "127.0.0.1", "port": node.rpc_port, "user": "viabtc",
                 "pass": node.api_key},
        "mempool_timeout": 1, "compact": compact,
    }))


async def wait(reactor, predicate, timeout=30.0, step=0.001):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError("timed out")
        await task.deferLater(reactor, step, lambda: None)


async def measure(reactor, a, b, compact, private, blocks, txs, coinbases):
    sync(a, b)
    pa, pb = free_port(), free_port()
    sa = BlockmasterService(config(a, pa, pb, compact), reactor)
    sb = BlockmasterService(config(b, pb, pa, compact), reactor)
    handed = {}
    original = sb.submit

    def timed_submit(block, block_hash):
        handed[block_hash] = time.perf_counter()
        return original(block, block_hash)
    sb.relay._submit = timed_submit
    sa.startService()
    sb.startService()
    client = FailoverClient([config(a, pa, pb, compact).svr.stream_binds[0].client_endpoint(reactor)],
                            max_size=16 << 20, reactor=reactor, role="jobmaster")
    client.startService()
    rows = []
    try:
        await wait(reactor, lambda: client.connected and all(
            link.client.connected and (link.compact or not compact)
            for s in (sa, sb) for link in s.blockmasters.values()))
        for _ in range(blocks):
            shared = fan_out(a, b, coinbases.pop(0), txs, private)
            await wait(reactor, lambda: all(sb.cache.has_txid(t) for t in shared))
            requests = sb.relay.counters["requests"]
            [block_hash] = a.rpc("generatetoaddress", 1, ANYONE_ADDRESS)
            raw = bytes.fromhex(a.rpc("getblock", block_hash, False))
            internal = hash_from_display_hex(block_hash)
            started = time.perf_counter()
            client.send(Packet(Command.SUBMIT_BLOCK, raw))
            await wait(reactor, lambda: internal in handed)
            await wait(reactor, lambda: b.rpc("getbestblockhash", timeout=5) == block_hash, step=0.002)
            at_node = time.perf_counter()
            rows.append({"txs": len(sa.relay.recent.get(internal, ())) + 1,
                         "bytes": len(raw), "to_submit_ms": (handed[internal] - started) * 1000,
                         "to_best_chain_ms": (at_node - started) * 1000,
                         "requests": sb.relay.counters["requests"] - requests})
    finally:
        await client.stopService()
        await sa.stopService()
        await sb.stopService()
    return rows


class _Sink:
    """A stand-in link: keeps what is sent."""

    peer = "sink"

    def __init__(self):
        self.sent = []

    def send(self, packet):
        self.sent.append(packet)
        return True


def pure(count, runs=7):
    """Best-of-``runs`` ms: A's full_block, B's rebuild of the seed thin block and of the compact one."""
    raw = segwit_block(count)
    _, txs = split_block(raw)
    best = {}
    for compact in (False, True):
        for _ in range(runs):
            out = _Sink()
            a = Relay(cache=TxCache(), clock=task.Clock(), submit=lambda b, h: None,
                      local_height=lambda: 0, bitpeers=list, blockmasters=lambda: [(out, compact)])
            cache = TxCache()
            for tx in txs[1:]:
                cache.add(tx, 0)
            b = Relay(cache=cache, clock=task.Clock(), submit=lambda b, h: None,
                      local_height=lambda: 0, bitpeers=list, blockmasters=list)
            t0 = time.perf_counter()
            a.full_block(POOL, raw)
            t1 = time.perf_counter()
            b.packet(_Sink(), out.sent[0])
            t2 = time.perf_counter()
            assert b.submitted, "the pure relay did not rebuild the block"
            name = "compact" if compact else "seed"
            for part, ms in ((f"a_full_block_{name}_ms", (t1 - t0) * 1000),
                             (f"b_rebuild_{name}_ms", (t2 - t1) * 1000)):
                best[part] = min(best.get(part, ms), ms)
    best["txs"] = count + 1
    best["bytes"] = len(raw)
    return best


async def main(reactor, options):
    measured = pure(options.txs)
    print(f"   pure: {measured}", file=sys.stderr, flush=True)
    a = start_bcoin()
    b = start_bcoin()
    try:
        per_mode = options.blocks
        a.rpc("generatetoaddress", 100 + 4 * per_mode, ANYONE_ADDRESS)
        coinbases = list(range(1, 1 + 4 * per_mode))
        results = {}
        for compact in (False, True):
            for private in (False, True):
                name = f"{'compact' if compact else 'seed'}{'_missing1' if private else ''}"
                results[name] = await measure(reactor, a, b, compact, private, per_mode, options.txs,
                                              coinbases)
                print(f"   {name}: " + ", ".join(f"{r['to_submit_ms']:.1f}/{r['to_best_chain_ms']:.0f} ms"
                                                 for r in results[name]), file=sys.stderr, flush=True)
        results["pure"] = measured
        print(json.dumps({"event": "result", "relay": results}), flush=True)
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=3, help="blocks per mode")
    parser.add_argument("--txs", type=int, default=200, help="transactions per block in both mempools")
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parser.parse_args())))
