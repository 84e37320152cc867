# -*- test-case-name: tests.bitpeer.test_peers -*-
"""
The nodes bitpeer connects to: the seed's peers file
(``{"peers": ["ip:port", ...]}``, ref §6.3), read at start-up and again on
SIGUSR1 or the CLI ``update``; new entries get a connection, entries gone
from the file are disconnected, the rest are left alone.

Each peer is a ``ClientService`` that reconnects ``reconnect_timeout``
seconds after a failed attempt or a lost connection (the seed's rule), so
one unreachable node costs nothing but its timer.
"""

import json

from twisted.application.internet import ClientService
from twisted.application.service import MultiService
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger

from viabtc.config import ConfigError, parse_address

#: Seconds one connection attempt may take.
CONNECT_TIMEOUT = 10


class PeerFileError(ValueError):
    """The peers file cannot be used; says why."""


def parse_peer_file(data):
    """
    The ``(host, port)`` peers in a peers file's bytes, in order, without
    duplicates; ``PeerFileError`` naming the bad entry.
    """
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise PeerFileError(f"not JSON: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("peers"), list):
        raise PeerFileError("expected an object with a 'peers' array")
    peers = []
    for i, entry in enumerate(document["peers"]):
        try:
            address = parse_address(entry, f"peers[{i}]", default_transport="tcp")
        except ConfigError as e:
            raise PeerFileError(str(e)) from None
        if address.transport != "tcp" or not address.port:
            raise PeerFileError(f"peers[{i}]: {str(entry)[:80]!r} is not an ip:port address")
        if address.sockaddr not in peers:
            peers.append(address.sockaddr)
    return tuple(peers)


def read_peer_file(path):
    """``parse_peer_file`` of the file at ``path`` (``PeerFileError`` if unreadable)."""
    try:
        with open(path, "rb") as f:
            return parse_peer_file(f.read())
    except OSError as e:
        raise PeerFileError(f"cannot read {path}: {e}") from None


class PeerSet(MultiService):
    """
    One reconnecting client per peer address, connected with ``factory``
    (a ``PeerFactory``).  ``update(addresses)`` adds and removes clients.
    """

    _log = Logger()

    def __init__(self, factory, reactor, reconnect_timeout, role="bitpeer"):
        super().__init__()
        self.factory = factory
        self.reactor = reactor
        self.reconnect_timeout = reconnect_timeout
        self.role = role
        self.clients = {}

    def update(self, addresses):
        """Connect to exactly ``addresses``; returns ``(added, removed)`` counts."""
        wanted = list(dict.fromkeys(addresses))
        removed = [a for a in self.clients if a not in wanted]
        for address in removed:
            client = self.clients.pop(address)
            client.disownServiceParent()
        added = [a for a in wanted if a not in self.clients]
        for address in added:
            host, port = address
            endpoint = HostnameEndpoint(self.reactor, host, port, timeout=CONNECT_TIMEOUT)
            client = ClientService(endpoint, self.factory,
                                   retryPolicy=lambda _attempt: self.reconnect_timeout,
                                   clock=self.reactor)
            self.clients[address] = client
            client.setServiceParent(self)
        if added or removed:
            self._log.info("peers: {count} configured ({added} added, {removed} removed)",
                           count=len(self.clients), added=len(added), removed=len(removed),
                           role=self.role)
        return len(added), len(removed)
