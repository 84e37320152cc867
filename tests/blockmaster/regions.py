"""
Two regions for the blockmaster tests: each a real bcoin regtest node and a
real ``BlockmasterService`` (in this process, on real loopback sockets),
the nodes not connected to each other, the blockmasters linked both ways.

The chain is shared by hand: blocks mined on node A are submitted to node
B by RPC, so both start from the same tip.  Coinbases pay P2SH(OP_TRUE),
which anyone can spend without a key, so a test can put a real
transaction into A's mempool only.
"""

import atexit

from twisted.internet import defer, reactor

from tests.support import require_service, wait_for
from viabtc.bitcoin.address import b58check_encode
from viabtc.bitcoin.hashing import hash160, hash_from_display_hex
from viabtc.bitcoin.serialize import push_data
from viabtc.bitcoin.transaction import Transaction, TxIn, TxOut
from viabtc.blockmaster.config import BlockmasterConfig
from viabtc.blockmaster.service import BlockmasterService
from viabtc.config import ConfigReader
from viabtc.devnet import free_port
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet

#: bcoin's regtest P2SH version byte.
BCOIN_REGTEST_SCRIPT_HASH_PREFIX = 0x26
OP_TRUE = b"\x51"
ANYONE_SCRIPT = b"\xa9\x14" + hash160(OP_TRUE) + b"\x87"
ANYONE_ADDRESS = b58check_encode(bytes([BCOIN_REGTEST_SCRIPT_HASH_PREFIX]) + hash160(OP_TRUE))


def shared_nodes(testcase):
    """Nodes A and B for ``testcase``'s class, started once, stopped at exit."""
    from viabtc.devnet.bcoin import start_bcoin

    cls = type(testcase)
    nodes = cls.__dict__.get("_region_nodes")
    if nodes is None or any(n.process is None or n.process.poll() is not None for n in nodes):
        nodes = []
        for _ in range(2):
            node = require_service(start_bcoin)
            atexit.register(node.stop)
            nodes.append(node)
        cls._region_nodes = nodes
        a, b = nodes
        a.rpc("generatetoaddress", 110, ANYONE_ADDRESS)
        sync(a, b)
        cls._spendable = list(range(1, 11))
    return nodes


def sync(a, b):
    """Submit to ``b`` every block of ``a``'s chain that ``b`` lacks."""
    for height in range(b.rpc("getblockcount") + 1, a.rpc("getblockcount") + 1):
        block_hash = a.rpc("getblockhash", height)
        b.rpc("submitblock", a.rpc("getblock", block_hash, False))
    assert b.rpc("getbestblockhash") == a.rpc("getbestblockhash")


def spend_coinbase(node, height, fee=20_000, script=ANYONE_SCRIPT):
    """A signed-by-nobody transaction spending the coinbase at ``height`` to ``script`` (hex)."""
    block = node.rpc("getblock", node.rpc("getblockhash", height), True)
    coinbase_txid = hash_from_display_hex(block["tx"][0])
    tx = Transaction(2, [TxIn(coinbase_txid, 0, push_data(OP_TRUE), 0xFFFFFFFF)],
                     [TxOut(50_0000_0000 - fee, script)], 0)
    return tx.serialize().hex()


def config_for(node, port, peers, compact, **extra):
    data = {
        "svr": {"bind": [f"tcp@127.0.0.1:{port}"], "max_pkg_size": 16 << 20},
        "blockmaster": [f"tcp@127.0.0.1:{p}" for p in peers],
        "bitpeer": [],
        "coin": {"name": "BTC", "host": "127.0.0.1", "port": node.rpc_port, "user": "viabtc",
                 "pass": node.api_key},
        "mempool_timeout": 0.2,
        "blockmaster_timeout": 3,
        "request_timeout": 3,
        "compact": compact,
    }
    data.update(extra)
    return BlockmasterConfig.from_reader(ConfigReader(data))


@defer.inlineCallbacks
def start_regions(testcase, compact):
    """``(node_a, node_b, service_a, service_b)``, services stopped by the cleanup."""
    a, b = shared_nodes(testcase)
    sync(a, b)
    port_a, port_b = free_port(), free_port()
    services = []
    for node, port, peer in ((a, port_a, port_b), (b, port_b, port_a)):
        service = BlockmasterService(config_for(node, port, [peer], compact), reactor)
        service.startService()
        testcase.addCleanup(service.stopService)
        services.append(service)
    sa, sb = services
    yield defer.ensureDeferred(wait_for(
        lambda: all(link.client.connected for s in services for link in s.blockmasters.values())
        and all(s.local_height is not None for s in services)
        and (not compact or all(link.compact for s in services for link in s.blockmasters.values())),
        what="blockmasters linked"))
    return a, b, sa, sb


@defer.inlineCallbacks
def jobmaster_link(testcase, service):
    """A real RPC client to ``service``'s svr, as a jobmaster's: push blocks with ``send``."""
    address = service.config.svr.stream_binds[0]
    client = FailoverClient([address.client_endpoint(reactor)], max_size=16 << 20, reactor=reactor,
                            role="jobmaster")
    client.startService()
    testcase.addCleanup(client.stopService)
    yield defer.ensureDeferred(wait_for(lambda: client.connected, what="jobmaster link"))
    return client


def push_pool_block(client, node, block_hash):
    """Push ``node``'s block ``block_hash`` as cmd 10."""
    raw = bytes.fromhex(node.rpc("getblock", block_hash, False))
    assert client.send(Packet(Command.SUBMIT_BLOCK, raw))
    return raw
