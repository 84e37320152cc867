# -*- test-case-name: tests.test_service -*-
"""
The wiring every role repeats: listeners for a ``ServerBlock`` (the seed's
``svr`` and ``monitor`` blocks, stream and datagram addresses mixed), the
outgoing RPC link for an ``RPCClientBlock``, and the one-line start-up error.

Roles never import each other (``docs/development.md``), so what
alertcenter, metarelay, metawriter and jobmaster share lives here, one layer
below them.  Listeners bind in ``privilegedStartService`` (before twistd
drops privileges), and a port that cannot be bound stops start-up instead of
leaving a role running deaf.
"""

import atexit
import os
import sys

from twisted.application import internet, service
from twisted.internet.protocol import Factory
from twisted.protocols.wire import Discard

from viabtc.backlog import accept_eagerly, listen_backlog
from viabtc.rpc.client import DatagramSender, FailoverClient
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory


class StartupError(SystemExit):
    """
    Start-up cannot go on (a bad configuration key, a corrupt journal);
    ``str(error)`` is the one line the operator reads.

    A ``SystemExit`` on purpose: twistd and ``twist`` handle only
    ``UsageError``/``Exception`` themselves, so this one reaches Python,
    which prints just the line and exits with status 1 -- no help text, no
    traceback.
    """


def stop_process(reactor, status=1):
    """
    Stop the reactor and end the process with ``status``: for a start-up
    error found only once running (a config the node contradicts), which an
    init system must see as a failure.  twistd itself always exits 0 after
    a ``reactor.stop()``; the status is set once twistd has finished its
    own shut-down (services stopped, pidfile removed), at interpreter exit.
    """

    def exit_with_status():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    reactor.addSystemEventTrigger("after", "shutdown", atexit.register, exit_with_status)
    reactor.stop()


class DatagramListener(service.Service):
    """Listens for datagrams on one ``udp@``/``dgram@`` address while running."""

    def __init__(self, address, protocol, reactor, max_packet_size):
        self.address = address
        self.protocol = protocol
        self.reactor = reactor
        self.max_packet_size = max_packet_size
        self.port = None

    def privilegedStartService(self):
        # Listen here so a bind failure stops twistd at start-up.
        self._listen()
        super().privilegedStartService()

    def startService(self):
        # A parent started without the privileged step (``twist``, tests) listens now.
        self._listen()
        super().startService()

    def _listen(self):
        if self.port is None:
            self.port = self.address.listen_udp(self.reactor, self.protocol, self.max_packet_size)

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


class _StreamListener(internet.StreamServerEndpointService):
    """Listens on one stream address; its port takes the whole accept queue each turn (a storm)."""

    def __init__(self, endpoint, factory, backlog):
        super().__init__(endpoint, factory)
        self._backlog = backlog

    def privilegedStartService(self):
        super().privilegedStartService()
        self._waitingForPort.addCallback(accept_eagerly, self._backlog)


def listen_stream(parent, address, factory, reactor):
    """
    Serve ``factory`` on the stream ``address`` under ``parent``, with the
    listen backlog of ``viabtc.backlog`` and a port that accepts all the
    backlog holds at each turn (``accept_eagerly``); returns the listening
    service.
    """
    listener = _StreamListener(address.server_endpoint(reactor), factory, listen_backlog(address.backlog))
    # A port that cannot be bound stops twistd at start-up.
    listener._raiseSynchronously = True
    listener.setServiceParent(parent)
    return listener


def listen_block(parent, block, reactor, stream_factory, datagram_protocol):
    """
    Listen on every address of ``block`` (a ``ServerBlock``) under
    ``parent``: ``stream_factory()`` gives the factory for each stream bind,
    ``datagram_protocol()`` the protocol for each datagram bind (a protocol
    instance answers through one port, so each bind needs its own).
    """
    for address in block.stream_binds:
        listen_stream(parent, address, stream_factory(), reactor)
    for address in block.datagram_binds:
        DatagramListener(address, datagram_protocol(), reactor, block.max_pkg_size).setServiceParent(parent)


def listen_rpc(parent, block, reactor, stream_handler, datagram_handler, *, secret, trust, role):
    """
    Serve the seed's RPC packets on every address of ``block``:
    ``stream_handler`` (an ``IPacketHandler``) on its TCP binds,
    ``datagram_handler`` (an ``IDatagramHandler``) on its UDP binds, both
    behind ``trust`` (a host predicate, or None) and ``secret`` (the HMAC
    key, or None), as ``svr`` is served by metarelay and metawriter.
    """
    settings = dict(max_size=block.max_pkg_size, secret=secret, trust=trust, reactor=reactor, role=role)
    listen_block(parent, block, reactor,
                 lambda: RPCServerFactory(stream_handler, **settings),
                 lambda: RPCDatagramProtocol(datagram_handler, **settings))


def listen_monitor(parent, block, reactor):
    """
    The ``monitor`` health port (``block`` may be None: not configured):
    accepts connections and discards what arrives, so a load balancer or a
    script can see the role is up.
    """
    if block is None:
        return
    for address in block.stream_binds:
        listen_stream(parent, address, Factory.forProtocol(Discard), reactor)


def client_link(block, reactor, secret, role):
    """
    The outgoing link for an RPC client ``block`` (``writer``, ``brother``):
    a ``DatagramSender`` for its one ``udp@`` address, else a
    ``FailoverClient`` over its stream addresses.  The block's config
    checked the address mix (``viabtc.config.link_block``).
    """
    first = block.addrs[0]
    if first.is_datagram:
        return DatagramSender([first.sockaddr], max_size=block.max_pkg_size, secret=secret,
                              reactor=reactor, role=role, interface="::" if ":" in first.host else "")
    return FailoverClient([a.client_endpoint(reactor) for a in block.addrs], max_size=block.max_pkg_size,
                          secret=secret, heartbeat_timeout=block.heartbeat_timeout,
                          reconnect_timeout=block.reconnect_timeout, reactor=reactor, role=role)
