"""The bcoin launcher starts real regtest nodes that mine, relay and stop."""

import os
import time

from twisted.trial import unittest

from tests.support import bcoin_node
from viabtc.bitcoin.address import b58check_decode
from viabtc.devnet.bcoin import BcoinNode, BcoinRPCError, regtest_address


def wait_until(predicate, timeout=15.0):
    """Poll ``predicate`` (a blocking check against a real process)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


class BcoinNodeTests(unittest.TestCase):
    def test_rpc_and_generate(self):
        """A fresh node is at height 0, mines on request and reports errors."""
        node = bcoin_node(self)
        self.assertEqual(node.rpc("getblockcount"), 0)
        hashes = node.generate(2)
        self.assertEqual(len(hashes), 2)
        self.assertEqual(node.rpc("getblockcount"), 2)
        self.assertEqual(node.rpc("getbestblockhash"), hashes[-1])
        with self.assertRaises(BcoinRPCError) as e:
            node.rpc("getblockheader", "00" * 32)
        self.assertIn("getblockheader", str(e.exception))

    def test_stop(self):
        """After stop() the process is gone and its directory removed."""
        node = bcoin_node(self)
        process = node.process
        directory = node.directory
        node.stop()
        self.assertIsNotNone(process.poll())
        self.assertIsNone(node.directory)
        self.assertFalse(os.path.exists(directory))

    def test_connected_nodes_relay_blocks(self):
        """A node connected to a listening node follows its chain."""
        listener = bcoin_node(self, listen=True)
        follower = bcoin_node(self)
        follower.connect(listener)
        wait_until(lambda: listener.peer_count() == 1)
        listener.generate(3)
        wait_until(lambda: follower.rpc("getblockcount") == 3)
        late = bcoin_node(self, peers=[listener.p2p_address])
        wait_until(lambda: late.rpc("getblockcount") == 3)

    def test_connect_needs_listener(self):
        """Connecting to a node that does not listen is refused up front."""
        with self.assertRaises(ValueError):
            BcoinNode().connect(BcoinNode(listen=False))


class RegtestAddressTests(unittest.TestCase):
    def test_prefix(self):
        """bcoin's regtest P2PKH version byte (0x3c) and the hash round-trip."""
        address = regtest_address(bytes(range(20)))
        self.assertEqual(b58check_decode(address), b"\x3c" + bytes(range(20)))
        self.assertTrue(address.startswith("R"))

    def test_bad_hash(self):
        with self.assertRaises(ValueError):
            regtest_address(b"\x00" * 19)
