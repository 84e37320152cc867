# -*- test-case-name: benchmarks -*-
"""
The jobmaster end of the benchmarks: jobs over the real module RPC.

The gateway under test connects here as it connects to a jobmaster (ref
§1.2): an ``RPCServerFactory`` serving the jobmaster's own ``GatewayHub``,
which sends the current job (clean) to a new gateway and takes its found
blocks.  The runner drives it through stdin, one command per line:

``push`` / ``push clean``
    broadcast the next job (same mainnet-like template, next job id);
``push regtest``
    a clean job with regtest bits, so that block candidates are easy.

Each push prints ``{"event": "pushed", "job_id", "t"}``; each found block
``{"event": "found_block", "t", "checked", "sent"}``: when the cmd-2
packet was handed to the hub, when the jobmaster's path had issued the
``submitblock`` requests, and when the request's last byte was handed to
the kernel.  With ``--node-url`` that path is the jobmaster's own:
``check_candidate`` and ``BlockCourier.deliver`` (``submitblock`` through
``BlockSubmitter`` and ``NodeRPCClient`` to the node, then the found-block
file; the node rejects these blocks, whose parent it does not know, which
changes nothing before the request reached it).  Without it, the
``submitblock`` request body is only built.  Times are
``time.monotonic()``.

With ``--writer-port`` it also stands in for the statistics writer: a UDP
port that acknowledges every packet (a REPLY with its command and
sequence) and keeps nothing.  The gateway's statistics path is then what it
is in production with a healthy writer; without acknowledgements it would
resend its whole journal every few seconds.
"""

import argparse
import os
import time
import weakref

from twisted.internet import protocol, stdio
from twisted.protocols.basic import LineReceiver

from benchmarks.events import emit
from benchmarks.mainnet import job_settings, template_result
from viabtc.bitcoin.target import bits_to_target
from viabtc.jobmaster.candidate import check_candidate
from viabtc.jobmaster.courier import BlockCourier
from viabtc.jobmaster.gateways import GatewayHub, job_packet
from viabtc.jobmaster.jobs import build_job
from viabtc.node.jsonrpc import (
    NodeConfig,
    NodeConnectionPool,
    NodeGroup,
    NodeRPCClient,
    _NodeHTTPFactory,
    json_string,
    request_body,
)
from viabtc.node.submit import BlockSubmitter
from viabtc.node.template import Template
from viabtc.rpc.codec import Packet, PacketType, ProtocolError, decode_datagram, encode
from viabtc.rpc.protocol import RPCServerFactory

REGTEST_BITS = 0x207FFFFF


class JobFeed:
    """The jobs, their contexts (for found blocks) and the hub."""

    def __init__(self, curtime, reactor, courier=None):
        self.reactor = reactor
        self.courier = courier
        # VIABTC_BENCH_EMPTY_TEMPLATE=1: the mainnet job from a template with no
        # transactions (no merkle branch), the load the C gateway's figure is on.
        if os.environ.get("VIABTC_BENCH_EMPTY_TEMPLATE"):
            result = template_result(transactions=0, curtime=curtime)
        else:
            result = template_result(curtime=curtime)
        self.templates = {
            "mainnet": Template.from_rpc(result),
            "regtest": Template.from_rpc(
                dict(result, bits=format(REGTEST_BITS, "08x"), target=format(bits_to_target(REGTEST_BITS), "064x"))
            ),
        }
        self.kind = "mainnet"
        self.number = 1
        self.job, self.context = build_job(self.templates["mainnet"], job_settings(), self.number, True)
        self.contexts = {self.job.job_id: self.context}
        self.hub = GatewayHub(lambda: self.job, list, self.found_block, lambda update, peer: None)

    def push(self, clean, kind=None):
        self.number += 1
        kind = kind or self.kind
        if kind != self.kind:
            self.kind, clean = kind, True
        job, context = build_job(self.templates[kind], job_settings(), self.number, clean)
        self.job, self.context = job, context
        self.contexts[job.job_id] = context
        t = time.monotonic()
        self.hub.factory.broadcast(job_packet(job))
        emit(event="pushed", job_id=job.job_id, clean=clean, kind=kind, t=t)

    def found_block(self, found, peer):
        t = time.monotonic()
        context = self.contexts.get(found.job_id)
        candidate = check_candidate(found, context)
        if self.courier is None:
            request = request_body(1, "submitblock", (json_string(*candidate.hex_parts),))
            checked = time.monotonic()
            emit(event="found_block", t=t, checked=checked, sent=checked, bytes=len(request))
            return
        self.courier.deliver(candidate)
        checked = time.monotonic()
        size = len(candidate.head) + len(candidate.transactions)
        # Reported once the request has left, so that printing it does not delay it.
        self.reactor.callLater(0, self._when_sent, t, checked, size)

    def _when_sent(self, t, checked, size):
        """Each reactor turn: has every node connection handed all its bytes to the kernel?"""
        if any(tr.dataBuffer or tr._tempDataLen for tr in WatchedNodeFactory.transports):
            self.reactor.callLater(0, self._when_sent, t, checked, size)
            return
        emit(event="found_block", t=t, checked=checked, sent=time.monotonic(), bytes=size)


