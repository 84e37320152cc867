# -*- test-case-name: tests.metawriter.test_service -*-
"""
The metawriter service: one process (the seed's receiver/writer fork is
gone), wiring the ``svr`` listeners (TCP and UDP, both behind the trust
file), the brother link, the journal, the Redis store, the 1 s tick, the
``monitor`` health port and the CLI (``loadtrust``, ``listtrust``).

Graceful stop: the listeners close, the aggregate is flushed (journaled
first), and the Redis writes get ``STOP_TIMEOUT`` seconds to complete;
whatever Redis has not confirmed by then is applied at the next start.
"""

import functools

from twisted.application import internet, service
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.wire import Discard
from zope.interface import implementer

from viabtc.cli import cli_service
from viabtc.metawriter.journal import Journal
from viabtc.metawriter.store import BatchStore, connect_redis
from viabtc.metawriter.trust import TrustFileError, TrustTable
from viabtc.metawriter.writer import MetaWriter
from viabtc.rpc.client import DatagramSender, FailoverClient
from viabtc.rpc.interfaces import IDatagramHandler, IPacketHandler
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory, describe_address
from viabtc.stats.writer_agg import WriterAggregator

ROLE = "metawriter"
TICK_INTERVAL = 1.0
STOP_TIMEOUT = 10.0


@implementer(IPacketHandler)
class StreamIntake:
    """TCP peers' packets into the writer, each with its ACK."""

    def __init__(self, writer):
        self.writer = writer

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet):
        self.writer.packet_received(packet, functools.partial(protocol.send, packet.reply()), protocol.peer)

    def peerDisconnected(self, protocol, reason):
        pass


@implementer(IDatagramHandler)
class DatagramIntake:
    """UDP datagrams' packets into the writer; the ACK goes back to the sender's address."""

    def __init__(self, writer):
        self.writer = writer

    def packetReceived(self, protocol, packet, address):
        self.writer.packet_received(
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


def make_link(block, reactor, secret, role):
    """
    The outgoing link for an RPC client block: a ``FailoverClient`` over its
    stream addresses, or a ``DatagramSender`` for one ``udp@`` address.
    """
    if all(a.is_datagram for a in block.addrs):
        if len(block.addrs) != 1 or block.addrs[0].transport != "udp":
            raise ValueError(f"{block.name}: a UDP link takes exactly one udp@ address")
        interface = "::" if ":" in block.addrs[0].host else ""
        return DatagramSender([block.addrs[0].sockaddr], max_size=block.max_pkg_size, secret=secret,
                              reactor=reactor, role=role, interface=interface)
    if any(a.is_datagram for a in block.addrs):
        raise ValueError(f"{block.name}: do not mix stream and datagram addresses")
    return FailoverClient([a.client_endpoint(reactor) for a in block.addrs], max_size=block.max_pkg_size,
                          secret=secret, heartbeat_timeout=block.heartbeat_timeout,
                          reconnect_timeout=block.reconnect_timeout, reactor=reactor, role=role)


class MetaWriterService(service.MultiService):
    """
    The whole role for one ``MetaWriterConfig``.  ``clock`` (default:
    ``reactor``) is the time the minute flushes follow; tests pass a
    ``task.Clock`` to place the minute boundary.
    """

    _log = Logger()

    def __init__(self, config, reactor, clock=None):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.clock = reactor if clock is None else clock
        self.trust = TrustTable(role=ROLE)
        self.writer = None
        self.journal = None
        self.store = None
        self._redis_factory = None
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def privilegedStartService(self):
        config, reactor = self.config, self.reactor
        secret = None if config.secret is None else config.secret.value
        self.trust.load(config.trust_file)
        self.journal = Journal(config.journal, role=ROLE)
        redis, self._redis_factory = connect_redis(
            config.redis, reactor, config.redis_timeout, config.redis_retry_interval)
        self.store = BatchStore(redis, reactor, self.journal.confirm,
                                retry_interval=config.redis_retry_interval, role=ROLE)
        brother = None
        if config.brother is not None:
            brother = make_link(config.brother, reactor, secret, ROLE)
            brother.setServiceParent(self)
        aggregator = WriterAggregator(key_expire=config.key_expire, dup_timeout=config.dup_timeout,
                                      retention=config.retention)
        self.writer = MetaWriter(aggregator, self.journal, self.store, self.clock, config.alert.host,
                                 config.dup_timeout, brother=brother, reactor=reactor, role=ROLE)
        self.writer.recover()
        max_size = config.svr.max_pkg_size
        for address in config.svr.stream_binds:
            factory = RPCServerFactory(StreamIntake(self.writer), max_size=max_size, secret=secret,
                                       trust=self.trust, reactor=reactor, role=ROLE)
            listener = internet.StreamServerEndpointService(address.server_endpoint(reactor), factory)
            listener._raiseSynchronously = True
            listener.setServiceParent(self)
        for address in config.svr.datagram_binds:
            protocol = RPCDatagramProtocol(DatagramIntake(self.writer), max_size=max_size, secret=secret,
                                           trust=self.trust, reactor=reactor, role=ROLE)
            DatagramListener(address, protocol, reactor, max_size).setServiceParent(self)
        if config.monitor is not None:
            for address in config.monitor.stream_binds:
                listener = internet.StreamServerEndpointService(
                    address.server_endpoint(reactor), Factory.forProtocol(Discard))
                listener._raiseSynchronously = True
                listener.setServiceParent(self)
        if config.cli is not None:
            cli_service(config.cli, {"loadtrust": self.cli_loadtrust, "listtrust": self.cli_listtrust},
                        reactor).setServiceParent(self)
        timer = internet.TimerService(TICK_INTERVAL, self.writer.tick)
        timer.clock = self.clock
        timer.setServiceParent(self)
        self._log.info("metawriter: writing to redis {host}:{port}, journal {journal}",
                       host=config.redis.host, port=config.redis.port, journal=config.journal, role=ROLE)
        super().privilegedStartService()

    def cli_loadtrust(self, args):
        """loadtrust <file> - reload the trust file"""
        if len(args) != 1:
            return "usage: loadtrust filename\n"
        try:
            self.trust.load(args[0])
        except TrustFileError as e:
            return f"loadtrust failed: {e}\n"
        return "ok\n"

    def cli_listtrust(self, args):
        """listtrust - list trusted sources"""
        return self.trust.listing()

    @defer.inlineCallbacks
    def stopService(self):
        yield super().stopService()
        writer, store = self.writer, self.store
        writer.stop()
        idle = store.when_idle()
        timeout = self.reactor.callLater(STOP_TIMEOUT, idle.cancel)
        try:
            yield idle
        except defer.CancelledError:
            self._log.warn("metawriter stopping with {count} Redis batches unconfirmed; "
                           "they stay journaled for the next start", count=len(store), role=ROLE)
        else:
            timeout.cancel()
        store.stop()
        self.journal.close()
        yield self._redis_factory.disconnect()
