# -*- test-case-name: tests.node.test_jsonrpc -*-
"""
A Deferred-based client for bitcoind's JSON-RPC, and a group of nodes with
the seed's sticky failover (ref §3.1).

Every failure says which node and which call failed, because the operator
reading an alert at night needs that first:

- ``NodeError``: the node answered with a JSON-RPC ``error`` object;
- ``NodeUnavailable``: no usable answer (connection refused or dropped,
  HTTP 401, a reply that is not JSON-RPC, a wrong reply id);
- ``NodeTimeout`` (a ``NodeUnavailable``): no reply within the call's
  timeout; the request is cancelled and its connection closed.

Nothing here raises into the reactor: every outcome is the Deferred's
result or one of these failures.

Unlike the seed (which libcurl'ed a new connection per call and, §12.22,
used the handle after freeing it), calls reuse persistent HTTP connections
from one ``HTTPConnectionPool`` per client.
"""

import base64
import json
from urllib.parse import urlsplit

import attrs
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTP11ClientProtocol, HTTPConnectionPool, ResponseFailed, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

#: bitcoind closes idle keep-alive connections after ``-rpcservertimeout``
#: (30 s); forgetting ours sooner avoids sending a call on a connection the
#: node is closing at that moment.
IDLE_CONNECTION_TIMEOUT = 20

#: How much a node connection may hand the kernel per reactor turn.  Twisted
#: sends at most 128 KiB per turn (``FileDescriptor.SEND_LIMIT``, fairness
#: between many connections); a 2.3 MB ``submitblock`` then took ~18 turns,
#: ~5 ms of a found block's way to the node (docs/benchmarks.md).  A node
#: connection carries one request at a time and there are few of them, so
#: each turn gives the kernel as much as it takes (largest block's hex: 8 MB).
NODE_SEND_LIMIT = 32 * 1024 * 1024


@attrs.frozen
class JSONText:
    """
    A call parameter that is already JSON text: ``parts``, UTF-8 bytes whose
    concatenation is one JSON value, spliced into the request as they are.
    ``submitblock``'s parameter is a block's hex, megabytes long, kept in
    pieces (the header's, the coinbase's, the job's transactions'): the
    request body is then one join of them, where ``json.dumps`` of the
    string would scan and copy a string twice that size, and every
    intermediate join would cost another megabyte-sized allocation.
    """

    parts: tuple = attrs.field(converter=tuple)


def json_string(*ascii_parts):
    """``JSONText`` for a JSON string of ``ascii_parts`` joined, which need no escaping (hex)."""
    return JSONText((b'"', *ascii_parts, b'"'))


def request_body(request_id, method, params):
    """The JSON-RPC 1.0 request body; ``JSONText`` params are spliced in as they are."""
    return b"".join(request_pieces(request_id, method, params))


def request_pieces(request_id, method, params):
    """
    ``request_body`` as a list of pieces to write one after the other, so a
    ``JSONText`` param of megabytes (a block's hex) is never copied into a
    joined body.
    """
    if not any(type(p) is JSONText for p in params):
        return [json.dumps(
            {"jsonrpc": "1.0", "id": request_id, "method": method, "params": list(params)},
            separators=(",", ":"),
        ).encode()]
    head = json.dumps({"jsonrpc": "1.0", "id": request_id, "method": method}, separators=(",", ":")).encode()
    pieces = [head[:-1], b',"params":[']
    for i, param in enumerate(params):
        if i:
            pieces.append(b",")
        if type(param) is JSONText:
            pieces.extend(param.parts)
        else:
            pieces.append(json.dumps(param, separators=(",", ":")).encode())
    pieces.append(b"]}")
    return pieces


class NodeCallError(Exception):
    """A JSON-RPC call to a node failed; ``node`` and ``method`` say which."""

    def __init__(self, node, method, text):
        super().__init__(f"node {node}: {method} failed: {text}")
        self.node = node
        self.method = method


class NodeError(NodeCallError):
    """The node answered the call with a JSON-RPC error object."""

    def __init__(self, node, method, code, message):
        super().__init__(node, method, f"error {code}: {message}")
        self.code = code
        self.message = message


