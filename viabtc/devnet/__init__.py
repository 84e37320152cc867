# -*- test-case-name: tests.devnet -*-
"""
Local services for tests and the local demo: a real ``redis-server`` and a real
bcoin regtest node, each started on free loopback ports and stopped again.

Nothing here is a fake: these start the real programs.  When a program is
missing, ``ServiceUnavailable`` says which and how to install it; tests turn it
into a skip only when ``VIABTC_REQUIRE_SERVICES`` is unset (never in CI).
"""

import collections
import os
import socket
import subprocess

import attrs


class ServiceUnavailable(Exception):
    """A local service (redis-server, bcoin) could not be found or started."""


def services_required():
    """
    True when a missing local service must fail the run instead of skipping
    (``VIABTC_REQUIRE_SERVICES=1``, set by ``scripts/test`` and so in CI).
    """
    return os.environ.get("VIABTC_REQUIRE_SERVICES", "") not in ("", "0")


#: Ports ``free_port`` handed out lately, oldest first: never handed out twice
#: while a test may still be about to bind the first.
_HANDED_OUT = collections.OrderedDict()
_REMEMBERED = 4096


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """
    A port on ``host`` that nothing listens on right now, and that this
    process has not been given lately.

    The socket is bound with port 0 and closed, so there is a small window in
    which another process may take the port; the launchers retry on a bind
    failure for that reason.  Within one process the kernel may hand the
    port just released out again at the next call (a config asking for
    five ports got one twice), so the last ports given are remembered and
    skipped.
    """
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            break
    _HANDED_OUT[port] = None
    if len(_HANDED_OUT) > _REMEMBERED:
        _HANDED_OUT.popitem(last=False)
    return port


@attrs.frozen
class Loopback:
    """
    Where a devnet server runs unless told otherwise: this machine, at
    ``address``.  A *place* starts a program there (``popen``), finds a free
    port there and connects to one; the multi-host tests give another place
    (a network namespace) with the same three methods.
    """

    address: str = "127.0.0.1"

    def popen(self, argv, **kwargs):
        return subprocess.Popen(argv, **kwargs)

    def free_port(self):
        return free_port(self.address)

    def connect(self, port, timeout):
        return socket.create_connection((self.address, port), timeout)


def project_root():
    """The checkout's top directory (where node_modules/ and .venv/ live)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
