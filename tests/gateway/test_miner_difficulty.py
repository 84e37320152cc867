"""
Whatever a miner sends, the gateway's statistics stay writable (issue 17).

The seed's C gateway turns a suggested difficulty below 1 into 0, and that
user's ``goal`` into infinity, which spoiled whole statistics packets.  Each
way a miner sets its difficulty is driven here through the real Stratum
server and the real gateway context and statistics; every minute they
produce must then encode and decode strictly (``records.decode_body``
refuses any value a metawriter would drop).
"""

import json
import math

from hypothesis import given, settings as hsettings, strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.gateway.bans import BanList
from viabtc.gateway.blocks import BlockCourier
from viabtc.gateway.context import GatewayContext
from viabtc.gateway.stats import GatewayStats
from viabtc.stats import records
from viabtc.stats.gateway_agg import MinuteAggregator
from viabtc.stratum.jobs import JobBook
from viabtc.stratum.protocol import StratumServerFactory

from tests.gateway.test_blocks import FakeLink
from tests.stratum.jobs import CURTIME, prepared_job, settings

#: a floor where every hash is a share, so the tests need no grinding
FLOOR = 1e-12
CEILING = 1e6


class StandInSender:
    """A stand-in for the ``ReliableSender``: keeps the packets it is given."""

    def __init__(self):
        self.packets = []

    def send_batch(self, packets):
        self.packets.extend(packets)
        return True


class MinerDifficultyTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(CURTIME)
        self.stats = GatewayStats(MinuteAggregator("gw-1", "btc"), StandInSender(), self.clock)
        self.context = GatewayContext(
            settings(diff_min=FLOOR, diff_default=1e-6, diff_max=CEILING), 1, JobBook(), BanList(self.clock),
            self.stats, courier=BlockCourier(FakeLink(), self.clock, 4.0), clock=self.clock)
        self.prepared = prepared_job()
        self.context.jobs.add(self.prepared)
        self.factory = StratumServerFactory(self.context, self.clock)
        self.context.server = self.factory
        self.nonces = iter(range(2**32))

    def miner(self, password="x"):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 4000))
        proto.makeConnection(transport)
        self.send(proto, transport, "mining.subscribe", [])
        self.send(proto, transport, "mining.authorize", ["alice.rig1", password])
        return proto, transport

    def send(self, proto, transport, method, params):
        """One request (``params`` as JSON text, so NaN and huge integers go as a miner writes them)."""
        text = params if isinstance(params, str) else json.dumps(params)
        transport.clear()
        proto.dataReceived(b'{"id":1,"method":"%s","params":%s}\n' % (method.encode(), text.encode()))
        return [json.loads(line) for line in transport.value().splitlines()]

    def submit(self, proto, transport):
        nonce = f"{next(self.nonces):08x}"
        [reply] = self.send(proto, transport, "mining.submit",
                            ["alice.rig1", self.prepared.job_id, "00" * 8, f"{CURTIME:08x}", nonce])
        return reply

    def assertWritable(self):
        """Every minute held encodes, and decodes strictly: no value a metawriter would drop."""
        goals = []
        for minute in self.stats.aggregator.flush_all():
            for command, body in minute.bodies():
                for record in records.decode_body(command, body):
                    if command == records.META_SHARE:
                        goals.append(record.goal)
        self.assertTrue(all(math.isfinite(g) and g >= 0 for g in goals), goals)
        return goals

    def assertBounded(self, proto):
        difficulty = proto.session.difficulty
        self.assertTrue(FLOOR <= difficulty <= CEILING, difficulty)

    def test_suggestion_below_the_floor_is_clamped(self):
        """The seed's case: a suggestion below 1 (below any floor) is raised to the floor, never to 0."""
        for value in (0.5e-12, 1e-300, 5e-324):
            proto, transport = self.miner()
            replies = self.send(proto, transport, "mining.suggest_difficulty", [value])
            self.assertEqual(replies[1], {"id": None, "method": "mining.set_difficulty", "params": [FLOOR]})
            self.assertIs(self.submit(proto, transport)["result"], True)
        [user, worker] = self.assertWritable()
        self.assertAlmostEqual(user / (3 * FLOOR / self.prepared.block_difficulty), 1.0, places=12)
        self.assertEqual(worker, 0.0)

    def test_seed_sample_floor(self):
        """With the seed's sample bounds (16 .. 16384) a suggestion of 0.5 gets 16."""
        self.context.settings = settings(diff_min=16, diff_default=1024, diff_max=16384)
        proto, transport = self.miner()
        replies = self.send(proto, transport, "mining.suggest_difficulty", [0.5])
        self.assertEqual(replies[1]["params"], [16])

    def test_impossible_suggestions_refused(self):
        proto, transport = self.miner()
        with capturedLogs() as logs:
            for text in ("[0]", "[-0.0]", "[-4]", "[NaN]", "[Infinity]", "[-Infinity]", "[1e400]",
                         "[%d]" % 10**400, '["8"]', "[true]", "[null]", "[]"):
                [reply] = self.send(proto, transport, "mining.suggest_difficulty", text)
                self.assertEqual(reply["error"][0], 20, text)
        self.assertEqual([e for e in logs if "log_failure" in e], [])
        self.assertEqual(proto.session.difficulty, 1e-6)
        self.submit(proto, transport)
        self.assertWritable()

    def test_password_difficulty(self):
        """``d=`` below the floor is clamped; impossible ones are ignored (vardiff goes on)."""
        proto, _ = self.miner("d=1e-20")
        self.assertEqual((proto.session.difficulty, proto.session.vardiff), (FLOOR, None))
        for password in ("d=0", "d=-1", "d=nan", "d=inf", "d=1e-400", "d=1e400", "D=-inf", "x,d=abc"):
            proto, transport = self.miner(password)
            self.assertEqual(proto.session.difficulty, 1e-6, password)
            self.assertIsNotNone(proto.session.vardiff, password)
            self.submit(proto, transport)
        self.assertWritable()

    def test_idle_decrease_stops_at_the_floor(self):
        proto, transport = self.miner()
        for _ in range(60):
            self.clock.advance(3600)
            proto.check_idle(self.clock.seconds())
        self.assertEqual(proto.session.difficulty, FLOOR)
        self.assertIs(self.submit(proto, transport)["result"], True)
        self.assertWritable()

    @given(
        st.one_of(st.floats(), st.integers(min_value=-(10**500), max_value=10**500), st.text(max_size=5),
                  st.booleans(), st.none()),
        st.text(max_size=20) | st.builds(lambda x: f"d={x!r}", st.floats()),
    )
    @hsettings(max_examples=150, deadline=None)
    def test_whatever_the_miner_sends(self, suggestion, password):
        self.stats.aggregator.flush_all()
        with capturedLogs() as logs:
            proto, transport = self.miner(password)
            self.assertBounded(proto)
            text = "[%s]" % (json.dumps(suggestion),)
            self.send(proto, transport, "mining.suggest_difficulty", text)
            self.assertBounded(proto)
            self.submit(proto, transport)
        self.assertEqual([e for e in logs if "log_failure" in e], [])
        self.assertWritable()
