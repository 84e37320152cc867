"""
viabtc-miner against the in-test fake pool (``tests.tools.fakepool``): the
shares it submits verify, clean jobs drop old work, it reconnects, TLS, and
the console script itself.
"""

import contextlib
import datetime
import io
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import capturedLogs, formatEvent
from twisted.trial import unittest

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.bitcoin.target import difficulty_to_target, target_to_bits
from viabtc.devnet import free_port, project_root
from viabtc.stratum.client import DEFAULT_VERSION_ROLLING_MASK, TLSSettings
from viabtc.tools.miner import MinerConfig, format_hashrate, parse_args, run_miner
from viabtc.tools.mining import grind

from tests.tools.fakepool import FakePool

#: 2**-20 as the pool sends it: about 4,000 hashes per share, exact in binary.
DIFFICULTY = 2.0**-20


@inlineCallbacks
def wait_until(predicate, timeout=20.0):
    """Poll ``predicate`` on the real reactor until it holds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        yield deferLater(reactor, 0.01, lambda: None)


class HeldGrinder:
    """
    A FAKE grinder: it runs the real ``grind`` at once but hands each result
    back only when the test calls ``release()``.  Real threads put a clean
    job between a chunk's start and its result only by chance; this makes
    that ordering certain.
    """

    def __init__(self):
        self.held = []

    def grind(self, prefix, start, stop, target):
        result = Deferred()
        self.held.append((result, grind(prefix, start, stop, target)))
        return result

    def release(self):
        held, self.held = self.held, []
        for result, found in held:
            result.callback(found)
        return sum(len(found) for _, found in held)

    def stop(self):
        self.release()


class MinerTestCase(unittest.TestCase):
    def start_pool(self, pool=None, tls=None, **options):
        pool = pool or FakePool(DIFFICULTY, **options)
        if tls is None:
            port = reactor.listenTCP(0, pool, interface="127.0.0.1")
        else:
            port = reactor.listenSSL(0, pool, tls.options(), interface="127.0.0.1")
        self.addCleanup(self._stop_pool, pool, port)
        return pool, port.getHost().port

    @inlineCallbacks
    def _stop_pool(self, pool, port):
        yield port.stopListening()
        pool.drop_all()
        yield wait_until(lambda: not pool.sessions)

    def config(self, port, url="stratum+tcp://127.0.0.1:{port}", **options):
        options.setdefault("chunk", 4096)
        options.setdefault("report_interval", 60.0)
        return MinerConfig(url=url.format(port=port), user="alice.rig1", **options)

    def start_miner(self, config, grinder=None):
        done = run_miner(reactor, config, grinder)
        miner = done.miner
        self.addCleanup(lambda: miner.finish())
        return miner, done


class MiningTests(MinerTestCase):
    @inlineCallbacks
    def test_shares_verify(self):
        """Every share submitted is one the pool rebuilds and accepts."""
        pool, port = self.start_pool()
        _miner, done = self.start_miner(self.config(port, max_shares=5))
        stats = yield done
        self.assertGreaterEqual(stats.accepted, 5)
        self.assertEqual(stats.accepted, len(pool.accepted))
        self.assertEqual((dict(stats.rejected), pool.rejected), ({}, []))
        self.assertEqual(stats.jobs, 1)
        self.assertGreater(stats.hashes, 0)
        methods = [(r["method"], r["params"]) for r in pool.requests[:2]]
        self.assertEqual(methods, [("mining.subscribe", ["viabtc-miner/0.1.0"]),
                                   ("mining.authorize", ["alice.rig1", "x"])])
        self.assertNotIn("mining.configure", [r["method"] for r in pool.requests])

    @inlineCallbacks
    def test_blocks(self):
        """Shares meeting nBits are reported as blocks, as the pool sees them."""
        block_target = difficulty_to_target(DIFFICULTY) // 4
        pool, port = self.start_pool(bits=target_to_bits(block_target))
        stats = yield self.start_miner(self.config(port, max_blocks=2))[1]
        self.assertGreaterEqual(len(stats.blocks), 2)
        self.assertEqual(set(stats.blocks),
                         {hash_to_display_hex(s.hash) for s in pool.accepted if s.block})
        self.assertGreater(stats.accepted, len(stats.blocks))

    @inlineCallbacks
    def test_version_rolling(self):
        """Negotiated rolling: versions change, only inside the mask, and verify."""
        pool, port = self.start_pool()
        config = self.config(port, max_shares=12, nonce_space=8192,
                             version_rolling_mask=DEFAULT_VERSION_ROLLING_MASK)
        stats = yield self.start_miner(config)[1]
        self.assertEqual(pool.rejected, [])
        self.assertEqual(pool.requests[0]["method"], "mining.configure")
        versions = {share.version for share in pool.accepted}
        self.assertGreater(len(versions), 1)
        for version in versions:
            self.assertEqual(version & ~DEFAULT_VERSION_ROLLING_MASK, 0x20000000)
        self.assertEqual(stats.accepted, len(pool.accepted))

    @inlineCallbacks
    def test_extranonce2_rolls(self):
        """When the nonce space runs out, extranonce2 moves on from its start."""
        pool, port = self.start_pool()
        stats = yield self.start_miner(self.config(port, max_shares=12, nonce_space=4096,
                                           extranonce2=0x100))[1]
        values = {int.from_bytes(share.extranonce2, "big") for share in pool.accepted}
        self.assertGreater(len(values), 1)
        self.assertGreaterEqual(min(values), 0x100)
        self.assertEqual(stats.rejected, {})

    @inlineCallbacks
    def test_rejections_counted(self):
        """A pool checking harder than it announced: code-23 rejections are counted."""
        pool, port = self.start_pool(check_difficulty=DIFFICULTY * 16)
        stats = yield self.start_miner(self.config(port, max_shares=2))[1]
        self.assertGreater(stats.rejected[23], 0)
        self.assertEqual(stats.rejected[23], pool.rejected.count(23))
        self.assertEqual(stats.accepted, len(pool.accepted))

    @inlineCallbacks
    def test_processes(self):
        """With more than one worker the search runs in processes and still verifies."""
        pool, port = self.start_pool()
        stats = yield self.start_miner(self.config(port, threads=2, max_shares=3))[1]
        self.assertGreaterEqual(stats.accepted, 3)
        self.assertEqual(pool.rejected, [])

    @inlineCallbacks
    def test_progress_lines(self):
        """A periodic hashrate line, and one line per accepted share."""
        pool, port = self.start_pool()
        with capturedLogs() as events:
            stats = yield self.start_miner(self.config(port, duration=0.6,
                                                       report_interval=0.2))[1]
        lines = [formatEvent(event) for event in events]
        self.assertTrue(any(line.startswith("hashrate ") and "H/s" in line for line in lines),
                        lines)
        self.assertEqual(sum(line.startswith("accepted ") for line in lines), stats.accepted)
        self.assertTrue(any(line.startswith("done: ") for line in lines))

    @inlineCallbacks
    def test_no_pool(self):
        """Nothing listening: the run ends at its duration without a job."""
        stats = yield self.start_miner(self.config(free_port(), duration=0.5))[1]
        self.assertEqual((stats.jobs, stats.sessions, stats.accepted), (0, 0, 0))


class JobChangeTests(MinerTestCase):
    @inlineCallbacks
    def test_clean_job_drops_work(self):
        """Results of work started before a clean job are never submitted."""
        grinder = HeldGrinder()
        pool, port = self.start_pool()
        miner, done = self.start_miner(self.config(port, chunk=65536, max_shares=3), grinder)
        yield wait_until(lambda: grinder.held)
        self.assertTrue(grinder.held[0][1], "the held chunk has shares to drop")
        pool.new_job(clean=True)
        yield wait_until(lambda: miner.stats.jobs == 2)
        while not done.called:
            grinder.release()
            yield deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(pool.rejected, [])
        self.assertEqual({share.job_id for share in pool.accepted}, {"2"})

    @inlineCallbacks
    def test_job_without_clean_keeps_work(self):
        """A non-clean job leaves the old one valid: its shares are still sent."""
        grinder = HeldGrinder()
        pool, port = self.start_pool()
        miner, done = self.start_miner(self.config(port, chunk=65536, max_shares=100), grinder)
        yield wait_until(lambda: grinder.held)
        pool.new_job(clean=False)
        yield wait_until(lambda: miner.stats.jobs == 2)
        found = grinder.release()
        yield wait_until(lambda: len(pool.accepted) == found)
        self.assertEqual({share.job_id for share in pool.accepted}, {"1"})
        yield wait_until(lambda: grinder.held)
        grinder.release()
        yield wait_until(lambda: any(share.job_id == "2" for share in pool.accepted))
        finished = miner.finish()
        grinder.release()
        yield finished
        self.assertEqual(pool.rejected, [])


class ReconnectTests(MinerTestCase):
    @inlineCallbacks
    def test_pool_drops_connection(self):
        """The pool goes away: the miner reconnects and mines on."""
        pool, port = self.start_pool()
        miner, done = self.start_miner(self.config(port))
        yield wait_until(lambda: pool.accepted)
        pool.drop_all()
        yield wait_until(lambda: miner.stats.sessions == 2)
        before = len(pool.accepted)
        yield wait_until(lambda: len(pool.accepted) > before)
        self.assertEqual({share.extranonce1 for share in pool.accepted[before:]},
                         {pool.sessions[0].extranonce1})
        yield miner.finish()
        self.assertEqual(pool.rejected, [])

    @inlineCallbacks
    def test_client_reconnect(self):
        """client.reconnect moves the miner to the address the pool names."""
        pool1, port1 = self.start_pool()
        pool2, port2 = self.start_pool()
        miner, done = self.start_miner(self.config(port1))
        yield wait_until(lambda: pool1.accepted)
        pool1.send_all("client.reconnect", ["127.0.0.1", port2, 0])
        yield wait_until(lambda: pool2.accepted)
        yield wait_until(lambda: not pool1.sessions)
        yield miner.finish()


def make_certificate(directory):
    """A self-signed certificate for "localhost": (PEM path, PrivateCertificate, sha256 hex)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = os.path.join(directory, "pool.pem")
    with open(path, "wb") as f:
        f.write(cert_pem)
    return path, PrivateCertificate.loadPEM(cert_pem + key_pem), \
        certificate.fingerprint(hashes.SHA256()).hex()


