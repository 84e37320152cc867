"""
Test helpers: a gateway built from the real RPC client, a Python solver
for jobs (as a gateway and a miner would build the block, ref §4.4), and a
port forwarder that closes cleanly.
"""

import json
import socket

from twisted.internet import reactor, threads
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.protocols.portforward import ProxyClient, ProxyClientFactory, ProxyFactory, ProxyServer
from zope.interface import implementer

from viabtc.bitcoin.coinbase import coinbase_tag, miner_script_sig_prefix, real_coinbase1, tag_budget
from viabtc.bitcoin.hashing import hash_from_display_hex, hash_to_display_hex, hash_to_int, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root_from_branch
from viabtc.bitcoin.target import bits_to_target
from viabtc.devnet import free_port
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet, PacketType, encode
from viabtc.rpc.interfaces import ILinkObserver
from viabtc.stratum.job import Job

from tests.support import wait_for  # noqa: F401 (the jobmaster tests import it from here)


def free_ports():
    """``(tcp, udp, cli)`` ports that are free now."""
    return free_port(), free_port(kind=socket.SOCK_DGRAM), free_port()


@implementer(ILinkObserver)
class TestGateway:
    """A gateway's RPC link to the jobmaster: a real ``FailoverClient``."""

    def __init__(self, port, secret=None):
        self.packets = []
        self.connects = 0
        self.disconnects = 0
        self.client = FailoverClient(
            [TCP4ClientEndpoint(reactor, "127.0.0.1", port)], max_size=8 << 20,
            secret=secret, reactor=reactor, role="test-gateway", reconnect_timeout=0.2)
        self.client.add_observer(self)

    def start(self):
        self.client.startService()

    def stop(self):
        return self.client.stopService()

    def on_connect(self, link):
        self.connects += 1

    def on_packet(self, link, packet):
        self.packets.append(packet)

    def on_disconnect(self, link):
        self.disconnects += 1

    def jobs(self):
        return [Job.from_json(p.body) for p in self.packets if p.command == Command.UPDATE_JOB]

    def bans(self):
        return [json.loads(p.body) for p in self.packets if p.command == Command.UPDATE_BAN]

    def send_found(self, body):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.send(Packet(Command.FOUND_BLOCK, raw, PacketType.REQUEST))


class _TrackedClient(ProxyClient):
    def connectionMade(self):
        self.tracked = self.peer.factory.connections
        self.tracked.add(self)
        super().connectionMade()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.tracked.discard(self)


class _TrackedClientFactory(ProxyClientFactory):
    protocol = _TrackedClient


class _TrackedServer(ProxyServer):
    clientProtocolFactory = _TrackedClientFactory

    def connectionMade(self):
        self.factory.connections.add(self)
        super().connectionMade()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory.connections.discard(self)


class ClosingProxyFactory(ProxyFactory):
    """
    Twisted's TCP port forwarder, knowing its open connections on both
    sides, so that a test's cleanup can close them and wait until they are
    gone (rather than sleep and hope).
    """

    protocol = _TrackedServer

    def __init__(self, host, port):
        super().__init__(host, port)
        self.connections = set()

    async def close(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()
        await wait_for(lambda: not self.connections, what="the forwarded connections to close")


def send_datagram(port, packet, secret=None):
    """Send one RPC packet by UDP to the jobmaster."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(encode(packet, secret) if secret else encode(packet), ("127.0.0.1", port))


def solve(job, unique_id=1, nonce_id=2, extranonce=b"\0" * 12, account=None):
    """
    Build the block a gateway and miner would for ``job`` (a ``Job``) and
    grind a nonce meeting its target; the cmd 2 body reporting it.
    """
    coinbaseaux = bytes.fromhex(job.coinbaseaux)
    tag = coinbase_tag(job.pool_name, job.coinbase_message, account,
                       tag_budget(job.height, coinbaseaux, agent=False))
    prefix = miner_script_sig_prefix(job.height, tag, coinbaseaux, unique_id, nonce_id)
    coinbase = (real_coinbase1(bytes.fromhex(job.coinbase1), prefix) + extranonce
                + bytes.fromhex(job.coinbase2))
    branch = [bytes.fromhex(h) for h in job.merkle_branch]
    root = merkle_root_from_branch(sha256d(coinbase), branch)
    target = bits_to_target(job.nbits)
    prev = hash_from_display_hex(job.prevhash)
    for nonce in range(1 << 24):
        header = BlockHeader(job.version, prev, root, job.curtime, job.nbits, nonce).serialize()
        block_hash = sha256d(header)
        if hash_to_int(block_hash) <= target:
            return {"job_id": job.job_id, "hash": hash_to_display_hex(block_hash),
                    "block_head": header.hex(), "coinbase": coinbase.hex(),
                    "type": "main", "name": "BTC"}
    raise AssertionError("no nonce meets the target")


def in_thread(f, *args):
    """Run a blocking call (the test node's synchronous RPC) off the reactor."""
    return threads.deferToThread(f, *args)
