# -*- test-case-name: tests.test_backlog -*-
"""
The listen backlog of every server port: how many connections the kernel
holds, handshake done, until the role accepts them.

When a gateway restarts, fails over, or a farm's uplink comes back,
thousands of miners connect in the same second.  Twisted listens with a
backlog of 50; once that queue is full the kernel drops further SYNs and
those miners wait out TCP's retransmission back-off (1, 3, 7, 15, 31 s)
before they even reach the role.  The seed passes ``SOMAXCONN`` to
``listen()``, which the kernel caps at ``net.core.somaxconn``; that cap is
the default here too, read from ``/proc/sys/net/core/somaxconn`` (4096 on
current kernels).  A configured ``backlog`` above the kernel's cap is cut
by the kernel without a word, so it is warned about once, naming the key.

Every stream listener is built from an ``Address`` (``viabtc.config``),
whose ``server_endpoint`` puts the backlog into the Twisted description
through ``with_backlog``: the seed's ``tcp@ip:port``, ``stream@/path`` and
the Twisted ``tcp:``, ``tcp6:``, ``ssl:`` and ``unix:`` descriptions all get
it; a description that names its own ``backlog=`` keeps it; other endpoint
types (``systemd:`` adopts a socket that is already listening) pass through.
"""

import re
import socket

from twisted.logger import Logger

SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"

#: Twisted server description types whose parser takes ``backlog=``.
_TAKES_BACKLOG = frozenset({"tcp", "tcp6", "ssl", "unix"})
_BACKLOG_ARG = re.compile(r"(?:^|(?<!\\):)backlog=(\d+)(?::|$)")

_log = Logger(namespace="viabtc.backlog")


def somaxconn(path=SOMAXCONN_PATH):
    """
    The kernel's cap on a listen backlog (``net.core.somaxconn``); where
    it cannot be read (not Linux), the C library's ``SOMAXCONN``, which is
    what the seed passes.
    """
    try:
        with open(path) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return socket.SOMAXCONN
    return value if value > 0 else socket.SOMAXCONN


def listen_backlog(configured=None, path=SOMAXCONN_PATH):
    """The backlog to pass to ``listen()``: ``configured``, or the kernel's cap when None."""
    return somaxconn(path) if configured is None else configured


def check_backlog(configured, key, path=SOMAXCONN_PATH):
    """
    Warn, naming ``key``, when ``configured`` is above what the kernel
    grants (it cuts the queue to ``net.core.somaxconn`` silently); returns
    the backlog the listener will really have.
    """
    cap = somaxconn(path)
    if configured > cap:
        _log.warn(
            "config: {key} is {configured}, but the kernel caps a listen backlog at"
            " net.core.somaxconn = {cap}; raise it (sysctl -w net.core.somaxconn={configured})"
            " or the queue stays at {cap}",
            key=key, configured=configured, cap=cap,
        )
        return cap
    return configured


def described_backlog(description):
    """The ``backlog=`` a Twisted description names itself, or None."""
    match = _BACKLOG_ARG.search(description)
    return None if match is None else int(match.group(1))


def with_backlog(description, backlog):
    """
    ``description`` (a Twisted server endpoint description) listening with
    ``backlog``, unless it names its own or its type takes none.
    """
    kind = description.split(":", 1)[0].lower()
    if kind not in _TAKES_BACKLOG or described_backlog(description) is not None:
        return description
    return f"{description}:backlog={backlog}"


def accept_eagerly(port, at_least):
    """
    Make the listening ``port`` take up to ``at_least`` waiting connections
    each time the reactor finds it readable; returns ``port``.

    Twisted's port accepts ``numberAccepts`` connections per reactor turn,
    starts that at 100, shrinks it to what the last turn found (1 after a
    quiet spell) and grows it by only 20 per busy turn.  In between, the
    reactor serves every session with something to read, so at the start of
    a storm a gateway takes 1, 21, 41 ... connections per turn while the
    kernel's queue overflows and drops SYNs.  Taking the whole queue each
    turn (``at_least`` = the backlog) keeps it empty; each accept stops at
    the first ``EAGAIN`` anyway.  Ports without the attribute (other endpoint
    types) are left as they are.
    """
    if not hasattr(port, "numberAccepts"):
        return port
    accept = port.doRead

    def doRead():
        if port.numberAccepts < at_least:
            port.numberAccepts = at_least
        return accept()

    port.doRead = doRead
    return port
