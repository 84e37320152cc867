"""
Issue 5, optional TLS on TCP links: a module RPC link (jobmaster ↔
gateway) whose server listens on a role-config ``ssl:`` address and whose
client is built from a role-config link block with an ``ssl:`` client
description that verifies the server (``caCertsDir`` or ``caCertFile``, and
``hostname``).  A client description that would not verify (no CA, no host
name) is refused when the role's configuration is loaded.

Real parts over real loopback sockets: the ``RPCServerFactory`` listening on
``parse_address(...).server_endpoint``, the ``FailoverClient`` from
``viabtc.service.client_link``, a CA and server certificate made fresh for
each test (``tests.tools.test_tls``).  Packets flow both ways and heartbeats
keep the link up; a client trusting another CA, or expecting another host
name, never gets a packet through; with the HMAC secret set, forged packets
sent over a perfectly good TLS connection are still dropped.
"""

import json
import os

from twisted.internet import reactor
from twisted.internet.endpoints import connectProtocol, quoteStringArgument
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from viabtc.config import ConfigError, ConfigReader, RPCClientBlock, parse_address
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.rpc.codec import Command, Packet, PacketType
from viabtc.rpc.interfaces import ILinkObserver, IPacketHandler
from viabtc.rpc.protocol import RPCServerFactory
from viabtc.service import client_link

from tests.gateway.support import job_body, wait_for
from tests.security.test_module_links import FOUND, SECRET, WRONG, Collector, forgeries
from tests.tools.test_tls import issue, make_ca, pem

SEED_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs")

#: The shortest heartbeat timeout a link accepts (clamped to [2 s, 600 s]).
HEARTBEAT_TIMEOUT = 2.0


@implementer(IPacketHandler)
class TLSJobmaster:
    """
    The server end, as a jobmaster's: pushes ``job`` (cmd 1) to each peer
    that connects and records what peers send and how often they come and go.
    """

    def __init__(self, job):
        self.job = job
        self.received = []
        self.connects = 0
        self.disconnects = 0

    def peerConnected(self, protocol):
        self.connects += 1
        protocol.send(Packet(Command.UPDATE_JOB, self.job, PacketType.PUSH))

    def packetReceived(self, protocol, packet):
        self.received.append(packet)

    def peerDisconnected(self, protocol, reason):
        self.disconnects += 1


@implementer(ILinkObserver)
class LinkRecorder:
    """The client end's observer, as a gateway's job link is: records link events and packets."""

    def __init__(self):
        self.connects = 0
        self.disconnects = 0
        self.packets = []

    def on_connect(self, link):
        self.connects += 1

    def on_packet(self, link, packet):
        self.packets.append(packet)

    def on_disconnect(self, link):
        self.disconnects += 1

    def jobs(self):
        return [p.body for p in self.packets if p.command == Command.UPDATE_JOB]


