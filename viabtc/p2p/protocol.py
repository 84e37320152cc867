# -*- test-case-name: tests.p2p.test_protocol -*-
"""
One Bitcoin P2P connection on Twisted, shared by bitpeer and blockmaster:
the handshake, keep-alive and the per-peer limits; everything else goes to
an ``IPeerHandler``.

The handshake is today's (Bitcoin Core's ``net_processing.cpp``): we send
``version`` (protocol 70016) on connect; on the peer's ``version`` we send
``wtxidrelay`` and ``sendaddrv2`` (BIP339, BIP155: both must come before
``verack`` or Core disconnects) and then ``verack``; when the peer's
``verack`` arrives the connection is ready, and we ask for block
announcements by ``headers`` (BIP130) and by compact block (BIP152
``sendcmpct``, high-bandwidth when ``PeerSettings.compact_announce``).

A peer is dropped, alone, when it sends bytes that are not a message
(``viabtc.p2p.framing``), a malformed payload (``viabtc.p2p.messages``),
anything but the handshake before the handshake, a version too old for
headers and compact blocks, or when it is slow: no handshake within
``handshake_timeout``, a message begun but not finished within
``stall_timeout``, no ``pong`` within ``ping_timeout`` of our ``ping``, or
more than ``max_send_buffer`` bytes we wrote that it does not read.
Nothing a peer sends raises into the reactor; a handler that raises is
logged and the connection goes on.
"""

import os

import attrs
from automat import MethodicalMachine
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import Interface

from viabtc.p2p.framing import MAX_PAYLOAD, FrameDecoder, P2PError, encode_frame
from viabtc.p2p.messages import (
    MIN_PEER_VERSION,
    NODE_WITNESS,
    PROTOCOL_VERSION,
    WTXID_RELAY_VERSION,
    Ping,
    Pong,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    Verack,
    Version,
    WtxidRelay,
    decode,
)
from viabtc.rpc.protocol import describe_address
from viabtc.sendnow import direct_socket, send_now


class IPeerHandler(Interface):
    """What a role does with its P2P peers."""

    def peerReady(peer):
        """The handshake with ``peer`` (a ``PeerProtocol``) is complete."""

    def messageReceived(peer, message):
        """A message other than handshake and keep-alive arrived from a ready ``peer``."""

    def peerLost(peer, reason):
        """``peer``'s connection closed (``reason`` a Failure); called for ready peers only."""


@attrs.frozen
class PeerSettings:
    """How we present ourselves and how patient we are (seconds, bytes)."""

    magic: bytes
    services: int = NODE_WITNESS
    user_agent: bytes = b"/viabtc:0.1/"
    relay: bool = False
    compact_announce: bool = True
    handshake_timeout: float = 30.0
    stall_timeout: float = 120.0
    ping_interval: float = 120.0
    ping_timeout: float = 60.0
    max_payload: int = MAX_PAYLOAD
    max_send_buffer: int = 64 << 20


