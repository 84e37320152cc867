"""Tests for viabtc.stratum.agent_client: the mineragent's line protocol towards its gateway."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from viabtc.stratum import agent
from viabtc.stratum.agent_client import AgentClientProtocol, IAgentUpstreamHandler

from tests.stratum.jobs import job_dict
from tests.support import written_json


@implementer(IAgentUpstreamHandler)
class Recorder:
    """An in-test handler recording what the protocol tells it (not a real part)."""

    def __init__(self):
        self.calls = []

    def upstream_connected(self, protocol):
        self.calls.append(("connected",))

    def upstream_ready(self, protocol, version):
        self.calls.append(("ready", version))

    def job_received(self, message):
        self.calls.append(("job", message.get("job_id")))

    def results_received(self, results):
        self.calls.append(("results", results))

    def upstream_lost(self, protocol, reason):
        self.calls.append(("lost",))


class ClientCase(TestCase):
    def connect(self, offer_v2=True):
        self.handler = Recorder()
        clock = Clock()
        clock.advance(1_700_000_000.5)
        proto = AgentClientProtocol(self.handler, 77, offer_v2, clock, max_line=4096)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 3333))
        proto.makeConnection(transport)
        self.transport = transport
        return proto

    def lines(self):
        return written_json(self.transport)


class HandshakeTests(ClientCase):
    def test_handler_provides_the_interface(self):
        verifyObject(IAgentUpstreamHandler, Recorder())

    def test_subscribe_as_the_seed_then_v2_offer(self):
        self.connect(offer_v2=False)
        self.assertEqual(self.lines(), [{"id": 1_700_000_000_500, "method": "agent.subscribe", "params": [1, 77]}])
        self.assertEqual(self.handler.calls, [("connected",)])
        self.connect(offer_v2=True)
        self.assertEqual(self.lines()[0]["params"], [1, 77, 2])

    def test_versions(self):
        for result, version in ((True, 1), ({"version": 2}, 2)):
            proto = self.connect()
            proto.dataReceived(json.dumps({"id": 1_700_000_000_500, "error": None, "result": result}).encode() + b"\n")
            self.assertEqual(self.handler.calls[-1], ("ready", version))
            self.assertEqual(proto.version, version)

    def test_v2_not_offered_but_granted_drops(self):
        proto = self.connect(offer_v2=False)
        proto.dataReceived(b'{"id":1700000000500,"error":null,"result":{"version":2}}\n')
        self.assertTrue(self.transport.disconnecting)

    def test_refused_subscribe_drops(self):
        proto = self.connect()
        proto.dataReceived(b'{"id":1700000000500,"error":[20,"no",null],"result":null}\n')
        self.assertTrue(self.transport.disconnecting)


class LineTests(ClientCase):
    def test_job_results_and_acks(self):
        proto = self.connect()
        job = json.dumps(job_dict(job_id="2b")).encode()
        proto.dataReceived(job[:10])
        proto.dataReceived(job[10:] + b'\n{"id":5,"error":null,"result":true}\n'
                           + agent.results_line([[1, 0], [2, 23]]))
        self.assertEqual(self.handler.calls[1:], [("job", "2b"), ("results", [(1, 0), (2, 23)])])
        self.assertFalse(self.transport.disconnecting)

    def test_hostile_lines_drop_the_connection(self):
        for bad in (b"not json\n", b"[1,2]\n", b'{"id":null,"method":"agent.results","params":[["x"]]}\n',
                    b'{"id":null,"method":"agent.results","params":7}\n', b"x" * 5000 + b"\n", b"y" * 5000):
            proto = self.connect()
            proto.dataReceived(bad)
            self.assertTrue(self.transport.disconnecting, bad[:40])
            self.assertNotIn(("results", []), self.handler.calls)


class FuzzTests(ClientCase):
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.one_of(
        st.binary(max_size=200),
        st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
            st.sampled_from(["id", "method", "params", "result", "error", "job_id"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=3),
                      st.sampled_from(["agent.results", "client.reconnect"])), max_size=5)),
    ), max_size=6))
    def test_any_bytes_never_raise(self, chunks):
        proto = self.connect()
        for chunk in chunks:
            proto.dataReceived(chunk + b"\n")
