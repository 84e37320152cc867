# -*- test-case-name: tests.metarelay.test_service -*-
"""
The metarelay service: ``svr`` listeners (TCP and UDP, both behind the
``trust`` list), the ``Relay`` intake, the ``ReliableSender`` with its
durable queue, the link to the writer, and the ``monitor`` health port.

Graceful stop: this turn's packets are journaled (and ACKed), the
listeners close, the queue is closed; everything not yet ACKed by the
writer is resent after the next start.
"""

import functools

from twisted.application import internet, service
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.wire import Discard
from zope.interface import implementer

from viabtc.metarelay.relay import Relay
from viabtc.rpc.client import DatagramSender, FailoverClient
from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory, TrustedHosts, describe_address
from viabtc.rpc.reliable import ReliableSender

ROLE = "metarelay"


@implementer(IPacketHandler)
class StreamIntake:
    """TCP peers' packets into the relay, each with its ACK."""

    def __init__(self, relay):
        self.relay = relay

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet):
        self.relay.packet_received(packet, functools.partial(protocol.send, packet.reply()), protocol.peer)

    def peerDisconnected(self, protocol, reason):
        pass


@implementer(IDatagramHandler)
class DatagramIntake:
    """UDP datagrams' packets into the relay; the ACK goes back to the sender's address."""

    def __init__(self, relay):
        self.relay = relay

    def packetReceived(self, protocol, packet, address):
        self.relay.packet_received(
            packet, functools.partial(protocol.send, packet.reply(), address), describe_address(address))


class DatagramListener(service.Service):
    """Listens for datagrams on one ``udp@``/``dgram@`` address."""

    def __init__(self, address, protocol, reactor, max_packet_size):
        self.address = address
        self.protocol = protocol
        self.reactor = reactor
        self.max_packet_size = max_packet_size
        self.port = None

    def privilegedStartService(self):
        # Listen here so a bind failure stops twistd at start-up.
        self.port = self.address.listen_udp(self.reactor, self.protocol, self.max_packet_size)
        super().privilegedStartService()

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()


def writer_link(block, reactor, secret):
    """The link toward the writer: failover TCP, or UDP to one ``udp@`` address."""
    if block.addrs[0].is_datagram:
        address = block.addrs[0]
        return DatagramSender([address.sockaddr], max_size=block.max_pkg_size, secret=secret,
                              reactor=reactor, role=ROLE, interface="::" if ":" in address.host else "")
    return FailoverClient([a.client_endpoint(reactor) for a in block.addrs], max_size=block.max_pkg_size,
                          secret=secret, heartbeat_timeout=block.heartbeat_timeout,
                          reconnect_timeout=block.reconnect_timeout, reactor=reactor, role=ROLE)


class MetaRelayService(service.MultiService):
    """The whole role for one ``MetaRelayConfig``."""

    _log = Logger()

    def __init__(self, config, reactor, resend_timeout=10.0):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.resend_timeout = resend_timeout
        self.relay = None
        self.sender = None
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def privilegedStartService(self):
        config, reactor = self.config, self.reactor
        secret = None if config.secret is None else config.secret.value
        link = writer_link(config.writer, reactor, secret)
        link.setServiceParent(self)
        self.sender = ReliableSender(link, config.queue, reactor=reactor, role=ROLE,
                                     resend_timeout=self.resend_timeout)
        self.sender.setServiceParent(self)
        pending = self.sender.pending_count()
        if pending:
            self._log.info("metarelay: {count} queued packets from before the restart", count=pending, role=ROLE)
        self.relay = Relay(self.sender, reactor, role=ROLE)
        trust = TrustedHosts(config.trust)
        max_size = config.svr.max_pkg_size
        for address in config.svr.stream_binds:
            factory = RPCServerFactory(StreamIntake(self.relay), max_size=max_size, secret=secret,
                                       trust=trust, reactor=reactor, role=ROLE)
            listener = internet.StreamServerEndpointService(address.server_endpoint(reactor), factory)
            listener._raiseSynchronously = True
            listener.setServiceParent(self)
        for address in config.svr.datagram_binds:
            protocol = RPCDatagramProtocol(DatagramIntake(self.relay), max_size=max_size, secret=secret,
                                           trust=trust, reactor=reactor, role=ROLE)
            DatagramListener(address, protocol, reactor, max_size).setServiceParent(self)
        if config.monitor is not None:
            for address in config.monitor.stream_binds:
                listener = internet.StreamServerEndpointService(
                    address.server_endpoint(reactor), Factory.forProtocol(Discard))
                listener._raiseSynchronously = True
                listener.setServiceParent(self)
        self._log.info("metarelay: forwarding to {writer}, queue {queue}",
                       writer=", ".join(a.text for a in config.writer.addrs), queue=config.queue, role=ROLE)
        super().privilegedStartService()

    def stopService(self):
        self.relay.drain()
        return super().stopService()
