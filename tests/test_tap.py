"""
Tests for viabtc.tap: the shared --config option turns every configuration
problem into one line naming the key (a ``StartupError``), which twistd and
``twist`` print alone before exiting non-zero; and the shared construction of
a role's service.
"""

import json
import os
import subprocess
import sys

import attrs
from twisted.application.service import MultiService
from twisted.internet import task
from twisted.python import usage
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigReader, ProcessBlock, ServerBlock, port, read_config_file
from viabtc.devnet import project_root
from viabtc.service import StartupError
from viabtc.tap import RoleOptions, make_role_service


@attrs.frozen
class ExampleConfig:
    """A role config the way roles write them."""

    svr: ServerBlock
    stratum_port: int
    process: ProcessBlock | None = None

    @classmethod
    def from_file(cls, path):
        return read_config_file(path, cls.from_reader)

    @classmethod
    def from_reader(cls, reader: ConfigReader):
        return cls(svr=ServerBlock.from_reader(reader.section("svr")),
                   stratum_port=reader.required("stratum_port", int, port))


class Options(RoleOptions):
    config_class = ExampleConfig


class RoleOptionsTests(TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def error(self, *argv):
        """The one line a bad configuration stops start-up with."""
        return str(self.assertRaises(StartupError, Options().parseOptions, list(argv)))

    def test_loads_config(self):
        path = self.write({"svr": {"bind": "tcp@0.0.0.0:3333", "max_pkg_size": 10240}, "stratum_port": 3222})
        for argv in (["--config", path], ["-c", path]):
            options = Options()
            options.parseOptions(argv)
            self.assertEqual(options.config.stratum_port, 3222)
            self.assertEqual(options.config.svr.binds[0].port, 3333)

    def test_config_required(self):
        """A missing option is a usage error: twistd shows its help with it."""
        e = self.assertRaises(usage.UsageError, Options().parseOptions, [])
        self.assertEqual(str(e), "--config is required")

    def test_startup_error_exits_non_zero(self):
        """Python prints a ``SystemExit``'s message alone and exits with status 1."""
        path = self.write({"svr": {"bind": "tcp@0.0.0.0:3333", "max_pkg_size": 10240}, "stratum_port": -1})
        e = self.assertRaises(SystemExit, Options().parseOptions, ["-c", path])
        self.assertIsInstance(e, StartupError)
        self.assertEqual(e.code, "config error: stratum_port: must be a port number (1-65535), got -1")

    def test_bad_key_is_one_line(self):
        path = self.write({"svr": {"bind": "tcp@0.0.0.0:3333", "max_pkg_size": 10240}, "stratum_port": True})
        message = self.error("--config", path)
        self.assertEqual(message, "config error: stratum_port: expected an integer, got a boolean (true)")

    def test_bad_address_names_key(self):
        path = self.write({"svr": {"bind": ["tcp@0.0.0.0:1", "tcp@0.0.0.0:x"], "max_pkg_size": 1}, "stratum_port": 1})
        self.assertEqual(self.error("-c", path), "config error: svr.bind[1]: bad port 'x' (expected 0-65535)")

    def test_missing_file(self):
        self.assertEqual(self.error("-c", "/nonexistent.json"), "config error: /nonexistent.json: file not found")

    def test_bad_json_is_one_line(self):
        path = self.write('{"svr": }')
        message = self.error("-c", path)
        self.assertTrue(message.startswith(f"config error: {path}: invalid JSON at line 1, column 9"), message)
        self.assertNotIn("\n", message)

    def test_parse_config_hook(self):
        class HookOptions(RoleOptions):
            def parse_config(self, path):
                return ("parsed", path)

            def parse_metrics(self, path, config):
                return ()

        options = HookOptions()
        options.parseOptions(["-c", "anything"])
        self.assertEqual(options.config, ("parsed", "anything"))


class MakeRoleServiceTests(TestCase):
    def test_builds_and_installs_role_logging(self):
        config = ExampleConfig(svr=ServerBlock((), 1), stratum_port=1)
        options = Options()
        options.config = config
        clock = task.Clock()
        built = []

        def build(config, reactor):
            built.append((config, reactor))
            return MultiService()

        service = make_role_service("example", options, build, clock)
        self.addCleanup(service.role_logging.remove)
        self.assertEqual(built, [(config, clock)])
        self.assertEqual(service.role_logging.role, "example")


BAD_CONFIG = {"svr": {"bind": "tcp@127.0.0.1:1"}, "redis": {}}
BAD_LINE = "config error: svr.max_pkg_size: required key is missing"


class CommandLineTests(TestCase):
    """The real twistd and twist processes, given a bad configuration."""

    def run_role(self, *argv):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            json.dump(BAD_CONFIG, f)
        env = dict(os.environ, PYTHONPATH=project_root())
        return subprocess.run([*argv, "--config", path], cwd=project_root(), env=env,
                              capture_output=True, text=True, timeout=60)

    def assertOneLine(self, result):
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(result.stderr, BAD_LINE + "\n")
        self.assertEqual(result.stdout, "")

    def test_twistd(self):
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        self.assertOneLine(self.run_role(twistd, "-n", "viabtc-alertcenter"))

    def test_twist(self):
        """``python -m twisted`` runs ``twist`` (which has no ``-n``: it never daemonizes)."""
        self.assertOneLine(self.run_role(sys.executable, "-m", "twisted", "viabtc-alertcenter"))
