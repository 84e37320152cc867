"""SIGHUP's part in the gateway: difficulty bounds and limits change for new and connected sessions."""

from twisted.trial.unittest import TestCase

from tests.gateway.support import connect_miner, wait_for
from tests.gateway.test_service import DIFFICULTY, running_gateway
from viabtc.config import ConfigReader
from viabtc.gateway import tap
from viabtc.gateway.config import GatewayConfig
from viabtc.reload import ReloadReport


class GatewayReloadTests(TestCase):
    timeout = 60

    async def test_bounds_and_limits_apply_to_connected_sessions(self):
        service, data = await running_gateway(self, tap.build_service)
        config = service.config
        miner = await connect_miner(config.svr.binds[0].port)
        self.addCleanup(lambda: miner.transport.loseConnection())
        await miner.login("alice.rig1")
        await wait_for(lambda: service.server.sessions, what="the session")

        changed = dict(data, diff_min=DIFFICULTY, diff_max=64, target_time=8,
                       limits={"max_connections_per_ip": 7}, coin="bch")
        new = GatewayConfig.from_reader(ConfigReader(changed))
        report = service.reload(new)
        self.assertEqual(report, ReloadReport(("stratum", "limits"), ("coin",)))
        vardiff = service.context.settings.vardiff
        self.assertEqual((vardiff.diff_min, vardiff.diff_max, vardiff.target_time), (DIFFICULTY, 64, 8))
        (proto,) = service.server.sessions
        self.assertIs(proto.settings, service.context.settings)
        self.assertIs(proto.session.vardiff.settings, vardiff)
        self.assertEqual((service.server.limits.max_connections_per_ip, proto.limits.max_connections_per_ip),
                         (7, 7))
        # What needs a restart keeps running as it was.
        self.assertEqual(service.config.coin, "btc")
        self.assertEqual(service.config.limits, new.limits)

        # A second reload of the same file changes nothing more, but still names coin.
        self.assertEqual(service.reload(new), ReloadReport((), ("coin",)))
