"""
Tests for viabtc.log: role tagging, the seed's level flags, alert datagrams
(received on a real loopback UDP socket) and their rate limit.
"""

import os

import attrs
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, LogPublisher, PredicateResult
from twisted.trial.unittest import TestCase

from viabtc.config import AlertBlock, LogBlock, parse_address
from viabtc.log import (
    ALERT_MAGIC,
    MAX_ALERT_SIZE,
    AlertSender,
    alert_text,
    format_alert,
    install_role_logging,
    level_filter,
    role_observer,
)


class Receiver(DatagramProtocol):
    """A real UDP socket on loopback collecting datagrams."""

    def __init__(self):
        self.datagrams = []
        self._waiting = []

    def datagramReceived(self, data, addr):
        self.datagrams.append(data)
        waiting, self._waiting = self._waiting, []
        for count, d in waiting:
            self._wait(count, d)

    def _wait(self, count, d):
        if len(self.datagrams) >= count:
            d.callback(self.datagrams[:count])
        else:
            self._waiting.append((count, d))

    def wait_for(self, count):
        d = defer.Deferred()
        self._wait(count, d)
        return d


def listen(testcase):
    """A Receiver on 127.0.0.1 and its address, closed at cleanup."""
    receiver = Receiver()
    port = reactor.listenUDP(0, receiver, interface="127.0.0.1", maxPacketSize=65535)
    testcase.addCleanup(port.stopListening)
    return receiver, parse_address(f"127.0.0.1:{port.getHost().port}", default_transport="udp")


def critical(text, **extra):
    return {"log_level": LogLevel.critical, "log_format": text, "log_namespace": "viabtc.test", **extra}


class RoleObserverTests(TestCase):
    def test_sets_role_default(self):
        seen = []
        observer = role_observer("gateway", seen.append)
        observer({"log_format": "a"})
        observer({"log_format": "b", "role": "jobmaster"})
        self.assertEqual([e["role"] for e in seen], ["gateway", "jobmaster"])


class LevelFilterTests(TestCase):
    def result(self, flags, level):
        return level_filter(flags)({"log_level": level})

    def test_flags_are_a_set(self):
        flags = {"fatal", "error", "info"}
        self.assertEqual(self.result(flags, LogLevel.info), PredicateResult.maybe)
        self.assertEqual(self.result(flags, LogLevel.warn), PredicateResult.no)
        self.assertEqual(self.result(flags, LogLevel.debug), PredicateResult.no)

    def test_mapping(self):
        self.assertEqual(self.result({"trace"}, LogLevel.debug), PredicateResult.maybe)
        self.assertEqual(self.result({"notice"}, LogLevel.info), PredicateResult.maybe)
        self.assertEqual(self.result({"warn"}, LogLevel.warn), PredicateResult.maybe)

    def test_critical_always_passes(self):
        self.assertEqual(self.result(set(), LogLevel.critical), PredicateResult.maybe)
        self.assertEqual(self.result({"user1"}, LogLevel.error), PredicateResult.no)

    def test_unknown_flag(self):
        self.assertRaises(ValueError, level_filter, {"verbose"})


class FormatAlertTests(TestCase):
    def test_exact_bytes(self):
        self.assertEqual(format_alert("192.168.1.1", "[fatal]x: boom"),
                         b"373d26968a5a2b698045192.168.1.1: [fatal]x: boom\n")
        self.assertEqual(len(ALERT_MAGIC), 20)

    def test_truncated_to_10240(self):
        data = format_alert("h", "x" * 20000)
        self.assertEqual(len(data), MAX_ALERT_SIZE)
        self.assertTrue(data.startswith(ALERT_MAGIC + b"h: xxx"))
        self.assertTrue(data.endswith(b"x\n"))

    def test_truncation_keeps_utf8_whole(self):
        data = format_alert("h", "\u20ac" * 5000)
        self.assertLessEqual(len(data), MAX_ALERT_SIZE)
        data.decode("utf-8")

    def test_alert_text(self):
        self.assertEqual(alert_text(critical("block {n} lost\nsecond line", n=7, role="jobmaster")),
                         "[fatal]jobmaster viabtc.test: block 7 lost | second line")
        try:
            1 / 0
        except ZeroDivisionError:
            from twisted.python.failure import Failure

            failure = Failure()
        self.assertEqual(alert_text(critical("oops", log_failure=failure)),
                         "[fatal]viabtc.test: oops (ZeroDivisionError: division by zero)")


