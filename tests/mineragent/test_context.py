"""
The mineragent's parts in memory: its context, its upstream link and the
miners' server, over ``StringTransport``s on a ``task.Clock`` -- the real
protocols on both sides, no network.
"""

import json

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from viabtc.mineragent.context import MinerAgentContext
from viabtc.mineragent.server import MinerAgentFactory
from viabtc.mineragent.upstream import REJECTS_PER_LINE, UPSTREAM_LOST, UpstreamLink
from viabtc.stratum import agent
from viabtc.stratum.agent_client import AgentClientProtocol
from viabtc.stratum.context import IdentityAllocator

from tests.stratum.jobs import CURTIME, job_dict, settings
from tests.support import written_json

AGENT_ID = 77


class AgentCase(TestCase):
    offer_v2 = True

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(CURTIME)
        self.context = MinerAgentContext(settings(diff_min=1e-12, diff_default=1e-12), AGENT_ID, self.clock,
                                         IdentityAllocator(seed=1 << 32))
        self.upstream = UpstreamLink(self.context, self.clock, offer_v2=self.offer_v2, max_queued=3)
        self.context.upstream = self.upstream
        self.server = MinerAgentFactory(self.context, self.clock)
        self.context.server = self.server

    def gateway(self, version=2, job=True):
        """Connect the upstream (the gateway's side is this test) and subscribe with ``version``."""
        proto = AgentClientProtocol(self.upstream, AGENT_ID, self.offer_v2, self.clock)
        self.up = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 3333))
        proto.makeConnection(self.up)
        subscribe, *self.early = self.sent()
        result = True if version == 1 else {"version": 2}
        proto.dataReceived(json.dumps({"id": subscribe["id"], "error": None, "result": result}).encode() + b"\n")
        if job:
            proto.dataReceived(json.dumps(job_dict(job_id="1a")).encode() + b"\n")
        self.upstream_proto = proto
        return proto

    early = ()

    def sent(self):
        """What the agent wrote upstream since the last call (the syncs after a subscribe included)."""
        early, self.early = list(self.early), ()
        return early + written_json(self.up)

    def miner(self, account="alice.rig1"):
        proto = self.server.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.168.0.5", 4000))
        proto.makeConnection(transport)
        proto.dataReceived(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                           + json.dumps({"id": 2, "method": "mining.authorize", "params": [account, "x"]}).encode()
                           + b"\n")
        transport.clear()
        return proto, transport

    def submit(self, proto, msg_id=9, nonce=0, job_id="1a", ntime=CURTIME):
        proto.dataReceived(json.dumps({"id": msg_id, "method": "mining.submit", "params": [
            "alice.rig1", job_id, "0000000000000000", f"{ntime:08x}", f"{nonce:08x}"]}).encode() + b"\n")

    def replies(self, transport):
        return written_json(transport)


