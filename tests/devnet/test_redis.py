"""The redis-server launcher starts a real server and stops it."""

from twisted.trial import unittest

from tests.support import redis_server


class RedisServerTests(unittest.TestCase):
    def test_roundtrip(self):
        """A value written through the launcher's client reads back."""
        server = redis_server(self)
        self.assertEqual(server.command("SET", "k", "v"), "OK")
        self.assertEqual(server.command("GET", "k"), "v")
        self.assertEqual(server.command("HINCRBY", "h", "60", 3), 3)

    def test_stop(self):
        """After stop() the process is gone."""
        server = redis_server(self)
        process = server.process
        server.stop()
        self.assertIsNotNone(process.poll())
