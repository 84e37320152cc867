"""Tests for ``viabtc.bitcoin.network``."""

from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import hash_from_display_hex, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.network import (
    MAINNET, NETWORKS, REGTEST, SIGNET, TESTNET, TESTNET4, get_network,
)
from viabtc.bitcoin.target import target_to_bits

GENESIS_MERKLE_ROOT = hash_from_display_hex(
    "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
)


class GetNetworkTests(TestCase):
    def test_names(self):
        for name, network in [
            ("mainnet", MAINNET),
            ("main", MAINNET),
            ("Bitcoin", MAINNET),
            ("testnet", TESTNET),
            ("TEST", TESTNET),
            ("testnet3", TESTNET),
            ("testnet4", TESTNET4),
            ("signet", SIGNET),
            ("RegTest", REGTEST),
        ]:
            self.assertIs(get_network(name), network)

    def test_unknown(self):
        for name in ["testnet5", "", "litecoin", None]:
            e = self.assertRaises(ValueError, get_network, name)
            self.assertIn("unknown network", str(e))


class ParameterTests(TestCase):
    def test_regtest(self):
        self.assertEqual(REGTEST.halving_interval, 150)
        self.assertEqual(REGTEST.bech32_hrp, "bcrt")
        self.assertEqual(REGTEST.p2p_magic.hex(), "fabfb5da")
        self.assertTrue(REGTEST.pow_no_retargeting)
        self.assertTrue(REGTEST.pow_allow_min_difficulty_blocks)

    def test_testnet4(self):
        # Bitcoin Core's CTestNet4Params (and chainparamsbase's RPC port).
        self.assertEqual(TESTNET4.p2p_magic.hex(), "1c163f28")
        self.assertEqual((TESTNET4.default_p2p_port, TESTNET4.default_rpc_port), (48333, 48332))
        self.assertEqual((TESTNET4.pubkey_hash_prefix, TESTNET4.script_hash_prefix), (0x6F, 0xC4))
        self.assertEqual(TESTNET4.bech32_hrp, "tb")
        self.assertTrue(TESTNET4.pow_allow_min_difficulty_blocks)
        self.assertTrue(TESTNET4.enforce_bip94)
        self.assertFalse(any(n.enforce_bip94 for n in NETWORKS if n is not TESTNET4))

    def test_testnet4_genesis(self):
        # Its own merkle root (another genesis message and output).
        root = hash_from_display_hex("7aa0a7ae1e223414cb807e40cd57e667b718e42aaf9306db9102fe28912b7b4e")
        header = BlockHeader(1, bytes(32), root, 1714777860, 0x1D00FFFF, 393743547)
        self.assertEqual(sha256d(header.serialize()), TESTNET4.genesis_hash)

    def test_common_timing(self):
        for network in NETWORKS:
            self.assertEqual(network.target_timespan, 1209600)
            self.assertEqual(network.target_spacing, 600)
            self.assertEqual(network.retarget_interval, 2016)

    def test_pow_limits_as_bits(self):
        self.assertEqual(target_to_bits(MAINNET.pow_limit), 0x1D00FFFF)
        self.assertEqual(target_to_bits(TESTNET.pow_limit), 0x1D00FFFF)
        self.assertEqual(target_to_bits(TESTNET4.pow_limit), 0x1D00FFFF)
        self.assertEqual(target_to_bits(SIGNET.pow_limit), 0x1E0377AE)
        self.assertEqual(target_to_bits(REGTEST.pow_limit), 0x207FFFFF)

    def test_genesis_hashes(self):
        # Every network's genesis header differs only in time, bits and nonce;
        # recomputing each hash checks the stored genesis hashes.
        for network, time, bits, nonce in [
            (MAINNET, 1231006505, 0x1D00FFFF, 2083236893),
            (TESTNET, 1296688602, 0x1D00FFFF, 414098458),
            (SIGNET, 1598918400, 0x1E0377AE, 52613770),
            (REGTEST, 1296688602, 0x207FFFFF, 2),
        ]:
            header = BlockHeader(1, bytes(32), GENESIS_MERKLE_ROOT, time, bits, nonce)
            self.assertEqual(sha256d(header.serialize()), network.genesis_hash, network.name)
