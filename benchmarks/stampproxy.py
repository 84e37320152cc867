# -*- test-case-name: benchmarks -*-
"""
A TCP proxy in front of the regtest node that notes when a ``submitblock``
request has reached it.

The block-candidate measure ends where the issue puts it: the node
receiving the ``submitblock`` HTTP request.  The jobmaster cannot see that
moment, and the node (bcoin) does not report it, so the jobmaster talks to
the node through this proxy, in its own process on the load core.  Bytes
pass both ways unchanged; for each HTTP request whose body starts a
``submitblock`` call, once its last body byte (``Content-Length``) has
arrived, it prints ``{"event": "submitblock", "t", "first", "reads"}``
(``time.monotonic()`` of the last and of the first read of the request,
and how many reads it took: the request's time on the wire, apart from the
jobmaster's), then forwards it.
"""

import argparse
import os
import time

from twisted.internet import protocol

from benchmarks.events import emit

_monotonic = time.monotonic


class _Upstream(protocol.Protocol):
    def __init__(self, downstream):
        self.downstream = downstream

    def connectionMade(self):
        self.downstream.upstream_ready(self)

    def dataReceived(self, data):
        self.downstream.transport.write(data)

    def connectionLost(self, reason):
        self.downstream.transport.loseConnection()


class StampingProxy(protocol.Protocol):
    """One client connection, forwarded to the node; submitblock requests timed."""

    def __init__(self, reactor, node_port):
        self.reactor = reactor
        self.node_port = node_port
        self.upstream = None
        self.pending = []
        self.head = b""
        self.body_start = b""
        #: body bytes of the current request still to come; None while in its head
        self.remaining = None
        #: when the current request's first bytes were read, and reads since
        self.first = None
        self.reads = 0

    def connectionMade(self):
        # Read a 2.3 MB request in a few reads, not 37 of Twisted's 64 KB:
        # the proxy's own per-read cost must not delay the stamp.
        self.transport.bufferSize = 4 << 20
        self.transport.pauseProducing()
        protocol.ClientCreator(self.reactor, _Upstream, self).connectTCP("127.0.0.1", self.node_port)

    def upstream_ready(self, upstream):
        self.upstream = upstream
        for data in self.pending:
            upstream.transport.write(data)
        self.pending = []
        self.transport.resumeProducing()

    def dataReceived(self, data):
        now = _monotonic()
        if self.remaining is None and not self.head:
            self.first, self.reads = now, 0
        self.reads += 1
        self._watch(data, now)
        if self.upstream is None:
            self.pending.append(data)
        else:
            self.upstream.transport.write(data)

    def _watch(self, data, now):
        """Follow request boundaries without copying bodies; stamp the submitblock ones."""
        while data:
            if self.remaining is None:
                self.head += data
                head_end = self.head.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                length = 0
                for line in self.head[:head_end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                data = self.head[head_end + 4:]
                self.head = b""
                self.remaining = length
                self.body_start = b""
            take = min(len(data), self.remaining)
            if len(self.body_start) < 80:
                self.body_start += data[:80]
            self.remaining -= take
            data = data[take:]
            if self.remaining == 0:
                if b'"submitblock"' in self.body_start:
                    emit(event="submitblock", t=now, first=self.first, reads=self.reads)
                self.remaining = None

    def connectionLost(self, reason):
        if self.upstream is not None:
            self.upstream.transport.loseConnection()


def main():
    parser = argparse.ArgumentParser(description="a submitblock-stamping proxy")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--node-port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=0)
    options = parser.parse_args()
    os.sched_setaffinity(0, {options.cpu})
    from twisted.internet import reactor, stdio

    factory = protocol.Factory()
    factory.buildProtocol = lambda addr: StampingProxy(reactor, options.node_port)
    reactor.listenTCP(options.port, factory, interface="127.0.0.1")

    class _StopOnClose(protocol.Protocol):
        def connectionLost(self, reason):
            if reactor.running:
                reactor.stop()

    stdio.StandardIO(_StopOnClose())
    emit(event="listening", port=options.port)
    reactor.run()


if __name__ == "__main__":
    main()