class TLSTests(MinerTestCase):
    def setUp(self):
        directory = self.mktemp()
        os.makedirs(directory)
        self.cafile, self.certificate, self.fingerprint = make_certificate(directory)

    def tls_config(self, port, **options):
        return self.config(port, url="stratum+ssl://localhost:{port}", **options)

    @inlineCallbacks
    def test_cafile(self):
        pool, port = self.start_pool(tls=self.certificate)
        config = self.tls_config(port, max_shares=2,
                                 tls=TLSSettings(cafile=self.cafile))
        stats = yield self.start_miner(config)[1]
        self.assertGreaterEqual(stats.accepted, 2)
        self.assertEqual(pool.rejected, [])

    @inlineCallbacks
    def test_fingerprint(self):
        pool, port = self.start_pool(tls=self.certificate)
        pinned = ":".join(self.fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
        config = self.tls_config(port, max_shares=2,
                                 tls=TLSSettings(fingerprint=pinned))
        stats = yield self.start_miner(config)[1]
        self.assertGreaterEqual(stats.accepted, 2)

    @inlineCallbacks
    def test_wrong_fingerprint(self):
        """A certificate that is not the pinned one: no session, no job."""
        pool, port = self.start_pool(tls=self.certificate)
        config = self.tls_config(port, duration=1.0,
                                 tls=TLSSettings(fingerprint="00" * 32))
        stats = yield self.start_miner(config)[1]
        self.assertEqual((stats.jobs, stats.sessions), (0, 0))
        self.assertEqual(pool.requests, [])

    @inlineCallbacks
    def test_untrusted(self):
        """Default verification against the system store refuses a self-signed pool."""
        pool, port = self.start_pool(tls=self.certificate)
        config = self.tls_config(port, duration=1.0)
        stats = yield self.start_miner(config)[1]
        self.assertEqual((stats.jobs, stats.sessions), (0, 0))


class CommandLineTests(MinerTestCase):
    def test_parse(self):
        config = parse_args(["-o", "stratum+tcp://127.0.0.1:3333", "-u", "bob.w", "-p", "d=0.01",
                             "--threads", "3", "--version-rolling", "--duration", "5",
                             "--max-blocks", "1", "--extranonce2", "ff"])
        self.assertEqual((config.user, config.password, config.threads), ("bob.w", "d=0.01", 3))
        self.assertEqual(config.version_rolling_mask, DEFAULT_VERSION_ROLLING_MASK)
        self.assertEqual((config.duration, config.max_blocks, config.extranonce2), (5.0, 1, 255))
        config = parse_args(["-o", "stratum+ssl://h:1", "-u", "u", "--version-rolling", "6000",
                             "--insecure"])
        self.assertEqual(config.version_rolling_mask, 0x6000)
        self.assertTrue(config.tls.insecure)

    def test_parse_errors(self):
        for argv in [["-u", "x"], ["-o", "http://h:1", "-u", "x"],
                     ["-o", "h:1", "-u", "x", "--threads", "0"],
                     ["-o", "h:1", "-u", "x", "--fingerprint", "abc"]]:
            with contextlib.redirect_stderr(io.StringIO()) as usage:
                self.assertRaises(SystemExit, parse_args, argv)
            self.assertIn("viabtc-miner: error:", usage.getvalue())

    def test_format_hashrate(self):
        self.assertEqual(format_hashrate(0), "0.00 H/s")
        self.assertEqual(format_hashrate(712_345.0), "712.35 kH/s")
        self.assertEqual(format_hashrate(3.2e9), "3.20 GH/s")

    def miner_process(self, *args):
        return getProcessOutputAndValue(
            sys.executable, ("-m", "viabtc.tools.miner", *args), env=os.environ,
            path=project_root())

    @inlineCallbacks
    def test_help(self):
        out, err, code = yield self.miner_process("--help")
        self.assertEqual(code, 0)
        self.assertIn(b"usage: viabtc-miner", out)

    @inlineCallbacks
    def test_console_script_mines(self):
        """The real console script mines against the fake pool and exits 0."""
        pool, port = self.start_pool()
        out, err, code = yield self.miner_process(
            "-o", f"stratum+tcp://127.0.0.1:{port}", "-u", "carol.cpu", "--max-shares", "2",
            "--version-rolling")
        self.assertEqual(code, 0, err)
        self.assertIn(b"accepted", out)
        self.assertIn(b"done:", out)
        self.assertGreaterEqual(len(pool.accepted), 2)
        self.assertEqual(pool.rejected, [])

    @inlineCallbacks
    def test_console_script_without_job(self):
        """No pool: the script ends at --duration with a non-zero exit code."""
        out, err, code = yield self.miner_process(
            "-o", f"stratum+tcp://127.0.0.1:{free_port()}", "-u", "carol", "--duration", "1")
        self.assertEqual(code, 1, out + err)
