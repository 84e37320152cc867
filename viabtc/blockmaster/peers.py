# -*- test-case-name: tests.blockmaster.test_peers -*-
"""
Which blockmasters of other regions to relay to (ref §6.1).

The seed fetched the list over HTTP from ``blockmaster_url`` (header
``AUTHORIZATION: <request_auth>``, reply ``{"error": {"message": "ok"},
"result": ["ip:port", ...]}``, each entry made into ``tcp@ip:port``) every
``blockmaster_update_interval`` seconds, adding and removing clients, and
ignored the static ``blockmaster`` array of its own sample.  We use both:
the static addresses always, the fetched ones besides.  An empty list is
valid (a single region); a failed fetch keeps the last list (logged).
"""

import json

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from viabtc.config import ConfigError, parse_address

#: Seconds one fetch of the list may take.
FETCH_TIMEOUT = 10.0


class BadPeerList(ValueError):
    """The list service answered something that is not a usable list."""


def parse_peer_list(body):
    """
    The ``Address`` es (``tcp``) in a list-service reply (bytes), in order,
    without duplicates; entries are ``"ip:port"`` or ``"ip port"``.  An
    error reply or anything malformed raises ``BadPeerList``.
    """
    try:
        reply = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadPeerList(f"reply is not JSON: {e}") from None
    if not isinstance(reply, dict):
        raise BadPeerList("reply is not a JSON object")
    error = reply.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        if message != "ok":
            raise BadPeerList(f"list service error: {str(message)[:200]}")
    result = reply.get("result")
    if not isinstance(result, list):
        raise BadPeerList("'result' is not an array")
    addresses = []
    for i, entry in enumerate(result):
        try:
            address = parse_address(entry, f"result[{i}]")
        except ConfigError as e:
            raise BadPeerList(str(e)) from None
        if address.transport != "tcp" or not address.port:
            raise BadPeerList(f"result[{i}]: {str(entry)[:80]!r} is not an ip:port address")
        if address.sockaddr not in [a.sockaddr for a in addresses]:
            addresses.append(address)
    return tuple(addresses)


class PeerList(Service):
    """
    Calls ``apply(addresses)`` (a tuple of ``Address``) with the ``static``
    addresses plus, when ``url`` is set, those fetched from it every
    ``interval`` seconds: once at start, then whenever the union changes.
    """

    _log = Logger()

    def __init__(self, apply, reactor, *, static=(), url=None, auth=None, interval=30.0,
                 agent=None, role="blockmaster"):
        self._apply_to = apply
        self.reactor = reactor
        self.static = tuple(static)
        self.url = url
        self.auth = auth
        self.interval = interval
        self.agent = agent if agent is not None else Agent(reactor)
        self.role = role
        self.fetched = ()
        self.last_error = None
        self._loop = None

    @property
    def addresses(self):
        merged = list(self.static)
        known = {a.sockaddr for a in merged}
        merged.extend(a for a in self.fetched if a.sockaddr not in known)
        return tuple(merged)

    def startService(self):
        super().startService()
        self._apply_to(self.addresses)
        if self.url is not None:
            self._loop = LoopingCall(self.refresh)
            self._loop.clock = self.reactor
            self._loop.start(self.interval, now=True)

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def refresh(self):
        """Fetch the list now; the Deferred fires when it is applied (or kept)."""
        headers = Headers({b"User-Agent": [b"viabtc-blockmaster"]})
        if self.auth is not None:
            headers.addRawHeader(b"AUTHORIZATION", self.auth.encode("utf-8"))
        d = self.agent.request(b"GET", self.url.encode("utf-8"), headers)
        d.addTimeout(FETCH_TIMEOUT, self.reactor)
        d.addCallback(self._got_response)
        d.addCallback(parse_peer_list)
        d.addCallbacks(self._fetched, self._fetch_failed)
        return d

    def _got_response(self, response):
        body = readBody(response)
        if response.code != 200:
            def refuse(data):
                raise BadPeerList(f"HTTP {response.code} {data[:200]!r}")
            body.addCallback(refuse)
        return body

    def _fetched(self, addresses):
        self.last_error = None
        if [a.sockaddr for a in addresses] != [a.sockaddr for a in self.fetched]:
            self.fetched = addresses
            self._log.info("blockmasters now {addresses}",
                           addresses=", ".join(a.text for a in self.addresses) or "none",
                           role=self.role)
            if self.running:
                self._apply_to(self.addresses)

    def _fetch_failed(self, failure):
        self.last_error = failure.getErrorMessage() or failure.type.__name__
        self._log.warn("blockmaster list from {url} not fetched ({error}); keeping {addresses}",
                       url=self.url, error=self.last_error,
                       addresses=", ".join(a.text for a in self.addresses) or "none", role=self.role)