class PeerProtocol(Protocol):
    """
    One peer.  After the handshake: ``remote`` is its ``Version``;
    ``wants_headers`` (it sent ``sendheaders``), ``compact_announce`` and
    ``compact_version`` (its ``sendcmpct``; version 0 = none),
    ``fee_filter``, ``ping_time`` (seconds of the last round trip).
    """

    _machine = MethodicalMachine()
    _log = Logger()

    def __init__(self, factory):
        self.factory = factory
        self.settings = factory.settings
        self._clock = factory.reactor
        self.role = factory.role
        self.peer = "?"
        self.remote = None
        self.ready = False
        self.wants_headers = False
        self.compact_announce = False
        self.compact_version = 0
        self.fee_filter = 0
        self.ping_time = None
        self._decoder = FrameDecoder(self.settings.magic, self.settings.max_payload)
        self._closing = False
        self._socket = None
        self._timers = {}
        self._ping_nonce = None
        self._ping_sent = None

    @property
    def closing(self):
        """True once this peer is being dropped or is gone."""
        return self._closing

    # -- the connection ----------------------------------------------------

    def connectionMade(self):
        self.peer = describe_address(self.transport.getPeer())
        self._socket = direct_socket(self.transport)
        self.factory.peers.add(self)
        self._schedule("handshake", self.settings.handshake_timeout, self._handshake_expired)
        self.send(Version(
            version=PROTOCOL_VERSION, services=self.settings.services,
            timestamp=int(self._clock.seconds()), nonce=self.factory.nonce,
            user_agent=self.settings.user_agent, start_height=self.factory.start_height(),
            relay=self.settings.relay))

    def dataReceived(self, data):
        if self._closing:
            return
        try:
            frames = self._decoder.feed(data)
        except P2PError as e:
            self.fail(str(e))
            return
        for command, payload in frames:
            if self._closing:
                return
            try:
                message = decode(command, payload)
            except P2PError as e:
                self.fail(str(e))
                return
            if message is not None:
                self._dispatch(message)
        if self._decoder.pending:
            if "stall" not in self._timers:
                self._schedule("stall", self.settings.stall_timeout, self._stalled)
        else:
            self._cancel("stall")

    def connectionLost(self, reason):
        self._closing = True
        for name in list(self._timers):
            self._cancel(name)
        self.factory.peers.discard(self)
        if self.ready:
            self.ready = False
            self._log.info("P2P peer {peer} disconnected", peer=self.peer, role=self.role)
            try:
                self.factory.handler.peerLost(self, reason)
            except Exception:
                self._log.failure("handler failed on loss of {peer}", peer=self.peer, role=self.role)

    def send(self, message):
        """Send one message (a no-op once closing)."""
        self.send_frame(encode_frame(self.settings.magic, message.command, message.serialize()))

    def send_frame(self, data):
        """
        Send an already framed message (fan-out frames once for many
        peers); a peer that stopped reading is dropped.
        """
        if self._closing:
            return
        send_now(self.transport, self._socket, data)
        queued = len(getattr(self.transport, "dataBuffer", b"")) + getattr(self.transport, "_tempDataLen", 0)
        if queued > self.settings.max_send_buffer:
            self.fail(f"{queued} bytes unread by the peer")

    def fail(self, reason):
        """Log why and drop this peer at once."""
        if self._closing:
            return
        self._closing = True
        self._log.warn("dropping P2P peer {peer}: {reason}", peer=self.peer, reason=reason, role=self.role)
        self.transport.abortConnection()

    # -- timers ------------------------------------------------------------

    def _schedule(self, name, delay, call):
        self._cancel(name)
        self._timers[name] = self._clock.callLater(delay, self._fire, name, call)

    def _fire(self, name, call):
        self._timers.pop(name, None)
        call()

    def _cancel(self, name):
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _stalled(self):
        self.fail(f"a message not finished within {self.settings.stall_timeout:g} s")

    def _ping(self):
        self._ping_nonce = int.from_bytes(os.urandom(8), "little")
        self._ping_sent = self._clock.seconds()
        self.send(Ping(self._ping_nonce))
        self._schedule("pong", self.settings.ping_timeout, self._pong_expired)

    def _pong_expired(self):
        self.fail(f"no pong within {self.settings.ping_timeout:g} s")

    # -- messages ----------------------------------------------------------

    def _dispatch(self, message):
        command = message.command
        if command == "version":
            self._version_received(message)
        elif command == "verack":
            self._verack_received(message)
        elif command in ("wtxidrelay", "sendaddrv2"):
            self._feature_received(message)
        elif command in ("ping", "pong") and self.remote is None:
            self._other_received(message)
        elif command == "ping":
            self.send(Pong(message.nonce))
        elif command == "pong":
            if message.nonce == self._ping_nonce:
                self.ping_time = self._clock.seconds() - self._ping_sent
                self._ping_nonce = None
                self._cancel("pong")
                self._schedule("ping", self.settings.ping_interval, self._ping)
        else:
            self._other_received(message)

    def _note_capability(self, message):
        if message.command == "sendheaders":
            self.wants_headers = True
        elif message.command == "sendcmpct":
            # BIP152: a peer may announce several versions; the highest we
            # both speak wins, and its announce flag is the one that counts.
            if message.version in (1, 2) and message.version >= self.compact_version:
                self.compact_version = message.version
                self.compact_announce = message.announce
        elif message.command == "feefilter":
            self.fee_filter = message.feerate
        else:
            return False
        return True

    def _deliver(self, message):
        if self._note_capability(message):
            return
        try:
            self.factory.handler.messageReceived(self, message)
        except Exception:
            self._log.failure("handler failed on {command} from {peer}", command=message.command,
                              peer=self.peer, role=self.role)

    # -- the handshake, one transition table ---------------------------------

    @_machine.state(initial=True)
    def _awaiting_version(self):
        "Our version is sent; the peer's has not arrived."

    @_machine.state()
    def _awaiting_verack(self):
        "We accepted the peer's version (verack sent) and wait for its verack."

    @_machine.state()
    def _connected(self):
        "Handshake done: messages flow to the handler."

    @_machine.input()
    def _version_received(self, message):
        "The peer's version."

    @_machine.input()
    def _verack_received(self, message):
        "The peer accepted our version."

    @_machine.input()
    def _feature_received(self, message):
        "wtxidrelay or sendaddrv2, which belong between version and verack."

    @_machine.input()
    def _other_received(self, message):
        "Any other message we speak."

    @_machine.output()
    def _accept_version(self, message):
        if message.version < MIN_PEER_VERSION:
            self.fail(f"protocol version {message.version} is older than {MIN_PEER_VERSION}")
            return
        if message.nonce == self.factory.nonce:
            self.fail("connected to ourselves")
            return
        self.remote = message
        if message.version >= WTXID_RELAY_VERSION:
            self.send(WtxidRelay())
            self.send(SendAddrV2())
        self.send(Verack())

    @_machine.output()
    def _become_ready(self, message):
        if self._closing:
            return
        self._cancel("handshake")
        self.ready = True
        self.send(SendHeaders())
        witness = bool(self.remote.services & NODE_WITNESS)
        self.send(SendCmpct(self.settings.compact_announce, 2 if witness else 1))
        self._schedule("ping", self.settings.ping_interval, self._ping)
        self._log.info("P2P peer {peer} ready: version {version} {agent} height {height}",
                       peer=self.peer, version=self.remote.version,
                       agent=self.remote.user_agent.decode("ascii", "replace"),
                       height=self.remote.start_height, role=self.role)
        try:
            self.factory.handler.peerReady(self)
        except Exception:
            self._log.failure("handler failed on ready of {peer}", peer=self.peer, role=self.role)

    @_machine.output()
    def _out_of_order(self, message):
        self.fail(f"{message.command} out of handshake order")

    @_machine.output()
    def _hold(self, message):
        # Between version and verack only the features count; Core sends
        # nothing else there, and anything else waits for no one.
        self._note_capability(message)

    @_machine.output()
    def _pass(self, message):
        self._deliver(message)

    @_machine.output()
    def _ignore_feature(self, message):
        pass

    _awaiting_version.upon(_version_received, enter=_awaiting_verack, outputs=[_accept_version])
    _awaiting_version.upon(_verack_received, enter=_awaiting_version, outputs=[_out_of_order])
    _awaiting_version.upon(_feature_received, enter=_awaiting_version, outputs=[_out_of_order])
    _awaiting_version.upon(_other_received, enter=_awaiting_version, outputs=[_out_of_order])
    _awaiting_verack.upon(_version_received, enter=_awaiting_verack, outputs=[_out_of_order])
    _awaiting_verack.upon(_verack_received, enter=_connected, outputs=[_become_ready])
    _awaiting_verack.upon(_feature_received, enter=_awaiting_verack, outputs=[_ignore_feature])
    _awaiting_verack.upon(_other_received, enter=_awaiting_verack, outputs=[_hold])
    _connected.upon(_version_received, enter=_connected, outputs=[_out_of_order])
    _connected.upon(_verack_received, enter=_connected, outputs=[_out_of_order])
    _connected.upon(_feature_received, enter=_connected, outputs=[_out_of_order])
    _connected.upon(_other_received, enter=_connected, outputs=[_pass])

    def _handshake_expired(self):
        self.fail(f"no handshake within {self.settings.handshake_timeout:g} s")


class PeerFactory(Factory):
    """
    Builds ``PeerProtocol``s for ``handler`` (an ``IPeerHandler``);
    ``start_height()`` is the height put in our ``version``.  ``peers`` is
    every open connection, ready or not; ``nonce`` detects connections to
    ourselves.
    """

    def __init__(self, handler, settings, *, reactor, start_height=lambda: 0, role="p2p"):
        self.handler = handler
        self.settings = settings
        self.reactor = reactor
        self.start_height = start_height
        self.role = role
        self.peers = set()
        self.nonce = int.from_bytes(os.urandom(8), "little")

    def buildProtocol(self, addr):
        return PeerProtocol(self)
