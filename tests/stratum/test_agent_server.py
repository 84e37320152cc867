"""Tests for viabtc.stratum.agent_server: agent.* on the gateway's Stratum port."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from viabtc.stratum import agent
from viabtc.stratum.agent_server import AgentServerFactory
from viabtc.stratum.session import State
from viabtc.stratum.share import Reject

from tests.stratum.jobs import CURTIME, prepared_job, regtest_job
from tests.stratum.test_protocol import CountingTransport, RecordingContext
from tests.support import written_json


class AgentContext(RecordingContext):
    """``RecordingContext`` with the gateway's agent event (not a real part: the gateway's is tested there)."""

    def agent_event(self, session, user, worker, event):
        self.events.append(("agent_event", user, worker, event))


class AgentServerCase(TestCase):
    agent_v2 = True

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(CURTIME)
        self.context = AgentContext()
        self.factory = AgentServerFactory(self.context, self.clock, agent_v2=self.agent_v2)
        self.prepared = prepared_job()
        self.context.jobs.add(self.prepared)

    hosts = 0

    def connect(self):
        # A host of its own per connection: abuse strikes of one do not ban the next.
        self.hosts += 1
        proto = self.factory.buildProtocol(None)
        transport = CountingTransport(peerAddress=IPv4Address("TCP", f"10.0.{self.hosts >> 8 & 255}.{self.hosts & 255}",
                                                              5000))
        proto.makeConnection(transport)
        self.context.transport = transport
        return proto, transport

    def send(self, proto, *requests):
        proto.dataReceived(b"".join(agent.request_line(i + 1, m, p) for i, (m, p) in enumerate(requests)))

    def received(self, transport):
        return written_json(transport)

    def agent(self, offer_v2=False, agent_id=77):
        proto, transport = self.connect()
        self.send(proto, ("agent.subscribe", agent.subscribe_params(agent_id, offer_v2)))
        replies = self.received(transport)
        return proto, transport, replies

    def share(self, job_id="1a", nonce=0, miner_id=5, account="alice.rig1", seq=None):
        return ("agent.submit", agent.submit_params(miner_id, account, job_id, bytes(8), CURTIME, nonce,
                                                    0x1FFFE000, 0xFFFFFFFF, 0, seq))

    def synced(self, offer_v2=False):
        proto, transport, _ = self.agent(offer_v2)
        self.send(proto, ("agent.sync", agent.sync_params(5, 9, bytes.fromhex("0a0b0c0d"), 1e-12)))
        [reply] = self.received(transport)
        self.assertIs(reply["result"], True)
        return proto, transport


class SubscribeTests(AgentServerCase):
    def test_v1_reply_then_raw_job(self):
        proto, transport, replies = self.agent()
        self.assertEqual(replies[0], {"id": 1, "error": None, "result": True})
        self.assertNotIn("id", replies[1])
        self.assertEqual(replies[1], self.prepared.job.to_dict())
        self.assertEqual(proto.session.user_agent, "agent_1")
        self.assertIn(proto, self.factory.agents)

    def test_v2_offered_and_granted(self):
        proto, transport, replies = self.agent(offer_v2=True)
        self.assertEqual(replies[0]["result"], {"version": 2})
        self.assertEqual(proto.agent_version, 2)

    def test_subscribe_twice_closes(self):
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.subscribe", [1, 78]))
        self.assertEqual(self.received(transport)[0]["error"][0], Reject.OTHER)
        self.assertTrue(transport.disconnecting)

    def test_bad_version_closes(self):
        proto, transport = self.connect()
        self.send(proto, ("agent.subscribe", [2, 78]))
        self.assertTrue(transport.disconnecting)

    def test_agent_methods_need_an_agent_session(self):
        proto, transport = self.connect()
        self.send(proto, self.share())
        [reply] = self.received(transport)
        self.assertEqual(reply["error"][0], Reject.NOT_SUBSCRIBED)
        self.assertFalse(transport.disconnecting)

    def test_every_agent_method_answers_before_subscribe_and_on_bad_params(self):
        for method in ("agent.sync", "agent.event", "agent.status", "agent.rejects", "agent.submit"):
            proto, transport = self.connect()
            self.send(proto, (method, []))
            [reply] = self.received(transport)
            self.assertEqual(reply["error"][:2], [Reject.NOT_SUBSCRIBED, "Not an agent session"], method)
            self.assertFalse(transport.disconnecting, method)
            proto, transport, _ = self.agent(offer_v2=True)
            self.send(proto, (method, [[]] if method == "agent.rejects" else []))
            [reply] = self.received(transport)
            self.assertEqual(reply["error"][0], Reject.OTHER, method)
            self.assertTrue(reply["error"][1].startswith(method), (method, reply["error"][1]))
            self.assertTrue(transport.disconnecting, method)

    def test_v1_rejects_are_refused_before_their_params_are_read(self):
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.rejects", [[]]))
        [reply] = self.received(transport)
        self.assertEqual(reply["error"][1], "agent.rejects needs protocol v2")
        self.assertTrue(transport.disconnecting)

    def test_job_broadcast_reaches_agents_raw(self):
        proto, transport, _ = self.agent()
        new = prepared_job(job_id="1b", clean_jobs=False)
        self.context.jobs.add(new)
        self.factory.broadcast_job(new)
        self.assertEqual(self.received(transport), [new.job.to_dict()])


class SubmitV1Tests(AgentServerCase):
    def test_share_credited_to_the_miners_account_without_reply(self):
        proto, transport = self.synced()
        self.send(proto, self.share())
        self.assertEqual(self.received(transport), [])
        self.assertEqual(self.context.events, [("accepted", "alice", "rig1", 1e-12)])
        self.assertEqual(self.factory.agent_miners.get(77, 5).share_valid, 1)

    def test_duplicate_and_unknown_job_counted_as_rejects(self):
        proto, transport = self.synced()
        self.send(proto, self.share(), self.share(), self.share(job_id="ff"))
        self.assertEqual(self.received(transport), [])
        self.assertEqual(self.context.events[1:], [("rejected", "alice", "rig1", Reject.DUPLICATE_SHARE),
                                                  ("rejected", "alice", "rig1", Reject.JOB_NOT_FOUND)])

    def test_low_difficulty(self):
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.sync", [5, 9, "0a0b0c0d", 1 << 40]), self.share())
        self.assertEqual(self.context.events, [("rejected", "alice", "rig1", Reject.LOW_DIFFICULTY)])

    def test_block_below_share_difficulty_is_a_candidate(self):
        self.context.jobs.add(regtest_job(job_id="2"))
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.sync", [5, 9, "0a0b0c0d", 1 << 40]))
        for nonce in range(16):
            self.send(proto, self.share(job_id="2", nonce=nonce))
        kinds = [e[0] for e in self.context.events]
        self.assertIn("block", kinds)
        self.assertEqual(kinds.count("block"), kinds.count("accepted"))

    def test_coinbase_is_the_agent_layout(self):
        """A share ground against the agent coinbase is a block; the same nonce for another agent id is not."""
        from viabtc.stratum.share import ShareTarget, check_share
        from tests.stratum.jobs import agent_coinbase1

        job = regtest_job(job_id="2")
        self.context.jobs.add(job)
        high = ShareTarget.for_difficulty(1 << 40)
        prefix = agent_coinbase1(job, "alice", 77, 9) + bytes.fromhex("0a0b0c0d")
        nonce = next(n for n in range(64)
                     if check_share(job, prefix, bytes(8), CURTIME, n, 0, 0, high, high, CURTIME).is_block)
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.sync", [5, 9, "0a0b0c0d", 1 << 40]), self.share(job_id="2", nonce=nonce))
        self.assertEqual([e[0] for e in self.context.events], ["block", "accepted"])

    def test_unknown_miner_closes(self):
        proto, transport, _ = self.agent()
        self.send(proto, self.share())
        self.assertIn("was never synced", self.received(transport)[0]["error"][1])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.counts["agent_not_found"], 1)

    def test_bad_account_closes(self):
        proto, transport = self.synced()
        self.send(proto, self.share(account="bad!name"))
        self.assertTrue(transport.disconnecting)

    def test_seq_needs_v2(self):
        proto, transport = self.synced()
        self.send(proto, self.share(seq=1))
        self.assertTrue(transport.disconnecting)

    def test_no_rate_limit_for_agents(self):
        proto, transport = self.synced()
        self.send(proto, *[self.share(nonce=n) for n in range(3000)])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.factory.agent_miners.get(77, 5).share_valid, 3000)

    def test_event_and_status(self):
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.event", ["alice", "rig1", "connected"]), ("agent.status", [CURTIME, 1500]))
        self.assertEqual(self.received(transport), [])
        self.assertEqual(self.context.events, [("agent_event", "alice", "rig1", "connected")])
        self.assertEqual(self.factory.counts["new_authorized"], 1)
        self.assertEqual(self.factory.miner_connections, 1500)

    def test_idle_miners_expire(self):
        self.synced()
        self.clock.advance(self.context.settings.client_max_idle_time + 1)
        self.factory.housekeeping()
        self.assertEqual(len(self.factory.agent_miners), 0)


class SubmitV2Tests(AgentServerCase):
    def test_results_batched_per_read(self):
        proto, transport = self.synced(offer_v2=True)
        self.send(proto, self.share(seq=1), self.share(seq=2), self.share(job_id="ff", seq=3))
        [line] = self.received(transport)
        self.assertEqual(line, {"id": None, "method": "agent.results",
                                "params": [[1, 0], [2, Reject.DUPLICATE_SHARE], [3, Reject.JOB_NOT_FOUND]]})

    def test_resent_share_answered_again_and_counted_once(self):
        proto, transport = self.synced(offer_v2=True)
        self.send(proto, self.share(seq=1))
        self.received(transport)
        proto.connectionLost(None)
        again, transport = self.connect()
        self.send(again, ("agent.subscribe", [1, 77, 2]))
        self.received(transport)
        self.send(again, self.share(seq=1))
        self.assertEqual(self.received(transport)[0]["params"], [[1, 0]])
        self.assertEqual([e[0] for e in self.context.events], ["accepted"])


class V1OnlyTests(AgentServerCase):
    agent_v2 = False

    def test_offer_ignored(self):
        proto, transport, replies = self.agent(offer_v2=True)
        self.assertIs(replies[0]["result"], True)
        self.assertEqual(proto.agent_version, 1)


class FuzzTests(AgentServerCase):
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.sampled_from(["agent.subscribe", "agent.sync", "agent.submit", "agent.event",
                                     "agent.status", "mining.submit"]), max_size=4),
           st.lists(st.one_of(st.integers(-2, 2**33), st.text(max_size=10), st.none(), st.floats()), max_size=10),
           st.binary(max_size=40))
    def test_any_agent_line_is_answered_or_closed(self, methods, params, junk):
        proto, transport = self.synced(offer_v2=True)
        for method in methods:
            self.send(proto, (method, params))
        proto.dataReceived(junk + b"\n")
        self.assertIn(proto.session.state, (State.CONNECTED, State.CLOSING))


class RejectsTests(AgentServerCase):
    def test_counted_per_miner_in_v2(self):
        proto, transport, _ = self.agent(offer_v2=True)
        self.send(proto, ("agent.rejects", [["alice", "rig1", 22, 2], ["bob", "bob", 26, 1]]))
        self.assertEqual(self.received(transport), [])
        self.assertEqual(self.context.events, [("rejected", "alice", "rig1", Reject.DUPLICATE_SHARE)] * 2
                         + [("rejected", "bob", "bob", Reject.STALE_JOB)])

    def test_refused_in_v1_and_when_malformed(self):
        proto, transport, _ = self.agent()
        self.send(proto, ("agent.rejects", [["alice", "rig1", 22, 2]]))
        self.assertTrue(transport.disconnecting)
        proto, transport, _ = self.agent(offer_v2=True)
        self.send(proto, ("agent.rejects", [["Alice", "rig1", 22, 2]]))
        self.assertTrue(transport.disconnecting)


class ResultsBeforeCloseTests(AgentServerCase):
    def test_verdicts_precede_a_close(self):
        proto, transport = self.synced(offer_v2=True)
        proto.dataReceived(agent.request_line(5, "agent.submit", self.share(seq=1)[1]) + b"not json\n")
        lines = self.received(transport)
        self.assertEqual(lines[0]["error"][1], "Parse error")
        self.assertEqual(lines[1]["params"], [[1, 0]])
        self.assertTrue(transport.disconnecting)
