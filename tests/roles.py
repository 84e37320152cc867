"""
Helpers the role suites share (alertcenter, metarelay, metawriter,
jobmaster): waiting on the real reactor for a condition, one exchange with a
role's real TCP or UDP port, a Redis connection to a test's real
redis-server, and the checks every role's ``tap`` must pass.
"""

import json
import socket
import time

from twisted.internet import defer, reactor, task

from viabtc.config import RedisBlock
from viabtc.redis import RedisConnection
from viabtc.rpc.codec import PacketDecoder
from viabtc.service import StartupError


@defer.inlineCallbacks
def wait_for(predicate, deadline=30.0):
    """Let the reactor run until ``predicate()`` holds; fail after ``deadline`` s."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached within %s s" % deadline)
        yield task.deferLater(reactor, 0.02, lambda: None)


def udp_exchange(port, data, timeout=2.0):
    """Send one datagram to loopback ``port``; the reply datagram or None (runs in a thread)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recv(65536)
        except socket.timeout:
            return None


def tcp_exchange(port, data, timeout=2.0):
    """
    Send bytes on a new connection to loopback ``port``; the first packets
    received, or ``[]`` after a close or ``timeout`` (runs in a thread).
    """
    decoder = PacketDecoder(1 << 20)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return []
                packets = decoder.feed(chunk)
                if packets:
                    return packets
    except (socket.timeout, ConnectionError):
        return []


def redis_connection(testcase, server, role, password=None):
    """
    A ``RedisConnection`` to ``server`` (a real redis-server) with short
    timeouts, so an outage test retries quickly; closed by the cleanup.
    """
    connection = RedisConnection(RedisBlock("127.0.0.1", server.port, password=password), reactor,
                                 reply_timeout=2.0, max_delay=0.1, role=role)
    testcase.addCleanup(connection.disconnect)
    return connection


def write_json(path, data):
    """Write ``data`` as JSON to ``path``; returns ``path``."""
    with open(path, "w") as f:
        json.dump(data, f)
    return path


class RoleTapChecks:
    """
    What every role's ``tap`` module must do, mixed into a ``TestCase``
    that sets ``tap`` (the module), ``config_class``, ``service_class``,
    ``role``, ``good`` and ``bad`` (config dicts) and ``bad_key`` (a key
    the error for ``bad`` must name).  ``config_path(data)`` writes a config
    file; override it to place other files beside it.
    """

    def config_path(self, data):
        return write_json(self.mktemp(), data)

    def test_make_service(self):
        options = self.tap.Options()
        options.parseOptions(["--config", self.config_path(self.good)])
        self.assertIsInstance(options.config, self.config_class)
        service = self.tap.makeService(options, reactor)
        self.addCleanup(service.role_logging.remove)
        self.assertIsInstance(service, self.service_class)
        self.assertEqual(service.role_logging.role, self.role)
        self.assertFalse(service.running)

    def test_bad_config_is_one_line_naming_the_key(self):
        e = self.assertRaises(StartupError, self.tap.Options().parseOptions,
                              ["--config", self.config_path(self.bad)])
        message = str(e)
        self.assertTrue(message.startswith("config error: "), message)
        self.assertIn(self.bad_key, message)
        self.assertNotIn("\n", message)
