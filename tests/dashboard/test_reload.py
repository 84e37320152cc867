"""
SIGHUP's part in the dashboard, in-process against a real redis-server:
refresh and what is read change from the next read on, the height lookups
can be switched on; a broken file changes nothing.
"""

import json

from twisted.internet import reactor
from twisted.trial import unittest

from tests.roles import wait_for
from tests.support import redis_server
from viabtc.dashboard import tap
from viabtc.devnet import free_port
from viabtc.reload import HangupReload, ReloadReport
from viabtc.stats import schema


class DashboardReloadTests(unittest.TestCase):
    async def test_refresh_reads_and_node(self):
        server = redis_server(self)
        for n in range(3):
            server.command("RPUSH", schema.NEWBLOCK, schema.block_json("alice", "rig1", "BTC", f"{n:064x}"))
        data = {"redis": {"host": "127.0.0.1", "port": server.port}, "coin": "btc",
                "http_svr": {"bind": f"tcp@127.0.0.1:{free_port()}", "max_pkg_size": 102400},
                "refresh": 600}
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        options = tap.Options()
        service = tap.build_service(options.parse_config(path), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        # The first read comes at once; the next not for ten minutes.
        await wait_for(lambda: service.refresher.reads == 1)
        self.assertEqual((len(service.state.snapshot.blocks), service.heights), (3, None))

        with open(path, "w") as f:
            json.dump(dict(data, refresh=0.1, max_blocks=2, redis_timeout=3,
                           node={"host": "127.0.0.1", "port": free_port(), "user": "u", "pass": "p"},
                           node_timeout=0.5), f)
        hup = HangupReload("dashboard", path, options.parse_config, service, reactor)
        self.assertEqual(hup.reload(), ReloadReport(("refresh", "max_blocks", "node", "node_timeout"),
                                                    ("redis_timeout",)))
        self.assertEqual((service.state.refresh, service.reader.max_blocks), (0.1, 2))
        await wait_for(lambda: service.refresher.reads >= 3)
        self.assertEqual(len(service.state.snapshot.blocks), 2)
        # The node is away: lookups fail, heights stay unknown.
        await wait_for(lambda: service.heights.failures >= 2)
        self.assertEqual([b.height for b in service.state.snapshot.blocks], [None, None])
        self.assertEqual(service.config.redis_timeout, 10.0)

        with open(path, "w") as f:
            json.dump(dict(data, refresh=-1), f)
        self.assertIsNone(hup.reload())
        self.assertEqual(service.state.refresh, 0.1)
