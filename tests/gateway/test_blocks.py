"""Block candidates to the jobmaster: the cmd 2 body and the courier's never-drop rules."""

import json

from hypothesis import given, strategies as st
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.gateway.blocks import BlockCourier, found_block_body
from viabtc.rpc.codec import Command, PacketType
from viabtc.rpc.interfaces import ILink
from viabtc.stratum.share import ShareResult

from tests.stratum.jobs import regtest_job


@implementer(ILink)
class FakeLink:
    """
    A fake jobmaster link whose connection can die silently: a real TCP
    link shows that fault only after its heartbeat timeout, which is what
    the courier's unconfirmed window is about.
    """

    def __init__(self):
        self.connected = True
        self.sent = []

    def send(self, packet):
        if self.connected:
            self.sent.append(packet)
        return self.connected

    def add_observer(self, observer):
        pass

    def remove_observer(self, observer):
        pass


class BodyTests(TestCase):
    def test_seed_fields(self):
        prepared = regtest_job()
        result = ShareResult(None, bytes(range(32)), 1.0, True, b"\x01" * 80, b"\x02" * 70, ())
        body = json.loads(found_block_body(prepared, result))
        self.assertEqual(body, {
            "job_id": prepared.job_id,
            "hash": hash_to_display_hex(bytes(range(32))),
            "block_head": "01" * 80,
            "coinbase": "02" * 70,
            "type": "main",
            "name": "BTC",
        })
        aux = json.loads(found_block_body(prepared, result, "aux", "NMC"))
        self.assertEqual((aux["type"], aux["name"]), ("aux", "NMC"))


class CourierTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.link = FakeLink()
        self.courier = BlockCourier(self.link, self.clock, unconfirmed_window=4.0)

    def bodies(self):
        return [p.body for p in self.link.sent]

    def test_sent_at_once_as_a_request(self):
        self.assertTrue(self.courier.send(b"a"))
        (packet,) = self.link.sent
        self.assertEqual((packet.command, packet.pkg_type, packet.body),
                         (Command.FOUND_BLOCK, PacketType.REQUEST, b"a"))

    def test_buffered_while_down_and_alerted(self):
        self.link.connected = False
        with capturedLogs() as events:
            self.assertFalse(self.courier.send(b"a"))
        self.assertEqual([e["log_level"] for e in events], [LogLevel.critical])
        self.assertEqual(self.courier.pending, [b"a"])
        self.link.connected = True
        self.courier.on_connect(self.link)
        self.assertEqual((self.bodies(), self.courier.pending), ([b"a"], []))

    def test_recently_sent_candidates_are_resent_after_a_reconnect(self):
        self.courier.send(b"old")
        self.clock.advance(10)
        self.courier.send(b"recent")
        self.clock.advance(3)
        self.link.connected = False
        self.courier.on_disconnect(self.link)
        self.courier.send(b"while-down")
        self.link.connected = True
        self.courier.on_connect(self.link)
        self.assertEqual(self.bodies(), [b"old", b"recent", b"recent", b"while-down"])

    def test_link_lost_while_flushing_keeps_the_rest(self):
        """
        A link that dies while the buffered candidates are being sent keeps
        every candidate not yet sent, in order, for the next connection.
        """
        self.link.connected = False
        with capturedLogs():
            for body in (b"a", b"b", b"c"):
                self.courier.send(body)
            sends = []

            def send_once(packet):
                sends.append(packet.body)
                if len(sends) == 1:
                    self.link.sent.append(packet)
                    return True
                return False

            self.link.send = send_once
            self.courier.on_connect(self.link)
        self.assertEqual(self.bodies(), [b"a"])
        self.assertEqual(self.courier.pending, [b"b", b"c"])

    @given(st.lists(st.tuples(st.booleans(), st.floats(0, 10)), max_size=30))
    def test_no_candidate_is_ever_dropped(self, steps):
        """Whatever the link does, every candidate reaches a connected link at least once."""
        link = FakeLink()
        courier = BlockCourier(link, Clock(), unconfirmed_window=4.0)
        with capturedLogs():
            for i, (up, wait) in enumerate(steps):
                courier._clock.advance(wait)
                if up != link.connected:
                    link.connected = up
                    (courier.on_connect if up else courier.on_disconnect)(link)
                courier.send(b"%d" % i)
            link.connected = True
            courier.on_connect(link)
        self.assertEqual({p.body for p in link.sent}, {b"%d" % i for i in range(len(steps))})

    def test_stop_logs_undelivered_candidates(self):
        self.link.connected = False
        with capturedLogs() as events:
            self.courier.send(b'{"hash":"x"}')
            self.assertEqual(self.courier.stop(), 1)
        self.assertIn('{"hash":"x"}', events[-1]["body"])

    def test_orderly_stop_does_not_doubt_sent_candidates(self):
        self.courier.send(b"a")
        self.courier.stop()
        with capturedLogs() as events:
            self.courier.on_disconnect(self.link)
        self.assertEqual((self.courier.pending, list(events)), ([], []))
