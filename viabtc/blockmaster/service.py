# -*- test-case-name: tests.blockmaster.test_tap -*-
"""
The blockmaster role assembled (ref §6.1): the RPC server on ``svr`` (cmd 10
from jobmasters, thin blocks from other regions), an RPC client per bitpeer
and per peer blockmaster (static list plus the HTTP list), the local node
(height every second, mempool every ``mempool_timeout`` seconds, block
submission), the ``Relay`` between them, and the admin CLI.

Compact mode is negotiated per link: on connecting to a peer blockmaster
we push ``HELLO`` (cmd 16); only our blockmaster answers it (a C one logs
"unknown command" and goes on), and only after that answer does the link
carry compact blocks (cmd 17) instead of the seed's cmd 13/14.
"""

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.blockmaster.commands import blockmaster_commands
from viabtc.blockmaster.metrics import blockmaster_metrics
from viabtc.blockmaster.relay import FOREIGN, POOL, Relay
from viabtc.blockmaster.txcache import TxCache
from viabtc.cli import cli_service
from viabtc.metrics import RoleMetrics
from viabtc.node.jsonrpc import NodeCallError, NodeConfig, NodeGroup
from viabtc.node.submit import BlockSubmitter
from viabtc.p2p.thin import HELLO, HELLO_BODY, CachedTx, ThinBlockError, is_hello
from viabtc.rpc.addresslist import AddressList
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command, Packet
from viabtc.rpc.interfaces import IDatagramHandler, ILinkObserver, IPacketHandler
from viabtc.rpc.protocol import TrustedHosts
from viabtc.service import listen_rpc

ROLE = "blockmaster"

#: How often the local node's height is read (the seed's 1 s).
HEIGHT_INTERVAL = 1.0
#: getrawtransaction calls in flight at once during a mempool poll.
MEMPOOL_CONCURRENCY = 8
#: Heartbeat timeout towards bitpeers (the seed's unset setting: 3 s).
BITPEER_TIMEOUT = 3.0


class PeerLink:
    """An outgoing link to a bitpeer or a peer blockmaster, as the relay sees it."""

    def __init__(self, client, address):
        self.client = client
        self.peer = address.text
        self.sockaddr = address.sockaddr
        self.compact = False

    def send(self, packet):
        return self.client.send(packet)


@implementer(IPacketHandler, IDatagramHandler)
class _Inbound:
    """Packets arriving on ``svr`` (TCP connections and UDP datagrams)."""

    def __init__(self, service):
        self.service = service

    def peerConnected(self, protocol):
        pass

    def peerDisconnected(self, protocol, reason):
        pass

    def packetReceived(self, protocol, packet, address=None):
        relay = self.service.relay
        conn = protocol if address is None else None
        if packet.command == Command.SUBMIT_BLOCK:
            relay.full_block(POOL, packet.body, conn)
        elif packet.command == Command.UPDATE_BLOCK:
            relay.full_block(FOREIGN, packet.body, conn)
        elif packet.command == HELLO:
            if conn is not None and self.service.config.compact and is_hello(packet.body):
                conn.send(Packet(HELLO, HELLO_BODY))
        else:
            relay.packet(conn, packet)


@implementer(ILinkObserver)
class _BlockmasterObserver:
    """Events of the links to peer blockmasters."""

    _log = Logger()

    def __init__(self, service, link):
        self.service = service
        self.link = link

    def on_connect(self, client):
        self.link.compact = False
        if self.service.config.compact:
            client.send(Packet(HELLO, HELLO_BODY))

    def on_packet(self, client, packet):
        if packet.command == HELLO:
            if is_hello(packet.body) and self.service.config.compact and not self.link.compact:
                self.link.compact = True
                self._log.info("blockmaster {peer} speaks the compact mode", peer=self.link.peer,
                               role=ROLE)
            return
        self.service.relay.packet(self.link, packet)

    def on_disconnect(self, client):
        self.link.compact = False


@implementer(ILinkObserver)
class _BitpeerObserver:
    """Events of the links to bitpeers: foreign blocks (cmd 12) come back on them."""

    _log = Logger()

    def __init__(self, service, link):
        self.service = service
        self.link = link

    def on_connect(self, client):
        pass

    def on_packet(self, client, packet):
        if packet.command == Command.UPDATE_BLOCK:
            self.service.relay.full_block(FOREIGN, packet.body, self.link)
        else:
            self._log.warn("ignored command {command} from bitpeer {peer}", command=packet.command,
                           peer=self.link.peer, role=ROLE)

    def on_disconnect(self, client):
        pass


