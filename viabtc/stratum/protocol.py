# -*- test-case-name: tests.stratum.test_protocol -*-
"""
The miner-facing Stratum v1 server protocol and its factory.

Shape (architecture §4): each ``dataReceived`` buffer is split once on
newlines, every complete line is handled in turn, and all replies and
notifications produced go out in one write (one ``send`` straight to the
socket when the transport has nothing queued, see ``write``).  Per-line
callbacks and a write per reply cost a large part of the throughput.

Bad input is answered, never raised (docs/stratum.md has the table):

* a line longer than ``max_pkg_size``: error 20 "Line too long", then close
  (nothing more is buffered);
* a line that is not JSON or not a JSON object: error 20 with id null, then
  close — the peer is not speaking Stratum (the seed also closes);
* an object without a string ``method`` or with non-array ``params``:
  error 20 echoing its id, connection kept;
* an unknown method: error 20 "Unknown method", connection kept (the seed
  stayed silent, which leaves miners waiting);
* bad ``mining.submit`` params: error 20 naming the problem, counted as an
  invalid share (the seed closed without a word);
* any exception inside a handler: logged, answered with error 20.

Abuse limits (``viabtc.stratum.limits``, docs/security.md): connections in
all and per IP, a token bucket of requests per connection, a deadline to
authorize, a bound on replies queued for a peer that stopped reading, and
temporary bans of hosts closed for abuse again and again.  Each is counted in
``factory.counts`` as a ``limit_*`` key when it bites.  They cost the hot path
one subtraction per line and one attribute test per write; deadlines are
swept once a second from tables ordered by deadline, not timers per session.

Difficulty (docs/stratum.md): a vardiff change is sent with the next job,
``mining.set_difficulty`` just before its ``mining.notify``, and shares are
judged by it from then on; shares for earlier jobs that meet only the old
difficulty are still credited at it (the seed's ``difficulty_last`` grace).
A miner's own difficulty (``d=`` password, ``mining.suggest_difficulty``) and
the idle decrease apply at once.
"""

import json
import math
from binascii import hexlify

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import COMPILED, hash_to_display_hex
from viabtc.sendnow import direct_socket, send_now
from viabtc.stratum.account import clamp_difficulty, parse_password_difficulty
from viabtc.stratum.limits import Limits, Offenders
from viabtc.stratum.session import Input, Session, State
from viabtc.stratum.share import Reject, check_share
from viabtc.stratum.vardiff import VarDiff

try:
    from viabtc.stratum._submit import parse_submit as _parse_submit
except ImportError:  # built without a C compiler (setup.py): every line is read the general way

    def _no_fast_path(line):
        return None

    _parse_submit = _no_fast_path
else:
    _no_fast_path = None

_AUTHORIZED = State.AUTHORIZED
_CLOSING = State.CLOSING
_TRUE_TAIL = b',"error":null,"result":true}\n'
_TRUE_REPLY = b'{"id":%d' + _TRUE_TAIL
_SEPARATORS = (",", ":")
_decode_json = json.JSONDecoder().decode
_MAX_USER_AGENT = 64
_EXTRANONCE2_SIZE = 8
#: How often the factory sweeps authorization and close deadlines.
SWEEP_INTERVAL = 1.0
#: "authorized" log lines written one by one per sweep interval; beyond
#: that (a reconnect storm) they are counted and summed up in one line.
AUTHORIZED_LINES = 50


def uncompiled():
    """
    What of the share path runs in Python because its C module was not
    built (setup.py: a C compiler, OpenSSL's headers), as one warning for
    a role's start, or ``None``: together they make a share two to three
    times cheaper.
    """
    missing = []
    if not COMPILED:
        missing.append("viabtc.bitcoin._sha256d (shares are hashed in Python)")
    if _parse_submit is _no_fast_path:
        missing.append("viabtc.stratum._submit (share lines are read as JSON)")
    if not missing:
        return None
    return "not built (see setup.py): " + "; ".join(missing) + ": shares cost two to three times the CPU"


def _error_tail(code, message):
    return (',"error":' + json.dumps([int(code), message, None], separators=_SEPARATORS) + ',"result":null}\n').encode()


_REJECT_TAILS = {code: _error_tail(code, code.message) for code in Reject}


def _render_id(msg_id):
    """The request id as JSON, echoed verbatim in the reply."""
    if type(msg_id) is int:
        return b'{"id":%d' % msg_id
    return b'{"id":' + json.dumps(msg_id, separators=_SEPARATORS).encode()


def _ok(msg_id, result):
    return _render_id(msg_id) + b',"error":null,"result":' + json.dumps(result, separators=_SEPARATORS).encode() + b"}\n"


def _error(msg_id, code, message):
    return _render_id(msg_id) + _error_tail(code, message)


def share_reply(msg_id, code=None):
    """The reply to a ``mining.submit``: ``true``, or the error of ``Reject`` ``code``."""
    return _render_id(msg_id) + (_TRUE_TAIL if code is None else _REJECT_TAILS[code])


