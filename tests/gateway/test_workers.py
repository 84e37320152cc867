"""A ``worker_num`` gateway's parts: worker identities, worker configurations, the config checks."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.config import Address, ConfigError, ConfigReader, ServerBlock, parse_address
from viabtc.gateway.config import GatewayConfig, check_workers
from viabtc.stratum.context import IdentityAllocator
from viabtc.gateway.workers import check_worker_addresses, worker_config

from tests.gateway.test_config import SEED, seed_data


class WorkerIdentityTests(TestCase):
    def test_one_process_keeps_all_32_bits(self):
        allocator = IdentityAllocator(seed=0xFFFFFFF0, index=0, count=1)
        self.assertEqual(allocator.allocate().extranonce1, bytes.fromhex("fffffff1"))

    def test_the_worker_index_is_in_the_top_bits(self):
        allocator = IdentityAllocator(seed=0xFFFFFFF0, index=5, count=8)
        self.assertEqual(allocator.allocate().extranonce1, bytes.fromhex("bffffff1"))

    @given(st.integers(1, 256), st.data())
    def test_workers_never_share_an_extranonce1(self, count, data):
        seeds = data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=count, max_size=count))
        seen = set()
        for index, seed in enumerate(seeds):
            allocator = IdentityAllocator(seed=seed, index=index, count=count)
            values = {allocator.allocate().extranonce1 for _ in range(20)}
            self.assertEqual(len(values), 20)
            self.assertFalse(values & seen)
            seen |= values


class WorkerConfigTests(TestCase):
    def config(self, **changes):
        data = seed_data()
        data.update(changes)
        return GatewayConfig.from_reader(ConfigReader(data), "/pool")

    def test_seed_sample_loads_with_its_two_workers_and_no_warning(self):
        with capturedLogs() as events:
            config = GatewayConfig.from_file(SEED)
        self.assertEqual(config.worker_num, 2)
        self.assertEqual([e for e in events if "worker_num" in e.get("log_format", "")], [])
        check_worker_addresses(config)

    def test_worker_i_has_worker_id_plus_i_its_own_journal_and_ports(self):
        config = self.config(cli="tcp@127.0.0.1:7000", monitor={"bind": "tcp@0.0.0.0:3334", "max_pkg_size": 100})
        first, second = worker_config(config, 0), worker_config(config, 1)
        self.assertEqual((first.worker_id, second.worker_id), (100, 101))
        self.assertEqual(first.queue, config.queue)
        self.assertEqual(second.queue, config.queue + ".1")
        self.assertEqual(second.http_svr.server.binds[0].port, config.http_svr.server.binds[0].port + 1)
        self.assertEqual((first.cli.port, second.cli.port), (7000, 7001))
        self.assertEqual(second.cli.text, "tcp@127.0.0.1:7001")
        # The parent serves monitor; each worker is one process of one.
        self.assertEqual((first.monitor, second.worker_num), (None, 1))
        self.assertEqual(second.svr, config.svr)

    def test_a_unix_cli_gets_a_path_per_worker(self):
        config = self.config(cli="stream@/run/gw.cli")
        self.assertEqual(worker_config(config, 3).cli.path, "/run/gw.cli.3")

    def test_worker_ids_must_fit_16_bits(self):
        with self.assertRaises(ConfigError) as e:
            self.config(worker_id=0xFFFF, worker_num=2)
        self.assertEqual(e.exception.key, "worker_num")
        self.config(worker_id=0xFFFE, worker_num=2)

    def test_a_bind_that_cannot_be_shared_is_named(self):
        svr = ServerBlock((parse_address("tcp@0.0.0.0:3333"),
                           Address("endpoint", description="systemd:domain=INET:index=0", text="systemd")), 10240)
        with self.assertRaises(ConfigError) as e:
            check_workers(svr, 100, 2)
        self.assertEqual(e.exception.key, "svr.bind[1]")
