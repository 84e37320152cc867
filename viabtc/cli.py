# -*- test-case-name: tests.test_cli -*-
"""
The admin command line every role serves on its ``cli`` address (ref §2.7,
§11): a text line split Redis-style, the first word names the command, the
reply is plain text.  Operators' scripts talk to the seed's CLI this way
(``echo listban | nc 127.0.0.1 6001``), so the line format is kept.

The port is unauthenticated (as the seed's, §12.4), so by default only
loopback peers (and unix-socket peers) are served.
"""

import ipaddress

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import LineOnlyReceiver

from viabtc.config import parse_address

MAX_LINE = 4096

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}
_HEX = "0123456789abcdefABCDEF"
_QUOTE_NAMES = {'"': "double", "'": "single"}


def _escape(line, i, quote):
    """
    The escape starting at ``line[i]`` (a backslash) inside ``quote``, as
    ``(text, length)``, or None when the backslash stands for itself.
    Double quotes take ``\\xHH`` and C escapes, single quotes only ``\\'``.
    """
    n = len(line)
    if quote == "'":
        return ("'", 2) if i + 1 < n and line[i + 1] == "'" else None
    if i + 3 < n and line[i + 1] == "x" and line[i + 2] in _HEX and line[i + 3] in _HEX:
        return chr(int(line[i + 2:i + 4], 16)), 4
    if i + 1 < n:
        return _ESCAPES.get(line[i + 1], line[i + 1]), 2
    return None


def split_args(line):
    """
    Split ``line`` into words as Redis's ``sdssplitargs`` does (the seed's
    CLI uses it): blanks separate words; ``"..."`` takes escapes (``\\n``,
    ``\\t``, ``\\xHH``, ``\\"``...), ``'...'`` only ``\\'``; a closing quote
    must end the word.  Unbalanced quotes raise ValueError.
    """
    words = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i == n:
            return words
        word = []
        quote = None
        while True:
            if quote is not None:
                if i == n:
                    raise ValueError(f"unbalanced {_QUOTE_NAMES[quote]} quotes")
                ch = line[i]
                escape = _escape(line, i, quote) if ch == "\\" else None
                if escape is not None:
                    word.append(escape[0])
                    i += escape[1]
                    continue
                if ch == quote:
                    i += 1
                    if i < n and not line[i].isspace():
                        raise ValueError("closing quote must be followed by a space")
                    break
                word.append(ch)
                i += 1
            else:
                if i == n or line[i].isspace():
                    break
                ch = line[i]
                if ch in "\"'":
                    quote = ch
                else:
                    word.append(ch)
                i += 1
        words.append("".join(word))


def _reply(text):
    """A reply as bytes ending in exactly one newline (none when empty)."""
    if not text:
        return b""
    data = text.encode("utf-8", "replace")
    return data if data.endswith(b"\n") else data + b"\n"


class CommandLineProtocol(LineOnlyReceiver):
    """
    One admin connection.  Commands are answered in the order received, even
    when a handler returns a Deferred.  Whatever a handler does (raises,
    fails, returns garbage) the client gets an ``error: ...`` line and the
    connection stays open; only a line longer than ``MAX_LINE`` closes it.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    _log = Logger()

    def __init__(self, commands, peer=None):
        self.commands = commands
        self.peer = peer
        self._queue = defer.succeed(None)

    def lineReceived(self, line):
        self._queue.addCallback(lambda _: self._run(line.rstrip(b"\r")))
        self._queue.addCallback(self._write)
        self._queue.addErrback(self._internal_error)

    def _run(self, raw):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "error: line is not UTF-8\n"
        try:
            args = split_args(line)
        except ValueError as e:
            return f"error: {e}\n"
        if not args:
            return ""
        name, args = args[0], args[1:]
        if name == "help":
            return self.help_text()
        handler = self.commands.get(name)
        if handler is None:
            return "command not found\n"
        self._log.info("cli {peer}: {command}", peer=self.peer, command=name)
        d = defer.maybeDeferred(handler, args)
        d.addCallback(self._check_reply, name)
        d.addErrback(self._handler_failed, name)
        return d

    def _check_reply(self, result, name):
        if not isinstance(result, str):
            raise TypeError(f"handler returned {type(result).__name__}, not str")
        return result

    def _handler_failed(self, failure, name):
        # error, not critical: a broken admin command is not worth an alert.
        self._log.failure("cli command {command} failed", failure, level=LogLevel.error,
                          command=name, peer=self.peer)
        return f"error: {name}: {failure.getErrorMessage()}\n"

    def _write(self, text):
        if self.transport is not None and self.transport.connected:
            data = _reply(text)
            if data:
                self.transport.write(data)

    def _internal_error(self, failure):
        self._log.failure("cli: internal error", failure, level=LogLevel.error, peer=self.peer)
        self._write("error: internal error\n")

    def help_text(self):
        """``help``: every command with the first line of its docstring."""
        lines = ["commands:", "  help - list commands"]
        for name in sorted(self.commands):
            doc = (getattr(self.commands[name], "__doc__", None) or "").strip().splitlines()
            lines.append(f"  {name} - {doc[0]}" if doc else f"  {name}")
        return "\n".join(lines) + "\n"

    def lineLengthExceeded(self, line):
        self.transport.write(f"error: line longer than {MAX_LINE} bytes\n".encode())
        self.transport.loseConnection()


def is_local_peer(addr):
    """True for loopback IP peers (incl. IPv4-mapped) and unix-socket peers."""
    if isinstance(addr, (IPv4Address, IPv6Address)):
        try:
            ip = ipaddress.ip_address(addr.host.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback
    return isinstance(addr, UNIXAddress)


class CommandLineFactory(ServerFactory):
    """
    Serves ``commands`` (name → handler).  A handler takes the list of
    argument words after the command and returns a str or a Deferred firing
    with one.  Peers that are not loopback are refused (connection closed at
    once) unless ``allow_remote``, since the CLI has no authentication.
    """

    _log = Logger()

    def __init__(self, commands, allow_remote=False):
        self.commands = dict(commands)
        self.allow_remote = allow_remote

    def buildProtocol(self, addr):
        if not self.allow_remote and not is_local_peer(addr):
            self._log.warn("cli: refused non-loopback peer {peer}", peer=str(addr))
            return None
        protocol = CommandLineProtocol(self.commands, peer=str(addr))
        protocol.factory = self
        return protocol


def cli_service(address, commands, reactor, allow_remote=False):
    """
    A service listening for admin connections on ``address`` (an ``Address``
    or a string such as ``tcp@127.0.0.1:6001``).
    """
    if isinstance(address, str):
        address = parse_address(address, key="cli")
    factory = CommandLineFactory(commands, allow_remote=allow_remote)
    return StreamServerEndpointService(address.server_endpoint(reactor), factory)
