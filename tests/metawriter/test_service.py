"""
The metawriter service over real sockets and a real redis-server: the
trust file on TCP and UDP, reloading it from the CLI, the monitor port,
malformed packets, and the flush at a graceful stop; and the one line a
journal or trust file it cannot read stops start-up with.
"""

import json
import os
import socket
import subprocess
import sys

from twisted.internet import defer, reactor, task, threads
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.roles import tcp_exchange, udp_exchange, wait_for, write_json
from tests.support import redis_server
from viabtc.config import AlertBlock, RedisBlock, ServerBlock, parse_address
from viabtc.devnet import free_port, project_root
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.service import MetaWriterService
from viabtc.rpc.codec import Packet, PacketType, decode_datagram, encode
from viabtc.service import StartupError
from viabtc.stats.records import ShareRecord, encode_bodies

T = 1482252540


def share_packet(user, num=1, sequence=1):
    [body] = encode_bodies(102, [ShareRecord(user, "gw", "btc", num, 10 * num, 0.0)], minute=T)
    return Packet(102, body, PacketType.REQUEST, sequence)


class ServiceTests(unittest.TestCase):
    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.server = redis_server(self)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.trust_path = os.path.join(self.dir, "trust.json")
        self.write_trust({"10.9.9.9": "somewhere else"})
        self.tcp = free_port()
        self.udp = free_port(kind=socket.SOCK_DGRAM)
        self.monitor = free_port()
        self.cli = free_port()
        config = MetaWriterConfig(
            svr=ServerBlock((parse_address("tcp@127.0.0.1:%d" % self.tcp),
                             parse_address("udp@127.0.0.1:%d" % self.udp)), 1 << 20),
            redis=RedisBlock("127.0.0.1", self.server.port),
            alert=AlertBlock("mw-test"),
            trust_file=self.trust_path,
            monitor=ServerBlock((parse_address("tcp@127.0.0.1:%d" % self.monitor),), 10240),
            cli=parse_address("tcp@127.0.0.1:%d" % self.cli),
            journal=os.path.join(self.dir, "journal"),
        )
        self.clock = task.Clock()
        self.clock.advance(T + 1)
        self.service = MetaWriterService(config, reactor, clock=self.clock)
        self.service.privilegedStartService()
        self.service.startService()
        self.stopped = False

    def tearDown(self):
        if not self.stopped:
            return self.service.stopService()

    def write_trust(self, data, path=None):
        with open(path or self.trust_path, "w") as f:
            json.dump(data, f)

    def cli_command(self, line):
        """The reply to one CLI line (runs in a thread): all that arrives until 0.5 s of quiet."""
        with socket.create_connection(("127.0.0.1", self.cli), 5) as s:
            s.sendall(line.encode() + b"\n")
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    return data.decode()
                if not chunk:
                    return data.decode()
                data += chunk
                s.settimeout(0.5)

    @defer.inlineCallbacks
    def test_untrusted_then_trusted_after_loadtrust(self):
        pkt = share_packet("alice")
        reply = yield threads.deferToThread(udp_exchange, self.udp, encode(pkt), 0.5)
        self.assertIsNone(reply)
        packets = yield threads.deferToThread(tcp_exchange, self.tcp, encode(share_packet("bob")), 0.5)
        self.assertEqual(packets, [])
        self.assertTrue([e for e in self.events if "untrusted" in e.get("log_format", "")])
        listing = yield threads.deferToThread(self.cli_command, "listtrust")
        self.assertIn("10.9.9.9", listing)
        other = os.path.join(self.dir, "other.json")
        self.write_trust({"127.0.0.1": "local gateway"}, other)
        answer = yield threads.deferToThread(self.cli_command, "loadtrust " + other)
        self.assertEqual(answer, "ok\n")
        answer = yield threads.deferToThread(self.cli_command, "loadtrust /nonexistent/trust.json")
        self.assertTrue(answer.startswith("loadtrust failed: "), answer)
        answer = yield threads.deferToThread(self.cli_command, "loadtrust")
        self.assertEqual(answer, "usage: loadtrust filename\n")
        listing = yield threads.deferToThread(self.cli_command, "listtrust")
        self.assertEqual(listing, "%-15s %-50s\n%-15s %-50s\n" % ("ip", "info", "127.0.0.1", "local gateway"))
        reply = yield threads.deferToThread(udp_exchange, self.udp, encode(pkt))
        self.assertEqual(decode_datagram(reply, 1 << 20), pkt.reply())
        packets = yield threads.deferToThread(tcp_exchange, self.tcp, encode(share_packet("bob", sequence=2)))
        self.assertEqual(packets, [share_packet("bob", sequence=2).reply()])
        yield self.service.stopService()
        self.stopped = True
        self.assertEqual(self.server.command("HGETALL", "btc:s:alice"), [str(T), "1"])
        self.assertEqual(self.server.command("HGETALL", "btc:s:bob"), [str(T), "1"])

    @defer.inlineCallbacks
    def test_malformed_packets_dropped_and_writer_keeps_going(self):
        self.write_trust({"127.0.0.1": "local"})
        self.service.trust.load(self.trust_path)
        bad = Packet(102, b"\0" * 40, PacketType.REQUEST, 3)
        reply = yield threads.deferToThread(udp_exchange, self.udp, encode(bad))
        self.assertEqual(decode_datagram(reply, 1 << 20), bad.reply())
        reply = yield threads.deferToThread(udp_exchange, self.udp, b"garbage that is no packet", 0.5)
        self.assertIsNone(reply)
        packets = yield threads.deferToThread(tcp_exchange, self.tcp, encode(bad) + b"beepjunk", 1.0)
        self.assertEqual(packets, [bad.reply()])
        # The monitor port accepts and discards.
        with socket.create_connection(("127.0.0.1", self.monitor), 5) as s:
            s.sendall(b"ping\n")
        packets = yield threads.deferToThread(tcp_exchange, self.tcp, encode(share_packet("carol", 2)))
        self.assertEqual(len(packets), 1)
        yield wait_for(lambda: self.service.writer.accepted == 1)
        # The minute turns: the flush writes carol's shares.
        self.clock.advance(60)
        yield wait_for(lambda: self.server.command("HGETALL", "btc:s:carol") == [str(T), "2"])
        self.assertEqual(self.service.writer.dropped, 2)
        reasons = [e.get("reason") or e.get("error") for e in self.events if "dropped" in e.get("log_format", "")]
        self.assertEqual(len(reasons), 3, reasons)


