"""Tests for viabtc.stratum.agent: the agent.* codecs and the gateway's tables."""

import json
import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.serialize import bip34_height_push
from viabtc.stratum import agent
from viabtc.stratum.share import ShareTarget

from tests.stratum.jobs import agent_coinbase1, prepared_job

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


class SeedBytesTests(TestCase):
    """The messages as the seed's C mineragent writes them (ma_job.c) parse, and ours match them."""

    def test_subscribe_v1(self):
        self.assertEqual(agent.parse_subscribe([1, 0xDEADBEEF]), agent.Subscribe(0xDEADBEEF, 1))
        self.assertEqual(agent.subscribe_params(7, offer_v2=False), [1, 7])

    def test_subscribe_offers_v2_in_a_third_param(self):
        # A C gateway reads params 0 and 1 only, so the offer is invisible to it.
        self.assertEqual(agent.subscribe_params(7, offer_v2=True), [1, 7, 2])
        self.assertEqual(agent.parse_subscribe([1, 7, 2]), agent.Subscribe(7, 2))

    def test_subscribe_result_forms(self):
        self.assertIs(agent.subscribe_result(1), True)
        self.assertEqual(agent.negotiated_version(agent.subscribe_result(1)), 1)
        self.assertEqual(agent.negotiated_version(agent.subscribe_result(2)), 2)
        self.assertRaises(agent.AgentProtocolError, agent.negotiated_version, False)

    def test_subscribe_refuses_other_versions(self):
        for params in ([2, 7], [True, 7], [1], [1, -1], [1, 2**32], ["1", 7], [1, 7, 0]):
            self.assertRaises(agent.AgentProtocolError, agent.parse_subscribe, params)

    def test_sync(self):
        # jansson's json_dumps(message, 0): spaces after separators.
        line = '{"id": 1700000000123, "method": "agent.sync", "params": [5, 3735928559, "0a0b0c0d", 1024]}'
        params = json.loads(line)["params"]
        self.assertEqual(agent.parse_sync(params), agent.Sync(5, 0xDEADBEEF, bytes.fromhex("0a0b0c0d"), 1024))
        self.assertEqual(agent.sync_params(5, 0xDEADBEEF, bytes.fromhex("0a0b0c0d"), 1024.0), params)

    def test_sync_fractional_difficulty_is_a_float(self):
        self.assertEqual(agent.sync_params(1, 2, b"\0\0\0\1", 0.5)[3], 0.5)

    def test_sync_refuses(self):
        for params in ([1, 2, "0a0b0c", 1], [1, 2, "0a0b0c0d", 0], [1, 2, "zz0b0c0d", 1], [1, 2, "0a0b0c0d"],
                       [1, 2, "0a0b0c0d", float("nan")], [1, 2, "0a0b0c0d", True], [-1, 2, "0a0b0c0d", 1]):
            self.assertRaises(agent.AgentProtocolError, agent.parse_sync, params)

    def test_submit_round_trip(self):
        params = agent.submit_params(5, "alice.rig1", "1a", bytes(range(8)), 0x65000000, 0xCAFEBABE,
                                     0x1FFFE000, 0xFFFFFFFF, 0x2000)
        self.assertEqual(params, [5, "alice.rig1", "1a", "0001020304050607", "65000000", "cafebabe",
                                  0x1FFFE000, 0xFFFFFFFF, 0x2000])
        parsed = agent.parse_submit(params)
        self.assertEqual(parsed, agent.Submit(5, "alice.rig1", "1a", bytes(range(8)), 0x65000000, 0xCAFEBABE,
                                              0x1FFFE000, 0xFFFFFFFF, 0x2000, None))
        self.assertEqual(agent.parse_submit(params + [9]).seq, 9)

    def test_submit_refuses(self):
        good = [5, "a", "1a", "0001020304050607", "65000000", "cafebabe", 0, 0, 0]
        for i, bad in [(0, "5"), (1, 5), (2, None), (3, "00"), (4, "6500000"), (5, "xxxxxxxx"), (6, -1)]:
            params = list(good)
            params[i] = bad
            self.assertRaises(agent.AgentProtocolError, agent.parse_submit, params)
        self.assertRaises(agent.AgentProtocolError, agent.parse_submit, good[:8])

    def test_event_and_status(self):
        self.assertEqual(agent.parse_event(["Alice", "Rig1", "connected"]), ("alice", "rig1", "connected"))
        for params in (["al.ice", "rig", "x"], ["alice", "", "x"], ["alice", "rig", "x" * 65], ["alice", "rig"]):
            self.assertRaises(agent.AgentProtocolError, agent.parse_event, params)
        self.assertEqual(agent.parse_status([1700000040, 12]), (1700000040, 12))
        self.assertRaises(agent.AgentProtocolError, agent.parse_status, [1700000040, -1])

    def test_results(self):
        line = agent.results_line([[1, 0], [2, 22]])
        self.assertEqual(line, b'{"id":null,"method":"agent.results","params":[[1,0],[2,22]]}\n')
        self.assertEqual(agent.parse_results(json.loads(line)["params"]), [(1, 0), (2, 22)])
        self.assertRaises(agent.AgentProtocolError, agent.parse_results, [[1]])


