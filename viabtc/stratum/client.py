# -*- test-case-name: tests.stratum.test_client -*-
"""
The client side of Stratum v1: one session with a pool, as a miner sees it.

Three programs speak Stratum to somebody else's server: ``viabtc-miner`` (our
CPU miner and pool tester), poolbench (watches rival pools' jobs, never
submits, ref §7) and the mineragent's upstream link.  They share this module:
the handshake (``mining.configure`` / ``mining.subscribe`` /
``mining.authorize``), request ids matched to Deferreds with a timeout, the
server's notifications decoded into values, and reconnection with backoff.
What to *do* with a job is the caller's business, expressed by a
``StratumClientHandler``.

A pool is not trusted to be well-behaved: a malformed line, a reply to a
request never made, or a notification with broken parameters is logged with
the peer and dropped; only an over-long line (a server that never sends a
newline) closes the connection.
"""

import json
import re
from fractions import Fraction
from urllib.parse import urlsplit

import attrs
from OpenSSL import SSL
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.serialize import read_bip34_height, read_compact_size

#: BIP310's general-purpose version bits; what a miner asks for by default.
DEFAULT_VERSION_ROLLING_MASK = 0x1FFFE000

#: Seconds to wait for the reply to a request before giving up on it.
DEFAULT_REQUEST_TIMEOUT = 30.0

#: Longest line accepted from a pool.  A ``mining.notify`` with a 4 kB
#: coinbase2 and a 13-level branch is under 10 kB; anything near this limit is
#: a server that never sends a newline.
MAX_LINE_LENGTH = 256 * 1024

#: Longest wait a ``client.reconnect`` may ask for; a pool cannot park us.
MAX_RECONNECT_WAIT = 600.0


class StratumError(Exception):
    """
    The pool answered a request with an error (or with a plain ``false``).

    ``code`` is the JSON-RPC error code (e.g. 23 "Low difficulty share"), or
    ``None`` when the pool gave none.
    """

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return f"{self.code} {self.message}" if self.code is not None else self.message

    @classmethod
    def from_reply(cls, error_value):
        """
        Read the ``error`` member of a reply in any of the shapes pools use:
        ``[code, message, data]`` (Stratum), ``{"code":..,"message":..}``
        (JSON-RPC 2.0) or a bare string.
        """
        if isinstance(error_value, list) and error_value:
            code = error_value[0] if isinstance(error_value[0], int) else None
            message = str(error_value[1]) if len(error_value) > 1 else "error"
            return cls(code, message)
        if isinstance(error_value, dict):
            code = error_value.get("code")
            return cls(code if isinstance(code, int) else None,
                       str(error_value.get("message", "error")))
        return cls(None, str(error_value))


class RequestTimeout(Exception):
    """The pool did not answer a request within its timeout."""


class SessionClosed(Exception):
    """The connection closed while a request was waiting for its reply."""


class MalformedMessage(ValueError):
    """A message from the pool does not have the shape the method requires."""


# -- byte order at the Stratum edge (ref Appendix A) --------------------------

def prevhash_from_stratum(text):
    """
    Internal-order previous-block hash from ``mining.notify``'s prevhash.

    Stratum sends the internal-order bytes with each 4-byte word byte-swapped
    (ref Appendix A); swapping each word back gives header bytes 4..35.
    """
    raw = _hex_bytes(text, 32, "prevhash")
    return b"".join(raw[i:i + 4][::-1] for i in range(0, 32, 4))


def prevhash_to_stratum(prev_hash):
    """The ``mining.notify`` prevhash hex for an internal-order hash."""
    if len(prev_hash) != 32:
        raise ValueError(f"prev hash must be 32 bytes, got {len(prev_hash)}")
    return b"".join(prev_hash[i:i + 4][::-1] for i in range(0, 32, 4)).hex()


_HEX = re.compile(r"\A(?:[0-9a-fA-F]{2})*\Z")


def _hex_bytes(value, length, name):
    if not isinstance(value, str) or not _HEX.match(value):
        raise MalformedMessage(f"{name} is not a hex string: {value!r:.80}")
    raw = bytes.fromhex(value)
    if length is not None and len(raw) != length:
        raise MalformedMessage(f"{name} must be {length} bytes, got {len(raw)}")
    return raw


