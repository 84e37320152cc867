"""
The admin CLI is unauthenticated (as the seed's, ref §12.4): it serves only
loopback and unix-socket peers unless a role opts in with ``allow_remote``,
even when an operator binds it to every interface.
"""

import glob
import ipaddress
import json
import os
import socket

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from viabtc.cli import CommandLineFactory
from viabtc.config import parse_address


SEED_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs")


def secret_command(args):
    """What an attacker wants to run."""
    return "ran"


class Client(Protocol):
    def __init__(self):
        self.data = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.closed.callback(self.data)


def non_loopback_address():
    """An IPv4 address of this host that is not loopback, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        host = s.getsockname()[0]
    return None if host.startswith("127.") or host == "0.0.0.0" else host


class AdminSurfaceTests(TestCase):
    def test_remote_peers_refused_by_default(self):
        factory = CommandLineFactory({"secret": secret_command})
        for addr in (IPv4Address("TCP", "203.0.113.7", 5000), IPv6Address("TCP", "2001:db8::7", 5000),
                     IPv4Address("TCP", "10.0.0.1", 5000), IPv6Address("TCP", "::ffff:203.0.113.7", 5000)):
            self.assertIsNone(factory.buildProtocol(addr), addr)
        for addr in (IPv4Address("TCP", "127.0.0.1", 5000), IPv6Address("TCP", "::1", 5000),
                     IPv6Address("TCP", "::ffff:127.0.0.1", 5000)):
            self.assertIsNotNone(factory.buildProtocol(addr), addr)

    def test_remote_allowed_only_when_configured(self):
        factory = CommandLineFactory({"secret": secret_command}, allow_remote=True)
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "203.0.113.7", 5000)))

    async def test_bound_to_every_interface_still_refuses_a_remote_peer(self):
        """Over real TCP: the CLI listens on 0.0.0.0, a peer reaches it by a non-loopback address."""
        host = non_loopback_address()
        if host is None:
            raise SkipTest("this host has no non-loopback IPv4 address")
        address = parse_address("tcp:0:interface=0.0.0.0", key="cli")
        listening = await address.server_endpoint(reactor).listen(
            CommandLineFactory({"secret": secret_command}))
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        remote = Client()
        await connectProtocol(TCP4ClientEndpoint(reactor, host, port), remote)
        remote.transport.write(b"secret\n")
        self.assertEqual(await remote.closed, b"")
        local = Client()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), local)
        local.transport.write(b"secret\n")
        for _ in range(500):
            if local.data == b"ran\n":
                break
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(local.data, b"ran\n")
        local.transport.loseConnection()
        await local.closed

    def test_seed_samples_bind_loopback(self):
        """Every seed sample config puts its ``cli`` on loopback."""
        found = 0
        for path in sorted(glob.glob(os.path.join(SEED_CONFIGS, "*.json"))):
            with open(path) as f:
                data = json.load(f)
            if "cli" not in data:
                continue
            found += 1
            address = parse_address(data["cli"], key="cli")
            self.assertTrue(ipaddress.ip_address(address.host).is_loopback, path)
            self.assertIn("interface=127.0.0.1", address.server_description())
        self.assertGreater(found, 0)
