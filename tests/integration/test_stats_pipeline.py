"""
The statistics path end to end: a scripted share stream leaves a gateway
exactly as the gateway sends it (``MinuteAggregator``, the records encoder,
a real ``ReliableSender`` with its file queue), goes through metarelay to
metawriter and lands in a real redis-server, where every key is compared
with what the script says, computed here by hand.

Then the same stream with faults: Redis stopped across several retry
rounds, metawriter stopped abruptly (in-process) or killed with SIGKILL (as
a twistd process) mid-stream, metarelay restarted with packets queued; the
Redis contents must be identical.  And two brother metawriters sharing one
Redis with retransmitted packets: each counted once.

Time: our gateways stamp each body with its minute, so the Redis fields do
not depend on when the metawriter flushes; the in-process metawriter's
clock is a ``task.Clock`` so its flushes happen exactly where a test says.
Waiting is for conditions (with a generous deadline), never timed.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from twisted.application.service import MultiService
from twisted.internet import defer, reactor, task, threads
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from tests.support import require_service
from viabtc.config import AlertBlock, RedisBlock, RPCClientBlock, ServerBlock, parse_address
from viabtc.devnet import free_port, project_root
from viabtc.devnet.redis import RedisServer
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.service import MetaRelayService
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.metawriter.service import MetaWriterService
from viabtc.rpc.client import DatagramSender
from viabtc.rpc.codec import Packet, PacketType, encode
from viabtc.rpc.reliable import ReliableSender
from viabtc.stats import records, schema
from viabtc.stats.gateway_agg import MinuteAggregator
from viabtc.stats.records import BlockRecord, EventRecord, encode_bodies

from tests.stats.test_gateway_agg import count

HOST = "gw-1"
COIN = "btc"
M0 = 1700000040  # a minute start
M1 = M0 + 60
BLOCK_HASH = "0000000000000000000a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"

# (kind, time, ...): event (user, worker, peer, event), share (user, worker,
# code, difficulty, goal), monitor (key, value), block (user, worker, name, hash).
PART_A = [
    ("event", M0 + 1, "alice", "rig1", "10.0.0.1", "connected"),
    ("event", M0 + 1, "alice", "rig2", "10.0.0.2", "connected"),
    ("event", M0 + 2, "bob", "w1", "10.0.0.3", "connected"),
    ("monitor", M0 + 2, "connection_new", 3),
    ("share", M0 + 5, "alice", "rig1", 0, 1024, 0.5),
    ("share", M0 + 6, "alice", "rig2", 0, 2048, 0.25),
    ("share", M0 + 7, "alice", "rig1", 23, 0, 0.0),
    ("share", M0 + 8, "bob", "w1", 0, 512, 0.125),
    ("share", M0 + 30, "alice", "rig1", 0, 1024, 0.5),
    ("monitor", M0 + 30, "connections", 3),
    ("event", M0 + 40, "alice", "rig1", "10.0.0.1", "disconnected"),
    ("share", M0 + 59.9, "bob", "w1", 21, 0, 0.0),
]
PART_B1 = [
    ("event", M1 + 1, "alice", "rig1", "10.0.0.1", "connected"),
    ("share", M1 + 2, "alice", "rig1", 0, 1024, 0.5),
    ("share", M1 + 3, "bob", "w1", 0, 512, 0.125),
    ("block", M1 + 4, "bob", "w1", "BTC", BLOCK_HASH),
    ("monitor", M1 + 4, "block", 1),
]
PART_B2 = [
    ("share", M1 + 5, "carol", "x", 0, 4096, 0.0625),
    ("event", M1 + 10, "carol", "x", "10.0.0.4", "connected"),
    ("share", M1 + 20, "alice", "rig2", 23, 0, 0.0),
    ("monitor", M1 + 30, "connections", 4),
    ("event", M1 + 50, "bob", "w1", "10.0.0.3", "disconnected"),
]
SCRIPT = PART_A + PART_B1 + PART_B2


def redis_float(value):
    """
    How Redis prints a HINCRBYFLOAT result: 17 decimals, trailing zeros
    dropped (``ld2string``, human mode); exact binary fractions only here.
    """
    return format(value, ".17f").rstrip("0").rstrip(".")


def expected_contents():
    """Every Redis key the script must produce, computed by hand from ref §4.9 and §8.5."""
    hashes = {}

    def add(key, minute, value):
        fields = hashes.setdefault(key, {})
        fields[minute] = fields.get(minute, 0) + value

    monitors = set()
    events, workers, blocks, seen = [], [], [], set()
    for step in SCRIPT:
        kind, when = step[0], step[1]
        minute = int(when // 60) * 60
        if kind == "share":
            _, _, user, worker, code, difficulty, goal = step
            if code:
                add("btc:s:%s:reject" % user, minute, 1)
                add("btc:s:%s:%s:reject" % (user, worker), minute, 1)
                add("btc:m:reject", minute, 1)
                add("btc:m:reject_%d" % code, minute, 1)
                monitors.update(("reject", "reject_%d" % code))
            else:
                add("btc:s:%s" % user, minute, 1)
                add("btc:p:%s" % user, minute, difficulty)
                add("btc:g:%s" % user, minute, goal)
                add("btc:s:%s:%s" % (user, worker), minute, 1)
                add("btc:p:%s:%s" % (user, worker), minute, difficulty)
                add("btc:m:share", minute, 1)
                add("btc:m:pow", minute, difficulty)
                add("btc:m:goal", minute, goal)
                # Our gateways' exact difficulty sum beside the integer pow (docs/redis.md).
                add("btc:m:pow_float", minute, float(difficulty))
                monitors.update(("share", "pow", "goal", "pow_float"))
        elif kind == "monitor":
            _, _, key, value = step
            add("btc:m:%s" % key, minute, value)
            monitors.add(key)
        elif kind == "event":
            _, _, user, worker, peer, event = step
            events.append('{"user": "%s", "worker": "%s", "coin": "btc", "peer": "%s", "event": "%s"}'
                          % (user, worker, peer, event))
            if event == "connected" and (user, worker) not in seen:
                seen.add((user, worker))
                workers.append('{"user": "%s", "worker": "%s", "coin": "btc"}' % (user, worker))
        else:
            _, _, user, worker, name, hash_ = step
            blocks.append('{"user": "%s", "worker": "%s", "name": "%s", "hash": "%s"}'
                          % (user, worker, name, hash_))
    contents = {}
    for key, fields in hashes.items():
        text = {str(m): (redis_float(v) if isinstance(v, float) else str(v)) for m, v in fields.items()}
        contents[key] = text
        if key.startswith("btc:m:"):
            contents["btc:mh:%s:%s" % (HOST, key[6:])] = dict(text)
    for key in monitors:
        contents["btc:mk:%s" % key] = {HOST}
    contents["monitor:keys"] = {"btc:m:%s" % key for key in monitors}
    contents["mining:keys"] = {key for key in hashes if not key.startswith("btc:m:")}
    contents["newevent"] = events
    contents["newworker"] = workers
    contents["newblock"] = blocks
    return contents


def assert_contents(testcase, got, expected, ordered=True):
    """
    ``got`` (a ``snapshot``) holds exactly the keys and values of
    ``expected``; unless ``ordered``, the event lists are compared as
    multisets (a retransmitted event may land after a later one).
    """
    if not ordered:
        for key in ("newevent", "newworker", "newblock"):
            got[key] = sorted(got.get(key, []))
            expected[key] = sorted(expected[key])
    testcase.assertEqual(sorted(got), sorted(expected))
    for key in expected:
        testcase.assertEqual(got[key], expected[key], key)


def snapshot(server, own_metrics=False):
    """
    Every key in Redis with its value (hash -> dict, set -> set, list ->
    list), without our bookkeeping keys (``viabtc:*``: replay and
    ``newworker`` guards).  Unless ``own_metrics``, the
    metawriter's own ``job:*`` keys are left out: ``meta_flush_cost``
    depends on how long Redis writes waited, which is what faults change.
    """
    contents = {}
    for key in server.command("KEYS", "*"):
        if key.startswith(schema.INTERNAL_PREFIX) or (not own_metrics and key.startswith("job:")):
            continue
        kind = server.command("TYPE", key)
        if kind == "hash":
            flat = server.command("HGETALL", key)
            contents[key] = dict(zip(flat[::2], flat[1::2]))
        elif kind == "set":
            members = set(server.command("SMEMBERS", key))
            if not own_metrics:
                members.discard("job:m:meta_flush_cost")
            contents[key] = members
        elif kind == "list":
            contents[key] = server.command("LRANGE", key, 0, -1)
        else:
            contents[key] = server.command("GET", key)
    return contents


@defer.inlineCallbacks
def wait_for(predicate, deadline=60.0):
    """Let the reactor run until ``predicate()`` holds; fail after ``deadline`` s."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached within %s s" % deadline)
        yield task.deferLater(reactor, 0.02, lambda: None)