class BlockmasterService(MultiService):
    """The whole role for one ``BlockmasterConfig``."""

    _log = Logger()

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.secret = None if config.secret is None else config.secret.value
        self.nodes = NodeGroup.from_configs(
            [NodeConfig.from_entry(entry) for entry in config.coin.nodes], reactor)
        self.submitter = BlockSubmitter(self.nodes)
        #: submitblock outcomes: (node, outcome) -> count (for /metrics)
        self.submit_outcomes = {}
        self.cache = TxCache(config.tx_cache_ttl)
        self.local_height = None
        self.bitpeers = [self._link(address, _BitpeerObserver, BITPEER_TIMEOUT)
                         for address in config.bitpeers]
        self.blockmasters = {}
        self.relay = Relay(
            cache=self.cache, clock=reactor, submit=self.submit,
            local_height=lambda: self.local_height, bitpeers=lambda: self.bitpeers,
            blockmasters=lambda: [(link, link.compact) for link in self.blockmasters.values()],
            request_timeout=config.request_timeout, role=ROLE)
        inbound = _Inbound(self)
        # Behind a method so that a reload can change it (None: anyone).
        self.trusted = None if config.trust is None else TrustedHosts(config.trust)
        listen_rpc(self, config.svr, reactor, inbound, inbound, secret=self.secret, trust=self.is_trusted,
                   role=ROLE)
        for address in config.svr.datagram_binds:
            self._log.warn("svr: {bind} accepts blocks by UDP only while they fit in one datagram; "
                           "jobmasters and blockmasters should use the TCP bind", bind=address.text,
                           role=ROLE)
        # Links to peer blockmasters live under their own parent, started before the list
        # adds any (a child added to a parent that is starting would be started twice).
        self.peer_links = MultiService()
        self.peer_links.setServiceParent(self)
        self.peer_list = AddressList(self.set_blockmasters, reactor, what="blockmasters",
                                     transport="tcp", allow_empty=True, static=config.blockmasters,
                                     url=config.blockmaster_url, auth=config.request_auth,
                                     interval=config.blockmaster_update_interval, role=ROLE)
        self.peer_list.setServiceParent(self)
        if config.cli is not None:
            cli_service(config.cli, blockmaster_commands(self), reactor).setServiceParent(self)
        self._height_loop = LoopingCall(self.poll_height)
        self._height_loop.clock = reactor
        self._mempool_loop = LoopingCall(self.poll_mempool)
        self._mempool_loop.clock = reactor
        self._mempool_polling = False
        self._in_flight = set()
        self.metrics = RoleMetrics(ROLE)
        self.metrics.add(blockmaster_metrics(self))
        self.role_logging = None

    def _track(self, d):
        """Keep ``d`` (a node call) until it fires, so stopping waits for it."""
        self._in_flight.add(d)

        def done(result):
            self._in_flight.discard(d)
            return result
        return d.addBoth(done)

    def _link(self, address, observer, heartbeat_timeout, parent=None):
        client = FailoverClient([address.client_endpoint(self.reactor)],
                                max_size=self.config.svr.max_pkg_size, secret=self.secret,
                                heartbeat_timeout=heartbeat_timeout, reactor=self.reactor, role=ROLE)
        link = PeerLink(client, address)
        client.add_observer(observer(self, link))
        client.setServiceParent(self if parent is None else parent)
        return link

    def is_trusted(self, host):
        """Whether ``host`` may connect to ``svr`` (``trust``; no list: anyone)."""
        return self.trusted is None or self.trusted(host)

    def set_bitpeers(self, addresses):
        """Keep one link per bitpeer in ``addresses`` (a reload): new ones connect, dropped ones close."""
        wanted = {a.sockaddr for a in addresses}
        for link in [link for link in self.bitpeers if link.sockaddr not in wanted]:
            self._log.info("bitpeer {peer} left the list", peer=link.peer, role=ROLE)
            link.client.disownServiceParent()
        known = {link.sockaddr for link in self.bitpeers}
        self.bitpeers = [link for link in self.bitpeers if link.sockaddr in wanted] + [
            self._link(address, _BitpeerObserver, BITPEER_TIMEOUT)
            for address in addresses if address.sockaddr not in known]

    def set_blockmasters(self, addresses):
        """Keep one link per address in ``addresses``: new ones connect, dropped ones close."""
        wanted = {a.sockaddr: a for a in addresses}
        for sockaddr in [s for s in self.blockmasters if s not in wanted]:
            link = self.blockmasters.pop(sockaddr)
            self._log.info("blockmaster {peer} left the list", peer=link.peer, role=ROLE)
            link.client.disownServiceParent()
        for sockaddr, address in wanted.items():
            if sockaddr not in self.blockmasters:
                self.blockmasters[sockaddr] = self._link(address, _BlockmasterObserver,
                                                         self.config.blockmaster_timeout,
                                                         self.peer_links)

    def startService(self):
        super().startService()
        self._height_loop.start(HEIGHT_INTERVAL, now=True)
        self._mempool_loop.start(self.config.mempool_timeout, now=True)

    def stopService(self):
        for loop in (self._height_loop, self._mempool_loop):
            if loop.running:
                loop.stop()
        self.relay.stop()
        d = defer.maybeDeferred(super().stopService)
        # Submissions and polls in flight finish (each has its timeout) before the pool closes.
        d.addBoth(lambda result: defer.DeferredList(list(self._in_flight)).addBoth(lambda _: result))
        d.addBoth(lambda result: self.nodes.close().addBoth(lambda _: result))
        return d

    # -- the local node ------------------------------------------------------

    def submit(self, block, block_hash):
        """Hand a checked block to the local node; the outcome is logged by the submitter."""
        d = self.submitter.submit(block, block_hash)
        d.addCallback(self._count_outcomes)
        d.addErrback(lambda f: self._log.failure("submitblock failed", f, role=ROLE))
        return self._track(d)

    def _count_outcomes(self, report):
        for entry in report.nodes:
            key = (entry.node, entry.outcome.value)
            self.submit_outcomes[key] = self.submit_outcomes.get(key, 0) + 1
        return report

    def poll_height(self):
        d = self.nodes.call("getblockcount", timeout=HEIGHT_INTERVAL * 5)
        d.addCallbacks(self._got_height, self._node_failed, errbackArgs=("getblockcount",))
        return self._track(d)

    def _got_height(self, height):
        if isinstance(height, int) and height != self.local_height:
            self.local_height = height

    def _node_failed(self, failure, method):
        failure.trap(NodeCallError)
        self._log.warn("{method}: {error}", method=method, error=str(failure.value), role=ROLE)

    def poll_mempool(self):
        """Refresh the transaction cache from the node's mempool, then evict stale entries."""
        if self._mempool_polling:
            return None
        self._mempool_polling = True
        d = defer.Deferred.fromCoroutine(self._poll_mempool())
        d.addErrback(self._node_failed, "getrawmempool")

        def done(result):
            self._mempool_polling = False
            return result
        return self._track(d.addBoth(done))

    async def _poll_mempool(self):
        txids = await self.nodes.call("getrawmempool")
        now = self.reactor.seconds()
        fresh = []
        for txid in txids if isinstance(txids, list) else ():
            try:
                if not self.cache.touch_txid(hash_from_display_hex(txid), now):
                    fresh.append(txid)
            except ValueError:
                continue
        semaphore = defer.DeferredSemaphore(MEMPOOL_CONCURRENCY)
        calls = [semaphore.run(self._fetch_tx, txid, now) for txid in fresh]
        await defer.gatherResults(calls, consumeErrors=True)
        evicted = self.cache.evict(now)
        self._log.debug("mempool: {count} transaction(s), {fresh} new, {evicted} evicted; cache "
                        "{size}", count=len(txids), fresh=len(fresh), evicted=evicted,
                        size=len(self.cache), role=ROLE)

    async def _fetch_tx(self, txid, now):
        try:
            raw = await self.nodes.call("getrawtransaction", txid, False)
            self.cache.add(CachedTx.parse(bytes.fromhex(raw)), now)
        except (NodeCallError, ThinBlockError, ValueError, TypeError) as e:
            # Mined or evicted since getrawmempool, or a reply we cannot use.
            self._log.debug("mempool transaction {txid} not cached: {error}", txid=txid,
                            error=str(e), role=ROLE)
