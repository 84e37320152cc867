"""A ``worker_num`` mineragent's parts: worker configurations, agent ids, the config checks, the options."""

from twisted.internet import reactor
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigError, ConfigReader, parse_address
from viabtc.mineragent import tap
from viabtc.mineragent.config import MAX_AGENT_ID, MinerAgentConfig
from viabtc.mineragent.reload import keep_drawn_agent_id
from viabtc.service import StartupError
from viabtc.mineragent.workers import (
    MinerAgentWorkers,
    WorkerMinerAgentService,
    check_worker_addresses,
    worker_config,
    worker_metrics,
)

from tests.roles import write_json
from tests.support import seed_sample


def load(**changes):
    data = seed_sample("mineragent")
    data.update(changes)
    return MinerAgentConfig.from_reader(ConfigReader(data))


class WorkerConfigTests(TestCase):
    def test_worker_num_is_honoured_without_a_warning(self):
        with capturedLogs() as events:
            config = load(worker_num=4)
        self.assertEqual(config.worker_num, 4)
        self.assertEqual([e for e in events if "worker_num" in e.get("log_format", "")], [])

    def test_worker_i_is_agent_id_plus_i_with_its_own_cli(self):
        config = load(worker_num=3, agent_id=70)
        workers = [worker_config(config, i) for i in range(3)]
        self.assertEqual([w.agent_id for w in workers], [70, 71, 72])
        self.assertEqual([w.cli.port for w in workers], [9001, 9002, 9003])
        self.assertEqual({w.worker_num for w in workers}, {1})
        self.assertEqual({w.upstreams for w in workers}, {config.upstreams})
        self.assertEqual({w.svr for w in workers}, {config.svr})

    def test_a_drawn_agent_id_leaves_room_for_every_worker(self):
        for _ in range(200):
            config = load(worker_num=256)
            self.assertFalse(config.agent_id_chosen)
            self.assertLessEqual(config.agent_id + 255, MAX_AGENT_ID)

    def test_agent_ids_must_fit_32_bits(self):
        e = self.assertRaises(ConfigError, load, worker_num=2, agent_id=MAX_AGENT_ID)
        self.assertEqual(e.key, "worker_num")
        self.assertEqual(load(worker_num=2, agent_id=MAX_AGENT_ID - 1).agent_id, MAX_AGENT_ID - 1)

    def test_worker_num_bounds(self):
        for bad in (0, 257):
            self.assertEqual(self.assertRaises(ConfigError, load, worker_num=bad).key, "worker_num")

    def test_metrics_move_with_the_worker_and_must_be_movable(self):
        binds = (parse_address("tcp@127.0.0.1:9101"),)
        self.assertEqual(worker_metrics(binds, 2)[0].port, 9103)
        bad = (parse_address("tcp:9101:interface=127.0.0.1"),)
        config = load(worker_num=2)
        self.assertEqual(self.assertRaises(ConfigError, check_worker_addresses, config, bad).key, "metrics")
        check_worker_addresses(load(worker_num=1), bad)

    def test_a_reload_without_agent_id_keeps_the_drawn_one(self):
        old, new = load(worker_num=2), load(worker_num=2, diff_max=4096)
        kept = keep_drawn_agent_id(old, new)
        self.assertEqual((kept.agent_id, kept.stratum.vardiff.diff_max), (old.agent_id, 4096))
        chosen = load(worker_num=2, agent_id=5)
        self.assertEqual(keep_drawn_agent_id(old, chosen).agent_id, 5)


class OptionsTests(TestCase):
    def options(self, **changes):
        data = seed_sample("mineragent")
        del data["log"]
        data.update(changes)
        options = tap.Options()
        options.parseOptions(["--config", write_json(self.mktemp(), data)])
        return options

    def test_one_process_serves_metrics_itself(self):
        options = self.options(metrics="tcp@127.0.0.1:9101")
        self.assertEqual([a.port for a in options.metrics_binds], [9101])

    def test_the_workers_serve_metrics_not_the_parent(self):
        options = self.options(metrics="tcp@127.0.0.1:9101", worker_num=2)
        self.assertEqual(options.metrics_binds, ())
        self.assertEqual([a.port for a in options.worker_metrics_binds], [9101])
        parent = tap.makeService(options, reactor)
        self.addCleanup(parent.role_logging.remove)
        self.assertIsInstance(parent, MinerAgentWorkers)
        self.assertEqual(parent.pool.count, 2)
        self.assertEqual(parent.pool.addresses, options.config.svr.binds)

    def test_a_metrics_address_workers_cannot_move_stops_start_up(self):
        e = self.assertRaises(StartupError, self.options, metrics="tcp:9101:interface=127.0.0.1", worker_num=2)
        self.assertIn("metrics", str(e))

    def test_a_worker_is_a_whole_agent_on_inherited_sockets(self):
        config = worker_config(load(worker_num=2, agent_id=9), 1)
        worker = WorkerMinerAgentService(config, reactor, 1, 2, [3])
        self.assertEqual(worker.context.agent_id, 10)
        # Worker 1 of 2: the top bit of every extranonce1.
        self.assertEqual({worker.context.allocate_identity().extranonce1[0] >> 7 for _ in range(20)}, {1})
