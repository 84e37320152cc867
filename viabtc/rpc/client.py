# -*- test-case-name: tests.rpc.test_client -*-
"""
Outgoing RPC links: the failover TCP client and the UDP sender.

``FailoverClient`` reproduces the seed's RPC client (ref §2.3) so that our
roles can talk to C servers and fail over the same way: one connection to
the first reachable of an ordered address list, a heartbeat REQUEST every
second announcing our timeout (C servers drop clients that send none), a
reconnect to the next address on every close or missed heartbeat reply, and
a pause of ``reconnect_timeout`` after a full cycle.  Its lifecycle is an
explicit state machine (architecture §5) with one transition table.

``DatagramSender`` is the UDP side (height hints and UDP stats, ref §1.2):
no connection, no heartbeats, replies accepted only from the addresses it
sends to.
"""

import ipaddress

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.rpc.codec import (
    HEARTBEAT_TIMEOUT_DEFAULT,
    Command,
    PacketType,
    clamp_heartbeat_timeout,
    encode,
    heartbeat_request,
)
from viabtc.rpc.interfaces import ILink
from viabtc.rpc.protocol import PacketConnection, Silence, checked_datagram, describe_address, resolve_reactor
from viabtc.rpc.replay import ReplayGuard


class RPCClientProtocol(PacketConnection):
    """
    The client end of an RPC TCP connection: sends a heartbeat REQUEST every
    ``interval`` seconds announcing ``timeout``, and closes the connection
    when no heartbeat REPLY came for ``timeout`` seconds.
    """

    def __init__(self, client):
        super().__init__(
            max_size=client.max_size,
            clock=client.reactor,
            role=client.role,
            secret=client.secret,
            guard=client.guard,
        )
        self._client = client
        self._timeout = client.heartbeat_timeout
        self._beat = LoopingCall(self._sendHeartbeat)
        self._beat.clock = self._clock
        self._interval = client.heartbeat_interval
        self._heartbeats = 0
        self._silence = None

    def connectionMade(self):
        super().connectionMade()
        # Silence counts from the last reply (the seed's rule) while requests
        # go out on time; but a request sent late, after our own process
        # stalled, counts from one interval before it: the peer cannot be
        # blamed for replies to requests we never sent.
        self._last_reply = self._clock.seconds()
        self._silence = Silence(self._clock, self._timeout, self._timedOut, since=None)
        self._beat.start(self._interval, now=True)

    def _sendHeartbeat(self):
        self._heartbeats = (self._heartbeats + 1) & 0xFFFFFFFF
        if self._silence.since is None:
            now = self._clock.seconds()
            self._silence.mark(max(self._last_reply, now - self._interval))
        self.send(heartbeat_request(self._timeout, self._heartbeats))

    def heartbeatReceived(self, packet):
        if packet.pkg_type == PacketType.REPLY:
            self._last_reply = self._clock.seconds()
            self._silence.mark(None)

    def _timedOut(self):
        self.fail(f"no heartbeat reply for {self._timeout:g} s")

    def deliverPacket(self, packet):
        self._client._packetReceived(self, packet)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self._beat.running:
            self._beat.stop()
        if self._silence is not None:
            self._silence.cancel()
        self._client._connectionLost(self)


class _Observers:
    """The observers of a link, each called safely (a bad observer is logged)."""

    _log = Logger()

    def __init__(self, role):
        self._role = role
        self._observers = []

    def add(self, observer):
        self._observers.append(observer)

    def remove(self, observer):
        self._observers.remove(observer)

    def notify(self, method, *args):
        for observer in tuple(self._observers):
            try:
                getattr(observer, method)(*args)
            except Exception:
                self._log.failure(
                    "link observer {observer!r} failed in {method}",
                    observer=observer,
                    method=method,
                    role=self._role,
                )


# States of FailoverClient.
STOPPED = "stopped"
CONNECTING = "connecting"
CONNECTED = "connected"
WAITING = "waiting"
STOPPING = "stopping"

# Inputs.  A lost connection or failed attempt is ``next`` when the next
# address is tried at once and ``cycle`` when the whole list was tried.
START = "start"
STOP = "stop"
UP = "up"
NEXT = "next"
CYCLE = "cycle"
RETRY = "retry"