class AlertSenderTests(TestCase):
    def sender(self, addr, clock=None, **kw):
        sender = AlertSender("pool-1", addr, reactor, clock=clock, **kw)
        self.addCleanup(sender.close)
        return sender

    @defer.inlineCallbacks
    def test_critical_event_sent_as_exact_datagram(self):
        receiver, addr = listen(self)
        sender = self.sender(addr)
        sender({"log_level": LogLevel.error, "log_format": "not me", "log_namespace": "n"})
        sender(critical("node {node} unreachable", node="btc-1", role="jobmaster"))
        (data,) = yield receiver.wait_for(1)
        self.assertEqual(data, b"373d26968a5a2b698045pool-1: [fatal]jobmaster viabtc.test: node btc-1 unreachable\n")

    @defer.inlineCallbacks
    def test_long_alert_truncated_on_the_wire(self):
        receiver, addr = listen(self)
        self.sender(addr).alert("y" * 50000)
        (data,) = yield receiver.wait_for(1)
        self.assertEqual(len(data), MAX_ALERT_SIZE)

    @defer.inlineCallbacks
    def test_rate_limit_and_suppressed_summary(self):
        receiver, addr = listen(self)
        clock = Clock()
        sender = self.sender(addr, clock=clock, rate=0.5, burst=2)
        for i in range(6):
            sender.alert(f"flap {i}")
        sent = yield receiver.wait_for(2)
        self.assertEqual([d.split(b": ", 1)[1] for d in sent], [b"flap 0\n", b"flap 1\n"])
        # One token comes back after 2 s; the summary takes it before anything else.
        clock.advance(1.9)
        sender.alert("during the wait")
        self.assertEqual(len(receiver.datagrams), 2)
        clock.advance(0.1)
        sent = yield receiver.wait_for(3)
        self.assertEqual(sent[2], format_alert("pool-1", "5 similar alerts suppressed; last: during the wait"))
        clock.advance(2)
        sender.alert("later")
        sent = yield receiver.wait_for(4)
        self.assertEqual(sent[3], format_alert("pool-1", "later"))
        self.assertEqual(clock.getDelayedCalls(), [])

    @defer.inlineCallbacks
    def test_close_flushes_summary(self):
        receiver, addr = listen(self)
        clock = Clock()
        sender = AlertSender("h", addr, reactor, clock=clock, rate=0.1, burst=1)
        sender.alert("a")
        sender.alert("b")
        yield sender.close()
        self.assertEqual(clock.getDelayedCalls(), [])
        sent = yield receiver.wait_for(2)
        self.assertEqual(sent[1], format_alert("h", "1 similar alerts suppressed; last: b"))

    def test_send_failure_is_logged_not_raised(self):
        """An unsendable datagram (too big for the socket) is logged, not raised."""
        events = []
        publisher = LogPublisher(events.append)
        sender = self.sender(parse_address("udp@127.0.0.1:9"))
        sender._log = Logger(observer=publisher)
        sender._send(b"x" * 70000)
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])

    def test_needs_udp(self):
        self.assertRaises(ValueError, AlertSender, "h", parse_address("tcp@127.0.0.1:1"), reactor)


@attrs.frozen
class RoleConfig:
    log: LogBlock | None = None
    alert: AlertBlock | None = None


class InstallRoleLoggingTests(TestCase):
    def setUp(self):
        self.seen = []
        self.publisher = LogPublisher()
        self.log = Logger(namespace="viabtc.test", observer=self.publisher)

    def install(self, config, role="gateway"):
        handle = install_role_logging(role, config, reactor, publisher=self.publisher)
        self.addCleanup(handle.remove)
        return handle

    def test_role_tag_reaches_later_observers(self):
        self.install(RoleConfig())
        self.publisher.addObserver(self.seen.append)
        self.log.info("hello")
        self.assertEqual(self.seen[0]["role"], "gateway")

    def test_log_file_holds_enabled_levels(self):
        path = os.path.abspath(self.mktemp())
        handle = self.install(RoleConfig(log=LogBlock(path=path, flags=frozenset({"fatal", "error", "info"}))))
        self.log.info("kept {n}", n=1)
        self.log.warn("dropped")
        self.log.debug("dropped too")
        self.log.error("kept error")
        handle.remove()
        with open(path + ".log") as f:
            text = f.read()
        self.assertIn("kept 1", text)
        self.assertIn("kept error", text)
        self.assertNotIn("dropped", text)

    def test_unwritable_log_path_warns(self):
        self.publisher.addObserver(self.seen.append)
        self.install(RoleConfig(log=LogBlock(path="/nonexistent/dir/role")))
        self.log.info("x")
        self.assertTrue(any("cannot open" in e.get("log_format", "") for e in self.seen))

    @defer.inlineCallbacks
    def test_alerts_sent_and_idempotent(self):
        receiver, addr = listen(self)
        config = RoleConfig(alert=AlertBlock(host="pool-1", addr=addr))
        first = self.install(config, role="jobmaster")
        second = install_role_logging("jobmaster", config, reactor, publisher=self.publisher)
        self.assertEqual(first, second)
        self.log.critical("lost block {h}", h=5)
        (data,) = yield receiver.wait_for(1)
        self.assertEqual(data, format_alert("pool-1", "[fatal]jobmaster viabtc.test: lost block 5"))
        # Installed once: exactly one datagram per critical event.
        self.log.critical("second")
        yield receiver.wait_for(2)
        self.assertEqual(len(receiver.datagrams), 2)

    def test_remove(self):
        handle = install_role_logging("gateway", RoleConfig(), reactor, publisher=self.publisher)
        handle.remove()
        self.publisher.addObserver(self.seen.append)
        self.log.info("after")
        self.assertNotIn("role", self.seen[0])
