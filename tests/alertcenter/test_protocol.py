"""The seed's alert frame over TCP lines and UDP datagrams."""

from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from viabtc.alertcenter.protocol import (
    AlertDatagramProtocol, AlertLineFactory, FrameError, parse_frame, split_host,
)
from viabtc.log import ALERT_MAGIC

MAGIC = b"373d26968a5a2b698045"


class Received:
    """
    A fake AlertCenter that only records what the protocols hand on; the real
    one is exercised end to end (with a real Redis) in test_service.
    """

    def __init__(self):
        self.texts = []

    def received(self, text, peer):
        self.texts.append((text, peer))


class ParseFrameTests(unittest.TestCase):
    def test_magic(self):
        self.assertEqual(ALERT_MAGIC, MAGIC)

    def test_good_frame(self):
        self.assertEqual(parse_frame(MAGIC + b"10.0.0.1: [fatal]x.c:1(f): boom"), b"10.0.0.1: [fatal]x.c:1(f): boom")

    def test_trailing_cr_stripped(self):
        self.assertEqual(parse_frame(MAGIC + b"h: m\r"), b"h: m")

    def test_nul_ends_text(self):
        self.assertEqual(parse_frame(MAGIC + b"h: m\0rest"), b"h: m")

    def test_refused(self):
        for line in (b"", b"short", MAGIC, MAGIC + b"\r", MAGIC + b"\0x", b"x" * 20 + b"h: m",
                     MAGIC[:19] + b"h: message"):
            self.assertRaises(FrameError, parse_frame, line)

    def test_split_host(self):
        self.assertEqual(split_host(b"10.0.0.1: a: b"), (b"10.0.0.1", b"a: b"))
        self.assertEqual(split_host(b"no host"), (b"", b"no host"))


class LineProtocolTests(unittest.TestCase):
    def connect(self, max_line=10240):
        center = Received()
        proto = AlertLineFactory(center, max_line).buildProtocol(None)
        transport = StringTransport(peerAddress=None)
        proto.makeConnection(transport)
        return center, proto, transport

    def test_lines(self):
        center, proto, transport = self.connect()
        proto.dataReceived(MAGIC + b"h1: one\r\n" + MAGIC + b"h2: two\n" + MAGIC + b"h3: thr")
        self.assertEqual([t for t, _ in center.texts], [b"h1: one", b"h2: two"])
        proto.dataReceived(b"ee\n")
        self.assertEqual(center.texts[-1][0], b"h3: three")
        self.assertFalse(transport.disconnecting)

    def test_bad_magic_closes(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        center, proto, transport = self.connect()
        proto.dataReceived(b"GET / HTTP/1.1 and more text\r\n" + MAGIC + b"h: after\n")
        self.assertEqual(center.texts, [])
        self.assertTrue(transport.disconnecting)
        self.assertIn("bad magic", events[0]["why"])

    def test_too_long_closes(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        center, proto, transport = self.connect(max_line=64)
        proto.dataReceived(MAGIC + b"h: " + b"x" * 100)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(events[0]["limit"], 64)


class DatagramProtocolTests(unittest.TestCase):
    def test_datagrams(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        center = Received()
        proto = AlertDatagramProtocol(center)
        peer = ("10.0.0.9", 5555)
        proto.datagramReceived(MAGIC + b"h: with newline\n", peer)
        proto.datagramReceived(MAGIC + b"h: without newline", peer)
        proto.datagramReceived(MAGIC + b"h: a\n" + MAGIC + b"h: b\n", peer)
        proto.datagramReceived(b"", peer)
        proto.datagramReceived(b"373d26968a5a2b69804", peer)
        proto.datagramReceived(b"not an alert at all, long enough\n", peer)
        self.assertEqual(center.texts, [
            (b"h: with newline", "10.0.0.9:5555"), (b"h: without newline", "10.0.0.9:5555"),
            (b"h: a", "10.0.0.9:5555"), (b"h: b", "10.0.0.9:5555"),
        ])
        self.assertEqual(len(events), 3)
        self.assertEqual({e["peer"] for e in events}, {"10.0.0.9:5555"})
