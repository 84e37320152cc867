"""The Stratum client session: handshake, notifications, replies, bad input."""

import json
from fractions import Fraction

from hypothesis import given, strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from viabtc.bitcoin.serialize import bip34_height_push, compact_size
from viabtc.stratum.client import (
    MAX_LINE_LENGTH,
    MalformedMessage,
    RequestTimeout,
    SessionClosed,
    StratumAddress,
    StratumClientFactory,
    StratumClientHandler,
    StratumError,
    StratumJob,
    prevhash_from_stratum,
    prevhash_to_stratum,
)

from tests.support import written_json


class RecordingHandler(StratumClientHandler):
    """Keeps every callback it receives, in order."""

    def __init__(self):
        self.events = []

    def sessionStarted(self, session):
        self.events.append(("started", session))

    def sessionEnded(self, session, reason):
        self.events.append(("ended", session))

    def jobReceived(self, job):
        self.events.append(("job", job))

    def difficultyChanged(self, difficulty):
        self.events.append(("difficulty", difficulty))

    def versionMaskChanged(self, mask):
        self.events.append(("mask", mask))

    def extranonceChanged(self, subscription):
        self.events.append(("extranonce", subscription))


PREVHASH_INTERNAL = bytes(range(32))
PREVHASH_STRATUM = "".join(
    bytes(range(i, i + 4))[::-1].hex() for i in range(0, 32, 4))

NOTIFY_PARAMS = [
    "1f", PREVHASH_STRATUM,
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "20020862062f503253482f04b8864e5008",
    "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327"
    "048ed988ac00000000",
    ["aa" * 32, "bb" * 32], "00000002", "1c2ac4af", "504e86b9", False,
]


