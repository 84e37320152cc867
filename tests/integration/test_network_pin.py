"""
A jobmaster config that pins another chain than its node's, as a real
``twistd`` process: the seed's own sample with ``network: mainnet`` added,
pointed at a bcoin regtest node, stops with one clear line naming the key
and exit status 1
(the same sample without the pin mines: ``tests.test_seed_configs``).
"""

import json
import os
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.integration.processes import Processes
from tests.support import bcoin_node
from tests.test_seed_configs import SEED_CONFIGS, localize

#: Bound of the wait for the process to stop, on a loaded machine.
DEADLINE = 60.0


class NetworkPinTests(TestCase):

    timeout = 120

    async def test_mainnet_pin_against_regtest_stops_with_one_line(self):
        node = bcoin_node(self, shared=True, api_key="rpcpassword")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(SEED_CONFIGS, "jobmaster.json")) as f:
            sample = json.load(f)
        config, _ = localize(sample, directory, coin_port=node.rpc_port)
        # The seed's own mainnet addresses, and the pin.
        for key in ("main_coin_recipient", "coin_recipients"):
            config[key] = sample[key]
        config["network"] = "mainnet"
        processes = Processes(self, directory)
        process = processes.role("jobmaster", config)
        deadline = time.monotonic() + DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(process.poll(), 1, "the jobmaster did not stop with status 1\n" + processes.logs())
        with open(processes.log_path("jobmaster"), errors="replace") as f:
            lines = [line for line in f if "config error" in line]
        self.assertEqual(len(lines), 1, processes.logs())
        self.assertIn("config error: network: the config pins mainnet, but the node "
                      "(getblockchaininfo) is on regtest", lines[0])
