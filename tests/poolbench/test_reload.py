"""
SIGHUP's part in poolbench, in-process over loopback: the watched pools
follow ``pool_list`` (kept ones keep their connection, dropped ones are let
go, new ones watched), ``max_delay`` and the static jobmasters change; a
broken file changes nothing.
"""

import json

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.poolbench import test_service as base
from tests.poolbench.test_config import local_config
from tests.roles import wait_for
from viabtc.poolbench import tap
from viabtc.reload import HangupReload, ReloadReport


class PoolbenchReloadTests(TestCase):
    timeout = 30
    # The service tests' hint listener and fake pools.
    setUp = base.ServiceTests.setUp
    pool = base.ServiceTests.pool
    seen = base.ServiceTests.seen

    def entry(self, name, port, **options):
        return {"name": name, "host": "127.0.0.1", "port": port, "user": "watcher", **options}

    async def test_pools_and_settings(self):
        rival, rival_port = self.pool(101)
        gone, gone_port = self.pool(101)
        fresh, fresh_port = self.pool(101)
        data = local_config(pool_list=[self.entry("rival", rival_port), self.entry("gone", gone_port)],
                            jobmaster=[f"udp@127.0.0.1:{self.udp}"], secret=base.SECRET.decode())
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        options = tap.Options()
        service = self.service = tap.build_service(options.parse_config(path), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        await self.seen("rival", 101)
        await self.seen("gone", 101)
        kept = service.watchers[0]

        with open(path, "w") as f:
            json.dump(dict(data, max_delay=5, jobmaster_update_interval=10,
                           jobmaster=[f"udp@127.0.0.1:{self.udp}", "udp@127.0.0.1:1"],
                           pool_list=[self.entry("rival", rival_port, is_notify=False),
                                      self.entry("fresh", fresh_port)]), f)
        hup = HangupReload("poolbench", path, options.parse_config, service, reactor)
        self.assertEqual(hup.reload(), ReloadReport(("pools", "max_delay", "jobmasters"),
                                                    ("jobmaster_update_interval",)))
        self.assertEqual(list(service.bench.pools), ["rival", "fresh"])
        self.assertIs(service.watchers[0], kept)
        rival_state = service.bench.pools["rival"]
        self.assertEqual((rival_state.height, rival_state.is_notify), (101, False))
        self.assertEqual(service.bench.max_delay, 5)
        self.assertEqual(len(service.sender.addresses), 2)
        await self.seen("fresh", 101)
        await wait_for(lambda: not gone.sessions)
        self.assertEqual(len(rival.sessions), 1)

        with open(path, "w") as f:
            json.dump(dict(data, pool_list=[]), f)
        self.assertIsNone(hup.reload())
        self.assertEqual(list(service.bench.pools), ["rival", "fresh"])