def _hex_u32(value, name):
    if not isinstance(value, str) or len(value) != 8:
        raise MalformedMessage(f"{name} must be 8 hex digits: {value!r:.80}")
    try:
        return int(value, 16)
    except ValueError:
        raise MalformedMessage(f"{name} must be 8 hex digits: {value!r:.80}") from None


@attrs.frozen
class StratumJob:
    """
    One ``mining.notify``, decoded: hex turned into bytes in internal order
    and the ``%08x`` fields into integers, so miners and watchers never touch
    the wire form.
    """

    job_id: str
    prev_hash: bytes
    coinbase1: bytes
    coinbase2: bytes
    branch: tuple
    version: int
    bits: int
    time: int
    clean: bool

    @classmethod
    def from_notify(cls, params):
        """
        Decode ``mining.notify`` params ``[job_id, prevhash, coinbase1,
        coinbase2, branch, version, nbits, ntime, clean]``; a wrong shape
        raises ``MalformedMessage`` naming the field.
        """
        if not isinstance(params, list) or len(params) < 9:
            raise MalformedMessage("mining.notify needs 9 params")
        job_id, prevhash, cb1, cb2, branch, version, bits, ntime, clean = params[:9]
        if not isinstance(job_id, str) or not job_id:
            raise MalformedMessage(f"job id must be a non-empty string: {job_id!r:.80}")
        if not isinstance(branch, list):
            raise MalformedMessage("merkle branch must be a list")
        return cls(
            job_id=job_id,
            prev_hash=prevhash_from_stratum(prevhash),
            coinbase1=_hex_bytes(cb1, None, "coinbase1"),
            coinbase2=_hex_bytes(cb2, None, "coinbase2"),
            branch=tuple(_hex_bytes(h, 32, "merkle branch entry") for h in branch),
            version=_hex_u32(version, "version"),
            bits=_hex_u32(bits, "nbits"),
            time=_hex_u32(ntime, "ntime"),
            clean=bool(clean),
        )

    def coinbase_height(self):
        """
        The block height this job mines, read from the BIP34 push at the
        start of the coinbase scriptSig (ref §7).

        The scriptSig length is parsed as a varint rather than assumed to be
        one byte at offset 41 as the seed's poolbench does, so a pool with a
        long scriptSig (or an odd input count encoding) still reads right.
        Raises ``MalformedMessage`` when coinbase1 is too short to hold it.
        """
        data = self.coinbase1
        try:
            count, offset = read_compact_size(data, 4)
            if count != 1:
                raise MalformedMessage(f"coinbase must have one input, has {count}")
            _script_length, offset = read_compact_size(data, offset + 36)
            return read_bip34_height(data[offset:])
        except ValueError as e:
            raise MalformedMessage(f"no BIP34 height in coinbase1: {e}") from None


@attrs.frozen
class Subscription:
    """What ``mining.subscribe`` granted: our extranonce1 and extranonce2 size."""

    extranonce1: bytes
    extranonce2_size: int

    @classmethod
    def from_result(cls, result):
        if not isinstance(result, list) or len(result) < 3:
            raise MalformedMessage(f"subscribe result must be a 3-item list: {result!r:.120}")
        extranonce1 = _hex_bytes(result[1], None, "extranonce1")
        size = result[2]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= 32:
            raise MalformedMessage(f"bad extranonce2 size {size!r}")
        return cls(extranonce1, size)


