"""
The dashboard end to end against a real redis-server: keys written as the
metawriter writes them, read by the service, served over real HTTP.
"""

import json
import time

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, readBody

from tests.roles import wait_for
from tests.support import redis_server
from viabtc.config import HTTPBlock, RedisBlock, ServerBlock, parse_address
from viabtc.dashboard.config import DashboardConfig
from viabtc.dashboard.service import DashboardService
from viabtc.devnet import free_port
from viabtc.stats import schema

BLOCK_DIFF = 4.656542373906925e-10


def fill(server, minute):
    """One minute of a regtest pool as the metawriter writes it: pow 0, pow_float and goal exact."""
    c = server.command
    pool = 12 * 0.001
    for name, value in (("share", 12), ("reject", 2), ("reject_23", 2), ("connections", 1)):
        c("HINCRBY", schema.monitor_key("btc", name), str(minute), str(value))
        c("SADD", schema.MONITOR_KEYS, schema.monitor_key("btc", name))
    for name, value in (("pow_float", pool), ("goal", pool / BLOCK_DIFF)):
        c("HINCRBYFLOAT", schema.monitor_key("btc", name), str(minute), schema.format_float(value))
        c("SADD", schema.MONITOR_KEYS, schema.monitor_key("btc", name))
    c("HINCRBY", schema.monitor_key("btc", "block"), str(minute), "1")
    c("SADD", schema.MONITOR_KEYS, schema.monitor_key("btc", "block"))
    for key, value in ((schema.share_key("btc", "s", "alice"), 12),
                       (schema.share_key("btc", "s", "alice", "rig1"), 8),
                       (schema.share_key("btc", "s", "alice", "rig2"), 4),
                       (schema.share_key("btc", "s", "alice", "rig1", reject=True), 2),
                       (schema.share_key("btc", "s", "alice", reject=True), 2)):
        c("HINCRBY", key, str(minute), str(value))
        c("SADD", schema.MINING_KEYS, key)
    c("HINCRBYFLOAT", schema.share_key("btc", "g", "alice"), str(minute), schema.format_float(pool / BLOCK_DIFF))
    c("RPUSH", schema.NEWBLOCK, schema.block_json("alice", "rig1", "BTC", "00" * 32))
    c("SADD", schema.MINING_KEYS, "ltc:s:other")


class DashboardServiceTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_pages_from_real_redis(self):
        server = redis_server(self)
        minute = int(time.time() // 60) * 60 - 60
        fill(server, minute)
        port = free_port()
        config = DashboardConfig(
            redis=RedisBlock("127.0.0.1", server.port), coin="btc",
            http_svr=HTTPBlock(ServerBlock((parse_address(f"tcp@127.0.0.1:{port}"),), 102400)),
            refresh=0.2)
        service = DashboardService(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        yield wait_for(lambda: service.state.snapshot is not None and service.state.snapshot.users)

        agent = Agent(reactor)

        @defer.inlineCallbacks
        def get(path):
            response = yield agent.request(b"GET", f"http://127.0.0.1:{port}{path}".encode())
            body = yield readBody(response)
            return response, body

        response, body = yield get("/api/snapshot.json")
        data = json.loads(body)
        pool = dict((t, v) for t, v in data["pool_series"])
        self.assertAlmostEqual(pool[minute], 0.012 * 2**32 / 60)
        workers = {w["worker"]: dict((t, v) for t, v in w["series"]) for w in data["users"][0]["workers"]}
        self.assertAlmostEqual(workers["rig1"][minute], 0.008 * 2**32 / 60)
        self.assertEqual(data["rejects_by_reason"], [["23 Low difficulty share", 2]])
        self.assertEqual(data["blocks"][0]["minute"], minute)

        response, body = yield get("/")
        self.assertEqual(response.code, 200)
        self.assertIn(b"content-security-policy", dict((k.lower(), v) for k, v in
                                                       response.headers.getAllRawHeaders()))
        self.assertIn(b'id="pool-chart"', body)
        # No node configured: the block's height is not known.
        self.assertIn('<td class="height">–</td>'.encode(), body)
        self.assertIn(b"alice</a>.<span class=\"wname\">rig1", body)
        self.assertNotIn(b"http://", body.replace(b"http://127.0.0.1", b""))

        response, body = yield get("/?q=rig2")
        self.assertIn(b'<tr class="worker hidden" data-name="alice.rig1">', body)
        self.assertIn(b'<tr class="worker" data-name="alice.rig2">', body)

        response, body = yield get("/user?name=alice")
        self.assertEqual(response.code, 200)
        self.assertIn(b'id="worker-rig1"', body)
        response, _ = yield get("/user?name=nobody")
        self.assertEqual(response.code, 404)
        response, body = yield get("/static/dashboard.js")
        self.assertEqual((response.code, b"applySearch" in body), (200, True))
        response, _ = yield get("/static/")
        self.assertEqual(response.code, 404)
        response, body = yield get("/health")
        self.assertEqual(body, b"ok\n")
        response, _ = yield get("/nothing")
        self.assertEqual(response.code, 404)

    @defer.inlineCallbacks
    def test_waiting_page_while_redis_is_away(self):
        port = free_port()
        config = DashboardConfig(
            redis=RedisBlock("127.0.0.1", free_port()), coin="btc",
            http_svr=HTTPBlock(ServerBlock((parse_address(f"tcp@127.0.0.1:{port}"),), 102400)),
            refresh=0.2, redis_timeout=0.5)
        service = DashboardService(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        response = yield Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/".encode())
        body = yield readBody(response)
        self.assertIn(b"Waiting for Redis", body)
        response = yield Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/api/snapshot.json".encode())
        self.assertEqual(response.code, 503)
        yield readBody(response)
