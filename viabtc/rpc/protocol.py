# -*- test-case-name: tests.rpc.test_protocol -*-
"""
Twisted protocols for the seed's RPC packets: the TCP server side with its
heartbeat duties, the trust predicate, and the UDP server side.

The rules come from the seed (ref §2.2, §2.3): a bad packet closes the TCP
connection; the server answers heartbeat REQUESTs itself and drops a client
whose heartbeats stop, whatever else it sends.  Our additions (ref §12.1,
§12.2): a source allow-list applied to TCP *and* UDP, and HMAC tags with
replay protection when a shared secret is configured.  Nothing a peer sends
can raise into the reactor: errors become a log line and a closed connection
(TCP) or a dropped datagram (UDP).
"""

import ipaddress

from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.logger import Logger

from viabtc.rpc.codec import (
    HEARTBEAT_TIMEOUT_DEFAULT,
    Command,
    PacketDecoder,
    PacketType,
    ProtocolError,
    clamp_heartbeat_timeout,
    decode_datagram,
    encode,
    parse_heartbeat_timeout,
)
from viabtc.rpc.replay import ReplayGuard
from viabtc.sendnow import direct_socket, send_now


def resolve_reactor(reactor):
    """``reactor``, or the global reactor when None (imported only then)."""
    if reactor is None:
        from twisted.internet import reactor
    return reactor


def describe_address(address):
    """``host:port`` for an ``IAddress`` or a ``(host, port)`` tuple, for logs."""
    host = getattr(address, "host", None)
    if host is not None:
        return f"{host}:{address.port}"
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def checked_datagram(data, addr, *, max_size, secret, guard, log, role):
    """
    The packet in one datagram from ``addr``, its tag and freshness checked
    (``guard``: a ``ReplayGuard``, or None when unkeyed); None, logged on
    ``log``, when it is bad: a bad datagram is dropped, never raised.
    """
    try:
        packet = decode_datagram(data, max_size, secret)
        if guard is not None:
            guard.check(packet)
    except ProtocolError as e:
        log.warn("dropped datagram from {peer}: {reason}", peer=describe_address(addr), reason=e.reason, role=role)
        return None
    return packet


class TrustedHosts:
    """
    A source allow-list: IP addresses and CIDR networks, the seed's ``trust``
    arrays (ref §8.1, §8.6) plus networks.  Call it with a host string.
    IPv4-mapped IPv6 sources match their IPv4 entries.
    """

    def __init__(self, entries):
        self._networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __call__(self, host):
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        return any(address in network for network in self._networks)


class Silence:
    """
    Fails a link after ``timeout`` seconds of silence, judged fairly to a
    peer when our own process was the one that stalled.

    Silence is counted from ``since`` (set by ``mark``; ``None`` means
    nothing is awaited, so no silence counts).  When the timer comes due the
    verdict waits one reactor turn: after a stall of our own (a long
    computation, a loaded machine) the peer's packets are often waiting
    unread in the socket, and the reactor reads them before that turn.
    ``expired`` is called with no arguments when the silence is real.
    """

    def __init__(self, clock, timeout, expired, since=0.0):
        self._clock = clock
        self.timeout = timeout
        self._expired = expired
        self.since = since
        self._call = clock.callLater(timeout, self._due)

    def mark(self, since, timeout=None):
        """
        Silence now counts from ``since`` (None: nothing awaited), for
        ``timeout`` seconds if given; the check is due ``timeout`` after it.
        """
        if timeout is not None:
            self.timeout = timeout
        self.since = since
        if since is not None:
            self.cancel()
            delay = max(0.0, since + self.timeout - self._clock.seconds())
            self._call = self._clock.callLater(delay, self._due)

    def _due(self):
        self._call = self._clock.callLater(0, self._judge)

    def _judge(self):
        waited = 0.0 if self.since is None else self._clock.seconds() - self.since
        if waited >= self.timeout:
            self._expired()
        else:
            self._call = self._clock.callLater(self.timeout - waited, self._due)

    def cancel(self):
        if self._call is not None and self._call.active():
            self._call.cancel()


