"""
Tests for viabtc.backlog and the listen backlog of every configured
server address: the kernel's cap read, the warning when a configured value
is cut by it, the backlog put into each kind of server description, and a
real listening socket holding exactly its backlog of connections.
"""

import errno
import select
import socket
import time

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.backlog import check_backlog, described_backlog, listen_backlog, somaxconn, with_backlog
from viabtc.config import ConfigReader, ServerBlock, parse_address
from viabtc.devnet import free_port


class SomaxconnTests(TestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_reads_the_kernel_value(self):
        self.assertEqual(somaxconn(self.write("1234\n")), 1234)

    def test_falls_back_to_the_c_constant(self):
        """No /proc (not Linux) or nonsense in it: the seed's SOMAXCONN."""
        self.assertEqual(somaxconn(self.mktemp()), socket.SOMAXCONN)
        self.assertEqual(somaxconn(self.write("many")), socket.SOMAXCONN)
        self.assertEqual(somaxconn(self.write("0")), socket.SOMAXCONN)

    def test_default_is_the_kernel_cap(self):
        path = self.write("777")
        self.assertEqual(listen_backlog(None, path), 777)
        self.assertEqual(listen_backlog(100, path), 100)

    def test_capped_value_is_warned_naming_the_key(self):
        path = self.write("128")
        with capturedLogs() as events:
            self.assertEqual(check_backlog(100, "svr.backlog", path), 100)
        self.assertEqual(events, [])
        with capturedLogs() as events:
            self.assertEqual(check_backlog(5000, "svr.backlog", path), 128)
        (warning,) = events
        self.assertEqual((warning["key"], warning["configured"], warning["cap"]), ("svr.backlog", 5000, 128))


class DescriptionTests(TestCase):
    def test_backlog_added_to_every_listening_type(self):
        for description in ("tcp:3333:interface=0.0.0.0", "tcp6:3333:interface=\\:\\:", "unix:/tmp/s:mode=660",
                            "ssl:3334:privateKey=k.pem"):
            self.assertEqual(with_backlog(description, 4096), description + ":backlog=4096")

    def test_own_backlog_kept(self):
        self.assertEqual(with_backlog("tcp:3333:backlog=10:interface=1.2.3.4", 4096),
                         "tcp:3333:backlog=10:interface=1.2.3.4")
        self.assertEqual(described_backlog("tcp:3333:interface=1.2.3.4:backlog=10"), 10)
        self.assertIsNone(described_backlog("unix:/tmp/backlog=10"))

    def test_other_endpoint_types_pass_through(self):
        """``systemd:`` adopts a socket that already listens; unknown types are not ours to change."""
        self.assertEqual(with_backlog("systemd:domain=INET:index=0", 4096), "systemd:domain=INET:index=0")


class AddressBacklogTests(TestCase):
    def listened_backlog(self, address):
        memory = MemoryReactor()
        address.server_endpoint(memory).listen(Factory())
        if memory.tcpServers:
            return memory.tcpServers[0][2]
        if memory.sslServers:
            return memory.sslServers[0][3]
        return memory.unixServers[0][2]

    def test_seed_and_twisted_forms_listen_with_the_kernel_cap(self):
        cap = somaxconn()
        for text in ("tcp@0.0.0.0:3333", "tcp@[::1]:3333", "tcp:3333:interface=127.0.0.1", "tcp6:3333",
                     "stream@/tmp/viabtc-backlog.sock", "unix:/tmp/viabtc-backlog.sock"):
            self.assertEqual(self.listened_backlog(parse_address(text)), cap, text)

    def test_server_block_backlog_reaches_every_stream_bind(self):
        block = ServerBlock.from_reader(ConfigReader({
            "bind": ["tcp@127.0.0.1:3333", "tcp:3334:interface=127.0.0.1", "udp@127.0.0.1:3335"],
            "max_pkg_size": 1024, "backlog": 64,
        }, "svr"))
        self.assertEqual(block.backlog, 64)
        self.assertEqual([self.listened_backlog(a) for a in block.stream_binds], [64, 64])
        self.assertIsNone(block.datagram_binds[0].backlog)

    def test_description_backlog_wins(self):
        address = parse_address("tcp:3333:interface=127.0.0.1:backlog=9")
        self.assertEqual(self.listened_backlog(address), 9)

    def test_config_above_the_kernel_cap_is_warned(self):
        cap = somaxconn()
        with capturedLogs() as events:
            ServerBlock.from_reader(ConfigReader({"bind": "tcp@127.0.0.1:3333", "max_pkg_size": 1024,
                                                  "backlog": cap + 1}, "svr"))
            ConfigReader({"s": f"tcp:3333:backlog={cap * 2}"}).address("s", side="server")
        self.assertEqual([e["key"] for e in events if "cap" in e], ["svr.backlog", "s"])

    def test_bad_backlog_names_the_key(self):
        from viabtc.config import ConfigError

        with self.assertRaises(ConfigError) as caught:
            ServerBlock.from_reader(ConfigReader({"bind": "tcp@127.0.0.1:3333", "max_pkg_size": 1024,
                                                  "backlog": 0}, "svr"))
        self.assertEqual(caught.exception.key, "svr.backlog")


def _established(sockets, wait):
    """How many of the non-blocking ``sockets`` finished their handshake within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    poller = select.poll()
    pending = {s.fileno(): s for s in sockets}
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    done = 0
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            poller.unregister(fd)
            if pending.pop(fd).getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done += 1
    return done


class RealBacklogTests(TestCase):
    @defer.inlineCallbacks
    def test_kernel_holds_the_configured_backlog(self):
        """
        A port that is not accepting holds ``backlog`` (+1, Linux's
        count) finished handshakes; the SYNs beyond it are dropped and
        would be retried only after TCP's 1 s back-off.
        """
        backlog = 4
        address = ServerBlock.from_reader(ConfigReader({
            "bind": f"tcp@127.0.0.1:{free_port()}", "max_pkg_size": 1024, "backlog": backlog,
        }, "svr")).binds[0]
        port = yield address.server_endpoint(reactor).listen(Factory.forProtocol(Protocol))
        self.addCleanup(port.stopListening)
        port.stopReading()  # nothing is accepted: the kernel's queue is all there is
        clients = []
        for _ in range(backlog + 8):
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            self.assertIn(s.connect_ex(("127.0.0.1", address.port)), (0, errno.EINPROGRESS))
            clients.append(s)
        self.assertEqual(_established(clients, 0.5), backlog + 1)


class EagerAcceptTests(TestCase):
    async def test_listener_takes_the_whole_queue_each_turn(self):
        """
        After a quiet spell Twisted's port accepts one connection per turn
        and grows by 20; a role's listener keeps taking up to its backlog.
        """
        from twisted.application.service import MultiService

        from tests.support import wait_for
        from viabtc.service import listen_stream

        accepted = []

        class Count(Protocol):
            def connectionMade(self):
                accepted.append(self)

        parent = MultiService()
        address = ServerBlock.from_reader(ConfigReader({
            "bind": f"tcp@127.0.0.1:{free_port()}", "max_pkg_size": 1024, "backlog": 300,
        }, "svr")).binds[0]
        listener = listen_stream(parent, address, Factory.forProtocol(Count), reactor)
        parent.startService()
        self.addCleanup(parent.stopService)
        port = listener._waitingForPort.result
        first = socket.create_connection(("127.0.0.1", address.port))
        self.addCleanup(first.close)
        await wait_for(lambda: accepted, what="the first connection")
        port.stopReading()  # the kernel queues the storm ...
        clients = []
        for _ in range(250):
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", address.port))
            clients.append(s)
        self.assertEqual(_established(clients, 5.0), 250)
        port.doRead()  # ... and one turn takes all of it
        self.assertEqual(len(accepted), 251)
        port.startReading()
        for proto in accepted:
            proto.transport.abortConnection()
