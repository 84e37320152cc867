"""
Every parser a hostile peer (or a careless operator) can feed, fuzzed with
hypothesis: nothing but the parser's own error ever comes out, and nothing
escapes into the reactor.  Stratum lines go through the real server protocol
over ``StringTransport``; module packets through the real RPC protocols.
"""

import json
import os

import attrs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.alertcenter.config import AlertCenterConfig
from viabtc.config import ConfigError, ConfigReader, parse_address
from viabtc.jobmaster.config import JobmasterConfig
from viabtc.jobmaster.messages import BadMessage, parse_found_block, parse_height_hint
from viabtc.rpc.bans import BadBanUpdate, parse_ban_update
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.rpc.codec import Command, Packet, PacketDecoder, ProtocolError, decode_datagram, encode
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory
from viabtc.stats.records import RecordError, decode_body
from viabtc.stratum.job import Job, JobError
from viabtc.stratum.limits import Limits
from viabtc.stratum.protocol import StratumServerFactory, StratumServerProtocol

from tests.security.test_module_links import SECRET, RecordingHandler
from tests.stratum.jobs import CURTIME, job_dict, regtest_job
from tests.stratum.test_protocol import RecordingContext

SEED_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "data", "seed-configs")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
hexish = st.text(alphabet="0123456789abcdefABCDEFxg ", max_size=20)
params_values = st.one_of(json_values, hexish, st.integers(0, 2**32), st.just("alice.rig1"), st.just("1a"))

METHODS = sorted(StratumServerProtocol.METHODS) + [
    "agent.subscribe", "agent.sync", "agent.submit", "agent.event", "agent.status", "mining.bogus", "",
]


def requests():
    """JSON-RPC-shaped objects, some right, most wrong in some way."""
    return st.fixed_dictionaries(
        {"id": json_values, "method": st.sampled_from(METHODS) | json_values},
        optional={"params": st.lists(params_values, max_size=10) | json_values},
    )


def lines():
    encoded = requests().map(lambda r: json.dumps(r).encode())
    garbage = st.binary(max_size=200)
    return st.lists(encoded | garbage | st.just(b"") | st.just(b"{}") | st.just(b"[]"), max_size=12)


class StratumFuzzTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(CURTIME)
        self.context = RecordingContext()
        self.context.jobs.add(regtest_job())
        self.factory = StratumServerFactory(self.context, self.clock, limits=Limits(max_connections_per_ip=10**6))

    def connect(self):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 4000))
        proto.makeConnection(transport)
        self.context.transport = transport
        return proto, transport

    def check(self, proto, transport, chunks):
        with capturedLogs() as logs:
            for chunk in chunks:
                proto.dataReceived(chunk)
        # No handler raised (that would be logged as a failure and answered
        # "Internal error"); every reply is one JSON object per line.
        self.assertEqual([e for e in logs if "log_failure" in e], [])
        replies = [json.loads(line) for line in transport.value().splitlines()]
        for reply in replies:
            self.assertIsInstance(reply, dict)
            self.assertNotEqual(reply.get("error"), [20, "Internal error", None])
        return replies

    @FUZZ
    @given(lines(), st.integers(1, 50))
    def test_lines_through_the_protocol(self, requests_, cut):
        proto, transport = self.connect()
        data = b"\n".join(requests_) + b"\n"
        chunks = [data[i:i + cut] for i in range(0, len(data), cut)]
        replies = self.check(proto, transport, chunks)
        answered = [r for r in replies if "result" in r or "error" in r]
        if not transport.disconnecting:
            # Each non-blank line was answered (one reply, or one plus notifications).
            self.assertGreaterEqual(len(answered), sum(1 for r in requests_ if r.strip()))

    @FUZZ
    @given(st.lists(st.lists(params_values, max_size=9), min_size=1, max_size=8))
    def test_submits_and_agent_params_after_authorize(self, param_lists):
        proto, transport = self.connect()
        handshake = [b'{"id":1,"method":"mining.subscribe","params":[]}',
                     b'{"id":2,"method":"mining.authorize","params":["alice.rig1","x"]}']
        body = [json.dumps({"id": i, "method": method, "params": params}).encode()
                for i, params in enumerate(param_lists)
                for method in ("mining.submit", "agent.submit", "agent.sync", "mining.configure",
                               "mining.suggest_difficulty")]
        self.check(proto, transport, [b"\n".join(handshake + body) + b"\n"])

    @FUZZ
    @given(st.binary(max_size=2000))
    def test_raw_bytes(self, data):
        proto, transport = self.connect()
        self.check(proto, transport, [data, b"\n"])


