# -*- test-case-name: tests.test_log -*-
"""
Role logging: every event tagged with its role, the seed's ``log.flag`` level
set, and critical events sent to alertcenter as the seed's alert datagrams.

Logging itself stays ``twisted.logger`` (one ``Logger`` per class).  What the
seed adds on top, and operators rely on, is here:

- ``log.path``/``log.flag`` (ref §10): a log file holding only the enabled
  levels.  twistd's own output (stdout under systemd, ``--logfile``) keeps
  every event.
- ``log_fatal`` → alert (ref §9): one UDP datagram per ``LogLevel.critical``
  event (this includes ``Logger.failure``), ``ALERT_MAGIC`` +
  ``"<alert.host>: <message>\\n"``, at most 10240 bytes.  Unlike the seed we
  rate-limit (a flapping fatal log flooded alertcenter's Redis, §12.5) and
  report what was dropped.
"""

import attrs
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    Logger,
    LogLevel,
    PredicateResult,
    formatEvent,
    globalLogPublisher,
    textFileLogObserver,
)
from twisted.python.logfile import DailyLogFile
from zope.interface import implementer

from viabtc.config import DEFAULT_LOG_FLAGS

ALERT_MAGIC = b"373d26968a5a2b698045"
MAX_ALERT_SIZE = 10240

# The seed's log.flag words → twisted levels.  notice and trace have no
# twisted level of their own; user1/user2 were seed-internal and map to none.
FLAG_LEVELS = {
    "fatal": LogLevel.critical,
    "error": LogLevel.error,
    "warn": LogLevel.warn,
    "info": LogLevel.info,
    "notice": LogLevel.info,
    "debug": LogLevel.debug,
    "trace": LogLevel.debug,
}


def role_observer(role, observer):
    """
    Wrap ``observer`` so that every event carries ``role`` (unless the event
    already names one, as in ``viabtc-pool`` where several roles share a
    process and their services log with an explicit role).
    """

    @implementer(ILogObserver)
    def tag(event):
        event.setdefault("role", role)
        observer(event)

    return tag


@implementer(ILogFilterPredicate)
@attrs.frozen
class LevelSetPredicate:
    """
    Let through events whose level is in ``levels``.  The seed's flags are a
    set, not a threshold ("fatal,error,info" drops warnings), hence not
    Twisted's ``LogLevelFilterPredicate``.
    """

    levels: frozenset

    def __call__(self, event):
        level = event.get("log_level")
        if level is None or level in self.levels:
            return PredicateResult.maybe
        return PredicateResult.no


def level_filter(flags):
    """
    The predicate for the seed's ``log.flag`` words (``fatal`` → critical).
    Critical events always pass: turning off fatal logging would hide the
    very events alerts are about.
    """
    unknown = set(flags) - set(FLAG_LEVELS) - {"user1", "user2"}
    if unknown:
        raise ValueError(f"unknown log flag(s): {', '.join(sorted(unknown))}")
    return LevelSetPredicate(frozenset(FLAG_LEVELS[f] for f in flags if f in FLAG_LEVELS) | {LogLevel.critical})


def format_alert(host, text):
    """
    The alert datagram: magic, ``"<host>: <text>\\n"``, at most
    ``MAX_ALERT_SIZE`` bytes (cut on a UTF-8 character boundary, the newline
    kept so alertcenter still sees one line).
    """
    body = f"{host}: {text}".encode("utf-8", "replace")
    room = MAX_ALERT_SIZE - len(ALERT_MAGIC) - 1
    if len(body) > room:
        body = body[:room].decode("utf-8", "ignore").encode("utf-8")
    return ALERT_MAGIC + body + b"\n"


def alert_text(event):
    """
    One line describing a critical event: ``[fatal]<role> <namespace>:
    <message>``, with a failure's type and message appended.  The seed's
    alerts read ``[fatal]<file>:<line>(<func>): <message>``; the namespace is
    ours in place of file and line.
    """
    text = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        text = f"{text} ({failure.type.__name__}: {failure.getErrorMessage()})"
    role = event.get("role")
    where = f"{role} {event.get('log_namespace', '?')}" if role else event.get("log_namespace", "?")
    return " | ".join(f"[fatal]{where}: {text}".splitlines())


