# -*- test-case-name: tests.rpc.test_addresslist -*-
"""
A list of peer addresses kept from the config and the seed's HTTP list
service (ref §6.1, §6.4), written once for every role that has one:
poolbench and bitpeer (the jobmasters they hint, by UDP) and blockmaster
(the blockmasters of other regions it relays to, by TCP).

The seed fetched each list over HTTP (``jobmaster_url``,
``blockmaster_url``) with the header ``AUTHORIZATION: <request_auth>``;
the reply is ``{"error": {"message": "ok"}, "result": ["ip:port", ...]}``,
fetched again every ``*_update_interval`` seconds.  That is kept, and a
static list in the config is used beside it (the seed's blockmaster ignored
its own static ``blockmaster`` array; the jobmaster one is ours): the list
is the union, static addresses first.  A failed fetch keeps the last list
(logged): a flaky list service must not stop hints or relays.

The lists differ only in parameters: the transport of their entries, whether
an empty reply is a valid list (a lone region has no peer blockmasters; a
bench with no jobmaster is a misconfigured service), what they are called in
logs, and what to do when the union changes.
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


class BadAddressList(ValueError):
    """The list service answered something that is not a usable list."""


def parse_address_list(body, transport="tcp", allow_empty=False):
    """
    The ``Address`` es (of ``transport``, "tcp" or "udp") in a list-service
    reply (bytes), in order, without duplicates.  Entries are the seed's
    ``"ip:port"`` or ``"ip port"`` (or ``transport@ip:port``).  Anything
    else, an error reply, or an empty list unless ``allow_empty`` raises
    ``BadAddressList`` saying what is wrong.
    """
    try:
        reply = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadAddressList(f"reply is not JSON: {e}") from None
    if not isinstance(reply, dict):
        raise BadAddressList("reply is not a JSON object")
    error = reply.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        if message != "ok":
            raise BadAddressList(f"list service error: {str(message)[:200]}")
    result = reply.get("result")
    if not isinstance(result, list) or not (result or allow_empty):
        raise BadAddressList("'result' is not an array" if allow_empty
                             else "'result' is not a non-empty array")
    addresses = []
    for i, entry in enumerate(result):
        try:
            address = parse_address(entry, f"result[{i}]", default_transport=transport)
        except ConfigError as e:
            raise BadAddressList(str(e)) from None
        if address.transport != transport or not address.port or not is_ip(address.host):
            raise BadAddressList(f"result[{i}]: {str(entry)[:80]!r} is not an ip:port address")
        if address.sockaddr not in [a.sockaddr for a in addresses]:
            addresses.append(address)
    return tuple(addresses)


def http_url(value):
    """Config validator: an http:// or https:// URL (``jobmaster_url``, ``blockmaster_url``)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


def describe(addresses):
    """``"ip:port, ..."`` for logs and status lines (the configured text for other addresses)."""
    return ", ".join(f"{a.host}:{a.port}" if a.host is not None and a.port else a.text
                     for a in addresses)


class AddressList(Service):
    """
    Calls ``on_change(addresses)`` (a tuple of ``Address``) with the
    ``static`` addresses plus, when ``url`` is set, those fetched from it
    (with ``auth`` in the ``AUTHORIZATION`` header) every ``interval``
    seconds: once at start, then whenever the union changes while running.

    ``transport`` and ``allow_empty`` are ``parse_address_list``'s; ``what``
    names the list in logs ("jobmasters"), ``role`` the role in logs and
    the User-Agent.  ``agent`` defaults to a plain ``Agent``.
    """

    _log = Logger()

    def __init__(self, on_change, reactor, *, what, transport, allow_empty, static=(), url=None,
                 auth=None, interval=30.0, agent=None, role="rpc"):
        self.on_change = on_change
        self.reactor = reactor
        self.what = what
        self.transport = transport
        self.allow_empty = allow_empty
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
        """The union: the static addresses, then the fetched ones not among them."""
        merged = list(self.static)
        known = {a.sockaddr for a in merged}
        merged.extend(a for a in self.fetched if a.sockaddr not in known)
        return tuple(merged)

    def set_static(self, static):
        """
        Replace the static addresses (a reload); ``on_change`` hears the new
        union at once while running.  True when they changed.
        """
        static = tuple(static)
        if [a.sockaddr for a in static] == [a.sockaddr for a in self.static]:
            return False
        self.static = static
        self._log.info("{what} now {addresses}", what=self.what,
                       addresses=describe(self.addresses) or "none", role=self.role)
        if self.running:
            self.on_change(self.addresses)
        return True

    def startService(self):
        super().startService()
        self.on_change(self.addresses)
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
        d.addCallback(parse_address_list, self.transport, self.allow_empty)
        d.addCallbacks(self._fetched, self._fetch_failed)
        return d

    def _got_response(self, response):
        body = readBody(response)
        if response.code != 200:
            def refuse(data):
                raise BadAddressList(f"HTTP {response.code} {data[:200]!r}")
            body.addCallback(refuse)
        return body

    def _fetched(self, addresses):
        self.last_error = None
        if [a.sockaddr for a in addresses] != [a.sockaddr for a in self.fetched]:
            self.fetched = addresses
            self._log.info("{what} now {addresses}", what=self.what,
                           addresses=describe(self.addresses) or "none", role=self.role)
            if self.running:
                self.on_change(self.addresses)

    def _fetch_failed(self, failure):
        self.last_error = failure.getErrorMessage() or failure.type.__name__
        self._log.warn("{what} list from {url} not fetched ({error}); keeping {addresses}",
                       what=self.what, url=self.url, error=self.last_error,
                       addresses=describe(self.addresses) or "none", role=self.role)


def is_ip(host):
    """Whether ``host`` (a string or None) is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