# (state, input) -> (new state, actions run in order).
_TRANSITIONS = {
    (STOPPED, START): (CONNECTING, ("_connect",)),
    (CONNECTING, UP): (CONNECTED, ("_notifyUp",)),
    (CONNECTING, NEXT): (CONNECTING, ("_connect",)),
    (CONNECTING, CYCLE): (WAITING, ("_scheduleRetry",)),
    (CONNECTING, STOP): (STOPPED, ("_cancelAttempt", "_stopped")),
    (CONNECTED, NEXT): (CONNECTING, ("_notifyDown", "_connect")),
    (CONNECTED, CYCLE): (WAITING, ("_notifyDown", "_scheduleRetry")),
    (CONNECTED, STOP): (STOPPING, ("_disconnect",)),
    (WAITING, RETRY): (CONNECTING, ("_connect",)),
    (WAITING, STOP): (STOPPED, ("_cancelRetry", "_stopped")),
    (STOPPING, STOP): (STOPPING, ()),
    (STOPPING, NEXT): (STOPPED, ("_notifyDown", "_stopped")),
    (STOPPING, CYCLE): (STOPPED, ("_notifyDown", "_stopped")),
}


@implementer(ILink)
class FailoverClient(Service):
    """
    Keeps one RPC connection to the first reachable of ``endpoints`` (an
    ordered list of ``IStreamClientEndpoint``), as the seed's client does.

    ``heartbeat_timeout`` is clamped to [2 s, 600 s] like the seed's;
    ``connect_timeout`` (default: the heartbeat timeout) bounds one attempt.
    Observers (``ILinkObserver``) hear of connects, packets and disconnects.
    ``stopService`` returns a Deferred that fires once the link is closed.
    """

    _log = Logger()

    def __init__(
        self,
        endpoints,
        *,
        max_size,
        secret=None,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_DEFAULT,
        heartbeat_interval=1.0,
        reconnect_timeout=1.0,
        connect_timeout=None,
        reactor=None,
        role="rpc",
        replay_window=30.0,
    ):
        if not endpoints:
            raise ValueError("FailoverClient needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.max_size = max_size
        self.secret = secret
        self.heartbeat_timeout = clamp_heartbeat_timeout(heartbeat_timeout)
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_timeout = reconnect_timeout
        self.connect_timeout = (
            self.heartbeat_timeout if connect_timeout is None else connect_timeout
        )
        self.reactor = resolve_reactor(reactor)
        self.role = role
        self.guard = None if secret is None else ReplayGuard(self.reactor, replay_window)
        self.state = STOPPED
        self._observers = _Observers(role)
        self._index = 0
        self._attempt = None
        self._protocol = None
        self._retry = None
        self._stopWaiters = []

    # -- public --------------------------------------------------------

    @property
    def connected(self):
        return self.state == CONNECTED

    @property
    def endpoint(self):
        """The endpoint currently connected to or being tried."""
        return self.endpoints[self._index]

    def add_observer(self, observer):
        self._observers.add(observer)

    def remove_observer(self, observer):
        self._observers.remove(observer)

    def send(self, packet):
        """Send ``packet`` on the live connection; False when there is none."""
        if self.state != CONNECTED:
            return False
        self._protocol.send(packet)
        return True

    def startService(self):
        super().startService()
        self._input(START)

    def stopService(self):
        super().stopService()
        if self.state == STOPPED:
            return None
        waiter = defer.Deferred()
        self._stopWaiters.append(waiter)
        self._input(STOP)
        return waiter

    # -- state machine -------------------------------------------------

    def _input(self, event):
        try:
            new_state, actions = _TRANSITIONS[(self.state, event)]
        except KeyError:
            self._log.critical(
                "FailoverClient: no transition from {state} on {event}",
                state=self.state,
                event=event,
                role=self.role,
            )
            return
        self.state = new_state
        for action in actions:
            getattr(self, action)()

    def _lost(self):
        """Move to the next address; say whether that completes a cycle."""
        self._index = (self._index + 1) % len(self.endpoints)
        self._input(CYCLE if self._index == 0 else NEXT)

    # -- actions -------------------------------------------------------

    def _connect(self):
        factory = Factory.forProtocol(lambda: RPCClientProtocol(self))
        attempt = self.endpoint.connect(factory)
        self._attempt = attempt
        attempt.addTimeout(self.connect_timeout, self.reactor)
        attempt.addCallbacks(
            self._attemptSucceeded,
            self._attemptFailed,
            callbackArgs=(attempt,),
            errbackArgs=(attempt,),
        )

    def _attemptSucceeded(self, protocol, attempt):
        if attempt is not self._attempt:
            return
        self._attempt = None
        self._protocol = protocol
        self._input(UP)

    def _attemptFailed(self, failure, attempt):
        if attempt is not self._attempt:
            return None
        self._attempt = None
        self._log.warn(
            "RPC connect to {endpoint} failed: {reason}",
            endpoint=self.endpoint,
            reason=failure.getErrorMessage() or failure.type.__name__,
            role=self.role,
        )
        self._lost()
        return None

    def _cancelAttempt(self):
        attempt, self._attempt = self._attempt, None
        attempt.cancel()

    def _notifyUp(self):
        self._log.info(
            "RPC link up to {peer}", peer=self._protocol.peer, role=self.role
        )
        self._observers.notify("on_connect", self)

    def _notifyDown(self):
        self._log.info(
            "RPC link down from {peer}", peer=self._protocol.peer, role=self.role
        )
        self._protocol = None
        self._observers.notify("on_disconnect", self)

    def _disconnect(self):
        self._protocol.transport.loseConnection()

    def _scheduleRetry(self):
        self._retry = self.reactor.callLater(self.reconnect_timeout, self._input, RETRY)

    def _cancelRetry(self):
        retry, self._retry = self._retry, None
        retry.cancel()

    def _stopped(self):
        waiters, self._stopWaiters = self._stopWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- from the protocol ---------------------------------------------

    def _packetReceived(self, protocol, packet):
        if protocol is self._protocol:
            self._observers.notify("on_packet", self, packet)

    def _connectionLost(self, protocol):
        if protocol is self._protocol:
            self._lost()


def _ip_address(address):
    host, port = address
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"UDP address {host!r} is not an IP address") from None
    return (host, int(port))


