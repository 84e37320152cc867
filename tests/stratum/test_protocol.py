"""Tests for viabtc.stratum.protocol (and the context seam it talks to)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from viabtc.stratum.coinbase import miner_coinbase1_head
from viabtc.stratum.context import Identity, IPoolContext
from viabtc.stratum.jobs import JobBook
from viabtc.stratum.protocol import StratumServerFactory
from viabtc.stratum.session import State

from tests.stratum.jobs import CURTIME, prepared_job, regtest_job, settings as make_settings
from tests.support import written_json


class CountingTransport(StringTransport):
    """A ``StringTransport`` that also counts ``write`` calls."""

    writes = 0

    def write(self, data):
        self.writes += 1
        super().write(data)


@implementer(IPoolContext)
class RecordingContext:
    """
    An in-test pool context: a real ``JobBook`` and the gateway coinbase
    layout, with every event recorded in ``events``.  Not a real part: the
    gateway's context (jobmaster link, statistics) is built on top later.
    """

    role = "test"

    def __init__(self, settings=None, banned=()):
        # Difficulty 1e-12: every hash is a valid share, so tests need no grinding.
        self.settings = make_settings(diff_min=1e-12, diff_default=1e-12) if settings is None else settings
        self.jobs = JobBook()
        self.banned = set(banned)
        self.events = []
        self._counter = 0
        self.transport = None

    def allocate_identity(self):
        self._counter += 1
        return Identity(self._counter.to_bytes(4, "big"), 0xABC00000 + self._counter)

    def is_banned(self, host):
        return host in self.banned

    def coinbase1_head(self, prepared, user):
        return miner_coinbase1_head(prepared, user, 100)

    def worker_authorized(self, session, user, worker):
        self.events.append(("authorized", user, worker))

    def session_closed(self, session):
        self.events.append(("closed", session.user))

    def share_accepted(self, session, user, worker, prepared, result):
        self.events.append(("accepted", user, worker, result.difficulty))

    def share_rejected(self, session, user, worker, code):
        self.events.append(("rejected", user, worker, code))

    def block_found(self, session, user, worker, prepared, result):
        # What the miner had been sent when the block was handed on.
        self.events.append(("block", user, result.hash, self.transport.value()))


class ServerTestCase(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(CURTIME)
        self.context = RecordingContext()
        self.factory = StratumServerFactory(self.context, self.clock)

    def connect(self, host="10.0.0.1", port=4000):
        proto = self.factory.buildProtocol(None)
        transport = CountingTransport(peerAddress=IPv4Address("TCP", host, port))
        proto.makeConnection(transport)
        self.context.transport = transport
        return proto, transport

    def send(self, proto, *messages):
        """Send JSON-RPC requests (dicts) in one ``dataReceived``."""
        proto.dataReceived(b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    def received(self, transport):
        return written_json(transport)

    def call(self, proto, transport, method, params, msg_id=1):
        self.send(proto, {"id": msg_id, "method": method, "params": params})
        return self.received(transport)

    def add_job(self, prepared=None):
        prepared = prepared_job() if prepared is None else prepared
        self.context.jobs.add(prepared)
        return prepared

    def miner(self, account="alice.rig1", password="x", host="10.0.0.1"):
        """A subscribed and authorized session, its initial messages read."""
        proto, transport = self.connect(host)
        self.call(proto, transport, "mining.subscribe", ["test/1.0"])
        self.call(proto, transport, "mining.authorize", [account, password])
        return proto, transport

    def submit(self, proto, transport, job_id="1a", extranonce2="0000000000000000", ntime=None, nonce="00000000",
               *extra, account="alice.rig1", msg_id=9):
        ntime = f"{CURTIME:08x}" if ntime is None else ntime
        return self.call(proto, transport, "mining.submit", [account, job_id, extranonce2, ntime, nonce, *extra], msg_id)

    def assertError(self, replies, code, msg_id=1):
        self.assertEqual(len(replies), 1, replies)
        self.assertEqual(replies[0]["id"], msg_id)
        self.assertIsNone(replies[0]["result"])
        self.assertEqual(replies[0]["error"][0], code, replies)


class ContextTests(ServerTestCase):
    def test_recording_context_provides_the_interface(self):
        verifyObject(IPoolContext, self.context)


class SubscribeAuthorizeTests(ServerTestCase):
    def test_subscribe(self):
        proto, transport = self.connect()
        [reply] = self.call(proto, transport, "mining.subscribe", ["cgminer/4.10"])
        subscriptions, extranonce1, size = reply["result"]
        sub_id = proto.session.identity.subscription_id
        self.assertEqual(subscriptions, [["mining.set_difficulty", sub_id], ["mining.notify", sub_id]])
        self.assertEqual(len(sub_id), 16)
        self.assertEqual(extranonce1, proto.session.identity.extranonce1.hex())
        self.assertEqual(len(extranonce1), 8)
        self.assertEqual(size, 8)
        self.assertIsNone(reply["error"])
        self.assertEqual(proto.session.user_agent, "cgminer/4.10")
        self.assertIs(proto.session.state, State.SUBSCRIBED)

    def test_sessions_get_distinct_extranonce1(self):
        ids = {self.connect()[0].session.identity.extranonce1 for _ in range(10)}
        self.assertEqual(len(ids), 10)

    def test_authorize_before_subscribe(self):
        proto, transport = self.connect()
        self.assertError(self.call(proto, transport, "mining.authorize", ["alice", "x"]), 25)
        self.assertIs(proto.session.state, State.CONNECTED)

    def test_first_authorize_sends_difficulty_and_clean_job(self):
        prepared = self.add_job(prepared_job(clean_jobs=False))
        proto, transport = self.connect()
        self.call(proto, transport, "mining.subscribe", [])
        replies = self.call(proto, transport, "mining.authorize", ["Alice.Rig1", "x"], msg_id=2)
        self.assertEqual(replies[0], {"id": 2, "error": None, "result": True})
        self.assertEqual(replies[1], {"id": None, "method": "mining.set_difficulty", "params": [1e-12]})
        notify = replies[2]
        self.assertEqual(notify["method"], "mining.notify")
        self.assertEqual(notify["params"][0], prepared.job_id)
        self.assertIs(notify["params"][-1], True)
        coinbase1 = self.context.coinbase1_head(prepared, "alice") + proto.session.identity.coinbase1_tail
        self.assertEqual(notify["params"][2], coinbase1.hex())
        self.assertEqual(self.context.events, [("authorized", "alice", "rig1")])
        self.assertIs(proto.session.state, State.AUTHORIZED)
        self.assertEqual(self.factory.authorized, 1)

    def test_second_authorize(self):
        self.add_job()
        proto, transport = self.miner()
        self.assertEqual(self.call(proto, transport, "mining.authorize", ["alice.rig1", "x"]),
                         [{"id": 1, "error": None, "result": True}])
        self.assertEqual(self.call(proto, transport, "mining.authorize", ["alice.rig2", "x"]),
                         [{"id": 1, "error": None, "result": True}])
        self.assertEqual([e for e in self.context.events if e[0] == "authorized"],
                         [("authorized", "alice", "rig1"), ("authorized", "alice", "rig2")])

    def test_authorize_without_job_yet(self):
        proto, transport = self.connect()
        self.call(proto, transport, "mining.subscribe", [])
        replies = self.call(proto, transport, "mining.authorize", ["alice", "x"])
        self.assertEqual([r.get("method") for r in replies], [None, "mining.set_difficulty"])
        prepared = self.add_job()
        self.factory.broadcast_job(prepared)
        [notify] = self.received(transport)
        self.assertEqual(notify["params"][0], prepared.job_id)

    def test_authorize_errors(self):
        proto, transport = self.connect()
        self.call(proto, transport, "mining.subscribe", [])
        self.assertError(self.call(proto, transport, "mining.authorize", ["bad!name", "x"]), 24)
        self.assertError(self.call(proto, transport, "mining.authorize", [5, "x"]), 20)
        self.assertError(self.call(proto, transport, "mining.authorize", []), 20)
        self.assertError(self.call(proto, transport, "mining.authorize", ["a", "b", "c"]), 20)
        self.assertIs(proto.session.state, State.SUBSCRIBED)
        self.assertFalse(transport.disconnecting)

    def test_password_without_password(self):
        proto, transport = self.connect()
        self.call(proto, transport, "mining.subscribe", [])
        self.assertTrue(self.call(proto, transport, "mining.authorize", ["alice"])[0]["result"])

    def test_fixed_difficulty_password(self):
        proto, transport = self.connect()
        self.call(proto, transport, "mining.subscribe", [])
        replies = self.call(proto, transport, "mining.authorize", ["alice", "d=1e9"])
        self.assertEqual(replies[1]["params"], [1024])
        self.assertIsNone(proto.session.vardiff)
        self.assertEqual(proto.session.previous.difficulty, 1024)
        replies = self.call(proto, transport, "mining.authorize", ["alice", "d=16"])
        self.assertEqual(replies[1]["params"], [16])
        self.assertEqual(proto.session.previous.difficulty, 1024)


class SubmitTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.prepared = self.add_job()
        self.proto, self.transport = self.miner()

    def test_valid_share(self):
        replies = self.submit(self.proto, self.transport)
        self.assertEqual(replies, [{"id": 9, "error": None, "result": True}])
        self.assertEqual(self.context.events[-1], ("accepted", "alice", "rig1", 1e-12))
        self.assertEqual(self.proto.session.share_valid, 1)

    def test_duplicate(self):
        self.submit(self.proto, self.transport)
        self.assertError(self.submit(self.proto, self.transport), 22, 9)
        self.assertEqual(self.context.events[-1], ("rejected", "alice", "rig1", 22))

    def test_job_not_found_and_stale(self):
        self.assertError(self.submit(self.proto, self.transport, job_id="ffff"), 21, 9)
        self.add_job(prepared_job(job_id="2"))
        self.assertError(self.submit(self.proto, self.transport, job_id="1a"), 26, 9)

    def test_earlier_job_of_same_block_still_valid(self):
        self.add_job(prepared_job(job_id="2", clean_jobs=False))
        self.assertTrue(self.submit(self.proto, self.transport, job_id="1a")[0]["result"])

    def test_low_difficulty(self):
        self.call(self.proto, self.transport, "mining.suggest_difficulty", [1000])
        # the previous difficulty's grace would still accept the share
        self.assertTrue(self.submit(self.proto, self.transport)[0]["result"])
        self.call(self.proto, self.transport, "mining.suggest_difficulty", [1024])
        self.assertError(self.submit(self.proto, self.transport), 23, 9)

    def test_ntime_out_of_range(self):
        self.assertError(self.submit(self.proto, self.transport, ntime=f"{CURTIME + 7201:08x}"), 27, 9)
        self.assertError(self.submit(self.proto, self.transport, ntime=f"{CURTIME - 7201:08x}"), 27, 9)

    def test_version_bits_need_negotiation(self):
        self.assertError(self.submit(self.proto, self.transport, "1a", "00" * 8, None, "00000000", "00002000"), 28, 9)
        self.call(self.proto, self.transport, "mining.configure",
                  [["version-rolling"], {"version-rolling.mask": "ffffffff"}])
        self.assertTrue(self.submit(self.proto, self.transport, "1a", "00" * 8, None, "00000000", "2000")[0]["result"])
        self.assertError(self.submit(self.proto, self.transport, "1a", "00" * 8, None, "00000001", "20000000"), 28, 9)

    def test_unauthorized_account(self):
        self.assertError(self.submit(self.proto, self.transport, account="mallory.rig1"), 24, 9)
        # a spelling of an authorized account is accepted
        self.assertTrue(self.submit(self.proto, self.transport, account=" Alice.RIG1")[0]["result"])

    def test_not_subscribed_or_authorized(self):
        proto, transport = self.connect()
        self.assertError(self.submit(proto, transport), 25, 9)
        self.call(proto, transport, "mining.subscribe", [])
        self.assertError(self.submit(proto, transport), 24, 9)

    def test_bad_params(self):
        bad = [
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}"],
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", "00000000", "0", "extra"],
            [5, "1a", "00" * 8, f"{CURTIME:08x}", "00000000"],
            ["alice.rig1", 26, "00" * 8, f"{CURTIME:08x}", "00000000"],
            ["alice.rig1", "1a", "00" * 7, f"{CURTIME:08x}", "00000000"],
            ["alice.rig1", "1a", "zz" * 8, f"{CURTIME:08x}", "00000000"],
            ["alice.rig1", "1a", "00 00 00 00 00", f"{CURTIME:08x}", "00000000"],
            ["alice.rig1", "1a", 0, f"{CURTIME:08x}", "00000000"],
            ["alice.rig1", "1a", "00" * 8, "0x123456", "00000000"],
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", "-0000001"],
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", 5],
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", "00000000", ""],
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", "00000000", "123456789"],
            ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", "00000000", 8192],
        ]
        for params in bad:
            self.assertError(self.call(self.proto, self.transport, "mining.submit", params), 20)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.proto.session.share_error, len(bad))

    def test_block_handed_on_before_reply(self):
        regtest = self.add_job(regtest_job(job_id="2"))
        for nonce in range(64):
            before = len([e for e in self.context.events if e[0] == "block"])
            replies = self.submit(self.proto, self.transport, job_id=regtest.job_id, nonce=f"{nonce:08x}", msg_id=77)
            self.assertTrue(replies[0]["result"])
            blocks = [e for e in self.context.events if e[0] == "block"]
            if len(blocks) > before:
                break
        else:
            self.fail("no regtest block in 64 nonces")
        self.assertNotIn(b'"id":77', blocks[-1][3])
        self.assertEqual(blocks[-1][1], "alice")

    def test_too_many_invalid_shares_closes(self):
        for i in range(255):
            self.submit(self.proto, self.transport, job_id="ffff")
            self.assertFalse(self.transport.disconnecting)
        self.submit(self.proto, self.transport, job_id="ffff")
        self.assertTrue(self.transport.disconnecting)

    def test_mostly_valid_shares_keep_the_connection(self):
        for i in range(400):
            if i % 2:
                self.submit(self.proto, self.transport, job_id="ffff")
            else:
                self.submit(self.proto, self.transport, extranonce2=f"{i:016x}")
        self.assertFalse(self.transport.disconnecting)

    def test_one_write_for_pipelined_submits(self):
        messages = [
            {"id": i, "method": "mining.submit",
             "params": ["alice.rig1", "1a", f"{i:016x}", f"{CURTIME:08x}", "00000000"]}
            for i in range(100)
        ]
        self.transport.writes = 0
        self.send(self.proto, *messages)
        self.assertEqual(self.transport.writes, 1)
        replies = self.received(self.transport)
        self.assertEqual([r["id"] for r in replies], list(range(100)))
        self.assertTrue(all(r["result"] is True for r in replies))

    def test_lines_split_across_reads(self):
        data = json.dumps({"id": 5, "method": "mining.submit",
                           "params": ["alice.rig1", "1a", "00" * 8, f"{CURTIME:08x}", "00000000"]}).encode() + b"\r\n"
        for i in range(len(data)):
            self.proto.dataReceived(data[i : i + 1])
        self.assertEqual(self.received(self.transport), [{"id": 5, "error": None, "result": True}])

    def test_handler_exception_answered_with_error(self):
        def broken(*args):
            raise RuntimeError("statistics link down")

        self.context.share_accepted = broken
        self.assertError(self.submit(self.proto, self.transport), 20, 9)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.transport.disconnecting)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
                    | st.sampled_from(["1a", "00" * 8, f"{CURTIME:08x}", "alice.rig1", "2000"]), max_size=8))
    def test_any_submit_params_get_one_reply(self, params):
        proto, transport = self.miner()
        transport.clear()
        proto.dataReceived(json.dumps({"id": 3, "method": "mining.submit", "params": params}).encode() + b"\n")
        replies = self.received(transport)
        self.assertEqual(len(replies), 1)
        self.assertEqual(replies[0]["id"], 3)


class OtherMethodTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.add_job()
        self.proto, self.transport = self.miner()

    def test_configure_version_rolling(self):
        replies = self.call(self.proto, self.transport, "mining.configure",
                            [["version-rolling", "minimum-difficulty", "subscribe-extranonce"],
                             {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2,
                              "minimum-difficulty.value": 2048}])
        self.assertEqual(replies[0]["result"], {"version-rolling": True, "version-rolling.mask": "1fffe000",
                                                "minimum-difficulty": False, "subscribe-extranonce": False})
        self.assertEqual(replies[1], {"id": None, "method": "mining.set_version_mask", "params": ["1fffe000"]})
        self.assertEqual(self.proto.session.version_mask, 0x1FFFE000)

    def test_configure_mask_intersection(self):
        replies = self.call(self.proto, self.transport, "mining.configure",
                            [["version-rolling"], {"version-rolling.mask": "00ff0000"}])
        self.assertEqual(replies[0]["result"]["version-rolling.mask"], "00ff0000")

    def test_configure_too_few_bits(self):
        replies = self.call(self.proto, self.transport, "mining.configure",
                            [["version-rolling"], {"version-rolling.mask": "00006000",
                                                   "version-rolling.min-bit-count": 3}])
        self.assertEqual(replies, [{"id": 1, "error": None, "result": {"version-rolling": False}}])
        self.assertEqual(self.proto.session.version_mask, 0)
        replies = self.call(self.proto, self.transport, "mining.configure",
                            [["version-rolling"], {"version-rolling.mask": "e0000000"}])
        self.assertEqual(replies[0]["result"], {"version-rolling": False})
        replies = self.call(self.proto, self.transport, "mining.configure",
                            [["version-rolling"], {"version-rolling.mask": 5}])
        self.assertEqual(replies[0]["result"], {"version-rolling": False})

    def test_configure_invalid(self):
        self.assertError(self.call(self.proto, self.transport, "mining.configure", []), 31)
        self.assertError(self.call(self.proto, self.transport, "mining.configure", ["version-rolling"]), 31)

    def test_suggest_difficulty(self):
        replies = self.call(self.proto, self.transport, "mining.suggest_difficulty", [5000])
        self.assertEqual(replies, [{"id": 1, "error": None, "result": True},
                                   {"id": None, "method": "mining.set_difficulty", "params": [1024]}])
        self.assertIsNone(self.proto.session.vardiff)
        replies = self.call(self.proto, self.transport, "mining.suggest_difficulty", [0.5])
        self.assertEqual(replies[1]["params"], [0.5])
        self.assertEqual(self.proto.session.previous.difficulty, 1024)

    def test_suggest_difficulty_invalid(self):
        for params in ([0], [-4], ["8"], [True], [], [None]):
            self.assertError(self.call(self.proto, self.transport, "mining.suggest_difficulty", params), 20)
        self.proto.dataReceived(b'{"id":1,"method":"mining.suggest_difficulty","params":[NaN]}\n')
        self.assertError(self.received(self.transport), 20)

    def test_extranonce_subscribe_and_get_transactions(self):
        self.assertEqual(self.call(self.proto, self.transport, "mining.extranonce.subscribe", []),
                         [{"id": 1, "error": None, "result": True}])
        self.assertEqual(self.call(self.proto, self.transport, "mining.get_transactions", ["1a"]),
                         [{"id": 1, "error": None, "result": []}])

    def test_unknown_method(self):
        replies = self.call(self.proto, self.transport, "mining.bogus", [], msg_id="x")
        self.assertEqual(replies, [{"id": "x", "error": [20, "Unknown method", None], "result": None}])
        self.assertFalse(self.transport.disconnecting)


class FramingTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.proto, self.transport = self.connect()

    def assertClosedWithError(self):
        replies = self.received(self.transport)
        self.assertEqual(len(replies), 1)
        self.assertEqual(replies[0]["error"][0], 20)
        self.assertIsNone(replies[0]["id"])
        self.assertTrue(self.transport.disconnecting)

    def test_malformed_json_closes(self):
        self.proto.dataReceived(b'{"id": 1, "method": \n')
        self.assertClosedWithError()

    def test_not_an_object_closes(self):
        self.proto.dataReceived(b"[1, 2, 3]\n")
        self.assertClosedWithError()

    def test_invalid_utf8_closes(self):
        self.proto.dataReceived(b'{"id":"\xff"}\n')
        self.assertClosedWithError()

    def test_nothing_handled_after_close(self):
        self.proto.dataReceived(b'garbage\n{"id":1,"method":"mining.subscribe","params":[]}\n')
        self.assertClosedWithError()
        self.proto.dataReceived(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
        self.assertEqual(self.transport.value(), b"")

    def test_bad_method_or_params_kept(self):
        for message in ({"id": 4, "params": []}, {"id": 4, "method": 5, "params": []},
                        {"id": 4, "method": "mining.subscribe", "params": {}}):
            self.send(self.proto, message)
            self.assertError(self.received(self.transport), 20, 4)
        self.assertFalse(self.transport.disconnecting)

    def test_missing_params_is_empty(self):
        self.send(self.proto, {"id": 1, "method": "mining.subscribe"})
        self.assertEqual(len(self.received(self.transport)[0]["result"]), 3)

    def test_blank_lines_ignored(self):
        self.proto.dataReceived(b"\n\r\n  \n")
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.transport.disconnecting)

    def test_one_megabyte_line_closes(self):
        self.proto.dataReceived(b'{"id":1,"method":"' + b"a" * 1_000_000 + b'"}\n')
        self.assertClosedWithError()
        self.assertEqual(self.proto._buffer, b"")

    def test_endless_line_not_buffered(self):
        self.proto.dataReceived(b"a" * 10_000)
        self.assertFalse(self.transport.disconnecting)
        self.proto.dataReceived(b"a" * 10_000)
        self.assertClosedWithError()
        self.assertEqual(self.proto._buffer, b"")

    def test_line_at_the_limit(self):
        pad = 10240 - len(b'{"id":1,"method":"mining.subscribe","params":[""]}\n')
        self.proto.dataReceived(b'{"id":1,"method":"mining.subscribe","params":["' + b"a" * pad + b'"]}\n')
        self.assertFalse(self.transport.disconnecting)
        self.proto.dataReceived(b'{"id":1,"method":"mining.subscribe","params":["' + b"a" * (pad + 1) + b'"]}\n')
        self.assertTrue(self.transport.disconnecting)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def test_any_bytes_never_raise(self, data):
        proto, transport = self.connect()
        proto.dataReceived(data + b"\n")


class FactoryTests(ServerTestCase):
    def test_fan_out_one_write_per_session(self):
        self.add_job()
        sessions = [self.miner() for _ in range(1000)]
        for proto, transport in sessions:
            transport.clear()
            transport.writes = 0
        prepared = self.add_job(prepared_job(job_id="2", clean_jobs=False))
        self.factory.broadcast_job(prepared)
        coinbases = set()
        for proto, transport in sessions:
            self.assertEqual(transport.writes, 1)
            [notify] = self.received(transport)
            self.assertEqual(notify["params"][0], "2")
            self.assertIs(notify["params"][-1], False)
            coinbases.add(notify["params"][2])
        self.assertEqual(len(coinbases), 1000)
        self.assertEqual(self.factory.counts["job_broadcast"], 1)

    def test_fan_out_coinbase_is_the_sessions_own(self):
        """
        Each broadcast notify carries exactly the coinbase1 its session's
        shares are checked against, per account when the tag names it.
        """
        self.add_job()
        sessions = [self.miner(account=f"{user}.rig{i}") for user in ("alice", "bob", "carol") for i in range(3)]
        for job_id, coinbase_account in (("2", True), ("3", False)):
            prepared = self.add_job(
                prepared_job(job_id=job_id, clean_jobs=False, coinbase_account=coinbase_account))
            for proto, transport in sessions:
                transport.clear()
            self.factory.broadcast_job(prepared)
            tags = set()
            for proto, transport in sessions:
                [notify] = self.received(transport)
                own = proto.session.coinbase(prepared, self.context)[1].decode()
                self.assertEqual(notify["params"][2], own)
                tags.add(own[:-8])
            self.assertEqual(len(tags), 3 if coinbase_account else 1)

    def test_unauthorized_sessions_get_no_job(self):
        proto, transport = self.connect()
        self.factory.broadcast_job(self.add_job())
        self.assertEqual(transport.value(), b"")

    def test_pending_vardiff_sent_with_next_job(self):
        self.context.settings = make_settings(diff_default=1e-12, diff_min=1e-12)
        self.factory = StratumServerFactory(self.context, self.clock)
        self.add_job()
        proto, transport = self.miner()
        for i in range(30):
            self.clock.advance(0.01)
            self.assertTrue(self.submit(proto, transport, extranonce2=f"{i:016x}")[0]["result"])
        self.assertEqual(proto.session.pending, 2e-12)
        self.assertEqual(proto.session.difficulty, 1e-12)
        transport.writes = 0
        self.factory.broadcast_job(self.add_job(prepared_job(job_id="2", clean_jobs=False)))
        self.assertEqual(transport.writes, 1)
        set_difficulty, notify = self.received(transport)
        self.assertEqual(set_difficulty["params"], [2e-12])
        self.assertEqual(notify["method"], "mining.notify")
        self.assertEqual((proto.session.difficulty, proto.session.previous.difficulty), (2e-12, 1e-12))
        self.assertIsNone(proto.session.pending)

    def test_ban_at_connect(self):
        self.context.banned.add("10.6.6.6")
        proto, transport = self.connect("10.6.6.6")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.connections, 0)
        self.assertEqual(self.factory.counts["ip_banned"], 1)
        proto.connectionLost(None)

    def test_close_peers(self):
        banned = [self.miner(host="10.6.6.6") for _ in range(3)]
        kept = self.miner(host="10.0.0.2")
        self.assertEqual(self.factory.close_peers({"10.6.6.6"}), 3)
        self.assertTrue(all(t.disconnecting for p, t in banned))
        self.assertFalse(kept[1].disconnecting)

    def test_connection_lost(self):
        self.add_job()
        proto, transport = self.miner()
        other, _ = self.connect()
        self.assertEqual((self.factory.connections, self.factory.authorized), (2, 1))
        proto.connectionLost(None)
        other.connectionLost(None)
        self.assertEqual(self.context.events[-1], ("closed", "alice"))
        self.assertEqual(self.factory.connections, 0)
        self.assertEqual(self.factory.counts["connection_close"], 2)

    def test_housekeeping_closes_idle_sessions_and_lowers_difficulty(self):
        self.context.settings = make_settings(diff_default=64, diff_max=1024)
        self.factory = StratumServerFactory(self.context, self.clock, housekeeping_interval=4)
        self.factory.startFactory()
        self.addCleanup(self.factory.stopFactory)
        self.add_job()
        proto, transport = self.miner()
        quiet, quiet_transport = self.miner()
        transport.clear()
        self.clock.advance(24)
        [set_difficulty] = self.received(transport)
        self.assertEqual(set_difficulty["method"], "mining.set_difficulty")
        self.assertLess(set_difficulty["params"][0], 64 / 6)
        for _ in range(70):
            self.clock.advance(4)
            self.call(proto, transport, "mining.extranonce.subscribe", [])
        self.assertFalse(transport.disconnecting)
        self.assertTrue(quiet_transport.disconnecting)