class PacketConnection(Protocol):
    """
    One TCP connection carrying RPC packets: decoding, tag and replay checks,
    sending, and closing on bad input.  Subclasses say what a heartbeat
    means (``heartbeatReceived``) and where other packets go
    (``deliverPacket``).
    """

    _log = Logger()

    def __init__(self, *, max_size, clock, role, secret=None, guard=None):
        self._max_size = max_size
        self._clock = clock
        self._role = role
        self._secret = secret
        self._guard = guard
        self._decoder = None
        self._closing = False
        self._socket = None
        self.peer = "?"

    def connectionMade(self):
        self._decoder = PacketDecoder(self._max_size, self._secret)
        self.peer = describe_address(self.transport.getPeer())
        self._socket = direct_socket(self.transport)

    def dataReceived(self, data):
        if self._closing:
            return
        try:
            packets = self._decoder.feed(data)
        except ProtocolError as e:
            self._deliver(e.packets)
            self.fail(e.reason)
            return
        self._deliver(packets)

    def _deliver(self, packets):
        guard = self._guard
        for packet in packets:
            if self._closing:
                return
            try:
                if guard is not None:
                    guard.check(packet)
                if packet.command == Command.HEARTBEAT:
                    self.heartbeatReceived(packet)
                    continue
            except ProtocolError as e:
                self.fail(e.reason)
                return
            try:
                self.deliverPacket(packet)
            except Exception:
                self._log.failure(
                    "handler failed on command {command} from {peer}",
                    command=packet.command,
                    peer=self.peer,
                    role=self._role,
                )

    def encode(self, packet):
        """The bytes of ``packet`` as this connection sends them (tagged if keyed)."""
        if self._secret is None:
            return encode(packet)
        return encode(packet, self._secret, now=self._clock.seconds())

    def send(self, packet):
        """Send ``packet`` to the peer; a no-op once the connection is closing."""
        self.write_encoded(self.encode(packet))

    def write_encoded(self, data):
        """
        Send bytes produced by ``encode`` (fan-out encodes once for many
        peers): the connection's one output.  Straight to the socket when
        nothing is queued (``viabtc.sendnow``), so a block candidate or a
        job is in the kernel before the caller goes on to log or journal.
        """
        if not self._closing:
            send_now(self.transport, self._socket, data)

    def fail(self, reason):
        """Log why and drop the connection at once, as the seed does."""
        if self._closing:
            return
        self._closing = True
        self._log.warn(
            "closing RPC connection to {peer}: {reason}",
            peer=self.peer,
            reason=reason,
            role=self._role,
        )
        self.transport.abortConnection()

    def connectionLost(self, reason):
        self._closing = True


class RPCProtocol(PacketConnection):
    """
    The server end of an RPC TCP connection (ref §2.3): answers heartbeat
    REQUESTs with an empty REPLY, adopts the announced timeout clamped to
    [2 s, 600 s] (3 s until the first one), and drops the peer when no
    heartbeat arrives within it.  Only heartbeats count as liveness.
    """

    def __init__(self, factory):
        super().__init__(
            max_size=factory.max_size,
            clock=factory.reactor,
            role=factory.role,
            secret=factory.secret,
            guard=factory.guard,
        )
        self.factory = factory
        self.timeout = HEARTBEAT_TIMEOUT_DEFAULT
        self._silence = None

    def connectionMade(self):
        super().connectionMade()
        self._silence = Silence(self._clock, self.timeout, self._timedOut, self._clock.seconds())
        self.factory.connections.add(self)
        self._log.info("RPC peer {peer} connected", peer=self.peer, role=self._role)
        try:
            self.factory.handler.peerConnected(self)
        except Exception:
            self._log.failure("handler failed on connect of {peer}", peer=self.peer, role=self._role)

    def heartbeatReceived(self, packet):
        if packet.pkg_type != PacketType.REQUEST:
            return
        announced = parse_heartbeat_timeout(packet.body)
        if announced is not None:
            self.timeout = clamp_heartbeat_timeout(announced)
        self.send(packet.reply())
        self._silence.mark(self._clock.seconds(), self.timeout)

    def _timedOut(self):
        self.fail(f"no heartbeat for {self.timeout:g} s")

    def deliverPacket(self, packet):
        self.factory.handler.packetReceived(self, packet)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self._silence is not None:
            self._silence.cancel()
        self.factory.connections.discard(self)
        self._log.info("RPC peer {peer} disconnected", peer=self.peer, role=self._role)
        try:
            self.factory.handler.peerDisconnected(self, reason)
        except Exception:
            self._log.failure(
                "handler failed on disconnect of {peer}", peer=self.peer, role=self._role
            )


