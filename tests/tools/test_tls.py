"""
Stratum over TLS end to end: a real ``StratumServerFactory`` listening on an
``ssl:`` endpoint (as a gateway's config writes it), ``viabtc-miner``
connecting with ``stratum+ssl://`` and getting shares accepted, and the
miner refusing a pool whose certificate comes from another CA, names another
host, or does not match a pinned fingerprint.  The CA and certificates are
made fresh for each test.
"""

import datetime
import ipaddress
import os

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigReader
from viabtc.stratum.client import StratumAddress, TLSSettings, stratum_endpoint
from viabtc.stratum.protocol import StratumServerFactory
from viabtc.tools.miner import MinerConfig, parse_args, run_miner

from tests.stratum.jobs import prepared_job, settings as make_settings
from tests.stratum.test_protocol import RecordingContext


def _name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@attrs.frozen
class Issued:
    key_pem: bytes
    cert_pem: bytes
    fingerprint: str


def make_ca(common="test pool CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common)).issuer_name(_name(common))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(ca, names):
    """A server certificate signed by ``ca`` for DNS names / IP addresses ``names``."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
        cert.fingerprint(hashes.SHA256()).hex(),
    )


def pem(ca):
    return ca[1].public_bytes(serialization.Encoding.PEM)


class Hello(Protocol):
    """Sends ``mining.subscribe`` and records what comes back and how it ended."""

    def __init__(self):
        self.data = b""
        self.lost = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b'{"id":1,"method":"mining.subscribe","params":[]}\n')

    def dataReceived(self, data):
        self.data += data
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(None)


class TLSStratumTests(TestCase):
    timeout = 60

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.ca = make_ca()
        self.server = issue(self.ca, ["localhost"])
        self.write("key.pem", self.server.key_pem)
        self.write("cert.pem", self.server.cert_pem)
        self.write("ca.pem", pem(self.ca))
        self.write("other-ca.pem", pem(make_ca("someone else's CA")))
        # About 65,000 hashes a share: a few shares a second from a CPU miner,
        # well inside the server's request rate limit.
        self.context = RecordingContext(make_settings(diff_min=2**-16, diff_default=2**-16))
        self.context.jobs.add(prepared_job())  # a hard block target: shares, no blocks
        self.factory = StratumServerFactory(self.context, reactor)
        # The listen address exactly as a gateway config gives it.
        reader = ConfigReader({"bind": "ssl:0:interface=127.0.0.1:privateKey={0}/key.pem:certKey={0}/cert.pem"
                               .format(self.dir)})
        address = reader.address("bind", side="server")
        self.assertEqual(address.transport, "ssl")
        d = address.server_endpoint(reactor).listen(self.factory)
        d.addCallback(self._listening)
        return d

    def _listening(self, port):
        self.port = port.getHost().port
        self.addCleanup(port.stopListening)
        self.addCleanup(self._close_sessions)

    def _close_sessions(self):
        for proto in list(self.factory.sessions):
            proto.abort()

    def write(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def path(self, name):
        return os.path.join(self.dir, name)

    async def mine(self, host, tls, shares=3):
        config = MinerConfig(url=f"stratum+ssl://{host}:{self.port}", user="alice.rig1", tls=tls,
                             max_shares=shares, duration=30, report_interval=60)
        done = run_miner(reactor, config)
        self.addCleanup(done.miner.finish)
        return await done

    async def test_miner_mines_over_tls_with_cafile(self):
        stats = await self.mine("localhost", TLSSettings(cafile=self.path("ca.pem")))
        self.assertGreaterEqual(stats.accepted, 3)
        self.assertEqual(dict(stats.rejected), {})
        accepted = [e for e in self.context.events if e[0] == "accepted"]
        self.assertGreaterEqual(len(accepted), 3)

    async def test_miner_mines_with_pinned_fingerprint(self):
        stats = await self.mine("127.0.0.1", TLSSettings(fingerprint=self.server.fingerprint))
        self.assertGreaterEqual(stats.accepted, 3)

    async def test_command_line_options(self):
        config = parse_args(["-o", f"stratum+ssl://localhost:{self.port}", "-u", "alice.rig1",
                             "--cafile", self.path("ca.pem"), "--max-shares", "2"])
        self.assertEqual(config.tls, TLSSettings(cafile=self.path("ca.pem")))
        done = run_miner(reactor, attrs.evolve(config, duration=30))
        self.addCleanup(done.miner.finish)
        self.assertGreaterEqual((await done).accepted, 2)

    async def refused(self, host, tls):
        """Connect as the miner does; the handshake must fail before any Stratum byte."""
        endpoint = stratum_endpoint(reactor, StratumAddress(host, self.port, True), tls)
        hello = Hello()
        await endpoint.connect(Factory.forProtocol(lambda: hello))
        await hello.lost
        reason = hello.reason
        self.assertEqual(hello.data, b"")
        self.assertTrue(reason.check(SSL.Error, VerificationError), reason)
        self.assertEqual(self.factory.authorized, 0)

    async def test_other_ca_refused(self):
        await self.refused("localhost", TLSSettings(cafile=self.path("other-ca.pem")))

    async def test_wrong_hostname_refused(self):
        # The certificate names "localhost" only.
        await self.refused("127.0.0.1", TLSSettings(cafile=self.path("ca.pem")))

    async def test_wrong_pin_refused(self):
        other = issue(self.ca, ["localhost"])
        await self.refused("localhost", TLSSettings(fingerprint=other.fingerprint))

    async def test_plain_client_on_tls_port_leaves_nothing_behind(self):
        """A plain-text client on the TLS port gets nothing and no session is left behind."""
        hello = Hello()
        await TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(
            Factory.forProtocol(lambda: hello))
        await hello.lost
        self.assertNotIn(b"result", hello.data)
        for _ in range(100):
            if not self.factory.sessions:
                break
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(self.factory.sessions, set())