class StartupErrorTests(unittest.TestCase):
    """A trust file or journal that cannot be read stops start-up with one line, before anything opens."""

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        self.journal = os.path.join(self.dir, "journal")
        os.makedirs(self.journal)
        self.trust_path = write_json(os.path.join(self.dir, "trust.json"), {"127.0.0.1": "local"})

    def config(self):
        return {"svr": {"bind": ["tcp@127.0.0.1:%d" % free_port()], "max_pkg_size": 1 << 20},
                "redis": {"host": "127.0.0.1", "port": free_port()}, "alert": {"host": "mw-test"},
                "trust_file": self.trust_path, "journal": self.journal}

    def error(self):
        config = MetaWriterConfig.from_file(write_json(os.path.join(self.dir, "config.json"), self.config()))
        service = MetaWriterService(config, reactor)
        e = self.assertRaises(StartupError, service.privilegedStartService)
        # Nothing was started: no Redis connection, no listener.
        self.assertIsNone(service.redis)
        self.assertEqual(list(service), [])
        self.assertNotIn("\n", str(e))
        return str(e)

    def test_corrupt_batches_file(self):
        path = os.path.join(self.journal, "000000000001.batches")
        with open(path, "w") as f:
            f.write("garbage")
        self.assertTrue(self.error().startswith(f"journal error: {path}: not a batches file ("))

    def test_journal_is_not_a_directory(self):
        os.rmdir(self.journal)
        with open(self.journal, "w") as f:
            f.write("a file")
        self.assertEqual(self.error(), f"journal error: {self.journal}: File exists")

    def test_trust_file_broken_after_the_config_was_read(self):
        config = MetaWriterConfig.from_file(write_json(os.path.join(self.dir, "config.json"), self.config()))
        with open(self.trust_path, "w") as f:
            f.write("[")
        service = MetaWriterService(config, reactor)
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertTrue(str(e).startswith(f"config error: trust_file: {self.trust_path} is not valid JSON"), str(e))

    def test_twistd_prints_one_line(self):
        """The real ``twistd``: exit status 1, the line in its output, no traceback."""
        with open(os.path.join(self.journal, "000000000001.batches"), "w") as f:
            f.write("garbage")
        path = write_json(os.path.join(self.dir, "config.json"), self.config())
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        result = subprocess.run([twistd, "-n", "--pidfile=", "viabtc-metawriter", "--config", path],
                                cwd=project_root(), env=dict(os.environ, PYTHONPATH=project_root()),
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1)
        output = result.stdout + result.stderr
        self.assertNotIn("Traceback", output)
        [line] = [line for line in output.splitlines() if "journal error" in line]
        self.assertIn(f"journal error: {self.journal}/000000000001.batches: not a batches file", line)