class NodeUnavailable(NodeCallError):
    """The node gave no usable answer (transport error, bad reply)."""

    def __init__(self, node, method, reason):
        super().__init__(node, method, reason)
        self.reason = reason


class NodeTimeout(NodeUnavailable):
    """The node did not answer within the call's timeout."""


def _validate_url(instance, attribute, value):
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"node url must be http(s)://host:port/, got {value!r}")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"node url has a bad port: {value!r}") from None


@attrs.frozen
class NodeConfig:
    """
    How to reach one node: its URL and either user/password (HTTP basic
    auth) or bitcoind's ``.cookie`` file, and the name logs and errors use
    (``host:port`` unless given).
    """

    url: str = attrs.field(validator=_validate_url)
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    cookie_file: str | None = None
    name: str = attrs.field()
    #: seconds a call may take unless the caller gives its own timeout
    timeout: float = 10.0

    @name.default
    def _name(self):
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    @classmethod
    def from_host(cls, host, port, **kw):
        """A node at ``http://host:port/``."""
        return cls(url=f"http://{host}:{port}/", **kw)

    @classmethod
    def from_entry(cls, entry, **kw):
        """
        From a config entry with ``host``, ``port``, ``user``, ``password``,
        ``cookie_file`` and ``url`` (``viabtc.config.NodeEntry``).
        """
        url = entry.url or f"http://{entry.host}:{entry.port}/"
        kw.setdefault("name", f"{entry.host}:{entry.port}")
        return cls(url=url, user=entry.user, password=entry.password,
                   cookie_file=entry.cookie_file, **kw)


class _NodeHTTPProtocol(HTTP11ClientProtocol):
    """An HTTP/1.1 client connection whose TCP transport sends ``NODE_SEND_LIMIT`` per turn."""

    def connectionMade(self):
        super().connectionMade()
        # A per-instance attribute shadows the class's limit; a TLS wrapper
        # (https node) has none and keeps its own pace.
        if hasattr(self.transport, "SEND_LIMIT"):
            self.transport.SEND_LIMIT = NODE_SEND_LIMIT


class _NodeHTTPFactory(protocol.Factory):
    """What ``HTTPConnectionPool`` builds connections with (its ``_factory`` hook)."""

    def __init__(self, quiescentCallback, metadata):
        self._quiescentCallback = quiescentCallback
        self._metadata = metadata

    def __repr__(self):
        return f"_NodeHTTPFactory({self._metadata})"

    def buildProtocol(self, addr):
        return _NodeHTTPProtocol(self._quiescentCallback)


class NodeConnectionPool(HTTPConnectionPool):
    """
    Persistent HTTP connections to a node, each writing a request out as
    fast as the kernel takes it (``NODE_SEND_LIMIT``), not 128 KiB per
    reactor turn.  Everything else (keep-alive, retries, timeouts) is
    ``HTTPConnectionPool``'s.
    """

    _factory = _NodeHTTPFactory
    cachedConnectionTimeout = IDLE_CONNECTION_TIMEOUT

    def __init__(self, reactor):
        super().__init__(reactor, persistent=True)


@implementer(IBodyProducer)
class _BytesProducer:
    """A request body already in memory, in pieces (``request_pieces``), written in one go."""

    def __init__(self, pieces):
        self._pieces = pieces
        self.length = sum(map(len, pieces))

    def startProducing(self, consumer):
        for piece in self._pieces:
            consumer.write(piece)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


def _describe(error):
    """A short text for a transport failure (unwrapping Twisted's wrappers)."""
    if isinstance(error, ResponseFailed) and error.reasons:
        error = error.reasons[0].value
    return f"{type(error).__name__}: {error}"


def _preview(data, limit=80):
    return repr(data[:limit]) + ("..." if len(data) > limit else "")


