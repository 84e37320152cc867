"""
Tests for viabtc.cli: Redis-style argument splitting, the line protocol over
StringTransport, and the loopback-only factory over a real connection.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from viabtc.cli import MAX_LINE, CommandLineFactory, cli_service, is_local_peer, split_args
from viabtc.devnet import free_port


class SplitArgsTests(TestCase):
    def test_plain_words(self):
        self.assertEqual(split_args("  addban 10  1.2.3.4\t5.6.7.8 "), ["addban", "10", "1.2.3.4", "5.6.7.8"])
        self.assertEqual(split_args(""), [])
        self.assertEqual(split_args("   "), [])

    def test_double_quotes_and_escapes(self):
        self.assertEqual(split_args('setcoinbase "hello world"'), ["setcoinbase", "hello world"])
        self.assertEqual(split_args(r'a "x\ny\t\"z\\" "\x41\x4a"'), ["a", 'x\ny\t"z\\', "AJ"])
        self.assertEqual(split_args('""'), [""])

    def test_single_quotes(self):
        self.assertEqual(split_args(r"alert 'it\'s \n raw'"), ["alert", "it's \\n raw"])

    def test_quote_inside_word_starts_quoting(self):
        self.assertEqual(split_args('ab"c d"'), ["abc d"])

    def test_errors(self):
        for line in ['"open', "'open", '"closed"x', "'closed'x", 'a "b']:
            self.assertRaises(ValueError, split_args, line)

    def test_round_trip_of_quoted_words(self):
        words = ["plain", "with space", 'quote"inside', "back\\slash", "tab\there", ""]
        line = " ".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in words)
        self.assertEqual(split_args(line), words)

    @settings(max_examples=1000, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("ab \t\"'\\xn41")) | st.characters(), max_size=40))
    def test_fuzz_only_value_error(self, line):
        try:
            words = split_args(line)
        except ValueError:
            return
        self.assertIsInstance(words, list)
        self.assertTrue(all(isinstance(w, str) for w in words))


def echo(args):
    """Reply with the arguments, one per line."""
    return "\n".join(args)


def broken(args):
    raise RuntimeError("disk on fire")


class ProtocolTests(TestCase):
    def setUp(self):
        self.later = defer.Deferred()
        self.commands = {
            "echo": echo,
            "broken": broken,
            "later": lambda args: self.later,
            "number": lambda args: 42,
        }
        self.protocol = CommandLineFactory(self.commands).buildProtocol(IPv4Address("TCP", "127.0.0.1", 4000))
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data):
        self.transport.clear()
        self.protocol.dataReceived(data)
        return self.transport.value()

    def test_help_lists_commands(self):
        self.assertEqual(self.send(b"help\n"),
                         b"commands:\n  help - list commands\n  broken\n"
                         b"  echo - Reply with the arguments, one per line.\n  later\n  number\n")

    def test_unknown_command(self):
        self.assertEqual(self.send(b"nosuch 1 2\n"), b"command not found\n")

    def test_quoted_args_and_crlf(self):
        self.assertEqual(self.send(b'echo "a b" c\r\n'), b"a b\nc\n")

    def test_empty_line_is_silent(self):
        self.assertEqual(self.send(b"\n  \n"), b"")

    def test_bad_quotes_answered(self):
        self.assertEqual(self.send(b'echo "open\n'), b"error: unbalanced double quotes\n")
        self.assertTrue(self.transport.connected)

    def test_not_utf8(self):
        self.assertEqual(self.send(b"echo \xff\n"), b"error: line is not UTF-8\n")

    def test_deferred_handler_and_order(self):
        self.assertEqual(self.send(b"later\necho after\n"), b"")
        self.later.callback("done")
        self.assertEqual(self.transport.value(), b"done\nafter\n")

    def test_failed_deferred(self):
        self.send(b"later\n")
        self.later.errback(ValueError("node down"))
        self.assertEqual(self.transport.value(), b"error: later: node down\n")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_handler_exception_becomes_error_line(self):
        self.assertEqual(self.send(b'broken\necho "still here"\n'), b"error: broken: disk on fire\nstill here\n")
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_non_string_reply_is_an_error(self):
        self.assertEqual(self.send(b"number\n"), b"error: number: handler returned int, not str\n")
        self.flushLoggedErrors(TypeError)

    def test_long_line_closes(self):
        self.assertEqual(self.send(b"echo " + b"x" * MAX_LINE + b"\n"),
                         f"error: line longer than {MAX_LINE} bytes\n".encode())
        self.assertTrue(self.transport.disconnecting)

    def test_line_at_limit_accepted(self):
        arg = b"x" * (MAX_LINE - len(b"echo "))
        self.assertEqual(self.send(b"echo " + arg + b"\n"), arg + b"\n")

    def test_no_write_after_disconnect(self):
        self.send(b"later\n")
        self.transport.loseConnection()
        self.transport.connected = False
        self.later.callback("late")
        self.assertEqual(self.transport.value(), b"")


class PeerPolicyTests(TestCase):
    def test_loopback_decision(self):
        factory = CommandLineFactory({})
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000)))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "127.8.9.1", 5000)))
        self.assertIsNotNone(factory.buildProtocol(IPv6Address("TCP", "::1", 5000)))
        self.assertIsNotNone(factory.buildProtocol(IPv6Address("TCP", "::ffff:127.0.0.1", 5000)))
        self.assertIsNotNone(factory.buildProtocol(UNIXAddress(b"/run/cli.sock")))
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.168.1.20", 5000)))
        self.assertIsNone(factory.buildProtocol(IPv6Address("TCP", "2001:db8::1", 5000)))
        self.assertIsNone(factory.buildProtocol(IPv6Address("TCP", "::ffff:10.0.0.1", 5000)))

    def test_allow_remote(self):
        factory = CommandLineFactory({}, allow_remote=True)
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.168.1.20", 5000)))

    def test_is_local_peer_rejects_garbage(self):
        self.assertFalse(is_local_peer(IPv4Address("TCP", "not-an-ip", 1)))
        self.assertFalse(is_local_peer(None))


class Client(Protocol):
    def __init__(self):
        self.data = b""
        self.replied = defer.Deferred()

    def dataReceived(self, data):
        self.data += data
        if self.data.endswith(b"\n") and not self.replied.called:
            self.replied.callback(self.data)


class LoopbackServiceTests(TestCase):
    @defer.inlineCallbacks
    def test_real_connection_from_loopback(self):
        port = free_port()
        service = cli_service(f"tcp@127.0.0.1:{port}", {"echo": echo}, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(
            _factory_for(Client))
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(b'echo "from loopback"\n')
        reply = yield client.replied
        self.assertEqual(reply, b"from loopback\n")


def _factory_for(protocol_class):
    from twisted.internet.protocol import Factory

    return Factory.forProtocol(protocol_class)