def _notification(method, params):
    return json.dumps({"id": None, "method": method, "params": params}, separators=_SEPARATORS).encode() + b"\n"


def _format_difficulty(difficulty):
    # Integers stay integers on the wire, as the seed (and old miners) expect.
    if difficulty == int(difficulty) and difficulty < 2**53:
        return str(int(difficulty))
    return repr(float(difficulty))


def set_difficulty_line(difficulty):
    """The ``mining.set_difficulty`` notification for ``difficulty``."""
    return b'{"id":null,"method":"mining.set_difficulty","params":[' + _format_difficulty(difficulty).encode() + b"]}\n"


def _parse_difficulty(value):
    """A finite number > 0 from JSON, or ``None`` (also for an integer beyond any float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        if not math.isfinite(value) or value <= 0:
            return None
    except OverflowError:
        return None
    return value


def _hex_bytes(text, size):
    """``size`` bytes from exactly ``2 * size`` hex digits, or ``None``."""
    if type(text) is not str or len(text) != 2 * size:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    # fromhex skips spaces between bytes: the length check catches those.
    return raw if len(raw) == size else None


def _version_bits(text):
    """The optional sixth submit param: 1..8 hex digits, as an integer, or ``None``."""
    if type(text) is not str or not 0 < len(text) <= 8:
        return None
    raw = _hex_bytes(text.rjust(8, "0"), 4)
    return None if raw is None else int.from_bytes(raw, "big")


def submit_fields(msg_id, params):
    """
    ``mining.submit`` params read: ``(msg_id, account, job_id, extranonce2,
    ntime, nonce, version_bits)`` (extranonce2 as bytes, the rest of the
    hex as integers, version bits 0 when absent), or what is wrong with
    them, a str.  ``viabtc.stratum._submit`` reads the common line to the
    same tuple in one pass.
    """
    if not 5 <= len(params) <= 6:
        return "expected 5 or 6 params"
    account, job_id, extranonce2, ntime, nonce = params[:5]
    if type(account) is not str or type(job_id) is not str:
        return "account and job id must be strings"
    extranonce2 = _hex_bytes(extranonce2, _EXTRANONCE2_SIZE)
    if extranonce2 is None:
        return "extranonce2 must be 16 hex digits"
    ntime = _hex_bytes(ntime, 4)
    nonce = _hex_bytes(nonce, 4)
    if ntime is None or nonce is None:
        return "ntime and nonce must be 8 hex digits"
    version_bits = 0
    if len(params) == 6:
        version_bits = _version_bits(params[5])
        if version_bits is None:
            return "version bits must be 1 to 8 hex digits"
    return msg_id, account, job_id, extranonce2, int.from_bytes(ntime, "big"), int.from_bytes(nonce, "big"), version_bits


@implementer(IPushProducer)
class StratumServerProtocol(Protocol):
    """
    One miner connection.  ``self.session`` holds its state; the factory's
    ``context`` (``IPoolContext``) supplies jobs and receives events.

    The protocol registers itself as the transport's streaming producer: the
    transport (TCP or TLS) pauses it when its send buffer is full, which is
    how a peer that stopped reading is noticed without looking inside the
    transport.  Bytes written while paused are counted and, past
    ``limits.max_send_buffer``, the connection is aborted.

    Methods are dispatched through ``METHODS`` (name -> handler), so a
    subclass can add a family of methods (the ``agent.*`` protocol) without
    touching this one.  A handler is called as ``handler(self, msg_id,
    params, out, now)`` and appends its reply lines to ``out``.  The one
    exception is the common ``mining.submit`` line, read in C and handed
    to ``_share`` without a table lookup: a subclass changes what a share
    does by overriding ``_share`` or ``_accepted``, not its table entry.
    """

    _log = Logger()

    session = None
    _buffer = b""
    #: token bucket: requests this connection may still send, as of ``_stamp``
    _tokens = 0.0
    _stamp = 0.0
    #: over the rate: the reactor call that reads on (None: not throttled),
    #: and when this run of throttling began (None: the bucket was full since)
    _throttle = None
    _throttled_since = None
    #: the transport asked us to stop producing; bytes written since then
    _paused = False
    _unsent = 0
    _aborted = False
    #: the socket of a plain TCP transport, written to directly while the
    #: transport has nothing queued (see ``write``); ``None`` otherwise
    _socket = None
    #: a block candidate was handed on during this read: its reply goes
    #: through the transport, after the candidate's own write
    _after_block = False

    def __init__(self, factory):
        self.factory = factory
        self.context = factory.context
        self.settings = factory.context.settings
        self.limits = factory.limits
        self._clock = factory.clock

    # -- connection lifecycle -------------------------------------------------

    def connectionMade(self):
        peer = self.transport.getPeer()
        host = getattr(peer, "host", str(peer))
        port = getattr(peer, "port", 0)
        now = self._clock.seconds()
        factory = self.factory
        factory.count("connection_new")
        if self.context.is_banned(host):
            factory.count("ip_banned")
            self._log.info("refused banned peer {peer}", role=self.context.role, peer=f"{host}:{port}")
            self.transport.loseConnection()
            return
        refused = factory.refusal(host, now)
        if refused is not None:
            factory.count(refused)
            self._log.info("refused {peer}: {limit}", role=self.context.role, peer=f"{host}:{port}", limit=refused)
            self.transport.loseConnection()
            return
        vardiff = VarDiff(self.settings.vardiff, now)
        self.session = Session(self.context.allocate_identity(), host, port, now, vardiff.difficulty)
        self.session.vardiff = vardiff
        self._tokens = float(self.limits.request_burst)
        self._stamp = now
        transport = self.transport
        transport.registerProducer(self, True)
        self._socket = direct_socket(transport)
        factory.admitted(self, now)

    def connectionLost(self, reason):
        session = self.session
        if session is None:
            return
        if self._throttle is not None and self._throttle.active():
            self._throttle.cancel()
        self.factory.released(self)
        self.factory.count("connection_close")
        session.transition(Input.CLOSE)
        if session.accounts:
            try:
                self.context.session_closed(session)
            except Exception:
                self._log.failure("session_closed event failed", role=self.context.role, peer=session.peer)

    def close(self):
        """
        Close after whatever was already written (bans, idle, abuse); a peer
        that does not take it within ``limits.close_timeout`` is aborted.
        """
        if self._aborted:
            return
        if self.session is not None:
            self.session.transition(Input.CLOSE)
            self.factory.closing(self)
        self.transport.loseConnection()

    def abort(self):
        """Drop the connection now, unsent bytes and all."""
        if self._aborted:
            return
        self._aborted = True
        if self.session is not None:
            self.session.transition(Input.CLOSE)
        self.transport.abortConnection()

    # -- IPushProducer: the transport's verdict on the peer's reading ----------

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self._unsent = 0

    def stopProducing(self):
        pass

    def write(self, data):
        """
        Send ``data``, unless the peer has left more than
        ``limits.max_send_buffer`` bytes unread: then it is dropped.

        On a plain TCP connection whose transport has nothing queued, the
        bytes go straight to the socket (``viabtc.sendnow``): one ``send``
        here is what makes a job broadcast to 10,000 sessions fit in 100 ms
        (docs/benchmarks.md).  A read that found a block replies through
        the transport only: the candidate, sent to the jobmaster link just
        before, is not overtaken by a direct send of the miner's "accepted"
        (architecture §4).
        """
        if self._paused:
            self._unsent += len(data)
            if self._unsent > self.limits.max_send_buffer:
                self.factory.offence(self, "limit_slow_reader")
                self.abort()
                return
        if self._after_block:
            self._after_block = False
            self.transport.write(data)
        else:
            send_now(self.transport, self._socket, data)

    # -- input ----------------------------------------------------------------

    def dataReceived(self, data):
        session = self.session
        if session is None or session.state is _CLOSING:
            return
        if self._buffer:
            data = self._buffer + data
        if self._throttle is not None:
            # Held back: what the transport still delivers waits with the rest.
            self._buffer = data
            return
        lines = data.split(b"\n")
        rest = lines.pop()
        now = self._clock.seconds()
        session.last_active = now
        limits = self.limits
        # Token bucket, refilled once per read: a line costs one token.
        tokens = self._tokens + (now - self._stamp) * limits.request_rate
        if tokens >= limits.request_burst:
            tokens = limits.request_burst
            self._throttled_since = None
        self._stamp = now
        start = tokens
        out = []
        limit = self.settings.max_pkg_size
        parse_submit = _parse_submit
        for line in lines:
            tokens -= 1
            if tokens < 0:
                # Lines cost exactly one token each: the first unread is
                # lines[start - tokens - 1], found without a per-line count.
                tokens = self._hold_back(lines, round(start - tokens) - 1, rest, tokens + 1, now, out)
                break
            if len(line) >= limit:
                self._too_long(out)
                break
            # The common share line is read in C (``_parse_submit``) and
            # goes straight to ``_share``; any other line, or form of it,
            # the general way (``_line``), which reads the same from it.
            fields = parse_submit(line)
            if fields is None:
                self._line(line, out, now)
            else:
                mark = len(out)
                try:
                    self._share(fields, out, now)
                except Exception:
                    self._failed("mining.submit", fields[0], out, mark)
            if session.state is _CLOSING:
                break
        else:
            if len(rest) >= limit:
                self._too_long(out)
            else:
                self._buffer = rest
        self._tokens = tokens
        if session.state is _CLOSING:
            self._buffer = b""
        if out:
            self.write(b"".join(out))
        if session.state is _CLOSING:
            self.close()

    def _too_long(self, out):
        self.factory.count("request_invalid")
        self.factory.offence(self, "limit_line")
        out.append(_error(None, Reject.OTHER, "Line too long"))
        self.session.transition(Input.CLOSE)

    def _hold_back(self, lines, first, rest, tokens, now, out):
        """
        The bucket is empty and ``lines[first:]`` (then ``rest``) are unread:
        stop reading until it holds them (or a burst), so TCP slows the
        sender down, and read on then (``_read_on``).  A connection held
        back for ``limits.throttle_time`` without the bucket filling up once
        is closed as sustained abuse.  Returns the tokens left.
        """
        limits = self.limits
        if self._throttled_since is None:
            self._throttled_since = now
            session = self.session
            self._log.info("throttling {peer} ({user}): over {rate:g} requests/s",
                           role=self.context.role, peer=f"{session.host}:{session.port}",
                           user=session.user, rate=limits.request_rate)
        elif now - self._throttled_since >= limits.throttle_time:
            self._rate_limited(out)
            return tokens
        pending = lines[first:]
        pending.append(rest)
        self._buffer = b"\n".join(pending)
        wanted = min(len(pending) - 1, limits.request_burst)
        wait = max(wanted - tokens, 1.0) / limits.request_rate
        self._throttle = self._clock.callLater(wait, self._read_on)
        self.transport.pauseProducing()
        self.factory.count("limit_throttle")
        return tokens

    def _read_on(self):
        """The throttle's wait is over: handle the lines held back, then read again."""
        self._throttle = None
        session = self.session
        if session is None or session.state is _CLOSING:
            return
        self.dataReceived(b"")
        if self._throttle is None and session.state is not _CLOSING:
            self.transport.resumeProducing()

    def _rate_limited(self, out):
        self.factory.offence(self, "limit_rate")
        out.append(_error(None, Reject.OTHER, "Rate limit exceeded"))
        self.session.transition(Input.CLOSE)

    def _line(self, line, out, now):
        """One request line read the general way: JSON, then its method's handler."""
        line = line.strip()
        if not line:
            return
        try:
            # decode() then the decoder directly: json.loads(bytes) spends
            # a tenth of a share's time guessing the encoding.
            request = _decode_json(line.decode())
        except (ValueError, RecursionError):
            request = None
        if type(request) is not dict:
            self.factory.count("request_invalid")
            self._log.info(
                "not a JSON-RPC object from {peer}: {line!r}",
                role=self.context.role,
                peer=self.session.peer,
                line=line[:100],
            )
            self.factory.offence(self, None)
            out.append(_error(None, Reject.OTHER, "Parse error"))
            self.session.transition(Input.CLOSE)
            return
        msg_id = request.get("id")
        method = request.get("method")
        params = request.get("params")
        if params is None:
            params = []
        if type(method) is not str or type(params) is not list:
            self.factory.count("request_invalid")
            out.append(_error(msg_id, Reject.OTHER, "Invalid request"))
            return
        handler = self.METHODS.get(method)
        if handler is None:
            self._log.debug("unknown method {method!r} from {peer}", role=self.context.role, peer=self.session.peer, method=method[:64])
            out.append(_error(msg_id, Reject.OTHER, "Unknown method"))
            return
        mark = len(out)
        try:
            handler(self, msg_id, params, out, now)
        except Exception:
            self._failed(method, msg_id, out, mark)

    def _failed(self, method, msg_id, out, mark):
        """A handler raised: exactly one answer per request, so what it wrote is dropped."""
        del out[mark:]
        self._log.failure(
            "handling {method} failed",
            role=self.context.role,
            peer=self.session.peer,
            user=self.session.user,
            worker=self.session.worker,
            method=method,
        )
        out.append(_error(msg_id, Reject.OTHER, "Internal error"))

    # -- methods --------------------------------------------------------------

    def _subscribe(self, msg_id, params, out, now):
        session = self.session
        if params and type(params[0]) is str:
            session.user_agent = params[0][:_MAX_USER_AGENT]
        session.transition(Input.SUBSCRIBE)
        identity = session.identity
        sub_id = identity.subscription_id
        out.append(
            _ok(
                msg_id,
                [
                    [["mining.set_difficulty", sub_id], ["mining.notify", sub_id]],
                    identity.extranonce1.hex(),
                    _EXTRANONCE2_SIZE,
                ],
            )
        )

    def _authorize(self, msg_id, params, out, now):
        session = self.session
        if session.state is State.CONNECTED:
            out.append(_render_id(msg_id) + _REJECT_TAILS[Reject.NOT_SUBSCRIBED])
            return
        if not 1 <= len(params) <= 2 or type(params[0]) is not str:
            out.append(_error(msg_id, Reject.OTHER, "Invalid params: expected [account, password]"))
            return
        password = params[1] if len(params) == 2 else ""
        try:
            user, worker, is_new = session.authorize(params[0], self.settings.max_accounts)
        except ValueError as e:
            self._log.info(
                "authorize refused for {peer}: {why}", role=self.context.role, peer=session.peer, why=str(e)
            )
            out.append(_render_id(msg_id) + _REJECT_TAILS[Reject.UNAUTHORIZED])
            return
        first = session.state is not _AUTHORIZED
        vardiff_settings = self.settings.vardiff
        fixed = parse_password_difficulty(password, vardiff_settings.diff_min, vardiff_settings.diff_max)
        out.append(_render_id(msg_id) + _TRUE_TAIL)
        if fixed is not None and fixed != session.difficulty:
            session.fix_difficulty(fixed, authorized=not first)
            if not first:
                out.append(set_difficulty_line(fixed))
        elif fixed is not None:
            session.vardiff = None
        if first:
            session.transition(Input.AUTHORIZE)
            self.factory.authorized_session(self)
            out.append(set_difficulty_line(session.difficulty))
            prepared = self.context.jobs.current
            if prepared is not None:
                out.append(self._notify(prepared, clean=True))
        if is_new:
            self.factory.count("new_authorized")
            self.factory.log_authorized(session, user, worker)
            self.context.worker_authorized(session, user, worker)

    def _submit(self, msg_id, params, out, now):
        """``mining.submit`` read the general way: its params checked, then ``_share``."""
        if self.session.state is not _AUTHORIZED:
            self._unauthorized_share(msg_id, out)
            return
        fields = submit_fields(msg_id, params)
        if type(fields) is str:
            self._bad_submit(msg_id, fields, out)
        else:
            self._share(fields, out, now)

    def _unauthorized_share(self, msg_id, out):
        code = Reject.NOT_SUBSCRIBED if self.session.state is State.CONNECTED else Reject.UNAUTHORIZED
        self._reject(msg_id, code, "", "", out)

    def _share(self, fields, out, now):
        """
        A share, its fields read (``submit_fields``, or ``_parse_submit``
        for the common line): checked, credited or rejected, answered.
        """
        session = self.session
        msg_id, account, job_id, extranonce2, ntime, nonce, version_bits = fields
        if session.state is not _AUTHORIZED:
            self._unauthorized_share(msg_id, out)
            return
        pair = session.account_for_submit(account, self.settings.max_accounts)
        if pair is None:
            self._reject(msg_id, Reject.UNAUTHORIZED, "", "", out)
            return
        user, worker = pair
        jobs = self.context.jobs
        prepared = jobs.lookup(job_id)
        if prepared is None:
            code = Reject.STALE_JOB if jobs.is_stale(job_id) else Reject.JOB_NOT_FOUND
            self._reject(msg_id, code, user, worker, out)
            return
        prefix = session.coinbase(prepared, self.context)[0]
        result = check_share(
            prepared,
            prefix,
            extranonce2,
            ntime,
            nonce,
            version_bits,
            session.version_mask,
            session.current,
            session.previous,
            now,
        )
        if result.reject is not None:
            self._reject(msg_id, result.reject, user, worker, out)
            return
        if jobs.is_duplicate(prepared, result.hash):
            self._reject(msg_id, Reject.DUPLICATE_SHARE, user, worker, out)
            return
        if result.is_block or result.aux:
            self._block(user, worker, prepared, result)
        self._accepted(msg_id, out)
        session.share_valid += 1
        session.share_pow += result.difficulty
        session.record(True)
        self.context.share_accepted(session, user, worker, prepared, result)
        vardiff = session.vardiff
        if vardiff is not None:
            new = vardiff.on_share(now)
            if new is not None:
                session.pending = new

    def _accepted(self, msg_id, out):
        """
        The reply to an accepted share.  A mineragent speaking protocol v2
        upstream holds it back until the gateway has judged the share
        (``viabtc.mineragent.server``).
        """
        out.append(_TRUE_REPLY % msg_id if type(msg_id) is int else _render_id(msg_id) + _TRUE_TAIL)

    def _block(self, user, worker, prepared, result):
        """
        Hand a block candidate on, then log it: the context sends it to the
        jobmaster at once, and a log line (a formatted event written to the
        log file, ~0.4 ms) waits until it has left.
        """
        session = self.session
        self._after_block = True
        try:
            self.context.block_found(session, user, worker, prepared, result)
        except Exception:
            self._log.failure(
                "block candidate {hash} could not be handed on",
                role=self.context.role,
                peer=session.peer,
                hash=hash_to_display_hex(result.hash),
            )
            raise
        self._log.info(
            "block candidate {hash} at height {height} (aux {aux}) by {user}.{worker}",
            role=self.context.role,
            peer=session.peer,
            user=user,
            worker=worker,
            hash=hash_to_display_hex(result.hash),
            height=prepared.height,
            aux=[a.aux_name for a in result.aux],
            is_block=result.is_block,
        )

    def _bad_submit(self, msg_id, why, out):
        session = self.session
        out.append(_error(msg_id, Reject.OTHER, "Invalid params: " + why))
        self._count_reject(Reject.OTHER, session.user, session.worker)

    def _reject(self, msg_id, code, user, worker, out):
        out.append(_render_id(msg_id) + _REJECT_TAILS[code])
        self._count_reject(code, user, worker)

    def _count_reject(self, code, user, worker):
        session = self.session
        session.share_error += 1
        self.context.share_rejected(session, user, worker, code)
        if session.record(False):
            self._log.info(
                "closing {peer}: over 60% of its last shares were invalid",
                role=self.context.role,
                peer=session.peer,
                user=session.user,
                worker=session.worker,
            )
            self.factory.offence(self, "limit_invalid_ratio")
            session.transition(Input.CLOSE)

    def _configure(self, msg_id, params, out, now):
        if not params or type(params[0]) is not list:
            out.append(_render_id(msg_id) + _REJECT_TAILS[Reject.INVALID_CONFIG])
            return
        options = params[1] if len(params) > 1 and type(params[1]) is dict else {}
        result = {}
        set_mask = None
        for extension in params[0]:
            if type(extension) is not str:
                continue
            if extension == "version-rolling":
                mask = self._negotiate_version_rolling(options)
                if mask:
                    result["version-rolling"] = True
                    result["version-rolling.mask"] = f"{mask:08x}"
                    set_mask = mask
                else:
                    result["version-rolling"] = False
            else:
                # BIP310: every requested extension gets an answer.
                result[extension] = False
        out.append(_ok(msg_id, result))
        if set_mask is not None:
            out.append(_notification("mining.set_version_mask", [f"{set_mask:08x}"]))

    def _negotiate_version_rolling(self, options):
        """The negotiated mask (0: refused), stored in the session."""
        session = self.session
        requested = options.get("version-rolling.mask", "ffffffff")
        miner_mask = _version_bits(requested)
        min_bits = options.get("version-rolling.min-bit-count", 1)
        if miner_mask is None or type(min_bits) is not int:
            session.version_mask = 0
            return 0
        mask = miner_mask & self.settings.version_mask
        if mask.bit_count() < max(min_bits, 1):
            mask = 0
        session.version_mask = mask
        return mask

    def _suggest_difficulty(self, msg_id, params, out, now):
        value = _parse_difficulty(params[0]) if params else None
        if value is None:
            out.append(_error(msg_id, Reject.OTHER, "Invalid difficulty"))
            return
        session = self.session
        vardiff_settings = self.settings.vardiff
        difficulty = clamp_difficulty(value, vardiff_settings.diff_min, vardiff_settings.diff_max)
        authorized = session.state is _AUTHORIZED
        if difficulty != session.difficulty:
            session.fix_difficulty(difficulty, authorized)
        else:
            session.vardiff = None
        out.append(_render_id(msg_id) + _TRUE_TAIL)
        out.append(set_difficulty_line(difficulty))

    def _extranonce_subscribe(self, msg_id, params, out, now):
        out.append(_render_id(msg_id) + _TRUE_TAIL)

    def _get_transactions(self, msg_id, params, out, now):
        out.append(_ok(msg_id, []))

    METHODS = {
        "mining.subscribe": _subscribe,
        "mining.authorize": _authorize,
        "mining.submit": _submit,
        "mining.configure": _configure,
        "mining.suggest_difficulty": _suggest_difficulty,
        "mining.extranonce.subscribe": _extranonce_subscribe,
        "mining.get_transactions": _get_transactions,
    }

    # -- output ---------------------------------------------------------------

    def _notify(self, prepared, clean):
        """The session's notify line for a job (its coinbase cached for submits)."""
        coinbase1_hex = self.session.coinbase(prepared, self.context)[1]
        return prepared.notify_line(coinbase1_hex, clean)

    def send_notify(self, notify):
        """
        Send a new job's notify line: with the pending difficulty (if
        vardiff changed it) before it, in one write.
        """
        session = self.session
        if session.pending is not None:
            difficulty = session.pending
            session.set_difficulty(difficulty)
            self.write(set_difficulty_line(difficulty) + notify)
        else:
            self.write(notify)

    def check_idle(self, now):
        """Vardiff's idle decrease (housekeeping timer); sent at once."""
        session = self.session
        vardiff = session.vardiff
        if vardiff is None or session.state is not _AUTHORIZED:
            return
        new = vardiff.check_idle(now)
        if new is not None:
            session.set_difficulty(new)
            self.write(set_difficulty_line(new))


