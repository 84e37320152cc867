# -*- test-case-name: tests.bitpeer.test_service -*-
"""
The bitpeer role assembled (ref §6.3, §6.4): the P2P peers from the peers
file, the ``Relay`` deciding what to do with blocks, the node's tip as the
anchor, height hints by UDP (cmd 4) to every jobmaster (the static list
and the seed's HTTP list), the ``svr`` RPC server, and the admin CLI.

The ``svr`` contract (the seed's, ref §1.2, §2.4): RPC clients (blockmasters;
a jobmaster may list bitpeer among its ``blockmaster`` addresses too) send
cmd 10 SUBMIT_BLOCK (the pool's block) and cmd 12 UPDATE_BLOCK (a foreign
block), PUSH packets whose body is the raw block serialised with witness
data; no reply.  Bitpeer pushes cmd 12 (PUSH, raw block) to every
connection of ``svr`` for each new block it receives from a P2P peer.
With ``secret`` set every packet is HMAC-tagged both ways.
"""

import signal

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.bitpeer.commands import bitpeer_commands
from viabtc.bitpeer.metrics import bitpeer_metrics
from viabtc.bitpeer.peers import PeerFileError, PeerSet, read_peer_file
from viabtc.bitpeer.relay import Relay
from viabtc.bitpeer.tip import NodeTip
from viabtc.cli import cli_service
from viabtc.metrics import RoleMetrics
from viabtc.p2p.protocol import PeerFactory, PeerSettings
from viabtc.rpc.client import DatagramSender
from viabtc.rpc.codec import Command, Packet
from viabtc.rpc.heighthint import height_hint_body
from viabtc.rpc.interfaces import IPacketHandler
from viabtc.rpc.jobmasters import jobmaster_list
from viabtc.rpc.protocol import RPCServerFactory
from viabtc.service import StartupError, listen_stream

ROLE = "bitpeer"

#: Largest datagram accepted back from a jobmaster (none is expected).
MAX_REPLY_SIZE = 10240


@implementer(IPacketHandler)
class BlockIntake:
    """Blocks pushed to ``svr``: cmd 10 (the pool's) and cmd 12 (foreign) to the relay."""

    _log = Logger()

    def __init__(self, relay):
        self.relay = relay

    def peerConnected(self, protocol):
        pass

    def packetReceived(self, protocol, packet):
        if packet.command == Command.SUBMIT_BLOCK:
            self.relay.our_block(packet.body, protocol.peer)
        elif packet.command == Command.UPDATE_BLOCK:
            self.relay.foreign_block(packet.body, protocol.peer)
        else:
            self._log.warn("command {command} from {peer} ignored", command=packet.command,
                           peer=protocol.peer, role=ROLE)

    def peerDisconnected(self, protocol, reason):
        pass


class BitpeerService(MultiService):
    """
    The whole role for one ``BitpeerConfig``; ``nodes`` calls the node
    (``call(method, *params)`` → Deferred).  ``install_signals``: reload
    the peers file on SIGUSR1 (twistd does; tests do not).
    """

    _log = Logger()

    def __init__(self, config, reactor, nodes, install_signals=False):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.nodes = nodes
        self.install_signals = install_signals
        secret = None if config.secret is None else config.secret.value
        self.relay = Relay(config.network, config.start_string, reactor, hint=self.send_hint,
                           push=self.push_block, broadcast_limit=config.broadcast_limit, role=ROLE)
        self.p2p_factory = PeerFactory(self.relay, PeerSettings(config.start_string), reactor=reactor,
                                       start_height=lambda: self.relay.best_height, role=ROLE)
        self.peerset = PeerSet(self.p2p_factory, reactor, config.reconnect_timeout, role=ROLE)
        self.peerset.setServiceParent(self)
        try:
            self.peerset.update(read_peer_file(config.peer_config_path))
        except PeerFileError as e:
            raise StartupError(f"config error: peer_config_path: {e}") from None
        self.tip = NodeTip(nodes, reactor, self.relay.node_tip, role=ROLE)
        self.tip.setServiceParent(self)
        self.sender = DatagramSender((), max_size=MAX_REPLY_SIZE, secret=secret, reactor=reactor,
                                     role=ROLE)
        self.sender.setServiceParent(self)
        self.jobmasters = jobmaster_list(
            self.sender, reactor, static=config.jobmasters, url=config.jobmaster_url,
            auth=config.request_auth, interval=config.jobmaster_update_interval, role=ROLE)
        self.jobmasters.setServiceParent(self)
        self.svr_factory = RPCServerFactory(BlockIntake(self.relay), max_size=config.svr.max_pkg_size,
                                            secret=secret, reactor=reactor, role=ROLE)
        self.svr_listeners = [listen_stream(self, address, self.svr_factory, reactor)
                              for address in config.svr.stream_binds]
        if config.cli is not None:
            cli_service(config.cli, bitpeer_commands(self), reactor).setServiceParent(self)
        self.hints_sent = 0
        self.metrics = RoleMetrics(ROLE)
        self.metrics.add(bitpeer_metrics(self))
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None
        self._previous_handler = None

    def startService(self):
        super().startService()
        if self.install_signals:
            self._previous_handler = signal.signal(
                signal.SIGUSR1, lambda *_: self.reactor.callFromThread(self.reload_peers))

    def stopService(self):
        if self.install_signals and self._previous_handler is not None:
            signal.signal(signal.SIGUSR1, self._previous_handler)
        stopped = defer.maybeDeferred(super().stopService)
        return stopped.addBoth(lambda _: self.nodes.close())

    def reload_peers(self, path=None):
        """Read the peers file (``path``, else the current one) again; a line saying what changed (or why not)."""
        try:
            added, removed = self.peerset.update(read_peer_file(path or self.config.peer_config_path))
        except PeerFileError as e:
            self._log.warn("peers file not reloaded, keeping {count} peers: {error}",
                           count=len(self.peerset.clients), error=str(e), role=ROLE)
            return f"error: {e}"
        return f"ok: {len(self.peerset.clients)} peers ({added} added, {removed} removed)"

    def send_hint(self, entry):
        """Hint the jobmasters that block ``entry`` exists (cmd 4 to every one at once)."""
        body = height_hint_body(entry.height, entry.header.time, entry.hash, entry.header.bits)
        if not self.sender.addresses:
            self._log.warn("block {height} seen but no jobmaster is known to hint",
                           height=entry.height, role=ROLE)
            return
        if self.sender.send(Packet(Command.HEIGHT_UPDATE, body)):
            self.hints_sent += 1
            self._log.info("block {height} {hash}: hinted {count} jobmaster(s)", height=entry.height,
                           hash=hash_to_display_hex(entry.hash), count=len(self.sender.addresses),
                           role=ROLE)

    def push_block(self, raw):
        """A block from a P2P peer to every blockmaster (cmd 12)."""
        count = self.svr_factory.broadcast(Packet(Command.UPDATE_BLOCK, raw))
        self._log.debug("block pushed to {count} blockmaster(s)", count=count, role=ROLE)
