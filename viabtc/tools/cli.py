# -*- test-case-name: tests.tools.test_cli -*-
"""
``viabtc-cli ROLE COMMAND [ARG...]``: one client for every role's admin
commands (the seed's, ref §3.11, §4.12, §11: ``addban``, ``listban``,
``setcoinbase``, ``list``, ``flushworker``, ``loadtrust``...; ``help``
lists a role's own).

Operators used ``echo listban | nc 127.0.0.1 6001`` against the seed; this
finds the role's ``cli`` address in its config (``--config``, default
``/etc/viabtc/ROLE.json`` as the systemd units use) or takes ``--address``,
quotes the arguments so the role's Redis-style splitter gets them back
exactly, and prints the reply (``--json``: an object for scripts).

The line protocol has no end-of-reply marker (the seed's neither), so the
command is followed by a line naming no command; the role answers in order,
and its ``command not found`` (once nothing more follows) marks the end of
the real reply.
"""

import argparse
import json
import secrets
import socket
import sys

from viabtc.config import ConfigError, ConfigReader, parse_address

DEFAULT_CONFIG = "/etc/viabtc/{role}.json"
NOT_FOUND = "command not found\n"
END = NOT_FOUND.encode()
#: Seconds to wait for more after what looks like the end of the reply.
SETTLE = 0.3
#: Reply prefixes that mean the command did not do its work.
_FAILED = ("error:", "usage:", "command not found")


class CLIError(Exception):
    """The command could not be sent or answered; ``str`` is the one line to print."""


def quote(word):
    """``word`` as one argument for the role's splitter (``viabtc.cli.split_args``)."""
    if word and not any(c.isspace() or c in "\"'\\" for c in word) and word.isprintable():
        return word
    out = []
    for char in word:
        if char in "\"\\":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif not char.isprintable() and ord(char) < 0x100:
            out.append("\\x%02x" % ord(char))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def command_line(command, args):
    """The text line for ``command`` with ``args``."""
    return " ".join(quote(w) for w in [command, *args])


def cli_address(role, config=None, address=None):
    """The ``Address`` to reach ``role``'s CLI at; ``CLIError`` naming what is missing."""
    if address is not None:
        try:
            return parse_address(address, key="--address")
        except ConfigError as e:
            raise CLIError(str(e)) from None
    path = config or DEFAULT_CONFIG.format(role=role)
    try:
        reader = ConfigReader.from_file(path)
        found = reader.address("cli", side="client", required=False)
    except ConfigError as e:
        raise CLIError(f"{path}: {e}" if not str(e).startswith(path) else str(e)) from None
    if found is None:
        raise CLIError(f"{path} has no cli address; give --address")
    return found


def _connect(address, timeout):
    if address.path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address.path)
        return sock
    if address.host is None or address.transport not in ("tcp", "unix"):
        raise CLIError(f"cli address {address.text!r} is not a tcp or unix stream address")
    return socket.create_connection((address.host, address.port), timeout)


def run_command(address, command, args, timeout=10.0):
    """Send one command to the CLI at ``address`` (an ``Address``); its reply text."""
    sentinel = "viabtc-cli-end-" + secrets.token_hex(8)
    request = (command_line(command, args) + "\n" + sentinel + "\n").encode("utf-8")
    try:
        with _connect(address, timeout) as sock:
            sock.sendall(request)
            data = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    if data.endswith(END):
                        break
                    raise
                if not chunk:
                    raise CLIError(f"{address.text} closed the connection before replying "
                                   "(a CLI serves loopback peers only)")
                data += chunk
                # Replies to one read arrive together; a short wait tells an
                # unknown command's own "command not found" from the marker's.
                sock.settimeout(SETTLE if data.endswith(END) else timeout)
    except OSError as e:
        raise CLIError(f"cannot reach {address.text}: {e.strerror or e}") from None
    return data.decode("utf-8", "replace")[: -len(NOT_FOUND)]


def failed(reply):
    """True when the reply says the command did not do its work."""
    return reply.startswith(_FAILED)


def main(argv=None, out=None):
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="viabtc-cli", description="Run an admin command on a viabtc role (its 'cli' address).")
    parser.add_argument("role", help="jobmaster, gateway, metawriter, poolbench, ...")
    parser.add_argument("command", help="the role's command; 'help' lists them")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    parser.add_argument("-c", "--config", help="the role's config file (default /etc/viabtc/ROLE.json)")
    parser.add_argument("-a", "--address", help="the cli address, e.g. tcp@127.0.0.1:6001")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the reply text")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default 10)")
    options = parser.parse_args(argv)
    try:
        address = cli_address(options.role, options.config, options.address)
        reply = run_command(address, options.command, options.args, options.timeout)
    except CLIError as e:
        if options.json:
            json.dump({"role": options.role, "command": options.command, "ok": False, "error": str(e)}, out)
            out.write("\n")
        else:
            print(f"viabtc-cli: {e}", file=sys.stderr)
        return 2
    ok = not failed(reply)
    if options.json:
        json.dump({"role": options.role, "command": options.command, "args": options.args,
                   "address": address.text, "ok": ok, "reply": reply, "lines": reply.splitlines()}, out)
        out.write("\n")
    else:
        out.write(reply)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
