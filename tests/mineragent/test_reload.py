"""SIGHUP's part in the mineragent: vardiff bounds and limits change for new and connected miners."""

import json

from twisted.internet import reactor

from viabtc.config import ConfigReader
from viabtc.mineragent.config import MinerAgentConfig
from viabtc.mineragent.tap import Options, build_service
from viabtc.reload import HangupReload, ReloadReport

from tests.gateway.support import wait_for
from tests.gateway.test_service import DIFFICULTY
from tests.mineragent.test_service import AgentServiceCase, agent_data


class AgentReloadTests(AgentServiceCase):
    async def test_bounds_and_limits_apply_to_connected_miners(self):
        await self.start_gateway()
        data = agent_data(self.gateway_port)
        self.config = MinerAgentConfig.from_reader(ConfigReader(data))
        self.agent = agent = build_service(self.config, reactor)
        agent.startService()
        self.addCleanup(agent.stopService)
        await wait_for(lambda: agent.context.jobs.current, what="the agent's first job")
        await self.miner()
        await wait_for(lambda: agent.server.sessions, what="the miner's session")

        path = self.mktemp()
        changed = dict(data, diff_min=DIFFICULTY, diff_max=64, target_time=8,
                       limits={"max_connections_per_ip": 7}, broadcast_timeout=20)
        with open(path, "w") as f:
            json.dump(changed, f)
        hup = HangupReload("mineragent", path, Options().parse_config, agent, None)
        self.assertEqual(hup.reload(), ReloadReport(("stratum", "limits"), ("broadcast_timeout",)))
        vardiff = agent.context.settings.vardiff
        self.assertEqual((vardiff.diff_min, vardiff.diff_max, vardiff.target_time), (DIFFICULTY, 64, 8))
        (proto,) = agent.server.sessions
        self.assertIs(proto.settings, agent.context.settings)
        self.assertIs(proto.session.vardiff.settings, vardiff)
        self.assertEqual((agent.server.limits.max_connections_per_ip, proto.limits.max_connections_per_ip),
                         (7, 7))
        self.assertEqual(agent.config.broadcast_timeout, self.config.broadcast_timeout)

        # A broken file changes nothing; without agent_id the running id stays (no restart named for it).
        with open(path, "w") as f:
            f.write("{not json")
        self.assertIsNone(hup.reload())
        self.assertEqual(agent.context.settings.vardiff.diff_max, 64)
        changed.pop("agent_id")
        with open(path, "w") as f:
            json.dump(changed, f)
        self.assertEqual(hup.reload(), ReloadReport((), ("broadcast_timeout",)))
        self.assertEqual(agent.config.agent_id, self.config.agent_id)