def difficulty_from_json(value):
    """
    A difficulty from JSON as an exact number: ``int`` stays ``int``; a float
    becomes the ``Fraction`` of its shortest decimal form (0.001 means 1/1000,
    not the binary double near it), so targets are computed exactly.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedMessage(f"difficulty must be a number: {value!r:.80}")
    exact = value if isinstance(value, int) else Fraction(repr(value))
    if exact <= 0:
        raise MalformedMessage(f"difficulty must be positive: {value!r}")
    return exact


class StratumClientHandler:
    """
    What a Stratum client session tells its user.  Subclass and override what
    you need; every method here does nothing.

    Notifications may arrive before the handshake completes (some pools send
    the first job right after the subscribe reply), so the values also stay
    readable on the session: ``job``, ``difficulty``, ``version_mask``,
    ``subscription``.
    """

    def sessionStarted(self, session):
        """``session`` (a ``StratumClientProtocol``) subscribed and authorized."""

    def sessionEnded(self, session, reason):
        """The connection of ``session`` closed (``reason`` is a Failure)."""

    def jobReceived(self, job):
        """A ``mining.notify`` arrived, as a ``StratumJob``."""

    def difficultyChanged(self, difficulty):
        """``mining.set_difficulty``: an ``int`` or exact ``Fraction``."""

    def versionMaskChanged(self, mask):
        """The version-rolling mask now allowed (0 means no rolling)."""

    def extranonceChanged(self, subscription):
        """``mining.set_extranonce``: work built on the old one is void."""


class StratumClientProtocol(Protocol):
    """
    One Stratum v1 client connection.

    On connect it sends ``mining.configure`` (only when version rolling is
    wanted) and ``mining.subscribe`` together, then ``mining.authorize``
    after the subscribe reply; when authorize answers ``true`` the session is
    ready (``whenReady()``, ``handler.sessionStarted``).  A failed handshake
    closes the connection so the reconnecting service tries again.  The
    configure reply is not waited for: a pool that does not know the method
    may never answer, and then the session simply does not roll versions.
    """

    log = Logger()

    def __init__(self, handler, user, password, clock, *, user_agent=None,
                 version_rolling_mask=None, timeout=DEFAULT_REQUEST_TIMEOUT):
        self.handler = handler
        self.user = user
        self.password = password
        self.clock = clock
        self.user_agent = user_agent
        self.requested_mask = version_rolling_mask
        self.timeout = timeout
        self.peer = None
        self.subscription = None
        self.authorized = False
        self.difficulty = None
        self.version_mask = 0
        self.job = None
        self._buffer = b""
        self._next_id = 1
        self._pending = {}
        self._ready_waiters = []
        self._handshake_failure = None
        self._notifications = {
            "mining.notify": self._on_notify,
            "mining.set_difficulty": self._on_set_difficulty,
            "mining.set_version_mask": self._on_set_version_mask,
            "mining.set_extranonce": self._on_set_extranonce,
            "client.reconnect": self._on_reconnect,
            "client.show_message": self._on_show_message,
            "client.get_version": self._on_get_version,
        }

    # -- connection -----------------------------------------------------------

    def connectionMade(self):
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', '')}"
        if self.requested_mask is not None:
            self.request("mining.configure", [
                ["version-rolling"],
                {"version-rolling.mask": f"{self.requested_mask:08x}",
                 "version-rolling.min-bit-count": 2},
            ]).addCallbacks(self._configured, self._configure_failed)
        params = [self.user_agent] if self.user_agent else []
        handshake = self.request("mining.subscribe", params).addCallback(self._subscribed)
        handshake.addCallback(self._authorized).addCallbacks(
            self._session_started, self._handshake_failed)

    def connectionLost(self, reason):
        pending, self._pending = self._pending, {}
        for deferred, timer, method in pending.values():
            timer.cancel()
            deferred.errback(SessionClosed(f"connection closed before the reply to {method}"))
        if not self.authorized and self._handshake_failure is None:
            self._fail_waiters(SessionClosed("connection closed during the handshake"))
        self._tell_handler("sessionEnded", self, reason)

    def _tell_handler(self, name, *args):
        """Call a handler method; a bug in it must not cost us the connection."""
        try:
            getattr(self.handler, name)(*args)
        except Exception:
            self.log.failure("handler {name} failed", name=name, peer=self.peer,
                             role="stratum-client")

    def whenReady(self):
        """A Deferred firing with this session once authorized (or failing)."""
        if self.authorized:
            return succeed(self)
        if self._handshake_failure is not None:
            return fail(self._handshake_failure)
        waiter = Deferred()
        self._ready_waiters.append(waiter)
        return waiter

    # -- requests -------------------------------------------------------------

    def request(self, method, params, timeout=None):
        """
        Send ``{"id", "method", "params"}``; the Deferred fires with the
        reply's ``result`` or fails with ``StratumError``, ``RequestTimeout``
        or ``SessionClosed``.
        """
        request_id = self._next_id
        self._next_id += 1
        deferred = Deferred()
        timer = self.clock.callLater(
            self.timeout if timeout is None else timeout, self._timed_out, request_id)
        self._pending[request_id] = (deferred, timer, method)
        self._send({"id": request_id, "method": method, "params": params})
        return deferred

    def submit(self, job_id, extranonce2, ntime, nonce, version_bits=None):
        """
        ``mining.submit`` one share; fires with ``None`` when the pool says
        ``true``, fails with ``StratumError`` otherwise (a ``false`` without
        an error becomes code ``None``, "rejected").

        ``version_bits`` (the rolled bits, already inside the mask) is sent as
        the BIP310 sixth parameter when not ``None``.
        """
        params = [self.user, job_id, extranonce2.hex(), f"{ntime:08x}", f"{nonce:08x}"]
        if version_bits is not None:
            params.append(f"{version_bits:08x}")
        return self.request("mining.submit", params).addCallback(_require_true)

    def _send(self, message):
        self.transport.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def _timed_out(self, request_id):
        deferred, _timer, method = self._pending.pop(request_id)
        self.log.warn("no reply to {method} within {timeout}s", method=method,
                      timeout=self.timeout, peer=self.peer, role="stratum-client")
        deferred.errback(RequestTimeout(f"no reply to {method}"))

    # -- handshake ------------------------------------------------------------

    def _configured(self, result):
        granted = 0
        if isinstance(result, dict) and result.get("version-rolling") is True:
            try:
                granted = int(result.get("version-rolling.mask", "0"), 16)
            except (TypeError, ValueError):
                self.log.warn("bad version-rolling.mask in {result!r}", result=result,
                              peer=self.peer, role="stratum-client")
        self._set_version_mask(granted)

    def _configure_failed(self, failure):
        self.log.info("no version rolling: mining.configure failed: {error}",
                      error=failure.getErrorMessage(), peer=self.peer, role="stratum-client")
        self._set_version_mask(0)

    def _subscribed(self, result):
        self.subscription = Subscription.from_result(result)
        return self.request("mining.authorize", [self.user, self.password])

    def _authorized(self, result):
        _require_true(result)
        self.authorized = True
        self.log.info("authorized as {user}", user=self.user, peer=self.peer,
                      role="stratum-client")

    def _session_started(self, _):
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(self)
        self._tell_handler("sessionStarted", self)

    def _handshake_failed(self, failure):
        if failure.check(SessionClosed):
            self._fail_waiters(failure.value)
            return
        self.log.warn("handshake with the pool failed: {error}",
                      error=failure.getErrorMessage(), peer=self.peer, role="stratum-client")
        self._fail_waiters(failure.value)
        self.transport.loseConnection()

    def _fail_waiters(self, exception):
        self._handshake_failure = exception
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.errback(exception)

    # -- incoming -------------------------------------------------------------

    def dataReceived(self, data):
        self._buffer += data
        if b"\n" not in data:
            if len(self._buffer) > MAX_LINE_LENGTH:
                self._line_too_long()
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._line_received(line)
        if len(self._buffer) > MAX_LINE_LENGTH:
            self._line_too_long()

    def _line_too_long(self):
        self.log.warn("line longer than {limit} bytes from the pool; closing",
                      limit=MAX_LINE_LENGTH, peer=self.peer, role="stratum-client")
        self._buffer = b""
        self.transport.loseConnection()

    def _line_received(self, line):
        try:
            message = json.loads(line)
        except ValueError:
            self.log.warn("malformed line from the pool: {line!r:.200}", line=line,
                          peer=self.peer, role="stratum-client")
            return
        if not isinstance(message, dict):
            self.log.warn("pool sent a non-object: {line!r:.200}", line=line,
                          peer=self.peer, role="stratum-client")
            return
        method = message.get("method")
        if isinstance(method, str):
            self._notification_received(method, message)
        else:
            self._reply_received(message)

    def _reply_received(self, message):
        entry = self._pending.pop(message.get("id"), None) if _hashable(message.get("id")) else None
        if entry is None:
            self.log.warn("reply to no pending request (late or unknown id): {message!r:.200}",
                          message=message, peer=self.peer, role="stratum-client")
            return
        deferred, timer, _method = entry
        timer.cancel()
        if message.get("error") is not None:
            deferred.errback(StratumError.from_reply(message["error"]))
        else:
            deferred.callback(message.get("result"))

    def _notification_received(self, method, message):
        handler = self._notifications.get(method)
        if handler is None:
            self.log.info("ignoring unknown method {method} from the pool", method=method,
                          peer=self.peer, role="stratum-client")
            return
        params = message.get("params")
        if not isinstance(params, list):
            params = []
        try:
            handler(params, message.get("id"))
        except MalformedMessage as e:
            self.log.warn("bad {method} from the pool: {error}", method=method, error=str(e),
                          peer=self.peer, role="stratum-client")

    def _on_notify(self, params, _id):
        job = StratumJob.from_notify(params)
        self.job = job
        self._tell_handler("jobReceived", job)

    def _on_set_difficulty(self, params, _id):
        if not params:
            raise MalformedMessage("mining.set_difficulty without a difficulty")
        self.difficulty = difficulty_from_json(params[0])
        self._tell_handler("difficultyChanged", self.difficulty)

    def _on_set_version_mask(self, params, _id):
        if not params:
            raise MalformedMessage("mining.set_version_mask without a mask")
        mask = _hex_u32(params[0], "version mask")
        self._set_version_mask(mask)

    def _set_version_mask(self, mask):
        """Never roll a bit we did not ask for, whatever the pool grants."""
        mask &= self.requested_mask or 0
        if mask != self.version_mask:
            self.version_mask = mask
            self._tell_handler("versionMaskChanged", mask)

    def _on_set_extranonce(self, params, _id):
        self.subscription = Subscription.from_result([None, *params[:2]])
        self._tell_handler("extranonceChanged", self.subscription)

    def _on_reconnect(self, params, _id):
        host = params[0] if len(params) > 0 and isinstance(params[0], str) and params[0] else None
        port = None
        if len(params) > 1 and params[1] not in (None, ""):
            try:
                port = int(params[1])
            except (TypeError, ValueError):
                raise MalformedMessage(f"bad port {params[1]!r:.40}") from None
            if not 0 < port < 65536:
                raise MalformedMessage(f"bad port {port}")
        wait = 0.0
        if len(params) > 2 and isinstance(params[2], (int, float)) and not isinstance(params[2], bool):
            wait = min(max(float(params[2]), 0.0), MAX_RECONNECT_WAIT)
        self.log.info("pool asks to reconnect to {host}:{port} in {wait}s", host=host or "(same)",
                      port=port or "(same)", wait=wait, peer=self.peer, role="stratum-client")
        redirect = getattr(self.factory, "redirect", None)
        if redirect is not None:
            redirect(host, port, wait)
        self.transport.loseConnection()

    def _on_show_message(self, params, _id):
        self.log.info("message from the pool: {text!r:.200}", text=params[0] if params else "",
                      peer=self.peer, role="stratum-client")

    def _on_get_version(self, _params, request_id):
        if request_id is not None:
            self._send({"id": request_id, "result": self.user_agent or "viabtc", "error": None})


def _hashable(value):
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _require_true(result):
    if result is not True:
        raise StratumError(None, "rejected" if result is False else f"unexpected result {result!r:.80}")
    return None


class StratumClientFactory(Factory):
    """
    Builds a ``StratumClientProtocol`` per connection, all reporting to one
    handler, so the handler outlives reconnections.  ``redirect`` (set by
    ``StratumClientService``) is how a ``client.reconnect`` moves the
    service to another address.
    """

    protocol = StratumClientProtocol
    redirect = None
    noisy = False

    def __init__(self, handler, user, password, clock, **options):
        self.handler = handler
        self.user = user
        self.password = password
        self.clock = clock
        self.options = options

    def buildProtocol(self, addr):
        protocol = self.protocol(self.handler, self.user, self.password, self.clock,
                                 **self.options)
        protocol.factory = self
        return protocol


# -- addresses and endpoints ---------------------------------------------------

@attrs.frozen
class StratumAddress:
    """Where a pool listens, from a ``stratum+tcp://`` or ``stratum+ssl://`` URL."""

    host: str
    port: int
    tls: bool = False

    @classmethod
    def from_url(cls, url):
        """
        Parse ``stratum+tcp://host:port`` (also ``stratum+ssl://``,
        ``stratum+tls://``, and bare ``host:port``); a bad URL raises
        ``ValueError`` saying what is wrong.
        """
        if "://" not in url:
            url = "stratum+tcp://" + url
        parts = urlsplit(url)
        schemes = {"stratum+tcp": False, "stratum": False, "tcp": False,
                   "stratum+ssl": True, "stratum+tls": True, "ssl": True}
        if parts.scheme not in schemes:
            raise ValueError(f"unknown scheme {parts.scheme!r} in {url!r} "
                             "(use stratum+tcp:// or stratum+ssl://)")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"bad port in {url!r}") from None
        if not parts.hostname or port is None:
            raise ValueError(f"{url!r} needs a host and a port")
        return cls(parts.hostname, port, schemes[parts.scheme])


