"""
The alertcenter end to end: real sockets, a real redis-server, the real
reactor.  Waiting is for conditions (with a generous deadline), never timed.
"""

import socket

from twisted.internet import defer, reactor, task
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.roles import wait_for
from tests.support import redis_server
from viabtc.alertcenter.config import AlertCenterConfig, LimitBlock
from viabtc.alertcenter.service import AlertCenterService
from viabtc.config import RedisBlock, ServerBlock, parse_address
from viabtc.devnet import free_port

MAGIC = b"373d26968a5a2b698045"


def alerts(server):
    return server.command("LRANGE", "alert:message", 0, -1)


class AlertCenterEndToEndTests(unittest.TestCase):
    def start(self, server, **limit):
        self.tcp_port = free_port()
        self.udp_port = free_port(kind=socket.SOCK_DGRAM)
        config = AlertCenterConfig(
            svr=ServerBlock((parse_address("tcp@127.0.0.1:%d" % self.tcp_port),
                             parse_address("udp@127.0.0.1:%d" % self.udp_port)), 10240),
            redis=RedisBlock("127.0.0.1", server.port),
            limit=LimitBlock(**limit),
        )
        service = AlertCenterService(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.udp.close)
        return service

    def send_udp(self, data):
        self.udp.sendto(data, ("127.0.0.1", self.udp_port))

    def tcp(self):
        sock = socket.create_connection(("127.0.0.1", self.tcp_port))
        self.addCleanup(sock.close)
        return sock

    @defer.inlineCallbacks
    def test_udp_and_tcp_alerts_land(self):
        server = redis_server(self)
        self.start(server)
        self.send_udp(MAGIC + b"10.0.0.1: [fatal]gw.c:10(main): udp alert\n")
        yield wait_for(lambda: len(alerts(server)) == 1)
        self.tcp().sendall(MAGIC + b"10.0.0.2: [fatal]jm.c:20(job): tcp alert\r\n")
        yield wait_for(lambda: len(alerts(server)) == 2)
        self.assertEqual(alerts(server), ["10.0.0.1: [fatal]gw.c:10(main): udp alert",
                                          "10.0.0.2: [fatal]jm.c:20(job): tcp alert"])

    @defer.inlineCallbacks
    def test_bad_frames_dropped_with_log(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        server = redis_server(self)
        self.start(server)
        self.send_udp(b"373d2696")
        self.send_udp(b"0000000000000000000010.0.0.1: wrong magic\n")
        bad = self.tcp()
        bad.sendall(b"0000000000000000000010.0.0.1: wrong magic\n")
        yield wait_for(lambda: len([e for e in events if "why" in e]) == 3)
        # The TCP peer with the bad frame was closed.
        bad.settimeout(10)
        self.assertEqual(bad.recv(10), b"")
        self.send_udp(MAGIC + b"h: good\n")
        yield wait_for(lambda: len(alerts(server)) == 1)
        self.assertEqual(alerts(server), ["h: good"])
        whys = sorted(e["why"] for e in events if "why" in e)
        self.assertEqual([w.split(" ")[0] for w in whys], ["bad", "bad", "short"])

    @defer.inlineCallbacks
    def test_flood_is_bounded_and_summarized(self):
        server = redis_server(self)
        service = self.start(server, rate=2.0, burst=5)
        sent = 0
        for _chunk in range(50):
            for _ in range(200):
                self.send_udp(MAGIC + b"10.0.0.1: [fatal]gw.c:99(loop): flapping %d\n" % sent)
                sent += 1
            yield task.deferLater(reactor, 0, lambda: None)
        self.assertEqual(sent, 10000)
        center = service.center
        # Still responsive: another kind of alert goes straight through.
        self.tcp().sendall(MAGIC + b"10.0.0.3: [fatal]other.c:1(x): unrelated\n")
        yield wait_for(lambda: "10.0.0.3: [fatal]other.c:1(x): unrelated" in alerts(server))
        # Every alert the center received is in the list or counted in a summary.

        def accounted():
            entries = alerts(server)
            plain = sum(1 for e in entries if "suppressed" not in e)
            summarized = sum(int(e.split(": ", 1)[1].split(" ")[0]) for e in entries if "suppressed" in e)
            return plain + summarized == center.received_count
        yield wait_for(accounted)
        entries = alerts(server)
        self.assertGreater(center.received_count, 1000)
        self.assertLess(len(entries), 30)
        self.assertTrue(any(e.startswith("10.0.0.1: ") and "similar alerts suppressed; last: [fatal]gw.c:99" in e
                            for e in entries))

    @defer.inlineCallbacks
    def test_redis_restart_alerts_queued_then_delivered(self):
        server = redis_server(self)
        service = self.start(server, queue=4)
        self.send_udp(MAGIC + b"h: before\n")
        yield wait_for(lambda: alerts(server) == ["h: before"])
        server.stop()
        for i in range(6):
            self.send_udp(MAGIC + b"h%d: while down\n" % i)
        yield wait_for(lambda: service.center.received_count == 7)
        self.assertEqual(len(service.center.delivery), 4)
        server.start()
        yield wait_for(lambda: len(alerts(server)) == 5)
        entries = alerts(server)
        # The oldest waiting alerts went first; the rest arrive in order with a drop count.
        self.assertEqual(entries[-1].split(": ", 1)[1], "2 alerts dropped while Redis was unreachable")
        self.assertEqual(entries[:-1], ["h%d: while down" % i for i in (0, 3, 4, 5)])
