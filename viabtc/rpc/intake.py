# -*- test-case-name: tests.rpc.test_intake -*-
"""
Packets from the RPC servers (TCP and UDP alike) into one receiver, each
with the callable that acknowledges it.

On the statistics path (ref §2.5) a packet may be ACKed only once it is safe
-- journaled by the metawriter, queued on disk by the metarelay -- which can
be after the handler returned.  So the receiver is not handed a protocol to
answer on but ``receiver.packet_received(packet, ack, peer)``: ``ack()``
sends the packet's REPLY to whoever sent it, over TCP or UDP, and ``peer``
(``host:port``) is for logs.
"""

import functools

from zope.interface import implementer

from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import describe_address


@implementer(IPacketHandler)
class StreamIntake:
    """TCP peers' packets into ``receiver``, each with its ACK."""

    def __init__(self, receiver):
        self.receiver = receiver

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet):
        self.receiver.packet_received(packet, functools.partial(protocol.send, packet.reply()), protocol.peer)

    def peerDisconnected(self, protocol, reason):
        pass


@implementer(IDatagramHandler)
class DatagramIntake:
    """UDP datagrams' packets into ``receiver``; the ACK goes back to the sender's address."""

    def __init__(self, receiver):
        self.receiver = receiver

    def packetReceived(self, protocol, packet, address):
        self.receiver.packet_received(
            packet, functools.partial(protocol.send, packet.reply(), address), describe_address(address))


class TurnBatch:
    """
    Items that arrive during one reactor turn, handed together to
    ``handle(items)`` at the end of the turn (or at an explicit ``drain``):
    on the statistics path one fsync then serves a whole burst of packets.
    """

    def __init__(self, reactor, handle):
        self._reactor = reactor
        self._handle = handle
        self._items = []
        self._call = None

    def add(self, item):
        self._items.append(item)
        if self._call is None:
            self._call = self._reactor.callLater(0, self.drain)

    def drain(self):
        """Hand over what has arrived so far (nothing: no call)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        items, self._items = self._items, []
        if items:
            self._handle(items)