class PacketFuzzTests(TestCase):
    def valid(self):
        return encode(Packet(Command.FOUND_BLOCK, b'{"job_id":"1a"}'), SECRET, now=1_700_000_000,
                      nonce=b"12345678")

    @FUZZ
    @given(st.binary(max_size=300), st.integers(1, 64))
    def test_stream_decoder(self, data, cut):
        decoder = PacketDecoder(4096, SECRET)
        try:
            for i in range(0, len(data), cut):
                decoder.feed(data[i:i + cut])
        except ProtocolError:
            pass

    @FUZZ
    @given(st.data())
    def test_mutated_packets(self, data):
        valid = self.valid()
        packet = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(packet) - 1))
            packet[i] = data.draw(st.integers(0, 255))
        assume(bytes(packet) != valid)
        for secret in (None, SECRET):
            try:
                decode_datagram(bytes(packet), 4096, secret)
            except ProtocolError:
                continue
            # Without a secret, a mutation outside the CRC's reach may pass;
            # with one, no mutation may.
            self.assertIsNone(secret)

    @FUZZ
    @given(st.lists(st.binary(max_size=120), max_size=6))
    def test_rpc_server_protocols(self, chunks):
        clock = Clock()
        clock.advance(1_700_000_000)
        handler = RecordingHandler()
        factory = RPCServerFactory(handler, max_size=4096, secret=SECRET, reactor=clock)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        protocol.makeConnection(StringTransport())
        datagrams = RPCDatagramProtocol(handler, max_size=4096, secret=SECRET, reactor=clock)
        with capturedLogs() as logs:
            for chunk in chunks:
                protocol.dataReceived(chunk)
                datagrams.datagramReceived(chunk, ("127.0.0.1", 2))
        self.assertEqual(handler.packets, [])
        self.assertEqual([e for e in logs if "log_failure" in e], [])

    @FUZZ
    @given(st.sampled_from([100, 101, 102, 105, 106, 3, 999]), st.binary(max_size=200))
    def test_stats_bodies(self, command, body):
        try:
            decode_body(command, body)
        except RecordError:
            pass

    @FUZZ
    @given(json_values | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
    def test_module_messages(self, value):
        body = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode()
        for parse in (parse_found_block, parse_ban_update, parse_height_hint):
            try:
                parse(body)
            except (BadMessage, BadBanUpdate):
                pass


class JobFuzzTests(TestCase):
    @FUZZ
    @given(st.sampled_from(sorted(job_dict())), json_values)
    def test_one_key_changed(self, key, value):
        try:
            Job.from_json(json.dumps(job_dict(**{key: value})))
        except JobError:
            pass

    @FUZZ
    @given(st.binary(max_size=300))
    def test_raw_bodies(self, body):
        try:
            Job.from_json(body)
        except JobError:
            pass


def seed_config(name):
    with open(os.path.join(SEED_CONFIGS, name)) as f:
        return json.load(f)


def mutate(data, path, value):
    """``data`` with the value at ``path`` (a list of keys/indices) replaced."""
    data = json.loads(json.dumps(data))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def paths(data, prefix=()):
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [prefix]
    found = [prefix] if prefix else []
    for key, value in items:
        found.extend(paths(value, prefix + (key,)))
    return found


class ConfigFuzzTests(TestCase):
    @FUZZ
    @given(st.text(max_size=60) | st.sampled_from(["tcp@", "ssl:", "tcp:host=", "udp@1.2.3.4:", "unix:"]))
    def test_parse_address(self, text):
        for side in (None, "server", "client"):
            try:
                ConfigReader({"a": text}).address("a", side=side)
            except ConfigError:
                pass
        try:
            parse_address(text)
        except ConfigError:
            pass

    def _fuzz_role(self, build, sample, data):
        config = seed_config(sample)
        path = data.draw(st.sampled_from(paths(config)))
        value = data.draw(json_values)
        try:
            build(ConfigReader(mutate(config, path, value)))
        except ConfigError:
            pass

    @FUZZ
    @given(st.data())
    def test_jobmaster_config(self, data):
        self._fuzz_role(JobmasterConfig.from_reader, "jobmaster.json", data)

    @FUZZ
    @given(st.data())
    def test_metawriter_config(self, data):
        self._fuzz_role(MetaWriterConfig.from_reader, "metawriter.json", data)

    @FUZZ
    @given(st.data())
    def test_metarelay_config(self, data):
        self._fuzz_role(MetaRelayConfig.from_reader, "metarelay.json", data)

    @FUZZ
    @given(st.data())
    def test_alertcenter_config(self, data):
        self._fuzz_role(AlertCenterConfig.from_reader, "alertcenter.json", data)

    @FUZZ
    @given(st.dictionaries(st.sampled_from([f.name for f in attrs.fields(Limits)] + ["other"]), json_values))
    def test_limits_section(self, section):
        try:
            Limits.from_reader(ConfigReader({"limits": section}).section("limits"))
        except ConfigError:
            pass
