"""
Tests for viabtc.tap: the shared --config option turns every configuration
problem into a one-line UsageError.
"""

import json

import attrs
from twisted.python import usage
from twisted.trial.unittest import TestCase

from viabtc.config import ConfigReader, ServerBlock, port, read_config_file
from viabtc.tap import RoleOptions


@attrs.frozen
class ExampleConfig:
    """A role config the way roles write them."""

    svr: ServerBlock
    stratum_port: int

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
        return str(self.assertRaises(usage.UsageError, Options().parseOptions, list(argv)))

    def test_loads_config(self):
        path = self.write({"svr": {"bind": "tcp@0.0.0.0:3333", "max_pkg_size": 10240}, "stratum_port": 3222})
        for argv in (["--config", path], ["-c", path]):
            options = Options()
            options.parseOptions(argv)
            self.assertEqual(options.config.stratum_port, 3222)
            self.assertEqual(options.config.svr.binds[0].port, 3333)

    def test_config_required(self):
        self.assertEqual(self.error(), "--config is required")

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

        options = HookOptions()
        options.parseOptions(["-c", "anything"])
        self.assertEqual(options.config, ("parsed", "anything"))