def pause(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


def persistent_redis(testcase):
    """
    A real redis-server keeping its data in a directory of the test, so
    that it can be stopped (after ``SAVE``) and started again on the same
    port with the same contents, as a production Redis restarts.
    """
    directory = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    server = require_service(lambda: RedisServer(directory=directory).start())
    testcase.addCleanup(server.stop)
    return server


class ScriptedGateway:
    """
    Sends the script as our gateway does: blocks and events at once, share
    and monitor counters per completed minute, stamped, all through a real
    ``ReliableSender`` over UDP to ``port``.
    """

    def __init__(self, testcase, port):
        self.aggregator = MinuteAggregator(HOST, COIN)
        self.link = DatagramSender([("127.0.0.1", port)], max_size=1 << 16, reactor=reactor, role="gateway")
        self.sender = ReliableSender(self.link, os.path.abspath(testcase.mktemp()), reactor=reactor,
                                     role="gateway", resend_timeout=0.5, check_interval=0.1)
        self.link.startService()
        self.sender.startService()
        testcase.addCleanup(self.stop)

    def stop(self):
        if self.sender.running:
            self.sender.stopService()
            return self.link.stopService()

    def send(self, command, recs):
        bodies = encode_bodies(command, recs)
        if not self.sender.send_batch([Packet(command, body, PacketType.REQUEST) for body in bodies]):
            raise AssertionError("the gateway's queue refused packets")

    def play(self, steps):
        for step in steps:
            kind, when = step[0], step[1]
            if kind == "share":
                count(self.aggregator, *step[2:], now=when)
            elif kind == "monitor":
                self.aggregator.monitor(step[2], step[3], when)
            elif kind == "event":
                self.send(records.META_EVENT, [EventRecord(step[2], step[3], COIN, step[4], step[5])])
            else:
                self.send(records.META_BLOCK, [BlockRecord(*step[2:])])

    def end_minutes(self, now=None):
        """Send every completed minute (every minute held, when ``now`` is None)."""
        done = self.aggregator.flush_all() if now is None else self.aggregator.flush(now)
        packets = [Packet(command, body, PacketType.REQUEST)
                   for minute in done for command, body in minute.bodies()]
        if packets and not self.sender.send_batch(packets):
            raise AssertionError("the gateway's queue refused packets")


class Pipeline(unittest.TestCase):
    """gateway -(UDP)-> metarelay -(TCP)-> metawriter -> Redis, all with fixed ports for restarts."""

    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.trust_file = os.path.join(self.dir, "trust.json")
        with open(self.trust_file, "w") as f:
            json.dump({"127.0.0.1": "local gateway and relay"}, f)
        self.clock = task.Clock()
        self.clock.advance(M0 + 1)
        self.relay = None
        self.writer = None

    def writer_config(self, server, port=None, journal="journal", brother=None):
        port = free_port() if port is None else port
        return MetaWriterConfig(
            svr=ServerBlock((parse_address("tcp@127.0.0.1:%d" % port),
                             parse_address("udp@127.0.0.1:%d" % port)), 1 << 20),
            redis=RedisBlock("127.0.0.1", server.port),
            alert=AlertBlock("mw-1"),
            trust_file=self.trust_file,
            journal=os.path.join(self.dir, journal),
            redis_retry_interval=0.1,
            brother=brother,
        )

    def start_writer(self, config, clock=None):
        service = MetaWriterService(config, reactor, clock=clock or self.clock)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        return service

    def start_relay(self, writer_port):
        config = MetaRelayConfig(
            svr=ServerBlock((parse_address("udp@127.0.0.1:%d" % self.relay_port),), 1 << 16),
            writer=RPCClientBlock("writer", (parse_address("tcp@127.0.0.1:%d" % writer_port),), 1 << 20,
                                  reconnect_timeout=0.1),
            queue=os.path.join(self.dir, "relay-queue"),
            trust=("127.0.0.1",),
        )
        service = MetaRelayService(config, reactor, resend_timeout=0.5)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        return service

    @defer.inlineCallbacks
    def crash(self, writer):
        """
        What ``kill -9`` leaves of an in-process metawriter: its connections
        and ports gone at once, nothing drained, flushed or confirmed; only
        its journal on disk.
        """
        for child in list(writer):
            factory = getattr(child, "factory", None)
            for connection in list(getattr(factory, "connections", ())):
                connection.transport.abortConnection()
        writer.store.stop()
        writer.journal.close()
        yield MultiService.stopService(writer)
        yield writer.redis.disconnect()

    @defer.inlineCallbacks
    def delivered(self, gateway):
        """Everything the gateway sent is ACKed by the relay, and by the writer."""
        yield gateway.sender.when_drained()
        yield self.relay.sender.when_drained()

    @defer.inlineCallbacks
    def flushed(self, writer):
        """The writer's next minute flush, written to Redis."""
        yield writer.writer.store.when_idle()
        self.clock.advance(60)
        yield writer.writer.store.when_idle()

    def assertContents(self, server, ordered=True):
        assert_contents(self, snapshot(server), expected_contents(), ordered)


class CleanRunTests(Pipeline):
    @defer.inlineCallbacks
    def test_script_gives_exactly_the_seed_keys(self):
        server = persistent_redis(self)
        self.relay_port = free_port(kind=socket.SOCK_DGRAM)
        writer = self.start_writer(self.writer_config(server))
        self.relay = self.start_relay(writer.config.svr.binds[0].port)
        gateway = ScriptedGateway(self, self.relay_port)
        gateway.play(PART_A)
        # A malformed datagram and a torn body mid-stream: dropped, the rest goes on.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"not a packet at all", ("127.0.0.1", self.relay_port))
            s.sendto(encode(Packet(102, b"\x01" * 40, PacketType.REQUEST, 1)), ("127.0.0.1", self.relay_port))
            s.sendto(encode(Packet(102, b"\x02" * 40, PacketType.REQUEST, 2)),
                     ("127.0.0.1", writer.config.svr.binds[1].port))
        gateway.end_minutes(M1 + 1)
        yield self.delivered(gateway)
        # The metawriter's minute turns between the two minutes of data.
        yield self.flushed(writer)
        gateway.play(PART_B1 + PART_B2)
        gateway.end_minutes()
        yield self.delivered(gateway)
        yield self.flushed(writer)
        self.assertContents(server)
        self.assertEqual(writer.writer.duplicates, 0)
        self.assertEqual(self.relay.relay.dropped, 1)
        self.assertEqual(writer.writer.dropped, 1)


class FaultTests(Pipeline):
    @defer.inlineCallbacks
    def test_redis_outage_writer_crash_and_relay_restart(self):
        server = persistent_redis(self)
        self.relay_port = free_port(kind=socket.SOCK_DGRAM)
        config = self.writer_config(server)
        writer_port = config.svr.binds[0].port
        writer = self.start_writer(config)
        self.relay = self.start_relay(writer_port)
        gateway = ScriptedGateway(self, self.relay_port)
        gateway.play(PART_A)
        yield self.delivered(gateway)
        yield writer.writer.store.when_idle()

        # Redis goes away (its data saved, as a production Redis keeps it).
        server.command("SAVE")
        server.stop()
        gateway.end_minutes(M1 + 1)
        gateway.play(PART_B1[:2])
        yield self.delivered(gateway)
        # The minute flush cannot be written: it waits through several retry rounds.
        self.clock.advance(60)
        yield pause(1.0)
        self.assertGreater(len(writer.writer.store), 0)
        # More packets are ACKed: counted in memory and journaled, not yet flushed.
        gateway.play(PART_B1[2:])
        yield self.delivered(gateway)

        # The metawriter dies abruptly: no flush, no drain; only its journal remains.
        yield self.crash(writer)

        # Meanwhile the gateway goes on; the relay queues, and is restarted itself.
        gateway.play(PART_B2[:2])
        yield gateway.sender.when_drained()
        self.assertGreater(self.relay.sender.pending_count(), 0)
        yield self.relay.stopService()
        self.relay = self.start_relay(writer_port)

        # Redis and the metawriter come back; everything lands, once.
        server.start()
        writer = self.start_writer(config)
        gateway.play(PART_B2[2:])
        gateway.end_minutes()
        yield self.delivered(gateway)
        yield self.flushed(writer)
        self.assertContents(server, ordered=False)


class BrotherTests(Pipeline):
    @defer.inlineCallbacks
    def test_retransmissions_across_brothers_counted_once(self):
        server = persistent_redis(self)
        port_a, port_b = free_port(), free_port()

        def brother(port):
            return RPCClientBlock("brother", (parse_address("tcp@127.0.0.1:%d" % port),), 1 << 20,
                                  reconnect_timeout=0.1)

        clock_b = task.Clock()
        clock_b.advance(M0 + 1)
        a = self.start_writer(self.writer_config(server, port_a, "journal-a", brother(port_b)))
        b = self.start_writer(self.writer_config(server, port_b, "journal-b", brother(port_a)), clock_b)
        yield wait_for(lambda: a.writer.brother.connected and b.writer.brother.connected)
        aggregator = MinuteAggregator(HOST, COIN)
        for step in SCRIPT:
            if step[0] == "share":
                count(aggregator, *step[2:], now=step[1])
        bodies = [(command, body) for minute in aggregator.flush_all() for command, body in minute.bodies()]
        events = [(records.META_EVENT, encode_bodies(records.META_EVENT, [EventRecord(
            s[2], s[3], COIN, s[4], s[5])])[0]) for s in SCRIPT if s[0] == "event"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, (command, body) in enumerate(bodies + events):
                first, second = (a, b) if i % 2 else (b, a)
                s.sendto(encode(Packet(command, body, PacketType.REQUEST, i + 1)),
                         ("127.0.0.1", first.config.svr.binds[1].port))
                # Counted by the first, and the brother heard of it (cmd 104)
                # before the sender's retransmission reaches the brother.
                yield wait_for(lambda: len(first.writer.aggregator.dedupe) > i)
                yield wait_for(lambda: len(second.writer.aggregator.dedupe) > i)
                s.sendto(encode(Packet(command, body, PacketType.REQUEST, 1000 + i)),
                         ("127.0.0.1", second.config.svr.binds[1].port))
        yield wait_for(lambda: a.writer.duplicates + b.writer.duplicates == len(bodies) + len(events))
        self.clock.advance(60)
        clock_b.advance(60)
        yield a.writer.store.when_idle()
        yield b.writer.store.when_idle()
        got = snapshot(server)
        expected = expected_contents()
        for key, value in expected.items():
            if key == "newblock" or key.startswith(("btc:m", "monitor:")):
                continue
            if key in ("newevent", "newworker"):
                self.assertEqual(sorted(got[key]), sorted(value), key)
            else:
                self.assertEqual(got[key], value, key)
        self.assertEqual(a.writer.accepted + b.writer.accepted, len(bodies) + len(events))


class KilledProcessTests(Pipeline):
    """The metawriter as a real ``twistd`` process, killed with SIGKILL mid-stream."""

    def spawn_writer(self, config_path):
        log = open(os.path.join(self.dir, "metawriter.log"), "ab")
        self.addCleanup(log.close)
        env = dict(os.environ, PYTHONPATH=project_root())
        process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "twistd"), "-n", "--pidfile=",
             "viabtc-metawriter", "--config", config_path],
            cwd=project_root(), env=env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        return process

    @defer.inlineCallbacks
    def wait_listening(self, port, process):
        def up():
            if process.poll() is not None:
                raise AssertionError("metawriter exited with %s; see %s/metawriter.log" % (process.returncode, self.dir))
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False
        yield wait_for(up)

    @defer.inlineCallbacks
    def test_sigkill_mid_stream(self):
        server = persistent_redis(self)
        self.relay_port = free_port(kind=socket.SOCK_DGRAM)
        writer_port = free_port()
        config_path = os.path.join(self.dir, "metawriter.json")
        with open(config_path, "w") as f:
            json.dump({
                "alert": {"host": "mw-1"},
                "svr": {"bind": ["tcp@127.0.0.1:%d" % writer_port, "udp@127.0.0.1:%d" % writer_port],
                        "max_pkg_size": 1 << 20},
                "redis": {"host": "127.0.0.1", "port": server.port},
                "trust_file": "trust.json",
                "journal": "journal",
                "redis_retry_interval": 0.1,
            }, f)
        process = self.spawn_writer(config_path)
        yield self.wait_listening(writer_port, process)
        self.relay = self.start_relay(writer_port)
        gateway = ScriptedGateway(self, self.relay_port)
        gateway.play(PART_A)
        gateway.end_minutes(M1 + 1)
        yield gateway.sender.when_drained()
        # Kill while the relay still has packets in flight to the writer.
        total = self.relay.sender.pending_count()
        yield wait_for(lambda: self.relay.sender.pending_count() < total)
        process.send_signal(signal.SIGKILL)
        yield threads.deferToThread(process.wait)
        gateway.play(PART_B1)
        yield gateway.sender.when_drained()
        process = self.spawn_writer(config_path)
        yield self.wait_listening(writer_port, process)
        gateway.play(PART_B2)
        gateway.end_minutes()
        yield self.delivered(gateway)
        # A graceful stop flushes what the writer holds.
        process.send_signal(signal.SIGTERM)
        code = yield threads.deferToThread(process.wait, 60)
        # twistd reports a signal-initiated shutdown by exiting with that signal.
        self.assertIn(code, (0, -signal.SIGTERM))
        self.assertContents(server, ordered=False)
