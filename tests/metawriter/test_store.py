"""
The Redis batch store against a real redis-server: order, confirmation per
journal generation, replay guards, and an outage with its alert.
"""

from twisted.internet import defer, reactor, task
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from tests.roles import redis_connection
from tests.support import redis_server
from viabtc.metawriter.store import BatchStore
from viabtc.stats.writer_agg import Batch


def batch(n, *commands):
    return Batch("%032x" % n, tuple(commands))


class BatchStoreTests(unittest.TestCase):
    def start(self, server, **kwargs):
        connection = redis_connection(self, server, "metawriter")
        self.done = []
        store = BatchStore(connection.handler, reactor, self.done.append, **kwargs)
        self.addCleanup(store.stop)
        return store

    @defer.inlineCallbacks
    def test_applied_in_order_and_generations_confirmed(self):
        server = redis_server(self)
        store = self.start(server)
        store.add([batch(1, ("RPUSH", "newevent", "a")), batch(2, ("RPUSH", "newevent", "b"))], 7)
        store.add([batch(3, ("RPUSH", "newevent", "c"))])
        self.assertEqual(store.unfiled(), [batch(3, ("RPUSH", "newevent", "c"))])
        store.file_unfiled(8)
        yield store.when_idle()
        self.assertEqual(server.command("LRANGE", "newevent", 0, -1), ["a", "b", "c"])
        self.assertEqual(self.done, [7, 8])
        self.assertEqual((store.applied, store.replayed), (3, 0))
        # The same batch again (a re-sent flush after a crash): its guard makes it a no-op.
        store.add([batch(1, ("RPUSH", "newevent", "a"))], 9)
        yield store.when_idle()
        self.assertEqual(server.command("LRANGE", "newevent", 0, -1), ["a", "b", "c"])
        self.assertEqual((store.applied, store.replayed), (3, 1))
        self.assertEqual(self.done, [7, 8, 9])

    @defer.inlineCallbacks
    def test_command_errors_are_logged_not_retried(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        server = redis_server(self)
        server.command("SET", "btc:s:alice", "not a hash")
        store = self.start(server)
        store.add([batch(1, ("HINCRBY", "btc:s:alice", "60", "1"), ("HINCRBY", "btc:s:bob", "60", "2"))], 1)
        yield store.when_idle()
        self.assertEqual(server.command("HGETALL", "btc:s:bob"), ["60", "2"])
        self.assertTrue([e for e in events if e.get("errors") == 1 and "WRONGTYPE" in e.get("first", "")])

    @defer.inlineCallbacks
    def test_outage_waits_alerts_and_applies_once(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        server = redis_server(self)
        store = self.start(server, retry_interval=0.1, alert_after=0.2)
        store.add([batch(1, ("HINCRBY", "btc:p:alice", "60", "5"))], 1)
        yield store.when_idle()
        server.stop()
        store.add([batch(2, ("HINCRBY", "btc:p:alice", "60", "7"))], 2)
        yield task.deferLater(reactor, 0.5, lambda: None)
        store.check()
        self.assertEqual(len(store), 1)
        critical = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(len(critical), 1)
        self.assertEqual(critical[0]["count"], 1)
        store.check()
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.critical]), 1)
        server.start()
        yield store.when_idle()
        # A new server starts empty: only the batch written after the restart is there, once.
        self.assertEqual(server.command("HGETALL", "btc:p:alice"), ["60", "7"])
        self.assertEqual(self.done, [1, 2])


class ReplicatedStoreTests(unittest.TestCase):
    """``min_replicas``: a batch is confirmed only once a real replica holds it."""

    @defer.inlineCallbacks
    def test_confirmed_only_once_a_replica_holds_it(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        master = redis_server(self)
        connection = redis_connection(self, master, "metawriter")
        done = []
        store = BatchStore(connection.handler, reactor, done.append, retry_interval=0.05, min_replicas=1)
        self.addCleanup(store.stop)
        store.add([batch(1, ("RPUSH", "newevent", "a"))], 1)
        # No replica: applied on the master, never confirmed, retried.
        yield task.deferLater(reactor, 1.5, lambda: None)
        self.assertEqual(done, [])
        self.assertTrue([e for e in events if "replicas acknowledged" in str(e.get("error", ""))])
        replica = redis_server(self)
        replica.command("REPLICAOF", "127.0.0.1", master.port)
        yield store.when_idle()
        self.assertEqual(done, [1])
        # Applied once, however many rounds the wait took (the later ones met its guard).
        self.assertEqual(replica.command("LRANGE", "newevent", 0, -1), ["a"])
        self.assertEqual(store.applied + store.replayed, 1)