class _DatagramReceiver(DatagramProtocol):
    def __init__(self, sender):
        self._sender = sender

    def datagramReceived(self, data, addr):
        self._sender._datagramReceived(data, addr)


@implementer(ILink)
class DatagramSender(Service):
    """
    Sends RPC packets over UDP to every address in ``addresses`` (IP, port)
    and hands replies (ACKs) from those addresses to its observers.

    Height hints go to every jobmaster; a reliable stats link is given a
    single writer address.  It is ``connected`` while its socket is open
    (``interface`` "::" for IPv6 destinations).
    """

    _log = Logger()

    def __init__(
        self,
        addresses,
        *,
        max_size,
        secret=None,
        reactor=None,
        role="rpc",
        interface="",
        replay_window=30.0,
    ):
        self.max_size = max_size
        self.secret = secret
        self.reactor = resolve_reactor(reactor)
        self.role = role
        self.interface = interface
        self.guard = None if secret is None else ReplayGuard(self.reactor, replay_window)
        self.set_addresses(addresses)
        self._observers = _Observers(role)
        self._port = None

    @property
    def connected(self):
        return self._port is not None

    def set_addresses(self, addresses):
        """Replace the destination list (e.g. after a jobmaster list refresh)."""
        self.addresses = tuple(_ip_address(a) for a in addresses)

    def add_observer(self, observer):
        self._observers.add(observer)

    def remove_observer(self, observer):
        self._observers.remove(observer)

    def startService(self):
        super().startService()
        self._port = self.reactor.listenUDP(0, _DatagramReceiver(self), interface=self.interface)
        self._observers.notify("on_connect", self)

    def stopService(self):
        super().stopService()
        port, self._port = self._port, None
        self._observers.notify("on_disconnect", self)
        return port.stopListening()

    def send(self, packet):
        """
        Send ``packet`` to every address; True when at least one datagram
        left, False when stopped or every send failed (each failure logged).
        """
        if self._port is None:
            return False
        if self.secret is None:
            data = encode(packet)
        sent = False
        for address in self.addresses:
            if self.secret is not None:
                data = encode(packet, self.secret, now=self.reactor.seconds())
            try:
                self._port.write(data, address)
            except (OSError, MessageLengthError, InvalidAddressError) as e:
                self._log.warn(
                    "could not send command {command} to {peer}: {error}",
                    command=packet.command,
                    peer=describe_address(address),
                    error=e,
                    role=self.role,
                )
            else:
                sent = True
        return sent

    def _datagramReceived(self, data, addr):
        if (addr[0], addr[1]) not in self.addresses:
            self._log.warn(
                "dropped datagram from unexpected {peer}",
                peer=describe_address(addr),
                role=self.role,
            )
            return
        packet = checked_datagram(data, addr, max_size=self.max_size, secret=self.secret, guard=self.guard,
                                  log=self._log, role=self.role)
        if packet is not None and packet.command != Command.HEARTBEAT:
            self._observers.notify("on_packet", self, packet)
