# -*- test-case-name: tests.rpc.test_jobmasters -*-
"""
Where the height hints go: every jobmaster, by UDP (ref §1.2, §6.4).
Poolbench and bitpeer both hint, so the list lives here, below the roles.

The seed fetched the jobmaster list over HTTP from ``jobmaster_url`` (header
``AUTHORIZATION: <request_auth>``, reply ``{"error": {"message": "ok"},
"result": ["ip:port", ...]}``) every ``jobmaster_update_interval`` seconds.
That is kept, and a static ``jobmaster`` list in the config (our addition)
needs no HTTP service at all; with both, hints go to the union.  A failed
fetch keeps the last list (logged): a flaky list service must not stop the
hints.
"""

import ipaddress
import json

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from viabtc.config import ConfigError, parse_address

#: Seconds one fetch of the list may take.
FETCH_TIMEOUT = 10.0


class BadJobmasterList(ValueError):
    """The list service answered something that is not a usable list."""


def parse_jobmaster_list(body):
    """
    The ``(ip, port)`` addresses in a list-service reply (bytes), in order,
    without duplicates.  Entries are the seed's ``"ip:port"`` or
    ``"ip port"``.  Anything else, an error reply or an empty list raises
    ``BadJobmasterList`` saying what is wrong.
    """
    try:
        reply = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadJobmasterList(f"reply is not JSON: {e}") from None
    if not isinstance(reply, dict):
        raise BadJobmasterList("reply is not a JSON object")
    error = reply.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        if message != "ok":
            raise BadJobmasterList(f"list service error: {str(message)[:200]}")
    result = reply.get("result")
    if not isinstance(result, list) or not result:
        raise BadJobmasterList("'result' is not a non-empty array")
    addresses = []
    for i, entry in enumerate(result):
        try:
            address = parse_address(entry, f"result[{i}]", default_transport="udp")
        except ConfigError as e:
            raise BadJobmasterList(str(e)) from None
        if address.transport != "udp" or address.port == 0:
            raise BadJobmasterList(f"result[{i}]: {str(entry)[:80]!r} is not an ip:port address")
        if address.sockaddr not in addresses:
            addresses.append(address.sockaddr)
    return tuple(addresses)


def static_jobmasters(reader, key="jobmaster"):
    """
    The config's static list at ``key`` (our addition beside the seed's
    ``jobmaster_url``): (ip, port) pairs of ``udp@ip:port`` (or plain
    ``ip:port``) entries; ``ConfigError`` names a bad one.
    """
    addresses = reader.addresses(key, required=False, default_transport="udp")
    result = []
    for i, address in enumerate(addresses):
        where = f"{reader.path(key)}[{i}]"
        if address.transport != "udp" or address.port == 0:
            raise ConfigError(where, f"{address.text!r} is not a udp@ip:port address")
        try:
            ipaddress.ip_address(address.host)
        except ValueError:
            raise ConfigError(where, f"{address.text!r}: hints go to IP addresses only") from None
        result.append(address.sockaddr)
    return tuple(result)


def http_url(value):
    """Config validator: an http:// or https:// URL (``jobmaster_url``)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


class JobmasterList(Service):
    """
    Keeps ``sender`` (a ``DatagramSender``) addressed to every jobmaster:
    the ``static`` addresses ((ip, port) pairs) plus, when ``url`` is set,
    the list fetched from it every ``interval`` seconds with ``auth`` in the
    ``AUTHORIZATION`` header.  ``agent`` defaults to a plain ``Agent``;
    ``role`` names the hinting role in logs and the User-Agent.
    """

    _log = Logger()

    def __init__(self, sender, reactor, *, static=(), url=None, auth=None, interval=30.0,
                 agent=None, role="rpc"):
        self.sender = sender
        self.role = role
        self.reactor = reactor
        self.static = tuple(static)
        self.url = url
        self.auth = auth
        self.interval = interval
        self.agent = agent if agent is not None else Agent(reactor)
        self.fetched = ()
        self.last_error = None
        self._loop = None
        self._apply()

    @property
    def addresses(self):
        return self.sender.addresses

    def startService(self):
        super().startService()
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
        headers = Headers({b"User-Agent": [f"viabtc-{self.role}".encode()]})
        if self.auth is not None:
            headers.addRawHeader(b"AUTHORIZATION", self.auth.encode("utf-8"))
        d = self.agent.request(b"GET", self.url.encode("utf-8"), headers)
        d.addTimeout(FETCH_TIMEOUT, self.reactor)
        d.addCallback(self._got_response)
        d.addCallback(parse_jobmaster_list)
        d.addCallbacks(self._fetched, self._fetch_failed)
        return d

    def _got_response(self, response):
        body = readBody(response)
        if response.code != 200:
            body.addCallback(lambda data: _raise(BadJobmasterList(
                f"HTTP {response.code} {data[:200]!r}")))
        return body

    def _fetched(self, addresses):
        self.last_error = None
        if addresses != self.fetched:
            self.fetched = addresses
            self._apply()
            self._log.info("jobmasters now {addresses}", addresses=_describe(self.addresses),
                           role=self.role)

    def _fetch_failed(self, failure):
        self.last_error = failure.getErrorMessage() or failure.type.__name__
        self._log.warn("jobmaster list from {url} not fetched ({error}); keeping {addresses}",
                       url=self.url, error=self.last_error,
                       addresses=_describe(self.addresses) or "none", role=self.role)

    def _apply(self):
        merged = list(self.static)
        merged.extend(a for a in self.fetched if a not in merged)
        self.sender.set_addresses(merged)


def _raise(exception):
    raise exception


def _describe(addresses):
    return ", ".join(f"{host}:{port}" for host, port in addresses)
