"""``viabtc-cli`` against a real role CLI server (``viabtc.cli``) on loopback."""

import io
import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from viabtc.cli import CommandLineFactory, split_args
from viabtc.config import parse_address
from viabtc.tools import cli


class QuoteTests(TestCase):
    @given(st.lists(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF)), min_size=1, max_size=4))
    def test_round_trips_through_the_roles_splitter(self, words):
        self.assertEqual(split_args(cli.command_line(words[0], words[1:])), words)

    def test_plain_words_stay_plain(self):
        self.assertEqual(cli.command_line("addban", ["0", "1.2.3.4"]), "addban 0 1.2.3.4")
        self.assertEqual(cli.command_line("setcoinbase", ['say "hi"']), 'setcoinbase "say \\"hi\\""')


class ClientTests(TestCase):
    def setUp(self):
        def echo(args):
            """echo the arguments, one a line"""
            return "\n".join(args) + "\n"

        def fail(args):
            """always fails"""
            raise RuntimeError("broken")

        port = reactor.listenTCP(0, CommandLineFactory({"echo": echo, "fail": fail, "quiet": lambda a: ""}),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.address = f"tcp@127.0.0.1:{port.getHost().port}"

    def run_cli(self, *argv):
        out = io.StringIO()
        d = deferToThread(cli.main, ["--address", self.address, *argv], out)
        return d.addCallback(lambda code: (code, out.getvalue()))

    async def test_reply_text(self):
        code, text = await self.run_cli("gateway", "echo", "a b", 'c"d', "")
        self.assertEqual((code, text), (0, 'a b\nc"d\n\n'))

    async def test_json_and_failures(self):
        code, text = await self.run_cli("--json", "jobmaster", "echo", "x")
        reply = json.loads(text)
        self.assertEqual((code, reply["ok"], reply["lines"], reply["role"]), (0, True, ["x"], "jobmaster"))
        code, text = await self.run_cli("--json", "jobmaster", "nosuch")
        self.assertEqual((code, json.loads(text)["reply"]), (1, "command not found\n"))
        code, text = await self.run_cli("jobmaster", "fail")
        self.assertEqual((code, text), (1, "error: fail: broken\n"))
        self.flushLoggedErrors(RuntimeError)
        code, text = await self.run_cli("jobmaster", "quiet")
        self.assertEqual((code, text), (0, ""))
        code, text = await self.run_cli("jobmaster", "help")
        self.assertIn("  echo - echo the arguments, one a line", text)

    async def test_address_from_the_roles_config(self):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump({"cli": self.address}, f)
        address = cli.cli_address("gateway", config=path)
        self.assertEqual(address, parse_address(self.address, key="cli"))
        reply = await deferToThread(cli.run_command, address, "echo", ["y"])
        self.assertEqual(reply, "y\n")

    def test_errors_are_one_line(self):
        with self.assertRaises(cli.CLIError) as caught:
            cli.cli_address("gateway", config="/nonexistent/gateway.json")
        self.assertIn("/nonexistent/gateway.json", str(caught.exception))
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump({}, f)
        with self.assertRaises(cli.CLIError) as caught:
            cli.cli_address("gateway", config=path)
        self.assertIn("no cli address", str(caught.exception))
        out = io.StringIO()
        self.assertEqual(cli.main(["--json", "--address", "tcp@127.0.0.1:1", "gateway", "list"], out), 2)
        self.assertFalse(json.loads(out.getvalue())["ok"])
