# -*- test-case-name: tests.rpc.test_protocol -*-
"""
The interfaces between the RPC layer and the roles that use it.

Roles see packets through these few methods only, so a role never touches
framing, heartbeats, tags or reconnects.
"""

from zope.interface import Attribute, Interface


class IPacketHandler(Interface):
    """What an RPC server (TCP) delivers to its role."""

    def peerConnected(protocol):
        """
        A trusted peer connected; ``protocol.send(packet)`` now reaches it
        (the jobmaster sends the current job and ban list here, ref §3.3).
        """

    def packetReceived(protocol, packet):
        """A valid, non-heartbeat packet arrived from ``protocol``'s peer."""

    def peerDisconnected(protocol, reason):
        """The connection to the peer is gone (``reason`` is a ``Failure``)."""


class IDatagramHandler(Interface):
    """What an RPC server (UDP) delivers to its role."""

    def packetReceived(protocol, packet, address):
        """
        A valid packet arrived from ``address`` (host, port); answers go back
        with ``protocol.send(packet.reply(), address)``.
        """


class ILink(Interface):
    """An outgoing packet link: a ``FailoverClient`` or a ``DatagramSender``."""

    connected = Attribute("True while packets handed to send() can go out.")

    def send(packet):
        """Send ``packet``; return False (and send nothing) when not connected."""

    def add_observer(observer):
        """Tell ``observer`` (an ``ILinkObserver``) about this link's events."""

    def remove_observer(observer):
        """Stop telling ``observer`` about this link's events."""


class ILinkObserver(Interface):
    """Events of an ``ILink``."""

    def on_connect(link):
        """``link`` is up: ``link.send`` works."""

    def on_packet(link, packet):
        """A valid, non-heartbeat packet arrived over ``link``."""

    def on_disconnect(link):
        """``link`` went down; ``link.send`` returns False until it is up."""