class CoinbaseLayoutTests(TestCase):
    def test_agent_layout_as_the_seed_builds_it(self):
        """ma_job.c get_real_coinbase1(): height, tag, 0x12, u16 job id, u32 agent id, u32 nonce id."""
        prepared = prepared_job(job_id="1a")
        tag = b"/viabtc/test/Mined by alice/"
        script = bip34_height_push(800_000) + bytes([len(tag)]) + tag + b"\x12" + struct.pack("<HII", 0x1A, 77, 99)
        expected = prepared.coinbase1 + bytes([len(script) + 12]) + script
        self.assertEqual(agent_coinbase1(prepared, "alice", 77, 99), expected)


class ShareFieldsTests(TestCase):
    def test_read_back(self):
        header = struct.pack("<I32s32sIII", 0x20002000, bytes(32), bytes(32), 0x65000000, 0x207FFFFF, 0xCAFEBABE)
        coinbase = b"head" + bytes(range(8)) + b"tail2"
        self.assertEqual(agent.share_fields(header, coinbase, 5), (bytes(range(8)), 0x65000000, 0xCAFEBABE,
                                                                   0x20002000))


class TablesTests(TestCase):
    def test_sync_keeps_the_previous_difficulty(self):
        miners = agent.AgentMiners()
        miners.sync(1, agent.Sync(5, 9, b"\0\0\0\1", 8), 0)
        miner = miners.get(1, 5)
        self.assertEqual((miner.current, miner.previous), (ShareTarget.for_difficulty(8),) * 2)
        miners.sync(1, agent.Sync(5, 9, b"\0\0\0\1", 16), 1)
        self.assertEqual((miner.current.difficulty, miner.previous.difficulty), (16, 8))
        self.assertIsNone(miners.get(2, 5))

    def test_expire(self):
        miners = agent.AgentMiners()
        miners.sync(1, agent.Sync(5, 9, b"\0\0\0\1", 8), 0)
        miners.sync(1, agent.Sync(6, 9, b"\0\0\0\2", 8), 100)
        self.assertEqual(miners.expire(350, 300), 1)
        self.assertEqual(len(miners), 1)

    def test_seen_shares_bounded(self):
        seen = agent.SeenShares(size=2)
        for seq in (1, 2, 3):
            seen.remember(7, seq, 0)
        self.assertIsNone(seen.verdict(7, 1))
        self.assertEqual(seen.verdict(7, 3), 0)
        self.assertIsNone(seen.verdict(8, 3))

    def test_seen_shares_of_quiet_agents_forgotten(self):
        seen = agent.SeenShares()
        seen.remember(7, 1, 0, now=0)
        seen.remember(8, 1, 22, now=100)
        self.assertEqual(seen.prune(3700, 3600), 1)
        self.assertEqual((seen.verdict(7, 1), seen.verdict(8, 1), len(seen)), (None, 22, 1))


class FuzzTests(TestCase):
    """Any JSON parameters: a value or AgentProtocolError, never anything else."""

    @given(st.lists(_json, max_size=11))
    def test_parsers(self, params):
        for parse in (agent.parse_subscribe, agent.parse_sync, agent.parse_submit, agent.parse_event,
                      agent.parse_status, agent.parse_results):
            try:
                parse(params)
            except agent.AgentProtocolError:
                pass
