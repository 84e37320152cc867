# -*- test-case-name: tests.devnet.test_bcoin -*-
"""
Start and stop a real bcoin regtest node on free loopback ports.

The node module (``viabtc.node``), the jobmaster, bitpeer and blockmaster
tests and the local demo need a Bitcoin node that really validates blocks.
bcoin (installed by ``scripts/bootstrap`` into ``node_modules/``) is a full
node in JavaScript that speaks bitcoind's JSON-RPC and the Bitcoin P2P
protocol, and starts in seconds with an in-memory chain.

Choices made here, and why:

- ``--no-wallet``: the wallet plugin listens on a fixed port (48334 on
  regtest), so two nodes (or two test runs) would collide; nothing here
  needs it (``generatetoaddress`` takes an address, see ``regtest_address``).
- ``--only``: bcoin's regtest seed list is ``127.0.0.1`` on the default
  port, which may be another developer's node.  Without peers to connect to
  we point ``--only`` at ``127.0.0.1:1`` (nothing listens there); with
  ``peers`` it names exactly those.
- ``listen``: off by default; on, the node accepts P2P connections on
  ``p2p_port`` on loopback only (bitpeer, blockmaster and relay tests).

bcoin's regtest address prefixes are its own (P2PKH version byte 0x3c,
P2SH 0x26, bech32 ``rb``), not Bitcoin Core's (0x6f, 0xc4, ``bcrt``):
``regtest_address`` spells an address bcoin accepts for a given hash160.
"""

import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request

import attrs

from viabtc.bitcoin.address import b58check_encode
from viabtc.devnet import ServiceUnavailable, free_port, project_root
from viabtc.devnet.process import stop_process, wait_ready

#: bcoin's regtest P2PKH version byte (``lib/protocol/networks.js``).
BCOIN_REGTEST_PUBKEY_HASH_PREFIX = 0x3C

#: Where nothing listens: keeps bcoin from dialling its regtest seed.
NO_PEER = "127.0.0.1:1"

#: Linux ``prctl`` option: the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1