class NodeRPCClient:
    """
    JSON-RPC calls to one node over persistent HTTP connections.

    ``call()`` returns a Deferred firing with the call's ``result`` (JSON
    null is a valid result, e.g. ``submitblock`` success) or failing with a
    ``NodeCallError``.  With a cookie file, a 401 re-reads the cookie once
    (bitcoind writes a new one on every start) and repeats the call.
    """

    log = Logger()

    def __init__(self, config, reactor=None, pool=None):
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.name = config.name
        self._reactor = reactor
        if pool is None:
            pool = NodeConnectionPool(reactor)
        self._pool = pool
        self._agent = Agent(reactor, pool=pool)
        self._url = config.url.encode("ascii")
        self._next_id = 0
        self._cookie = None
        self._basic = None
        if config.cookie_file is None and config.user is not None:
            self._basic = _basic_auth(f"{config.user}:{config.password or ''}")

    def __repr__(self):
        return f"<NodeRPCClient {self.name}>"

    def call(self, method, *params, timeout=None):
        """
        Call ``method(*params)``; at most ``timeout`` seconds (config
        default).  A ``JSONText`` param goes into the request as it is.
        """
        timeout = self.config.timeout if timeout is None else timeout
        self._next_id += 1
        request_id = self._next_id
        body = request_pieces(request_id, method, params)
        d = self._post(body, method, request_id, may_reauth=self.config.cookie_file is not None)
        d.addTimeout(timeout, self._reactor, onTimeoutCancel=self._timed_out(method))
        d.addErrback(self._translate, method)
        return d

    def _timed_out(self, method):
        """
        What a timed-out call fails with: whatever the cancelled request
        failed with (the agent wraps the cancellation), it was our timeout.
        """

        def convert(result, timeout):
            if isinstance(result, Failure):
                raise NodeTimeout(self.name, method, f"no reply within {timeout:g} s")
            return result

        return convert

    def close(self):
        """Close idle connections (for a clean shutdown); a Deferred."""
        return self._pool.closeCachedConnections()

    def _authorization(self, method):
        if self.config.cookie_file is None:
            return self._basic
        if self._cookie is None:
            self._cookie = self._read_cookie(method)
        return self._cookie

    def _read_cookie(self, method):
        path = self.config.cookie_file
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise NodeUnavailable(self.name, method, f"cannot read cookie file {path}: {e}") from None
        if ":" not in text:
            raise NodeUnavailable(self.name, method, f"cookie file {path} is not user:password")
        return _basic_auth(text)

    def _post(self, body, method, request_id, may_reauth):
        try:
            authorization = self._authorization(method)
        except NodeUnavailable:
            return defer.fail()
        headers = Headers({b"content-type": [b"application/json"]})
        if authorization is not None:
            headers.addRawHeader(b"authorization", authorization)
        d = self._agent.request(b"POST", self._url, headers, _BytesProducer(body))
        d.addCallback(self._got_response, body, method, request_id, may_reauth)
        return d

    def _got_response(self, response, body, method, request_id, may_reauth):
        d = readBody(response)
        if response.code == 401:
            d.addBoth(lambda _: self._unauthorized(body, method, request_id, may_reauth))
            return d
        d.addCallback(self._parse, response.code, method, request_id)
        return d

    def _unauthorized(self, body, method, request_id, may_reauth):
        if not may_reauth:
            raise NodeUnavailable(self.name, method, "authentication failed (HTTP 401)")
        cookie = self._read_cookie(method)
        if cookie == self._cookie:
            raise NodeUnavailable(
                self.name, method, "authentication failed (HTTP 401) with the current cookie"
            )
        self._cookie = cookie
        self.log.info("node {peer}: cookie file changed; calling {method} again",
                      peer=self.name, method=method)
        return self._post(body, method, request_id, may_reauth=False)

    def _parse(self, data, status, method, request_id):
        try:
            reply = json.loads(data)
        except ValueError:
            raise NodeUnavailable(
                self.name, method, f"HTTP {status} reply is not JSON: {_preview(data)}"
            ) from None
        if not isinstance(reply, dict):
            raise NodeUnavailable(self.name, method, f"reply is not a JSON object: {_preview(data)}")
        error = reply.get("error")
        if error is not None:
            code, message = None, None
            if isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
            if not isinstance(code, int) or isinstance(code, bool):
                code = None
            if not isinstance(message, str):
                message = json.dumps(error)
            raise NodeError(self.name, method, code, message)
        if "result" not in reply:
            raise NodeUnavailable(self.name, method, f"reply has no result: {_preview(data)}")
        if reply.get("id") != request_id:
            raise NodeUnavailable(
                self.name, method, f"reply id {reply.get('id')!r} does not match request {request_id}"
            )
        if status != 200:
            raise NodeUnavailable(self.name, method, f"HTTP {status} with a result and no error")
        return reply["result"]

    def _translate(self, failure, method):
        if failure.check(NodeCallError, defer.CancelledError):
            return failure
        raise NodeUnavailable(self.name, method, _describe(failure.value))


