"""The peers file (the seed's form) and the set of reconnecting clients it drives."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from viabtc.bitpeer.peers import PeerFileError, PeerSet, parse_peer_file, read_peer_file
from viabtc.p2p.protocol import PeerFactory, PeerSettings


class PeerFileTests(SynchronousTestCase):
    def test_seed_form(self):
        self.assertEqual(parse_peer_file(b'{"peers": ["1.2.3.4:8333", "[::1]:18444", "1.2.3.4:8333"]}'),
                         (("1.2.3.4", 8333), ("::1", 18444)))

    def test_errors(self):
        for data in (b"[", b"[]", b'{"peers": 1}', b'{"peers": ["host.example:8333"]}',
                     b'{"peers": ["1.2.3.4"]}', b'{"peers": ["udp@1.2.3.4:5"]}', b'{"peers": [5]}'):
            self.assertRaises(PeerFileError, parse_peer_file, data)

    def test_missing_file(self):
        self.assertRaises(PeerFileError, read_peer_file, self.mktemp())


class PeerSetTests(SynchronousTestCase):
    def test_update_adds_and_removes(self):
        clock = Clock()
        factory = PeerFactory(None, PeerSettings(b"\xfa\xbf\xb5\xda"), reactor=clock)
        peers = PeerSet(factory, clock, 60.0)
        self.assertEqual(peers.update([("127.0.0.1", 1), ("127.0.0.1", 2)]), (2, 0))
        first = peers.clients[("127.0.0.1", 1)]
        self.assertEqual(peers.update([("127.0.0.1", 1), ("127.0.0.1", 3)]), (1, 1))
        self.assertIs(peers.clients[("127.0.0.1", 1)], first)
        self.assertEqual(sorted(peers.clients), [("127.0.0.1", 1), ("127.0.0.1", 3)])
        self.assertEqual(len(list(peers)), 2)
        self.assertEqual(peers.update([("127.0.0.1", 1), ("127.0.0.1", 3)]), (0, 0))