class WatchedNodeFactory(_NodeHTTPFactory):
    """
    ``NodeConnectionPool``'s connection factory, noting each connection's
    transport: the jobmaster's own code cannot tell when a request has
    left (Twisted reports no such moment), so the bench watches the
    transports' buffers empty.
    """

    transports = weakref.WeakSet()

    def buildProtocol(self, addr):
        proto = super().buildProtocol(addr)
        made = proto.connectionMade

        def connectionMade():
            made()
            WatchedNodeFactory.transports.add(proto.transport)

        proto.connectionMade = connectionMade
        return proto


class WatchedNodePool(NodeConnectionPool):
    _factory = WatchedNodeFactory


class WriterStandIn(protocol.DatagramProtocol):
    """Acknowledges every statistics packet and keeps nothing (a stand-in for metawriter)."""

    packets = 0

    def datagramReceived(self, data, addr):
        try:
            packet = decode_datagram(data, 1 << 20)
        except ProtocolError:
            return
        if packet.pkg_type == PacketType.REPLY:
            return
        self.packets += 1
        reply = Packet(packet.command, b"", PacketType.REPLY, packet.sequence)
        self.transport.write(encode(reply), addr)


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self, feed, reactor):
        self.feed = feed
        self.reactor = reactor

    def lineReceived(self, line):
        words = line.decode().split()
        if words[:1] == ["push"]:
            self.feed.push("clean" in words, "regtest" if "regtest" in words else "mainnet" if "mainnet" in words else None)

    def connectionLost(self, reason):
        if self.reactor.running:
            self.reactor.stop()


def main():
    parser = argparse.ArgumentParser(description="the benchmarks' jobmaster end")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--writer-port", type=int, default=0, help="acknowledge statistics packets here")
    parser.add_argument("--node-url", help="deliver found blocks to this node (the jobmaster's courier)")
    parser.add_argument("--node-password", default="")
    parser.add_argument("--found-dir", default="benchmarks/results/found_blocks")
    options = parser.parse_args()
    os.sched_setaffinity(0, {options.cpu})
    from twisted.internet import reactor

    courier = None
    if options.node_url:
        nodes = NodeGroup([NodeRPCClient(NodeConfig(url=options.node_url, user="x", password=options.node_password),
                                         reactor=reactor, pool=WatchedNodePool(reactor))])
        courier = BlockCourier(BlockSubmitter(nodes), nodes, [], options.found_dir, reactor)
    feed = JobFeed(curtime=int(time.time()), reactor=reactor, courier=courier)
    factory = RPCServerFactory(feed.hub, max_size=1 << 20, reactor=reactor, role="bench-jobmaster")
    feed.hub.factory = factory
    reactor.listenTCP(options.port, factory, interface="127.0.0.1")
    if options.writer_port:
        reactor.listenUDP(options.writer_port, WriterStandIn(), interface="127.0.0.1")
    stdio.StandardIO(Commands(feed, reactor))
    emit(event="listening", port=options.port, job_id=feed.job.job_id)
    reactor.run()


if __name__ == "__main__":
    main()