class _ServerSide:
    """
    What the TCP and UDP server sides are both configured with: the
    ``handler`` packets go to, the frame size limit, the shared ``secret``
    (None: untagged packets), the ``trust`` predicate (None: anyone), the
    reactor for time, the ``role`` for logs, and one ``ReplayGuard`` for
    every peer when keyed.
    """

    def __init__(
        self,
        handler,
        *,
        max_size,
        secret=None,
        trust=None,
        reactor=None,
        role="rpc",
        replay_window=30.0,
    ):
        self.handler = handler
        self.max_size = max_size
        self.secret = secret
        self.trust = trust
        self.reactor = resolve_reactor(reactor)
        self.role = role
        self.guard = None if secret is None else ReplayGuard(self.reactor, replay_window)


class RPCServerFactory(_ServerSide, Factory):
    """
    Accepts RPC peers for ``handler`` (an ``IPacketHandler``).

    ``trust`` (a host -> bool predicate such as ``TrustedHosts``) refuses
    other sources before any byte is read.  With ``secret`` every packet
    must carry a valid, fresh tag; one ``ReplayGuard`` serves all
    connections.  ``connections`` is the set of live ``RPCProtocol``s.
    """

    _log = Logger()

    def __init__(self, handler, **settings):
        super().__init__(handler, **settings)
        self.connections = set()

    def buildProtocol(self, addr):
        if self.trust is not None and not self.trust(getattr(addr, "host", "")):
            self._log.warn(
                "refused RPC connection from untrusted {peer}",
                peer=describe_address(addr),
                role=self.role,
            )
            return None
        return RPCProtocol(self)

    def broadcast(self, packet):
        """
        Send ``packet`` to every connected peer; return how many.  Without a
        secret the packet is encoded once for all of them.
        """
        connections = list(self.connections)
        if self.secret is None:
            data = encode(packet)
            for connection in connections:
                connection.write_encoded(data)
        else:
            for connection in connections:
                connection.send(packet)
        return len(connections)


class RPCDatagramProtocol(_ServerSide, DatagramProtocol):
    """
    The UDP server side: one packet per datagram (ref §2.2), the same trust
    predicate and tag checks as TCP (the seed checked neither on UDP,
    ref §12.2), bad datagrams logged and dropped.  Heartbeats are not used on
    UDP (ref §2.3) and are dropped silently.  ``handler`` is an
    ``IDatagramHandler``; ``send(packet, address)`` answers a sender.
    """

    _log = Logger()

    def datagramReceived(self, data, addr):
        if self.trust is not None and not self.trust(addr[0]):
            self._log.warn(
                "dropped datagram from untrusted {peer}",
                peer=describe_address(addr),
                role=self.role,
            )
            return
        packet = checked_datagram(data, addr, max_size=self.max_size, secret=self.secret, guard=self.guard,
                                  log=self._log, role=self.role)
        if packet is None or packet.command == Command.HEARTBEAT:
            return
        try:
            self.handler.packetReceived(self, packet, addr)
        except Exception:
            self._log.failure(
                "handler failed on command {command} from {peer}",
                command=packet.command,
                peer=describe_address(addr),
                role=self.role,
            )

    def send(self, packet, address):
        """Send ``packet`` to ``address``; False (logged) if the socket refused it."""
        if self.transport is None:
            return False
        if self.secret is None:
            data = encode(packet)
        else:
            data = encode(packet, self.secret, now=self.reactor.seconds())
        try:
            self.transport.write(data, address)
        except (OSError, MessageLengthError, InvalidAddressError) as e:
            self._log.warn(
                "could not send to {peer}: {error}",
                peer=describe_address(address),
                error=e,
                role=self.role,
            )
            return False
        return True