@attrs.frozen
class TLSSettings:
    """
    How to check a pool's certificate: against ``cafile`` (PEM), against a
    pinned SHA-256 ``fingerprint`` of its certificate, not at all
    (``insecure``), or, by default, against the system's trust store.
    """

    cafile: str | None = None
    fingerprint: str | None = None
    insecure: bool = False

    def connection_creator(self, host):
        if self.fingerprint:
            return PinnedCertificate(host, self.fingerprint)
        if self.insecure:
            return PinnedCertificate(host, None)
        if self.cafile:
            with open(self.cafile, "rb") as f:
                trust = Certificate.loadPEM(f.read())
            return optionsForClientTLS(host, trustRoot=trust)
        return optionsForClientTLS(host)


def _normalise_fingerprint(text):
    digest = text.replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"fingerprint must be a SHA-256 hex digest: {text!r}")
    return digest


@implementer(IOpenSSLClientConnectionCreator)
class PinnedCertificate:
    """
    TLS to a pool whose certificate is identified by its SHA-256 fingerprint
    (a self-signed pool certificate needs no CA), or, with no fingerprint,
    not checked at all (``--insecure``, for tests and trusted networks).
    """

    def __init__(self, host, fingerprint):
        self.host = host
        self.fingerprint = None if fingerprint is None else _normalise_fingerprint(fingerprint)

    def _verify(self, _connection, certificate, _errno, depth, _ok):
        if self.fingerprint is None:
            return True
        if depth != 0:
            return True
        digest = certificate.digest("sha256").decode().replace(":", "").lower()
        return digest == self.fingerprint

    def clientConnectionForTLS(self, tlsProtocol):
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_verify(SSL.VERIFY_PEER, self._verify)
        connection = SSL.Connection(context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_tlsext_host_name(self.host.encode("idna"))
        return connection


def stratum_endpoint(reactor, address, tls=TLSSettings()):
    """The client endpoint for ``address``, wrapped in TLS when it asks for it."""
    endpoint = HostnameEndpoint(reactor, address.host, address.port)
    if address.tls:
        endpoint = wrapClientTLS(tls.connection_creator(address.host), endpoint)
    return endpoint


@implementer(IStreamClientEndpoint)
class RedirectableEndpoint:
    """
    A client endpoint whose target a pool may change with
    ``client.reconnect``: the next connection goes to the new address, after
    the wait the pool asked for.
    """

    def __init__(self, clock, address, endpoint_for):
        self.clock = clock
        self.address = address
        self.endpoint_for = endpoint_for
        self._wait = 0.0

    def __repr__(self):
        scheme = "stratum+ssl" if self.address.tls else "stratum+tcp"
        return f"{scheme}://{self.address.host}:{self.address.port}"

    def redirect(self, host, port, wait):
        self.address = attrs.evolve(self.address, host=host or self.address.host,
                                    port=port or self.address.port)
        self._wait = wait

    def connect(self, factory):
        endpoint = self.endpoint_for(self.address)
        wait, self._wait = self._wait, 0.0
        if wait:
            return deferLater(self.clock, wait, endpoint.connect, factory)
        return endpoint.connect(factory)


class StratumClientService(ClientService):
    """
    Keeps one Stratum session to a pool alive: connects, reconnects with
    exponential backoff when the pool goes away, and follows
    ``client.reconnect``.  ``endpoint_for(address)`` builds the endpoint (tests
    and TLS plug in here); by default plain ``stratum_endpoint``.
    """

    def __init__(self, reactor, address, handler, user, password, *, endpoint_for=None,
                 retry_policy=None, **options):
        if endpoint_for is None:
            def endpoint_for(target):
                return stratum_endpoint(reactor, target)
        self.endpoint = RedirectableEndpoint(reactor, address, endpoint_for)
        self.factory = StratumClientFactory(handler, user, password, reactor, **options)
        self.factory.redirect = self.endpoint.redirect
        super().__init__(self.endpoint, self.factory,
                         retryPolicy=retry_policy or backoffPolicy(initialDelay=0.5, maxDelay=30.0),
                         clock=reactor)