class BcoinRPCError(Exception):
    """A JSON-RPC call to the test node returned an error object."""

    def __init__(self, method, code, message):
        super().__init__(f"bcoin {method}: error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message


def regtest_address(pubkey_hash):
    """
    The P2PKH address bcoin's regtest accepts for a 20-byte ``pubkey_hash``
    (for ``generatetoaddress``; its script is the usual P2PKH script).
    """
    if len(pubkey_hash) != 20:
        raise ValueError(f"a pubkey hash is 20 bytes, got {len(pubkey_hash)}")
    return b58check_encode(bytes([BCOIN_REGTEST_PUBKEY_HASH_PREFIX]) + pubkey_hash)


def _die_with_parent():
    """
    In the child before exec: ask Linux to send SIGTERM when the test
    process dies, so a killed test run leaves no node behind.  Elsewhere
    ``stop()`` (or the test's cleanup) is the only way.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def bcoin_executable():
    """
    ``(node, script)``: the node.js binary and bcoin's node script, or
    ``ServiceUnavailable`` naming what is missing and how to get it.
    """
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise ServiceUnavailable(
            "node.js not found; install the Debian package 'nodejs' (scripts/bootstrap does this)"
        )
    script = os.path.join(project_root(), "node_modules", "bcoin", "bin", "node")
    if not os.path.exists(script):
        raise ServiceUnavailable(
            f"bcoin not found at {script}; run scripts/bootstrap (npm install)"
        )
    return node, script


@attrs.define
class BcoinNode:
    """
    A running bcoin regtest node child process.

    ``start()`` blocks (at most ``timeout`` seconds) until the node answers
    ``getblockcount``, so callers may use it at once.  Its output goes to
    ``log_path`` in the node's temporary directory; ``stop()`` keeps that
    directory when ``keep_dir`` is set, for debugging a failed test.
    """

    host: str = "127.0.0.1"
    rpc_port: int = 0
    p2p_port: int = 0
    api_key: str = attrs.field(factory=lambda: secrets.token_hex(16), repr=False)
    listen: bool = False
    #: ``host:port`` P2P addresses this node connects to (and only to).
    peers: tuple = attrs.field(default=(), converter=tuple)
    keep_dir: bool = False
    #: More bcoin options (``--compact=false``: a node that never asks for
    #: compact blocks, so its peers serve it whole ones).
    options: tuple = attrs.field(default=(), converter=tuple)
    directory: str | None = None
    process: subprocess.Popen | None = None

    @property
    def rpc_url(self):
        return f"http://{self.host}:{self.rpc_port}/"

    @property
    def p2p_address(self):
        """``host:port`` of the P2P listener (only when ``listen``)."""
        return f"{self.host}:{self.p2p_port}"

    @property
    def log_path(self):
        return os.path.join(self.directory, "bcoin.log") if self.directory else None

    def command_line(self):
        """The full argv that starts this node."""
        node, script = bcoin_executable()
        return [
            node, script,
            "--network=regtest", "--memory=true", "--workers=false", "--no-wallet=true",
            "--log-file=false", f"--prefix={self.directory}",
            f"--http-host={self.host}", f"--http-port={self.rpc_port}",
            f"--api-key={self.api_key}",
            f"--listen={'true' if self.listen else 'false'}",
            f"--host={self.host}", f"--port={self.p2p_port}",
            f"--only={','.join(self.peers) or NO_PEER}",
            *self.options,
        ]

    def start(self, timeout=30.0):
        """Start the node on free ports and wait until it answers RPC."""
        bcoin_executable()
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="viabtc-bcoin-")
        fixed = bool(self.rpc_port and self.p2p_port)
        for _attempt in range(5):
            if not fixed:
                self.rpc_port = free_port(self.host)
                self.p2p_port = free_port(self.host)
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    self.command_line(), stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                )
            if self._wait_ready(timeout):
                return self
            self._terminate()
            if fixed:
                break
        raise ServiceUnavailable(f"bcoin did not start; see {self.log_path}")

    def _wait_ready(self, timeout):
        return wait_ready(self.process, self._answers, timeout, 0.1, (OSError, BcoinRPCError, ValueError))

    def _answers(self):
        self.rpc("getblockcount", timeout=1.0)
        if self.listen:
            # bcoin opens its P2P listener after RPC, once it has
            # given up discovering its external address.
            socket.create_connection((self.host, self.p2p_port), 1.0).close()
        return True

    def _terminate(self):
        stop_process(self.process)
        self.process = None

    def stop(self):
        """Terminate the node and remove its directory (unless ``keep_dir``)."""
        self._terminate()
        if self.directory is not None and not self.keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def rpc(self, method, *params, timeout=30.0):
        """
        Call one JSON-RPC method synchronously and return its ``result``;
        ``BcoinRPCError`` for an error reply.  For tests and the demo: the
        roles use ``viabtc.node``.
        """
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        auth = base64.b64encode(f"viabtc:{self.api_key}".encode()).decode()
        request = urllib.request.Request(
            self.rpc_url, data=body.encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                reply = json.load(response)
        except urllib.error.HTTPError as e:
            # bcoin answers RPC errors with HTTP 200, but keep any JSON body.
            try:
                reply = json.load(e)
            except ValueError:
                raise OSError(f"bcoin {method}: HTTP {e.code}") from None
        error = reply.get("error")
        if error:
            raise BcoinRPCError(method, error.get("code"), error.get("message"))
        return reply["result"]

    def generate(self, count, pubkey_hash=bytes(20)):
        """Mine ``count`` blocks paying ``pubkey_hash``; their display hashes."""
        return self.rpc("generatetoaddress", count, regtest_address(pubkey_hash))

    def connect(self, other):
        """
        Open a P2P connection from this node to ``other`` (which must have
        been started with ``listen=True``).
        """
        if not other.listen:
            raise ValueError("the other node does not listen for P2P connections")
        self.rpc("addnode", other.p2p_address, "onetry")

    def peer_count(self):
        return self.rpc("getconnectioncount")


def start_bcoin(**kw):
    """Start a throw-away bcoin regtest node and return the ``BcoinNode``."""
    return BcoinNode(**kw).start()


__all__ = ["BcoinNode", "BcoinRPCError", "start_bcoin", "regtest_address"]
