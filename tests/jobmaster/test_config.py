"""Tests for viabtc.jobmaster.config."""

import json
import os

from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import b58check_encode, encode_segwit_address
from viabtc.bitcoin.network import MAINNET, REGTEST
from viabtc.config import ConfigError
from viabtc.jobmaster.config import JobmasterConfig

SEED_SAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "seed-configs",
                           "jobmaster.json")

#: A regtest bech32 (P2WPKH) and a regtest base58 (P2PKH) address.
REGTEST_BECH32 = encode_segwit_address("bcrt", 0, bytes(range(20)))
REGTEST_P2PKH = b58check_encode(b"\x6f" + bytes(20))


def local_config(**changes):
    config = {
        "network": "regtest",
        "svr": {"bind": ["tcp@127.0.0.1:0", "udp@127.0.0.1:0"], "max_pkg_size": 4194304},
        "main_coin": {"name": "BTC", "host": "127.0.0.1", "port": 18443,
                      "user": "u", "pass": "p"},
        "main_coin_recipient": REGTEST_BECH32,
        "coin_recipients": [{"address": REGTEST_P2PKH, "percent": 0.25}],
        "pool_name": "viabtc",
        "coinbase_message": "hello",
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


class ConfigTests(TestCase):

    def write(self, config):
        path = self.mktemp()
        os.makedirs(path)
        path = os.path.join(path, "jobmaster.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def load(self, **changes):
        return JobmasterConfig.from_file(self.write(local_config(**changes)))

    def assertKeyError(self, key, **changes):
        with self.assertRaises(ConfigError) as e:
            self.load(**changes)
        self.assertEqual(e.exception.key, key)
        self.assertNotIn("\n", str(e.exception))
        return e.exception

    def test_seed_sample_loads_and_names_ignored_keys(self):
        with capturedLogs() as events:
            config = JobmasterConfig.from_file(SEED_SAMPLE)
        # No network key: the node's chain decides, the addresses wait for it.
        self.assertIsNone(config.network)
        self.assertIsNone(config.settings.payout)
        self.assertEqual(len(config.payout_addresses.resolve(MAINNET).recipients), 3)
        self.assertEqual(config.settings.block_version, 0x20000010)
        self.assertEqual(config.spv_mining_timeout, 30)
        self.assertEqual([a.text for a in config.blockmasters], ["tcp@127.0.0.1:5000"])
        warned = {e["key"] for e in events if "key" in e}
        for key in ("jobmonitor", "ip_banned_time"):
            self.assertIn(key, warned)
        # The seed's http_svr is where /metrics is served: said as it is, not as "ignored".
        self.assertEqual([(e["log_level"].name, e["log_format"]) for e in events if e.get("key") == "http_svr"],
                         [("info", "config: http_svr serves /metrics only (this role has no other HTTP interface)")])
        for key in ("main_coin.host", "aux_coin", "aux_merkle_nonce", "aux_merkle_size",
                    "aux_job_timeout", "rsk_coin", "vcash_coin", "rsk_job_interval"):
            self.assertNotIn(key, warned)
        merged = config.merged
        self.assertEqual([c.name for c in merged.coins], ["SYS", "EMC", "NMC", "ELA"])
        self.assertEqual(merged.coins[3].address, "EMKQntNVy4NTmCBPiiYuoT9yYrD3XrTydP")
        self.assertIsNone(merged.coins[0].address)
        self.assertEqual((merged.size, merged.nonce, merged.job_timeout), (16, 0, 15.0))
        self.assertEqual((merged.rsk.name, merged.rsk.nodes[0].port, merged.rsk_job_interval),
                         ("RSK", 4444, 30.0))
        self.assertEqual((merged.vcash.name, merged.vcash.nodes[0].port), ("VCASH", 3517))

    def aux(self, **entry):
        coin = {"name": "NMC", "host": "127.0.0.1", "port": 18445, "user": "u", "pass": "p"}
        coin.update(entry)
        return coin

    def test_merged_mining(self):
        config = self.load(aux_coin=self.aux(address="n1", chain_id=1), aux_merkle_size=4,
                           aux_merkle_nonce=7, aux_job_timeout=15)
        coin, = config.merged.coins
        self.assertEqual((coin.name, coin.address, coin.chain_id), ("NMC", "n1", 1))
        self.assertIsNone(self.load().merged)

    def test_rsk_alone(self):
        rsk = {"name": "RSK", "host": "127.0.0.1", "port": 4444, "user": "u", "pass": "p"}
        config = self.load(rsk_coin=rsk, aux_job_timeout=15, rsk_job_interval=5)
        self.assertEqual((config.merged.coins, config.merged.rsk.name, config.merged.rsk_job_interval),
                         ((), "RSK", 5.0))
        self.assertKeyError("aux_job_timeout", rsk_coin=rsk)
        self.assertKeyError("aux_coin", rsk_coin=dict(rsk, name="NMC"), aux_coin=[self.aux()],
                            aux_merkle_size=1, aux_merkle_nonce=0, aux_job_timeout=15)

    def test_merged_mining_refusals(self):
        keys = dict(aux_merkle_size=4, aux_merkle_nonce=0, aux_job_timeout=15)
        self.assertKeyError("aux_merkle_size", aux_coin=[self.aux()], **dict(keys, aux_merkle_size=3))
        self.assertKeyError("aux_merkle_size", aux_coin=[self.aux(), self.aux(name="B"),
                                                         self.aux(name="C")], **dict(keys, aux_merkle_size=2))
        self.assertKeyError("aux_job_timeout", aux_coin=[self.aux()], **dict(keys, aux_job_timeout=None))
        self.assertKeyError("aux_coin", aux_coin=[self.aux(), self.aux()], **keys)
        # Chain ids 1 and 5 both take slot 3 of 4 with nonce 0 (the formula
        # moves by 1103515245 per chain id, which is 1 mod 4): refused at start-up.
        from viabtc.bitcoin.auxpow import expected_index
        self.assertEqual(expected_index(0, 1, 4), expected_index(0, 5, 4))
        e = self.assertKeyError("aux_merkle_nonce", aux_coin=[self.aux(chain_id=1),
                                                              self.aux(name="B", chain_id=5)], **keys)
        self.assertIn("slot", str(e))
        # The tag must fit beside the 44-byte commitment.
        self.assertKeyError("coinbase_message", aux_coin=[self.aux()], coinbase_message="m" * 24, **keys)
        self.load(coinbase_message="m" * 24)

    def test_local_config(self):
        config = self.load()
        self.assertIs(config.network, REGTEST)
        self.assertEqual(config.settings.payout.main_script, bytes.fromhex("0014") + bytes(range(20)))
        self.assertEqual(config.job_rebroadcast_timeout, 50)
        self.assertEqual(config.spv_mining_timeout, 60)
        self.assertTrue(config.settings.segwit_commitment)
        self.assertEqual(config.blockmasters, ())
        self.assertEqual(os.path.basename(config.found_blocks_dir), "found_blocks")
        self.assertTrue(os.path.isabs(config.found_blocks_dir))

    def test_bad_main_checksum(self):
        bad = REGTEST_P2PKH[:-1] + ("1" if REGTEST_P2PKH[-1] != "1" else "2")
        e = self.assertKeyError("main_coin_recipient", main_coin_recipient=bad)
        self.assertIn("checksum", str(e))

    def test_recipient_address_named_by_index(self):
        recipients = [{"address": REGTEST_P2PKH, "percent": 0.1}] * 2 + [
            {"address": "15sDLQav35eur1zqjafHhHYZ2xgwf4w874", "percent": 0.1}]
        self.assertKeyError("coin_recipients[2].address", coin_recipients=recipients)

    def test_percent_sum_over_one(self):
        recipients = [{"address": REGTEST_P2PKH, "percent": 0.6}] * 2
        e = self.assertKeyError("coin_recipients", coin_recipients=recipients)
        self.assertIn("1.2", str(e))

    def test_percent_out_of_range(self):
        self.assertKeyError("coin_recipients[0].percent",
                            coin_recipients=[{"address": REGTEST_P2PKH, "percent": -0.1}])

    def test_without_network_addresses_wait_for_the_node(self):
        config = self.load(network=None)
        self.assertIsNone(config.network)
        payout = config.payout_addresses.resolve(REGTEST)
        self.assertEqual(payout.main_script, bytes.fromhex("0014") + bytes(range(20)))
        with self.assertRaises(ConfigError) as e:
            config.payout_addresses.resolve(MAINNET)
        self.assertEqual(e.exception.key, "main_coin_recipient")

    def test_without_network_a_non_address_still_fails_at_load(self):
        self.assertKeyError("coin_recipients[0].address", network=None,
                            coin_recipients=[{"address": "not-an-address", "percent": 0.1}])
        self.assertKeyError("main_coin_recipient", network=None,
                            main_coin_recipient=REGTEST_BECH32[:-1] + "q")

    def test_empty_blockmaster_list(self):
        # The seed's form for "no blockmaster".
        self.assertEqual(self.load(blockmaster=[]).blockmasters, ())

    def test_testnet4_pin(self):
        config = self.load(network="testnet4", main_coin_recipient=encode_segwit_address(
            "tb", 0, bytes(20)), coin_recipients=None)
        self.assertEqual(config.network.name, "testnet4")

    def test_unknown_network(self):
        self.assertKeyError("network", network="litecoin")

    def test_tag_must_fit(self):
        self.assertKeyError("pool_name", pool_name="p" * 80)
        self.assertKeyError("coinbase_message", pool_name="p" * 30, coinbase_message="m" * 40)
        self.load(pool_name="p" * 30, coinbase_message="m" * 30)

    def test_gateway_bind_needed(self):
        self.assertKeyError("svr.bind", svr={"bind": "udp@127.0.0.1:0", "max_pkg_size": 1000})

    def test_trust_lists(self):
        config = self.load(hint_trust=["127.0.0.1", "10.0.0.0/8"])
        self.assertEqual(config.hint_trust, ("127.0.0.1", "10.0.0.0/8"))
        self.assertKeyError("gateway_trust[1]", gateway_trust=["127.0.0.1", "nope"])