class TLSLinkTests(TestCase):
    timeout = 60

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.dir, "ca"))
        os.makedirs(os.path.join(self.dir, "other-ca"))
        ca = make_ca()
        server = issue(ca, ["localhost", "127.0.0.1"])
        self.write("key.pem", server.key_pem)
        self.write("cert.pem", server.cert_pem)
        self.write("ca/ca.pem", pem(ca))
        self.write("other-ca/ca.pem", pem(make_ca("someone else's CA")))

    def write(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def path(self, name):
        return quoteStringArgument(os.path.join(self.dir, name))

    async def serve(self, secret=None):
        """The jobmaster's RPC server on a role-config ``ssl:`` listen address."""
        self.jobmaster = TLSJobmaster(job_body("1"))
        self.factory = RPCServerFactory(self.jobmaster, max_size=1 << 20, secret=secret, reactor=reactor,
                                        role="test-jobmaster")
        address = parse_address(
            f"ssl:0:interface=127.0.0.1:privateKey={self.path('key.pem')}:certKey={self.path('cert.pem')}",
            "svr.bind")
        self.assertEqual(address.transport, "ssl")
        port = await address.server_endpoint(reactor).listen(self.factory)
        self.addCleanup(port.stopListening)
        self.addCleanup(self.drop_peers)
        self.port = port.getHost().port

    def drop_peers(self):
        for connection in list(self.factory.connections):
            connection.transport.abortConnection()

    def client_address(self, ca="ca", hostname="localhost", ca_file=False):
        """
        The ``ssl:`` client description a gateway's ``job.addr`` would hold:
        the CA as a directory, or with ``ca_file`` as the one file in it.
        """
        trust = f"caCertFile={self.path(ca + '/ca.pem')}" if ca_file else f"caCertsDir={self.path(ca)}"
        return f"ssl:host=127.0.0.1:port={self.port}:{trust}:hostname={hostname}"

    def connect(self, secret=None, **address):
        """A ``FailoverClient`` built from a role config's link block, started; returns its recorder."""
        block = RPCClientBlock.from_reader(ConfigReader({
            "name": "jobmaster", "addr": [self.client_address(**address)], "max_pkg_size": 1 << 20,
            "reconnect_timeout": 0.1, "heartbeat_timeout": HEARTBEAT_TIMEOUT}, "job"))
        self.assertEqual(block.addrs[0].transport, "ssl")
        self.link = client_link(block, reactor, secret, "test-gateway")
        recorder = LinkRecorder()
        self.link.add_observer(recorder)
        self.link.startService()
        self.addCleanup(self.link.stopService)
        return recorder

    async def test_packets_flow_both_ways_and_heartbeats_keep_the_link_up(self):
        await self.serve()
        recorder = self.connect()
        await wait_for(recorder.jobs, what="the job pushed on connect")
        self.assertEqual(recorder.jobs(), [job_body("1")])
        (connection,) = self.factory.connections
        self.assertTrue(ISSLTransport.providedBy(connection.transport))

        # Gateway to jobmaster: a block candidate (cmd 2).
        self.assertTrue(self.link.send(FOUND))
        await wait_for(lambda: self.jobmaster.received, what="the candidate at the jobmaster")
        self.assertEqual([(p.command, p.body) for p in self.jobmaster.received], [(FOUND.command, FOUND.body)])

        # Jobmaster to gateway: a new job pushed later.
        self.assertEqual(self.factory.broadcast(Packet(Command.UPDATE_JOB, job_body("2"), PacketType.PUSH)), 1)
        await wait_for(lambda: len(recorder.jobs()) == 2, what="job 2")
        self.assertEqual(recorder.jobs()[1], job_body("2"))

        # Only heartbeats keep a quiet link alive: both sides drop it after
        # HEARTBEAT_TIMEOUT without them.  Stay quiet for several timeouts.
        await deferLater(reactor, 2.5 * HEARTBEAT_TIMEOUT, lambda: None)
        self.assertEqual((recorder.connects, recorder.disconnects), (1, 0))
        self.assertEqual((self.jobmaster.connects, self.jobmaster.disconnects), (1, 0))
        self.assertEqual(self.factory.connections, {connection})
        self.assertTrue(self.link.connected)

    async def refused(self, **address):
        """The client retries and fails; not one packet crosses in either direction."""
        await self.serve()
        recorder = self.connect(**address)
        # Each attempt reaches the server's TCP accept, then dies in the handshake.
        await wait_for(lambda: self.jobmaster.disconnects >= 3, what="three failed handshakes")
        self.assertEqual(recorder.packets, [])
        self.assertEqual(self.jobmaster.received, [])

    async def test_client_trusting_another_ca_gets_nothing_through(self):
        await self.refused(ca="other-ca")

    async def test_client_expecting_another_host_gets_nothing_through(self):
        # The certificate names localhost and 127.0.0.1 only.
        await self.refused(hostname="jobmaster.example")

    async def test_one_ca_file_verifies_like_a_directory(self):
        await self.serve()
        recorder = self.connect(ca_file=True)
        await wait_for(recorder.jobs, what="the job pushed on connect")
        self.assertEqual(recorder.jobs(), [job_body("1")])
        self.assertTrue(self.link.send(FOUND))
        await wait_for(lambda: self.jobmaster.received, what="the candidate at the jobmaster")
        self.assertEqual([(p.command, p.body) for p in self.jobmaster.received], [(FOUND.command, FOUND.body)])

    async def test_ca_file_client_trusting_another_ca_gets_nothing_through(self):
        await self.refused(ca="other-ca", ca_file=True)

    async def test_ca_file_client_expecting_another_host_gets_nothing_through(self):
        await self.refused(hostname="jobmaster.example", ca_file=True)

    async def test_forged_packets_over_tls_still_dropped(self):
        await self.serve(secret=SECRET)
        # The genuine client, with the secret: delivered both ways.
        recorder = self.connect(secret=SECRET)
        await wait_for(recorder.jobs, what="the job pushed on connect")
        self.link.send(FOUND)
        await wait_for(lambda: self.jobmaster.received, what="the genuine candidate")
        delivered = len(self.jobmaster.received)
        # A peer that completes the TLS handshake (it trusts the right CA)
        # but does not hold the secret: each forgery closes its connection.
        endpoint = parse_address(self.client_address()).client_endpoint(reactor)
        for name, data in forgeries(FOUND):
            peer = Collector()
            await connectProtocol(endpoint, peer)
            peer.transport.write(data)
            await peer.closed
            self.assertEqual(len(self.jobmaster.received), delivered, name)
        # A FailoverClient with the wrong secret is dropped the same way.
        wrong = self.connect(secret=WRONG)
        await wait_for(lambda: self.jobmaster.disconnects >= len(forgeries(FOUND)) + 2,
                       what="the wrong-secret client dropped twice")
        self.assertEqual(wrong.packets, [])
        self.assertEqual(len(self.jobmaster.received), delivered)
        # The genuine link was never disturbed.
        self.assertEqual((recorder.connects, recorder.disconnects), (1, 0))


class UnverifiedLinkConfigTests(TestCase):
    """
    A role whose link names an ``ssl:`` address that would verify nothing
    (encryption only: anyone in the middle can present a certificate) does
    not start: loading its configuration fails with one line naming the key
    and what to add.  Here the seed's metarelay sample with its ``writer``
    link moved to TLS.
    """

    def load(self, address):
        with open(os.path.join(SEED_CONFIGS, "metarelay.json")) as f:
            data = json.load(f)
        data["writer"]["addr"] = ["tcp@127.0.0.1:3000", address]
        path = self.mktemp() + ".json"
        with open(path, "w") as f:
            json.dump(data, f)
        return MetaRelayConfig.from_file(path)

    def test_no_ca_and_no_host_name(self):
        e = self.assertRaises(ConfigError, self.load, "ssl:host=10.0.0.2:port=3000")
        self.assertEqual(e.key, "writer.addr[1]")
        self.assertIn("hostname=", e.message)
        self.assertIn("caCertsDir=", e.message)

    def test_ca_without_host_name_checks_the_chain_only(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "ca.pem"), "wb") as f:
            f.write(pem(make_ca()))
        e = self.assertRaises(ConfigError, self.load,
                              f"ssl:host=10.0.0.2:port=3000:caCertsDir={quoteStringArgument(directory)}")
        self.assertEqual(e.key, "writer.addr[1]")
        self.assertIn("add hostname=", e.message)

    def test_host_name_without_ca(self):
        e = self.assertRaises(ConfigError, self.load, "ssl:host=10.0.0.2:port=3000:hostname=writer")
        self.assertEqual(e.key, "writer.addr[1]")
        self.assertIn("add caCertsDir=", e.message)
        self.assertIn("caCertFile=", e.message)

    def test_verifying_form_loads(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(pem(make_ca()))
        config = self.load(f"ssl:host=10.0.0.2:port=3000:caCertFile={quoteStringArgument(path)}:hostname=writer")
        self.assertEqual([a.transport for a in config.writer.addrs], ["tcp", "ssl"])
