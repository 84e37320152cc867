"""``twistd viabtc-poolbench``: options, the service, and the one-line config error."""

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.poolbench.test_config import local_config
from tests.roles import RoleTapChecks
from viabtc.poolbench import tap
from viabtc.poolbench.config import PoolbenchConfig
from viabtc.poolbench.service import PoolbenchService

SEED = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs", "poolbench.json")


class OptionsTests(RoleTapChecks, TestCase):
    tap = tap
    config_class = PoolbenchConfig
    service_class = PoolbenchService
    role = "poolbench"
    good = local_config()
    bad = local_config(pool_list=[{"name": "a", "host": "h", "port": 0, "user": "u"}])
    bad_key = "pool_list[0].port"

    def test_seed_sample_builds(self):
        options = tap.Options()
        options.parseOptions(["--config", SEED])
        self.assertEqual([w.entry.name for w in PoolbenchService(options.config, reactor).watchers],
                         ["viabtc"])
