# -*- test-case-name: tests.alertcenter.test_protocol -*-
"""
The seed's alert frame, over TCP (lines) and UDP (datagrams), ref §9.

A frame is one line: the 20-character ``ALERT_MAGIC`` followed by
``"<host>: <message>"``; the trailing ``\\r`` is stripped.  A frame that does
not start with the magic or carries no text is refused: over TCP the
connection is closed (as the seed closes it), a datagram is dropped, and
either way a log line names the peer.
"""

from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from viabtc.log import ALERT_MAGIC


class FrameError(ValueError):
    """A line that is not an alert frame; the message says why."""


def parse_frame(line):
    """
    The alert text (bytes, ``"<host>: <message>"``) of one frame without its
    ``\\n``.  Like the seed's ``%s`` formatting, the text ends at a NUL byte.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.startswith(ALERT_MAGIC):
        if len(line) <= len(ALERT_MAGIC):
            raise FrameError("short frame (%d bytes)" % (len(line),))
        raise FrameError("bad magic %r" % (line[:len(ALERT_MAGIC)],))
    text = line[len(ALERT_MAGIC):].split(b"\0", 1)[0]
    if not text:
        raise FrameError("frame carries no alert text")
    return text


def split_host(text):
    """``(host, message)`` of an alert text; host is empty when there is no ``": "``."""
    host, sep, message = text.partition(b": ")
    return (host, message) if sep else (b"", text)


class AlertLineProtocol(LineOnlyReceiver):
    """One TCP client sending alert lines; closed at the first bad frame."""

    delimiter = b"\n"
    _log = Logger()

    def connectionMade(self):
        self.peer = _peer_text(self.transport.getPeer())

    def lineReceived(self, line):
        try:
            text = parse_frame(line)
        except FrameError as e:
            self._log.warn("alert from {peer} refused: {why}; closing", peer=self.peer, why=str(e))
            self.transport.loseConnection()
            return
        self.factory.center.received(text, self.peer)

    def lineLengthExceeded(self, line):
        self._log.warn("alert line from {peer} longer than {limit} bytes; closing",
                       peer=self.peer, limit=self.MAX_LENGTH)
        self.transport.loseConnection()


class AlertLineFactory(Factory):
    """Builds ``AlertLineProtocol``s feeding ``center`` (an ``AlertCenter``)."""

    protocol = AlertLineProtocol

    def __init__(self, center, max_line):
        self.center = center
        self.max_line = max_line

    def buildProtocol(self, addr):
        proto = super().buildProtocol(addr)
        proto.MAX_LENGTH = self.max_line
        return proto


class AlertDatagramProtocol(DatagramProtocol):
    """Alert datagrams: each line of a datagram is one frame."""

    _log = Logger()

    def __init__(self, center):
        self.center = center

    def datagramReceived(self, data, addr):
        peer = "%s:%s" % addr if isinstance(addr, tuple) else str(addr)
        lines = data.split(b"\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()
        for line in lines:
            try:
                text = parse_frame(line)
            except FrameError as e:
                self._log.warn("alert datagram from {peer} dropped: {why}", peer=peer, why=str(e))
                continue
            self.center.received(text, peer)


def _peer_text(address):
    host = getattr(address, "host", None)
    return "%s:%s" % (host, address.port) if host is not None else str(address)