@implementer(ILogObserver)
class AlertSender:
    """
    Sends every critical event to alertcenter as one UDP datagram.

    Sending never blocks (a non-blocking ``sendto`` through the reactor) and
    never raises into the logging system.  A token bucket (``burst`` alerts,
    refilled at ``rate`` per second) limits the flood from a flapping error;
    the alerts it drops are counted and reported in one
    ``"N similar alerts suppressed"`` alert as soon as a token is back.
    ``clock`` defaults to ``reactor`` (tests pass a ``task.Clock``).
    """

    _log = Logger()

    def __init__(self, host, addr, reactor, clock=None, rate=1 / 6, burst=10):
        if addr.transport != "udp":
            raise ValueError(f"alerts need a UDP address, not {addr.text!r}")
        self.host = host
        self.addr = addr
        self._reactor = reactor
        self._clock = clock if clock is not None else reactor
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._stamp = self._clock.seconds()
        self._port = None
        self._suppressed = 0
        self._last_suppressed = None
        self._summary_call = None

    def __call__(self, event):
        if event.get("log_level") is LogLevel.critical:
            self.alert(alert_text(event))

    def alert(self, text):
        """Send ``text`` as an alert now, or count it if over the rate."""
        if self._take():
            self._send(format_alert(self.host, text))
            return
        self._suppressed += 1
        self._last_suppressed = text
        if self._summary_call is None:
            wait = (1.0 - self._tokens) / self._rate
            self._summary_call = self._clock.callLater(wait, self._send_summary)

    def _take(self):
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        # A pending summary goes first: a later alert must not take its token.
        if self._tokens >= 1.0 and self._summary_call is None:
            self._tokens -= 1.0
            return True
        return False

    def _send_summary(self):
        self._summary_call = None
        now = self._clock.seconds()
        self._tokens = max(0.0, min(self._burst, self._tokens + (now - self._stamp) * self._rate) - 1.0)
        self._stamp = now
        self._flush_summary()

    def _flush_summary(self):
        if self._suppressed:
            text = f"{self._suppressed} similar alerts suppressed; last: {self._last_suppressed}"
            self._suppressed = 0
            self._last_suppressed = None
            self._send(format_alert(self.host, text))

    def _send(self, datagram):
        try:
            if self._port is None:
                interface = "::" if ":" in self.addr.host else "0.0.0.0"
                self._port = self._reactor.listenUDP(0, DatagramProtocol(), interface=interface)
            self._port.write(datagram, self.addr.sockaddr)
        except Exception as e:
            # Never log at critical here: that would loop back into alerts.
            self._log.warn("alert to {addr} not sent: {error}", addr=self.addr.text, error=str(e))

    def close(self):
        """Send the pending summary now and release the socket."""
        if self._summary_call is not None:
            self._summary_call.cancel()
            self._summary_call = None
        self._flush_summary()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
        return None


@implementer(ILogObserver)
@attrs.define(eq=False)
class RoleLogging:
    """
    One role's logging, installed as a single observer on a publisher: tags
    events with ``role``, writes the enabled levels to ``log_path`` (when
    given) and sends critical events to alertcenter (when ``alerts``).
    ``remove()`` uninstalls it and closes the file and socket.

    Identity is the configuration (role, flags, path, alert host and
    address): installing an equal configuration again finds it already
    installed and changes nothing.  The file and the alert socket are opened
    on the first event.
    """

    role: str
    flags: frozenset
    log_path: str | None
    alerts: AlertSender | None
    publisher: object
    _file_observer: object = None
    _log_file: object = None
    _opened: bool = False

    def _key(self):
        alert = (self.alerts.host, self.alerts.addr) if self.alerts else None
        return (self.role, self.flags, self.log_path, alert)

    def __eq__(self, other):
        return isinstance(other, RoleLogging) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def _open(self):
        """
        Open the log file on the first event (so a duplicate handle that is
        never installed opens nothing).  A file that cannot be opened is
        reported, and the process still logs through twistd, rather than
        stopping the role.
        """
        self._opened = True
        if self.log_path is None:
            return
        try:
            self._log_file = DailyLogFile.fromFullPath(self.log_path + ".log")
        except OSError as e:
            # Through our own publisher, so twistd's output (or a test) sees it.
            log = Logger(namespace=__name__, observer=self.publisher)
            log.warn("log: cannot open {path}.log: {error}; logging through twistd only",
                     path=self.log_path, error=str(e))
            return
        self._file_observer = FilteringLogObserver(
            textFileLogObserver(self._log_file), [level_filter(self.flags)]
        )

    def __call__(self, event):
        event.setdefault("role", self.role)
        if not self._opened:
            self._open()
        if self._file_observer is not None:
            self._file_observer(event)
        if self.alerts is not None:
            self.alerts(event)

    def remove(self):
        """Uninstall; returns a Deferred (or None) for the alert socket's close."""
        self.publisher.removeObserver(self)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = self._file_observer = None
        if self.alerts is not None:
            return self.alerts.close()
        return None


def install_role_logging(role, config, reactor, publisher=None):
    """
    Install ``role``'s logging on ``publisher`` (default: the global one that
    twistd's ``globalLogBeginner`` feeds) and return the ``RoleLogging``
    handle; tests call ``handle.remove()``.

    ``config`` is any object with ``log`` (``LogBlock`` or None) and
    ``alert`` (``AlertBlock`` or None) attributes, as every role config has.
    Called from ``makeService``, i.e. before twistd begins logging, so the
    role tag precedes twistd's own observer and appears in its output too.
    Idempotent: an equal configuration already installed is kept as is (and
    ``remove()`` on either handle uninstalls it; the file and socket belong to
    the handle that was installed first).
    """
    publisher = globalLogPublisher if publisher is None else publisher
    log_block = getattr(config, "log", None)
    alert_block = getattr(config, "alert", None)
    alerts = None
    if alert_block is not None and alert_block.addr is not None:
        alerts = AlertSender(alert_block.host, alert_block.addr, reactor)
    handle = RoleLogging(
        role=role,
        flags=log_block.flags if log_block is not None else DEFAULT_LOG_FLAGS,
        log_path=log_block.path if log_block is not None else None,
        alerts=alerts,
        publisher=publisher,
    )
    # LogPublisher.addObserver ignores an observer equal to one it has; such a
    # duplicate never receives an event, so never opens a file or socket.
    publisher.addObserver(handle)
    return handle
