"""``viabtc.devnet.free_port``: free now, and never the same port twice in a row."""

import socket

from twisted.trial.unittest import TestCase

from viabtc import devnet


class FreePortTests(TestCase):
    def test_free_and_distinct(self):
        ports = [devnet.free_port() for _ in range(200)]
        self.assertEqual(len(set(ports)), len(ports))
        with socket.socket() as s:
            s.bind(("127.0.0.1", ports[-1]))

    def test_a_port_the_kernel_gives_again_is_skipped(self):
        """The kernel handing back the port just released (what made a config get one port twice)."""
        given = devnet.free_port()
        real_socket = socket.socket
        offers = [given]

        class Again(real_socket):
            def bind(self, address):
                super().bind((address[0], offers.pop() if offers else 0))

        self.patch(devnet.socket, "socket", Again)
        self.assertNotEqual(devnet.free_port(), given)
