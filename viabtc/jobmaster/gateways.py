# -*- test-case-name: tests.jobmaster.test_service -*-
"""
The jobmaster's side of its links to gateways (ref §1.2, §3.3, §3.8, §3.10).

Gateways connect to the jobmaster's ``svr`` TCP binds.  Each new gateway
gets the current job with ``clean_jobs`` true and the whole ban list; every
new job and ban change is broadcast to all of them.  While there is no job
a gateway is refused, so that it fails over to another jobmaster (ref §3.2
step 4).  Packets from gateways (found blocks, ban updates) are parsed here
and handed on as values; a malformed one is logged and dropped, and the link
stays up (ref §12.20).
"""

import attrs
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from viabtc.jobmaster.messages import BadMessage, parse_found_block
from viabtc.rpc.bans import BadBanUpdate, parse_ban_update
from viabtc.rpc.codec import Command, Packet, PacketType
from viabtc.rpc.interfaces import IPacketHandler


def job_packet(job):
    """The cmd 1 PUSH carrying ``job``."""
    return Packet(Command.UPDATE_JOB, job.to_json(), PacketType.PUSH)


def ban_packet(update):
    """The cmd 3 packet carrying a ban update (a REQUEST, as the seed sends it)."""
    return Packet(Command.UPDATE_BAN, update.to_json(), PacketType.REQUEST)


@implementer(IPacketHandler)
class GatewayHub:
    """
    Serves gateways for one jobmaster.

    ``current_job()`` returns the job a new gateway should get (or None);
    ``ban_snapshot()`` the list of ``BanUpdate``s for it.  ``on_found_block``
    is called with each well-formed ``FoundBlock`` and the peer it came from;
    ``on_ban_update`` with each well-formed ``BanUpdate``.  ``factory`` (the
    ``RPCServerFactory`` serving this hub) is set by the service.
    """

    _log = Logger()

    def __init__(self, current_job, ban_snapshot, on_found_block, on_ban_update):
        self.factory = None
        self._current_job = current_job
        self._ban_snapshot = ban_snapshot
        # command -> (parser, what it is for logs, level of a malformed one, receiver)
        self._routes = {
            # A gateway believed this was a block: a malformed one is worth an alert.
            Command.FOUND_BLOCK: (parse_found_block, "found block", LogLevel.critical, on_found_block),
            Command.UPDATE_BAN: (parse_ban_update, "ban update", LogLevel.warn, on_ban_update),
        }

    @property
    def gateways(self):
        return len(self.factory.connections) if self.factory is not None else 0

    def peerConnected(self, protocol):
        job = self._current_job()
        if job is None:
            self._log.warn("refusing gateway {peer}: no job yet", peer=protocol.peer, role="jobmaster")
            protocol.transport.loseConnection()
            return
        protocol.send(job_packet(attrs.evolve(job, clean_jobs=True)))
        for update in self._ban_snapshot():
            protocol.send(ban_packet(update))
        self._log.info("gateway {peer} connected; sent job {job_id}", peer=protocol.peer,
                       job_id=job.job_id, role="jobmaster")

    def packetReceived(self, protocol, packet):
        route = self._routes.get(packet.command)
        if route is None:
            self._log.warn("gateway {peer} sent unexpected command {command}; dropped",
                           peer=protocol.peer, command=packet.command, role="jobmaster")
            return
        parse, what, level, deliver = route
        try:
            value = parse(packet.body)
        except (BadMessage, BadBanUpdate) as e:
            self._log.emit(level, "malformed {what} from {peer} dropped: {error}",
                           what=what, peer=protocol.peer, error=str(e), role="jobmaster")
            return
        dropped = getattr(value, "dropped", ())
        if dropped:
            # One bad entry of a ban list costs only itself (viabtc.rpc.bans).
            self._log.warn("{what} from {peer}: left out {dropped}", what=what, peer=protocol.peer,
                           dropped="; ".join(dropped), role="jobmaster")
        deliver(value, protocol.peer)

    def peerDisconnected(self, protocol, reason):
        pass

    def broadcast_job(self, job):
        """Send ``job`` to every gateway; returns how many got it."""
        return self._broadcast(job_packet(job))

    def broadcast_ban(self, update):
        return self._broadcast(ban_packet(update))

    def _broadcast(self, packet):
        if self.factory is None:
            return 0
        return self.factory.broadcast(packet)

    def close_all(self):
        """Drop every gateway link so that gateways fail over (no job for too long)."""
        if self.factory is None:
            return 0
        connections = list(self.factory.connections)
        for connection in connections:
            connection.transport.loseConnection()
        return len(connections)