def _basic_auth(credentials):
    return b"Basic " + base64.b64encode(credentials.encode("utf-8"))


@attrs.frozen
class NodeReply:
    """One node's answer to a ``NodeGroup.call_all``: a result or an error."""

    node: str
    result: object = None
    error: NodeCallError | None = None

    @property
    def ok(self):
        return self.error is None


def _reply_result(result, name):
    return NodeReply(name, result=result)


def _reply_error(failure, name):
    failure.trap(NodeCallError)
    return NodeReply(name, error=failure.value)


class NodeGroup:
    """
    Several nodes serving the same chain, in order of preference.

    ``call`` tries them in order; the first that answers (no transport
    error, no JSON-RPC error) wins and moves to the front, so later calls go
    to it first (the seed's sticky failover, ref §3.1).  ``call_all`` asks
    every node at once (block submission, confirmation).
    """

    log = Logger()

    def __init__(self, clients):
        if not clients:
            raise ValueError("a node group needs at least one node")
        names = [c.name for c in clients]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must differ (they label errors and reports): {names}")
        self._clients = list(clients)

    @classmethod
    def from_configs(cls, configs, reactor=None):
        return cls([NodeRPCClient(c, reactor) for c in configs])

    @property
    def clients(self):
        """The clients, preferred first."""
        return tuple(self._clients)

    @property
    def primary(self):
        """The client calls go to first."""
        return self._clients[0]

    def call(self, method, *params, timeout=None):
        """
        A Deferred with the first node's answer.  If every node fails: the
        first ``NodeError`` (a node did answer), else the first failure.
        """
        return defer.Deferred.fromCoroutine(self._call(method, params, timeout))

    async def _call(self, method, params, timeout):
        first_error = answered = None
        for client in list(self._clients):
            try:
                result = await client.call(method, *params, timeout=timeout)
            except NodeCallError as e:
                self.log.warn("{error}", error=e, peer=client.name, method=method)
                first_error = first_error or e
                if answered is None and isinstance(e, NodeError):
                    answered = e
                continue
            if client is not self._clients[0]:
                self._clients.remove(client)
                self._clients.insert(0, client)
                self.log.warn("node {peer} answered {method}; it is now the first node",
                              peer=client.name, method=method)
            return result
        raise answered or first_error

    def call_all(self, method, *params, timeout=None):
        """A Deferred with a ``NodeReply`` per node, in preference order."""
        calls = []
        for client in self._clients:
            d = client.call(method, *params, timeout=timeout)
            d.addCallbacks(_reply_result, _reply_error,
                           callbackArgs=(client.name,), errbackArgs=(client.name,))
            calls.append(d)
        d = defer.gatherResults(calls, consumeErrors=True)
        d.addErrback(lambda f: f.value.subFailure if f.check(defer.FirstError) else f)
        d.addCallback(tuple)
        return d

    def close(self):
        """Close every client's idle connections."""
        return defer.gatherResults([c.close() for c in self._clients])


__all__ = [
    "NodeCallError", "NodeError", "NodeUnavailable", "NodeTimeout",
    "NodeConfig", "NodeConnectionPool", "NodeRPCClient", "NodeReply", "NodeGroup",
]