class Connected:
    """A protocol on a StringTransport with a Clock, and helpers to talk to it."""

    def __init__(self, testcase, mask=None, user_agent="test/1", timeout=30.0):
        self.clock = Clock()
        self.handler = RecordingHandler()
        self.redirects = []
        self.factory = StratumClientFactory(
            self.handler, "alice.rig1", "x", self.clock, user_agent=user_agent,
            version_rolling_mask=mask, timeout=timeout)
        self.factory.redirect = lambda *args: self.redirects.append(args)
        self.protocol = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        testcase.addCleanup(self.close)

    def close(self):
        if self.protocol.connected:
            self.protocol.connectionLost(None)

    def sent(self):
        """The requests written since the last call, decoded."""
        return written_json(self.transport)

    def feed(self, *messages):
        self.protocol.dataReceived(
            b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    def reply(self, request, result=None, error=None):
        self.feed({"id": request["id"], "result": result, "error": error})

    def handshake(self, extranonce1="08000002", size=4):
        (subscribe,) = self.sent()
        self.reply(subscribe, [[["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]],
                               extranonce1, size])
        (authorize,) = self.sent()
        self.reply(authorize, True)


class HandshakeTests(unittest.TestCase):
    def test_subscribe_then_authorize(self):
        """subscribe (with the user agent), then authorize; true makes the session ready."""
        c = Connected(self)
        ready = c.protocol.whenReady()
        (subscribe,) = c.sent()
        self.assertEqual((subscribe["method"], subscribe["params"]), ("mining.subscribe", ["test/1"]))
        c.reply(subscribe, [[["mining.notify", "1"]], "08000002", 4])
        self.assertEqual(c.protocol.subscription.extranonce1, bytes.fromhex("08000002"))
        self.assertEqual(c.protocol.subscription.extranonce2_size, 4)
        (authorize,) = c.sent()
        self.assertEqual((authorize["method"], authorize["params"]),
                         ("mining.authorize", ["alice.rig1", "x"]))
        self.assertNoResult(ready)
        c.reply(authorize, True)
        self.assertIs(self.successResultOf(ready), c.protocol)
        self.assertEqual(c.handler.events, [("started", c.protocol)])
        self.assertTrue(c.protocol.authorized)

    def test_watcher_subscribes_without_user_agent(self):
        """poolbench's form: mining.subscribe with empty params (ref §7)."""
        c = Connected(self, user_agent=None)
        (subscribe,) = c.sent()
        self.assertEqual(subscribe["params"], [])

    def test_authorize_refused(self):
        """An authorize error fails the handshake and closes the connection."""
        c = Connected(self)
        ready = c.protocol.whenReady()
        (subscribe,) = c.sent()
        c.reply(subscribe, [[], "00", 8])
        (authorize,) = c.sent()
        c.reply(authorize, None, [24, "Unauthorized worker", None])
        failure = self.failureResultOf(ready, StratumError)
        self.assertEqual(failure.value.code, 24)
        self.assertTrue(c.transport.disconnecting)
        self.failureResultOf(c.protocol.whenReady(), StratumError)

    def test_bad_subscribe_result(self):
        """A subscribe result of the wrong shape fails the handshake, nothing raised."""
        c = Connected(self)
        ready = c.protocol.whenReady()
        (subscribe,) = c.sent()
        c.reply(subscribe, {"not": "a list"})
        self.failureResultOf(ready, MalformedMessage)
        self.assertTrue(c.transport.disconnecting)

    def test_version_rolling(self):
        """configure is sent first; the granted mask is kept, never beyond the request."""
        c = Connected(self, mask=0x1FFFE000)
        configure, subscribe = c.sent()
        self.assertEqual(configure["method"], "mining.configure")
        self.assertEqual(configure["params"][0], ["version-rolling"])
        self.assertEqual(configure["params"][1]["version-rolling.mask"], "1fffe000")
        c.reply(configure, {"version-rolling": True, "version-rolling.mask": "ffffffff"})
        self.assertEqual(c.protocol.version_mask, 0x1FFFE000)
        c.feed({"id": None, "method": "mining.set_version_mask", "params": ["00006000"]})
        self.assertEqual(c.protocol.version_mask, 0x6000)
        self.assertEqual(c.handler.events, [("mask", 0x1FFFE000), ("mask", 0x6000)])

    def test_configure_unanswered(self):
        """A pool that never answers configure: no rolling, the handshake goes on."""
        c = Connected(self, mask=0x1FFFE000, timeout=5)
        configure, subscribe = c.sent()
        c.reply(subscribe, [[], "01020304", 8])
        (authorize,) = c.sent()
        c.reply(authorize, True)
        c.clock.advance(5)
        self.assertEqual(c.protocol.version_mask, 0)
        self.assertTrue(c.protocol.authorized)
        self.assertFalse(c.transport.disconnecting)

    def test_handshake_timeout(self):
        """No answer to subscribe within the timeout closes the connection."""
        c = Connected(self, timeout=10)
        ready = c.protocol.whenReady()
        c.clock.advance(10)
        self.failureResultOf(ready, RequestTimeout)
        self.assertTrue(c.transport.disconnecting)

    def test_closed_during_handshake(self):
        c = Connected(self)
        ready = c.protocol.whenReady()
        c.protocol.connectionLost(None)
        self.failureResultOf(ready, SessionClosed)
        self.assertEqual(c.handler.events, [("ended", c.protocol)])


class NotificationTests(unittest.TestCase):
    def setUp(self):
        self.c = Connected(self)
        self.c.handshake()
        del self.c.handler.events[:]

    def test_notify(self):
        """mining.notify becomes a StratumJob with internal-order bytes and integers."""
        self.c.feed({"id": None, "method": "mining.notify", "params": NOTIFY_PARAMS})
        [(kind, job)] = self.c.handler.events
        self.assertEqual(kind, "job")
        self.assertEqual(job.job_id, "1f")
        self.assertEqual(job.prev_hash, PREVHASH_INTERNAL)
        self.assertEqual(job.branch, (b"\xaa" * 32, b"\xbb" * 32))
        self.assertEqual((job.version, job.bits, job.time, job.clean),
                         (2, 0x1C2AC4AF, 0x504E86B9, False))
        self.assertEqual(job.coinbase1[-1], 0x08)
        self.assertIs(self.c.protocol.job, job)

    def test_difficulty(self):
        """Integer difficulties stay ints; fractional ones become exact Fractions."""
        for value, expected in [(1024, 1024), (0.001, Fraction(1, 1000)),
                                (9.5367431640625e-07, Fraction(1, 2**20))]:
            self.c.feed({"id": None, "method": "mining.set_difficulty", "params": [value]})
            self.assertEqual(self.c.handler.events[-1], ("difficulty", expected))
            self.assertEqual(type(self.c.handler.events[-1][1]), type(expected))

    def test_set_extranonce(self):
        self.c.feed({"id": None, "method": "mining.set_extranonce", "params": ["abcd0001", 6]})
        [(kind, subscription)] = self.c.handler.events
        self.assertEqual((subscription.extranonce1, subscription.extranonce2_size),
                         (bytes.fromhex("abcd0001"), 6))
        self.assertIs(self.c.protocol.subscription, subscription)

    def test_reconnect(self):
        """client.reconnect redirects the service and drops the connection."""
        self.c.feed({"id": None, "method": "client.reconnect",
                     "params": ["pool2.example", "3334", 5]})
        self.assertEqual(self.c.redirects, [("pool2.example", 3334, 5.0)])
        self.assertTrue(self.c.transport.disconnecting)

    def test_reconnect_same_server(self):
        """Without params it reconnects to the same address, at once; a huge wait is capped."""
        self.c.feed({"id": None, "method": "client.reconnect", "params": []})
        self.c.feed({"id": None, "method": "client.reconnect", "params": [None, None, 1e9]})
        self.assertEqual(self.c.redirects, [(None, None, 0.0), (None, None, 600.0)])

    def test_get_version(self):
        self.c.feed({"id": 77, "method": "client.get_version", "params": []})
        self.assertEqual(self.c.sent(), [{"id": 77, "result": "test/1", "error": None}])

    def test_lines_split_across_reads(self):
        line = json.dumps({"id": None, "method": "mining.set_difficulty", "params": [8]}).encode()
        self.c.protocol.dataReceived(line[:10])
        self.c.protocol.dataReceived(line[10:] + b"\n")
        self.assertEqual(self.c.handler.events, [("difficulty", 8)])


class GarbageTests(unittest.TestCase):
    def setUp(self):
        self.c = Connected(self)
        self.c.handshake()
        del self.c.handler.events[:]

    def assertStillWorks(self):
        self.assertFalse(self.c.transport.disconnecting)
        self.c.feed({"id": None, "method": "mining.set_difficulty", "params": [2]})
        self.assertEqual(self.c.handler.events[-1], ("difficulty", 2))

    def test_not_json(self):
        self.c.protocol.dataReceived(b"\x00\xffnot json{\n[1,2]\n\"str\"\n\r\n")
        self.assertStillWorks()

    def test_bad_params(self):
        """Notifications with broken params are logged and dropped."""
        bad = [
            ("mining.notify", ["1"]),
            ("mining.notify", [*NOTIFY_PARAMS[:1], "zz" * 32, *NOTIFY_PARAMS[2:]]),
            ("mining.notify", [*NOTIFY_PARAMS[:4], ["aa"], *NOTIFY_PARAMS[5:]]),
            ("mining.notify", [*NOTIFY_PARAMS[:5], "2", *NOTIFY_PARAMS[6:]]),
            ("mining.set_difficulty", [0]),
            ("mining.set_difficulty", ["8"]),
            ("mining.set_difficulty", [True]),
            ("mining.set_difficulty", []),
            ("mining.set_version_mask", ["xyz"]),
            ("mining.set_extranonce", ["abc", 4]),
            ("mining.set_extranonce", ["ab", 400]),
            ("client.reconnect", ["h", "notaport"]),
            ("no.such.method", []),
        ]
        for method, params in bad:
            self.c.feed({"id": None, "method": method, "params": params})
        self.c.feed({"id": None, "method": "mining.notify", "params": "not a list"})
        self.assertEqual(self.c.handler.events, [])
        self.assertStillWorks()

    def test_unknown_reply(self):
        self.c.feed({"id": 9999, "result": True, "error": None},
                    {"id": [1], "result": True, "error": None},
                    {"result": True})
        self.assertStillWorks()

    def test_handler_bug_keeps_connection(self):
        """An exception in the handler is logged; the pool connection stays."""
        def broken(job):
            raise RuntimeError("handler bug")
        self.c.handler.jobReceived = broken
        self.c.feed({"id": None, "method": "mining.notify", "params": NOTIFY_PARAMS})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertStillWorks()

    def test_line_too_long(self):
        """A server that never sends a newline is cut off."""
        self.c.protocol.dataReceived(b"x" * (MAX_LINE_LENGTH + 1))
        self.assertTrue(self.c.transport.disconnecting)

    def test_line_too_long_after_newline(self):
        self.c.protocol.dataReceived(b"{}\n" + b"x" * (MAX_LINE_LENGTH + 1))
        self.assertTrue(self.c.transport.disconnecting)


class RequestTests(unittest.TestCase):
    def setUp(self):
        self.c = Connected(self, timeout=30)
        self.c.handshake()
        self.c.sent()

    def test_submit(self):
        """submit sends the seed's parameter shapes and fires on true."""
        d = self.c.protocol.submit("1f", bytes.fromhex("0000000000000001"), 0x504E86B9, 0xB2957C02)
        (request,) = self.c.sent()
        self.assertEqual(request["method"], "mining.submit")
        self.assertEqual(request["params"],
                         ["alice.rig1", "1f", "0000000000000001", "504e86b9", "b2957c02"])
        self.c.reply(request, True)
        self.assertIsNone(self.successResultOf(d))

    def test_submit_version_bits(self):
        d = self.c.protocol.submit("1f", b"\x00" * 8, 1, 2, version_bits=0x00006000)
        (request,) = self.c.sent()
        self.assertEqual(request["params"][5], "00006000")
        self.c.reply(request, True)
        self.successResultOf(d)

    def test_submit_rejected(self):
        d1 = self.c.protocol.submit("1f", b"\x00" * 8, 1, 2)
        d2 = self.c.protocol.submit("1f", b"\x00" * 8, 1, 3)
        first, second = self.c.sent()
        self.c.reply(second, False)
        self.c.reply(first, None, [23, "Low difficulty share", None])
        error = self.failureResultOf(d1, StratumError).value
        self.assertEqual((error.code, error.message, str(error)),
                         (23, "Low difficulty share", "23 Low difficulty share"))
        self.assertIsNone(self.failureResultOf(d2, StratumError).value.code)

    def test_error_shapes(self):
        """JSON-RPC 2.0 error objects and bare strings are understood too."""
        d1 = self.c.protocol.request("x", [])
        d2 = self.c.protocol.request("y", [])
        first, second = self.c.sent()
        self.c.reply(first, None, {"code": 21, "message": "Job not found"})
        self.c.reply(second, None, "nope")
        self.assertEqual(self.failureResultOf(d1, StratumError).value.code, 21)
        self.assertEqual(self.failureResultOf(d2, StratumError).value.message, "nope")

    def test_timeout(self):
        """No reply within the timeout fails the request; a late reply is ignored."""
        d = self.c.protocol.submit("1f", b"\x00" * 8, 1, 2)
        (request,) = self.c.sent()
        self.c.clock.advance(29)
        self.assertNoResult(d)
        self.c.clock.advance(1)
        self.failureResultOf(d, RequestTimeout)
        self.c.reply(request, True)
        self.assertFalse(self.c.transport.disconnecting)

    def test_connection_lost(self):
        """Requests waiting when the connection closes fail with SessionClosed."""
        d = self.c.protocol.submit("1f", b"\x00" * 8, 1, 2)
        self.c.protocol.connectionLost(None)
        self.failureResultOf(d, SessionClosed)
        self.assertEqual(self.c.clock.getDelayedCalls(), [])


class JobTests(unittest.TestCase):
    @given(st.binary(min_size=32, max_size=32))
    def test_prevhash_round_trip(self, prev_hash):
        self.assertEqual(prevhash_from_stratum(prevhash_to_stratum(prev_hash)), prev_hash)

    def test_prevhash_word_swap(self):
        """Each 4-byte word of the internal-order hash is byte-swapped (ref Appendix A)."""
        self.assertEqual(prevhash_to_stratum(PREVHASH_INTERNAL), PREVHASH_STRATUM)
        self.assertTrue(PREVHASH_STRATUM.startswith("03020100" "07060504"))

    def test_height_from_stratum_example(self):
        """The Stratum documentation's notify: scriptSig starts with push 0x6208."""
        job = StratumJob.from_notify(NOTIFY_PARAMS)
        self.assertEqual(job.coinbase_height(), 25096)

    @given(st.integers(0, 2**31 - 1), st.integers(0, 60))
    def test_height_any_layout(self, height, tail):
        """The height is found after the scriptSig length, whatever its value."""
        script = bip34_height_push(height) + b"\x10" * tail
        coinbase1 = (b"\x01\x00\x00\x00\x01" + b"\x00" * 32 + b"\xff" * 4
                     + compact_size(len(script) + 12) + script)
        params = ["1", "00" * 32, coinbase1.hex(), "", [], "20000000", "207fffff",
                  "65000000", True]
        self.assertEqual(StratumJob.from_notify(params).coinbase_height(), height)

    def test_height_missing(self):
        for coinbase1 in ["01000000", "0100000002", "01000000" "01" + "00" * 36 + "05" + "4c"]:
            params = ["1", "00" * 32, coinbase1, "", [], "20000000", "207fffff", "65000000", True]
            job = StratumJob.from_notify(params)
            self.assertRaises(MalformedMessage, job.coinbase_height)


class AddressTests(unittest.TestCase):
    def test_urls(self):
        self.assertEqual(StratumAddress.from_url("stratum+tcp://127.0.0.1:3333"),
                         StratumAddress("127.0.0.1", 3333, False))
        self.assertEqual(StratumAddress.from_url("stratum+ssl://pool.example:443"),
                         StratumAddress("pool.example", 443, True))
        self.assertEqual(StratumAddress.from_url("localhost:3333"),
                         StratumAddress("localhost", 3333, False))

    def test_bad_urls(self):
        for url in ["http://x:1", "stratum+tcp://x", "stratum+tcp://:3333",
                    "stratum+tcp://x:99999", "stratum+tcp://x:port"]:
            self.assertRaises(ValueError, StratumAddress.from_url, url)
