"""
``twistd viabtc-mineragent``: options and makeService, and the role started
as a real process from the seed's sample config with only hosts and ports
changed.
"""

import os

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from viabtc.devnet import free_port
from viabtc.mineragent import tap
from viabtc.mineragent.config import MinerAgentConfig
from viabtc.mineragent.service import MinerAgentService

from tests.gateway.support import StatsWriter, TestJobmaster, connect_miner, job_body, wait_for
from tests.gateway.test_service import gateway_data
from tests.integration.processes import Processes
from tests.roles import RoleTapChecks
from tests.support import seed_sample


class TapTests(RoleTapChecks, TestCase):
    tap = tap
    config_class = MinerAgentConfig
    service_class = MinerAgentService
    role = "mineragent"
    bad_key = "stratum_port"

    @property
    def good(self):
        data = seed_sample("mineragent")
        del data["log"]
        return data

    @property
    def bad(self):
        data = self.good
        data["stratum_port"] = "3222"
        return data


class ProcessTests(TestCase):
    timeout = 60

    async def test_seed_sample_as_a_process(self):
        """The seed's mineragent.json (its hosts, ports and log path changed) in front of a gateway process."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        procs = Processes(self, directory)
        jobmaster = TestJobmaster(job_body())
        jobmaster_port = await jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(jobmaster.stop()))
        writer = StatsWriter()
        self.addCleanup(writer.stop)
        gateway_port, agent_port = free_port(), free_port()
        procs.role("gateway", gateway_data(jobmaster_port, writer.address, os.path.join(directory, "queue"),
                                           svr={"bind": [f"tcp@127.0.0.1:{gateway_port}"], "max_pkg_size": 10240},
                                           http_svr=None, monitor=None, cli=None))
        data = seed_sample("mineragent")
        data["log"]["path"] = os.path.join(directory, "mineragent")
        data["svr"]["bind"] = [f"tcp@127.0.0.1:{agent_port}"]
        data["cli"] = f"tcp@127.0.0.1:{free_port()}"
        data["stratum_port"] = gateway_port
        procs.role("mineragent", data)

        async def scenario():
            await procs.wait_port("gateway", gateway_port)
            await procs.wait_port("mineragent", agent_port)
            # Refused until the agent has its first job from the gateway.
            for _ in range(100):
                miner = await connect_miner(agent_port)
                await deferLater(reactor, 0.1, lambda: None)
                if miner.connected:
                    break
            self.addCleanup(miner.transport.loseConnection)
            await miner.login("alice.rig1")
            await wait_for(lambda: miner.notifications("mining.notify"), what="a job through the agent")
            self.assertEqual(miner.notifications("mining.set_difficulty")[0], [1024])
            procs.check_alive("gateway", "mineragent")

        await procs.run(scenario())