class V2Tests(AgentCase):
    def test_share_goes_up_after_its_sync_and_reply_waits(self):
        self.gateway()
        miner, transport = self.miner()
        self.assertEqual([m["method"] for m in self.sent()], ["agent.event"])
        self.submit(miner)
        self.assertEqual(self.replies(transport), [])
        sync, submit = self.sent()
        session = miner.session
        self.assertEqual(sync["params"], [self.context.links[session].miner_id, session.identity.nonce_id,
                                          session.identity.extranonce1.hex(), 1e-12])
        params = submit["params"]
        self.assertEqual(params[1:6], ["alice.rig1", "1a", "0000000000000000", f"{CURTIME:08x}", "00000000"])
        self.upstream_proto.dataReceived(agent.results_line([[params[9], 0]]))
        self.assertEqual(self.replies(transport), [{"id": 9, "error": None, "result": True}])

    def test_gateway_verdict_reaches_the_miner(self):
        self.gateway()
        miner, transport = self.miner()
        self.sent()
        self.submit(miner)
        seq = self.sent()[-1]["params"][9]
        self.upstream_proto.dataReceived(agent.results_line([[seq, 22]]))
        [reply] = self.replies(transport)
        self.assertEqual(reply["error"][0], 22)

    def test_local_rejects_never_go_up_but_are_reported(self):
        self.gateway()
        miner, transport = self.miner()
        self.sent()
        self.submit(miner, msg_id=1)
        self.submit(miner, msg_id=2)  # duplicate
        self.submit(miner, msg_id=3, job_id="ff")  # unknown
        self.assertEqual([r["error"][0] for r in self.replies(transport)], [22, 21])
        self.assertEqual([m["method"] for m in self.sent()], ["agent.sync", "agent.submit"])
        self.upstream.flush_rejects()
        [rejects] = self.sent()
        self.assertEqual(rejects["params"], [["alice", "rig1", 22, 1], ["alice", "rig1", 21, 1]])

    def test_rejects_split_into_short_lines(self):
        self.gateway()
        for i in range(REJECTS_PER_LINE + 1):
            self.upstream.reject(f"u{i}", "w", 22)
        self.upstream.flush_rejects()
        self.assertEqual([len(m["params"]) for m in self.sent()], [REJECTS_PER_LINE, 1])

    def test_queued_while_down_resent_with_the_same_number(self):
        proto = self.gateway()
        miner, transport = self.miner()
        self.submit(miner, msg_id=1)
        first = self.sent()[-1]["params"][9]
        proto.connectionLost(None)
        self.submit(miner, msg_id=2, nonce=1)
        self.assertEqual(self.upstream.queued, 2)
        self.gateway(job=False)
        methods = [(m["method"], m["params"][-1]) for m in self.sent()]
        # The miner is synced again before its shares are resent, in order.
        self.assertEqual([m for m, _ in methods], ["agent.sync", "agent.submit", "agent.submit"])
        self.assertEqual(methods[1][1], first)
        self.upstream_proto.dataReceived(agent.results_line([[first, 0], [methods[2][1], 0]]))
        self.assertEqual([r["id"] for r in self.replies(transport)], [1, 2])

    def test_queue_bounded_oldest_told(self):
        self.gateway().connectionLost(None)
        miner, transport = self.miner()
        for i in range(4):
            self.submit(miner, msg_id=i, nonce=i)
        [reply] = self.replies(transport)
        self.assertEqual((reply["id"], reply["error"][0]), (0, UPSTREAM_LOST))
        self.assertEqual((self.upstream.queued, self.upstream.dropped), (3, 1))

    def test_job_that_repeats_keeps_shares(self):
        self.gateway()
        miner, transport = self.miner()
        self.submit(miner, msg_id=1)
        self.upstream_proto.dataReceived(json.dumps(job_dict(job_id="1a")).encode() + b"\n")
        self.submit(miner, msg_id=2)
        self.assertEqual(self.replies(transport)[-1]["error"][0], 22)

    def test_hostile_job_refused_miners_kept(self):
        self.gateway()
        miner, transport = self.miner()
        self.upstream_proto.dataReceived(json.dumps(job_dict(job_id="1b", coinbaseaux="00" * 90)).encode()
                                         + b"\n")
        self.assertEqual(self.context.jobs.current.job_id, "1a")
        self.assertFalse(transport.disconnecting)

    def test_no_job_no_miners_and_retire(self):
        self.assertIsNone(self.server.buildProtocol(None))
        self.gateway()
        miner, transport = self.miner()
        self.assertEqual(self.context.retire_jobs(), 1)
        self.assertIn(b'"client.reconnect"', transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.server.buildProtocol(None))


class V1Tests(AgentCase):
    def test_reply_at_once_share_sent_once(self):
        self.gateway(version=1)
        miner, transport = self.miner()
        self.submit(miner)
        self.assertEqual(self.replies(transport), [{"id": 9, "error": None, "result": True}])
        submit = self.sent()[-1]
        self.assertEqual(len(submit["params"]), 9)
        self.assertEqual(self.upstream.queued, 0)
        self.upstream.reject("alice", "rig1", 22)
        self.upstream.flush_rejects()
        self.assertEqual(self.sent(), [])

    def test_down_then_v1_gateway_answers_held_replies(self):
        proto = self.gateway(version=2)
        proto.connectionLost(None)
        miner, transport = self.miner()
        self.submit(miner)
        self.assertEqual(self.replies(transport), [])
        self.gateway(version=1, job=False)
        self.assertEqual(self.replies(transport), [{"id": 9, "error": None, "result": True}])
        self.assertEqual(len(self.sent()[-1]["params"]), 9)


class BadMinerTests(AgentCase):
    def test_a_bad_miner_is_dropped_alone(self):
        self.gateway()
        good, good_transport = self.miner()
        bad, bad_transport = self.miner("bob.rig2")
        self.sent()
        bad.dataReceived(b"\x00garbage that is not json\n")
        self.assertTrue(bad_transport.disconnecting)
        self.assertEqual(self.replies(bad_transport)[0]["error"][1], "Parse error")
        # Nothing of it went upstream; the other miner's share still does.
        self.submit(good)
        self.assertEqual([m["method"] for m in self.sent()], ["agent.sync", "agent.submit"])
        self.assertFalse(good_transport.disconnecting)
        self.assertFalse(self.up.disconnecting)


class SyncTests(AgentCase):
    def test_synced_again_after_a_quiet_spell(self):
        from viabtc.mineragent.context import SYNC_REFRESH

        self.gateway()
        miner, transport = self.miner()
        self.submit(miner, msg_id=1)
        self.submit(miner, msg_id=2, nonce=1)
        self.assertEqual([m["method"] for m in self.sent()], ["agent.event", "agent.sync", "agent.submit",
                                                              "agent.submit"])
        self.clock.advance(SYNC_REFRESH + 1)
        self.submit(miner, msg_id=3, nonce=2)
        self.assertEqual([m["method"] for m in self.sent()], ["agent.sync", "agent.submit"])

    def test_a_reconnect_syncs_every_authorized_miner_at_once(self):
        proto = self.gateway()
        self.miner()
        self.miner("bob.rig2")
        proto.connectionLost(None)
        self.gateway(job=False)
        self.assertEqual([m["method"] for m in self.sent()], ["agent.sync", "agent.sync"])