class StratumServerFactory(Factory):
    """
    The sessions of one listening Stratum server.

    ``context`` provides ``IPoolContext``; ``clock`` is the reactor (or a
    ``task.Clock``); ``limits`` is a ``Limits`` (default: every default).
    While the factory is started, a housekeeping timer every
    ``housekeeping_interval`` seconds closes idle sessions and lowers the
    difficulty of miners that stopped finding shares, and a sweep every
    second closes sessions past their authorization deadline and aborts
    closed ones that linger.  ``counts`` holds the seed's monitor counters
    (``connection_new``, ``connection_close``, ``ip_banned``,
    ``request_invalid``, ``new_authorized``, ``job_broadcast``,
    ``job_clean``) and the ``limit_*`` keys of docs/security.md, for the
    role to flush and reset.
    """

    protocol = StratumServerProtocol
    _log = Logger()

    def __init__(self, context, clock, housekeeping_interval=None, limits=None):
        self.context = context
        self.clock = clock
        self.limits = Limits() if limits is None else limits
        self.offenders = Offenders(self.limits)
        self.sessions = set()
        self.counts = {}
        if housekeeping_interval is None:
            housekeeping_interval = max(1.0, min(context.settings.vardiff.target_time, 60.0))
        self.housekeeping_interval = housekeeping_interval
        self._housekeeping = None
        self._sweep = None
        self._last_sweep = None
        self._per_host = {}
        # host -> the time before which none of its sessions can be stale
        self._stale_checked = {}
        # protocol -> deadline; deadlines are now + a constant, so insertion
        # order is deadline order and a sweep stops at the first live one.
        self._auth_deadlines = {}
        self._close_deadlines = {}
        self._authorized_lines = 0
        self._authorized_unlogged = 0

    def buildProtocol(self, addr):
        return self.protocol(self)

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def startFactory(self):
        self._housekeeping = self._loop(self.housekeeping, self.housekeeping_interval, "housekeeping")
        self._sweep = self._loop(self.sweep, SWEEP_INTERVAL, "deadline sweep")
        self._last_sweep = self.clock.seconds()

    def _loop(self, function, interval, name):
        loop = LoopingCall(function)
        loop.clock = self.clock
        loop.start(interval, now=False).addErrback(
            lambda f: self._log.failure("{name} stopped", f, name=name, role=self.context.role)
        )
        return loop

    def stopFactory(self):
        for loop in (self._housekeeping, self._sweep):
            if loop is not None and loop.running:
                loop.stop()
        self._housekeeping = self._sweep = None

    # -- limits ---------------------------------------------------------------

    def refusal(self, host, now):
        """The ``limit_*`` key a new connection from ``host`` is refused by, or ``None``."""
        limits = self.limits
        if self.offenders.banned(host, now):
            return "limit_banned"
        if len(self.sessions) >= limits.max_connections:
            return "limit_conn_total"
        if self._per_host.get(host, 0) >= limits.max_connections_per_ip and not self._evict_stale(host, now):
            return "limit_conn_ip"
        return None

    def _evict_stale(self, host, now):
        """
        ``host`` is at its connection limit: close its sessions silent for
        ``limits.stale_after`` (dead connections of a farm whose uplink came
        back; the gateway never saw them end) and return how many, so that
        its new connections are admitted.  One pass over the sessions closes
        all of them; until the quietest of the rest could go stale the
        address is refused without another pass.
        """
        if now < self._stale_checked.get(host, 0.0):
            return 0
        stale_after = self.limits.stale_after
        stale = []
        quietest = now
        for proto in self.sessions:
            session = proto.session
            if session.host != host or session.state is _CLOSING:
                continue
            if now - session.last_active >= stale_after:
                stale.append(proto)
            elif session.last_active < quietest:
                quietest = session.last_active
        self._stale_checked[host] = quietest + stale_after
        if len(self._stale_checked) > self.limits.max_connections // self.limits.max_connections_per_ip + 1:
            # Only so many addresses can be at their limit at once.
            self._stale_checked = {h: t for h, t in self._stale_checked.items() if t > now}
        if stale:
            self.count("limit_stale_closed", len(stale))
            self._log.info("closing {count} sessions of {host} silent for {seconds:g} s or more, to admit"
                           " its new connections", role=self.context.role, host=host, count=len(stale),
                           seconds=stale_after)
            for proto in stale:
                # Its place is free now, not when its connection is gone.
                self.released(proto)
                proto.abort()
        return len(stale)

    def admitted(self, proto, now):
        """A new session: counted per host, and given its authorization deadline."""
        self.sessions.add(proto)
        host = proto.session.host
        self._per_host[host] = self._per_host.get(host, 0) + 1
        self._auth_deadlines[proto] = now + self.limits.auth_timeout

    def log_authorized(self, session, user, worker):
        """
        Log a newly authorized worker: one line each, up to
        ``AUTHORIZED_LINES`` per second.  Beyond that the gateway is taking
        a reconnect storm, where a formatted line per miner (written twice:
        twistd's log and the role's) would cost a third of admitting it;
        those are summed up by the next sweep.  Every worker's
        ``connected`` event still goes to the statistics.
        """
        if self._authorized_lines < AUTHORIZED_LINES:
            self._authorized_lines += 1
            self._log.info("authorized {user}.{worker} from {peer}", role=self.context.role, peer=session.peer,
                           user=user, worker=worker)
        else:
            self._authorized_unlogged += 1

    def _log_authorized_storm(self):
        self._authorized_lines = 0
        if self._authorized_unlogged:
            self._log.info("authorized {count} more workers in the last second (a reconnect storm: one line"
                           " each resumes below {lines} a second)", role=self.context.role,
                           count=self._authorized_unlogged, lines=AUTHORIZED_LINES)
            self._authorized_unlogged = 0

    def authorized_session(self, proto):
        """
        ``proto`` authorized (or, for agent sessions, subscribed as an agent):
        its authorization deadline no longer applies.
        """
        self._auth_deadlines.pop(proto, None)

    def closing(self, proto):
        """We closed ``proto``; abort it if it is still there after ``close_timeout``."""
        if proto not in self._close_deadlines:
            self._close_deadlines[proto] = self.clock.seconds() + self.limits.close_timeout

    def released(self, proto):
        """``proto``'s connection is gone (or it was closed as stale): forget it everywhere, once."""
        if proto not in self.sessions:
            return
        self.sessions.discard(proto)
        self._auth_deadlines.pop(proto, None)
        self._close_deadlines.pop(proto, None)
        host = proto.session.host
        left = self._per_host.get(host, 0) - 1
        if left > 0:
            self._per_host[host] = left
        else:
            self._per_host.pop(host, None)

    def offence(self, proto, key):
        """
        ``proto`` is being closed for abuse (``key``: the ``limit_*`` count,
        or ``None`` when the caller counts it): count, log, and strike its
        host, which may earn it a ban.
        """
        session = proto.session
        now = self.clock.seconds()
        if key is not None:
            self.count(key)
            self._log.info(
                "closing {peer}: {limit}",
                role=self.context.role,
                peer=session.peer,
                user=session.user,
                worker=session.worker,
                limit=key,
            )
        ban = self.offenders.offend(session.host, now)
        if ban:
            self.count("limit_ban")
            self._log.warn(
                "banning {host} for {seconds:g} s after repeated abuse",
                role=self.context.role,
                peer=session.peer,
                host=session.host,
                seconds=ban,
            )

    def sweep(self):
        """
        Close sessions past their authorization deadline; abort lingering closed ones.

        A sweep that runs late (more than two intervals after the last: the
        reactor was blocked, or busy admitting a reconnect storm) closes
        nobody for the authorization deadline: timers run before the
        reactor reads, so the authorize of a session just past its deadline
        may be among the bytes still unread.  It is closed at the next sweep
        if it has not authorized by then.
        """
        self._log_authorized_storm()
        now = self.clock.seconds()
        last, self._last_sweep = self._last_sweep, now
        late = last is not None and now - last > 2 * SWEEP_INTERVAL
        deadlines = {} if late else self._auth_deadlines
        while deadlines:
            proto = next(iter(deadlines))
            if deadlines[proto] > now:
                break
            del deadlines[proto]
            if proto.session.state is not _CLOSING:
                self.offence(proto, "limit_auth_timeout")
                proto.close()
        deadlines = self._close_deadlines
        while deadlines:
            proto = next(iter(deadlines))
            if deadlines[proto] > now:
                break
            del deadlines[proto]
            self.count("limit_close_timeout")
            proto.abort()

    @property
    def connections(self):
        return len(self.sessions)

    @property
    def authorized(self):
        """Authorized sessions (counted on demand: read once a minute, not per share)."""
        return sum(1 for proto in self.sessions if proto.session.state is _AUTHORIZED)

    def broadcast_job(self, prepared):
        """
        Send ``prepared`` to every authorized session: one write each (its
        pending difficulty, if any, and its notify).  A session whose send
        fails is logged and closed; the others still get the job.

        The hot loop of a new block: each session's line is the account's
        notify head (built once per account: the job's fields and the
        account's coinbase1 head, as hex) joined to the session's own
        coinbase1 tail and the job's suffix.  The session's coinbase for
        checking shares is built at its first share, off this path.
        """
        self.count("job_broadcast")
        if prepared.clean:
            self.count("job_clean")
        context = self.context
        notify_prefix = prepared.notify_prefix
        suffix = prepared.notify_suffix
        heads = {}
        join = b"".join
        for proto in list(self.sessions):
            session = proto.session
            if session.state is not _AUTHORIZED:
                continue
            try:
                user = session.user
                head = heads.get(user)
                if head is None:
                    head = heads[user] = notify_prefix + hexlify(context.coinbase1_head(prepared, user))
                proto.send_notify(join((head, session.coinbase1_tail_hex, suffix)))
            except Exception:
                self._log.failure(
                    "sending job {job_id} failed", role=context.role, peer=session.peer, job_id=prepared.job_id
                )
                proto.close()

    def close_peers(self, hosts):
        """Close every session from an IP address in ``hosts`` (a ban); returns how many."""
        closing = [proto for proto in self.sessions if proto.session.host in hosts]
        for proto in closing:
            self._log.info("closing banned peer {peer}", role=self.context.role, peer=proto.session.peer)
            proto.close()
        return len(closing)

    def housekeeping(self):
        now = self.clock.seconds()
        max_idle = self.context.settings.client_max_idle_time
        for proto in list(self.sessions):
            session = proto.session
            if session.state is _CLOSING:
                continue
            if now - session.last_active > max_idle:
                self.count("limit_idle")
                self._log.info("closing idle {peer}", role=self.context.role, peer=session.peer)
                proto.close()
                continue
            try:
                proto.check_idle(now)
            except Exception:
                self._log.failure("idle check failed", role=self.context.role, peer=session.peer)
        self.offenders.prune(now)
