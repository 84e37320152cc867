"""
The shared Redis connection against a real redis-server: it connects,
commands wait out an outage, and a refused AUTH is a critical log line.
"""

import txredisapi
from twisted.internet import defer
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from tests.roles import redis_connection
from tests.support import redis_server


class RedisConnectionTests(unittest.TestCase):
    def connect(self, server, password=None):
        return redis_connection(self, server, "test", password)

    @defer.inlineCallbacks
    def test_when_connected_and_commands(self):
        server = redis_server(self)
        connection = self.connect(server)
        handler = yield connection.when_connected()
        self.assertIs(handler, connection.handler)
        # Once connected, a new waiter fires at once.
        again = connection.when_connected()
        self.assertIs(self.successResultOf(again), connection.handler)
        length = yield connection.handler.rpush("k", ["a", "b"])
        self.assertEqual(length, 2)
        self.assertEqual(server.command("LRANGE", "k", 0, -1), ["a", "b"])

    @defer.inlineCallbacks
    def test_commands_wait_for_redis_to_come_back(self):
        server = redis_server(self)
        connection = self.connect(server)
        yield connection.when_connected()
        server.stop()
        # A command sent before the loss is noticed fails; its caller retries.
        lost = connection.handler.rpush("k", ["in flight"])
        yield self.assertFailure(lost, txredisapi.ConnectionError)
        # Once the loss is known, a command waits for the connection to come back.
        pushed = connection.handler.rpush("k", ["while down"])
        self.assertNoResult(pushed)
        server.start()
        length = yield pushed
        self.assertEqual(length, 1)
        self.assertEqual(server.command("LRANGE", "k", 0, -1), ["while down"])

    @defer.inlineCallbacks
    def test_refused_auth_is_critical(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        server = redis_server(self)
        connection = self.connect(server, password="wrong")
        yield self.assertFailure(connection.when_connected(), ValueError)
        # A waiter after the refusal fails at once too.
        self.failureResultOf(connection.when_connected(), ValueError)
        critical = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(len(critical), 1)
        self.assertEqual((critical[0]["port"], critical[0]["role"]), (server.port, "test"))
