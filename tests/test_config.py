"""
Tests for viabtc.config: key-naming errors, unused-key warnings, the address
forms, the common blocks, and every sample configuration of the seed.
"""

import glob
import json
import os
import resource
import shutil
import socket
import stat
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXClientEndpoint,
    UNIXServerEndpoint,
    quoteStringArgument,
)
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import TestCase

from viabtc.config import (
    SEED_IGNORED,
    Address,
    AlertBlock,
    CoinRPCBlock,
    ConfigError,
    ConfigReader,
    LogBlock,
    ProcessBlock,
    RedisBlock,
    RPCClientBlock,
    SecretBlock,
    ServerBlock,
    cli_address,
    hex_bytes,
    in_range,
    link_block,
    load_json,
    non_negative,
    one_of,
    optional_block,
    parse_address,
    port,
    positive,
    read_config_beside,
    read_config_file,
    ssl_client_problem,
)

from tests.tools.test_tls import make_ca, pem

SEED_CONFIGS = os.path.join(os.path.dirname(__file__), "data", "seed-configs")


class RecordingLog:
    """Collects ``warn`` calls as (format, kwargs); only what warn_unused uses."""

    def __init__(self):
        self.warnings = []
        self.infos = []

    def warn(self, format, **kwargs):
        self.warnings.append((format, kwargs))

    def info(self, format, **kwargs):
        self.infos.append((format, kwargs))


class ConfigErrorTests(TestCase):
    def test_str_is_key_and_message(self):
        e = ConfigError("svr.bind[1]", "bad port")
        self.assertEqual((e.key, e.message, str(e)), ("svr.bind[1]", "bad port", "svr.bind[1]: bad port"))


class LoadJSONTests(TestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_missing_file(self):
        e = self.assertRaises(ConfigError, load_json, "/nonexistent/x.json")
        self.assertEqual(str(e), "/nonexistent/x.json: file not found")

    def test_bad_json_gives_line_and_column(self):
        path = self.write('{\n  "a": 1,\n  "b" 2\n}\n')
        e = self.assertRaises(ConfigError, load_json, path)
        self.assertEqual(e.key, path)
        self.assertIn("line 3, column 7", e.message)

    def test_top_level_must_be_object(self):
        e = self.assertRaises(ConfigError, load_json, self.write("[1]"))
        self.assertIn("must be an object", e.message)

    def test_nan_rejected(self):
        e = self.assertRaises(ConfigError, load_json, self.write('{"a": NaN}'))
        self.assertIn("NaN", e.message)

    def test_directory_unreadable(self):
        path = self.mktemp()
        os.mkdir(path)
        e = self.assertRaises(ConfigError, load_json, path)
        self.assertIn("cannot read", e.message)

    def test_loads_object(self):
        self.assertEqual(load_json(self.write('{"a": [1, 2.5]}')), {"a": [1, 2.5]})


class ConfigReaderTests(TestCase):
    def test_required_missing_names_dotted_key(self):
        r = ConfigReader({"svr": {}})
        e = self.assertRaises(ConfigError, r.section("svr").required, "max_pkg_size", int)
        self.assertEqual(str(e), "svr.max_pkg_size: required key is missing")

    def test_null_is_missing(self):
        r = ConfigReader({"a": None})
        self.assertRaises(ConfigError, r.required, "a", int)
        self.assertEqual(r.optional("a", int, 5), 5)

    def test_wrong_type(self):
        e = self.assertRaises(ConfigError, ConfigReader({"port": "6379"}).required, "port", int)
        self.assertEqual(str(e), 'port: expected an integer, got a string ("6379")')

    def test_bool_is_not_int(self):
        e = self.assertRaises(ConfigError, ConfigReader({"n": True}).required, "n", int)
        self.assertEqual(str(e), "n: expected an integer, got a boolean (true)")
        self.assertRaises(ConfigError, ConfigReader({"n": False}).required, "n", float)

    def test_float_accepts_int(self):
        value = ConfigReader({"x": 3}).required("x", float)
        self.assertEqual((value, type(value)), (3.0, float))

    def test_int_rejects_float(self):
        self.assertRaises(ConfigError, ConfigReader({"x": 3.0}).required, "x", int)

    def test_kinds(self):
        r = ConfigReader({"s": "a", "b": False, "l": [1], "d": {"k": 1}})
        self.assertEqual(
            (r.required("s", str), r.required("b", bool), r.required("l", list), r.required("d", dict)),
            ("a", False, [1], {"k": 1}),
        )

    def test_optional_default(self):
        self.assertEqual(ConfigReader({}).optional("x", int, 7, positive), 7)

    def test_validators(self):
        r = ConfigReader({"a": 0, "b": -1, "p": 70000, "c": "x", "r": 11, "h": "f9beb4d9"})
        self.assertEqual(str(self.assertRaises(ConfigError, r.required, "a", int, positive)),
                         "a: must be greater than 0, got 0")
        self.assertRaises(ConfigError, r.required, "b", int, non_negative)
        self.assertEqual(r.required("a", int, non_negative), 0)
        self.assertIn("port number", str(self.assertRaises(ConfigError, r.required, "p", int, port)))
        self.assertIn("one of 'y'", str(self.assertRaises(ConfigError, r.required, "c", str, one_of("y"))))
        self.assertRaises(ConfigError, r.required, "r", int, in_range(1, 10))
        self.assertEqual(r.required("h", str, hex_bytes(4)), bytes.fromhex("f9beb4d9"))
        self.assertRaises(ConfigError, r.required, "h", str, hex_bytes(3))

    def test_custom_validator_value_error_names_key(self):
        def even(v):
            if v % 2:
                raise ValueError("must be even")
            return v

        e = self.assertRaises(ConfigError, ConfigReader({"s": {"n": 3}}).section("s").required, "n", int, even)
        self.assertEqual(str(e), "s.n: must be even")

    def test_section(self):
        r = ConfigReader({"a": {"b": {"c": 1}}, "x": 1})
        self.assertEqual(r.section("a").section("b").required("c", int), 1)
        self.assertIsNone(r.section("missing", required=False))
        self.assertEqual(str(self.assertRaises(ConfigError, r.section, "missing")),
                         "missing: required section is missing")
        self.assertEqual(str(self.assertRaises(ConfigError, r.section, "x")), "x: expected an object, got an integer")

    def test_list_names_element(self):
        r = ConfigReader({"l": [1, 2, "x"], "s": 5, "e": []})
        e = self.assertRaises(ConfigError, r.list, "l", int)
        self.assertEqual(e.key, "l[2]")
        self.assertEqual(r.list("s", int, single=True), (5,))
        self.assertRaises(ConfigError, r.list, "s", int)
        self.assertEqual(r.list("absent", int, required=False), ())
        self.assertRaises(ConfigError, r.list, "e", int, min_length=1)

    def test_sections(self):
        r = ConfigReader({"coins": [{"name": "A"}, {"name": 1}], "one": {"name": "B"}, "bad": [1]})
        readers = r.sections("coins")
        self.assertEqual(readers[0].required("name", str), "A")
        self.assertEqual(self.assertRaises(ConfigError, readers[1].required, "name", str).key, "coins[1].name")
        self.assertEqual(r.sections("one", single=True)[0].required("name", str), "B")
        self.assertEqual(self.assertRaises(ConfigError, r.sections, "bad").key, "bad[0]")
        self.assertEqual(r.sections("absent", required=False), ())

    def test_address_errors_name_key(self):
        r = ConfigReader({"svr": {"bind": ["tcp@0.0.0.0:3333", "tcp@0.0.0.0:99999"]}, "cli": "tcp@nohost:1"})
        e = self.assertRaises(ConfigError, r.section("svr").addresses, "bind")
        self.assertEqual(e.key, "svr.bind[1]")
        self.assertIn("bad port", e.message)
        self.assertEqual(self.assertRaises(ConfigError, r.address, "cli").key, "cli")

    def test_address_side_checks(self):
        r = ConfigReader({"a": "tcp@127.0.0.1:0", "b": "ssl:443", "c": "ssl:host=h:port=1", "d": "nosuch:1"})
        self.assertEqual(r.address("a", side="server").port, 0)
        self.assertIn("port other than 0", self.assertRaises(ConfigError, r.address, "a", side="client").message)
        self.assertEqual(self.assertRaises(ConfigError, r.address, "b", side="server").key, "b")
        self.assertIn("client description", self.assertRaises(ConfigError, r.address, "c", side="server").message)
        self.assertIn("nosuch", self.assertRaises(ConfigError, r.address, "d", side="server").message)

    def test_ssl_server_with_missing_files_fails_at_config_time(self):
        r = ConfigReader({"svr": "ssl:3334:privateKey=/nonexistent/k.pem:certKey=/nonexistent/c.pem"})
        e = self.assertRaises(ConfigError, r.address, "svr", side="server")
        self.assertEqual(e.key, "svr")

    def test_unused_and_warnings(self):
        r = ConfigReader({
            "svr": {"bind": "tcp@0.0.0.0:1", "max_pkg_size": 1, "read_mem": 5, "bnd": 1},
            "http_svr": {"bind": "x"},
            "coins": [{"name": "a", "extra": 1}],
            "typo": 1,
        })
        ServerBlock.from_reader(r.section("svr"))
        r.sections("coins")[0].required("name", str)
        self.assertEqual(sorted(r.unused()), ["coins[0].extra", "http_svr", "svr.bnd", "svr.read_mem", "typo"])
        log = RecordingLog()
        unused = r.warn_unused(log, ignored=SEED_IGNORED | {"coins.extra"})
        self.assertEqual(len(unused), 5)
        kinds = {kw["key"]: "ignores" in fmt for fmt, kw in log.warnings}
        self.assertEqual(kinds, {"svr.read_mem": True, "coins[0].extra": True,
                                 "svr.bnd": False, "typo": False})
        # An http_svr the role's config does not read is where viabtc.tap serves /metrics.
        self.assertEqual([(fmt, kw["key"]) for fmt, kw in log.infos],
                         [("config: http_svr serves /metrics only (this role has no other HTTP interface)",
                           "http_svr")])

    def test_http_svr_unused_beside_metrics(self):
        r = ConfigReader({"http_svr": {"bind": "tcp@127.0.0.1:1"}, "metrics": "tcp@127.0.0.1:2"})
        log = RecordingLog()
        r.warn_unused(log)
        self.assertEqual(log.infos, [])
        self.assertEqual([kw["key"] for _, kw in log.warnings], ["http_svr"])
        self.assertIn("not used", log.warnings[0][0])

    def test_read_config_file_warns_once_per_unused_key(self):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump({"n": 1, "typo": 2}, f)
        log = RecordingLog()
        result = read_config_file(path, lambda r: r.required("n", int), log=log)
        self.assertEqual(result, 1)
        self.assertEqual([kw["key"] for _, kw in log.warnings], ["typo"])

    def test_read_config_beside_gives_the_file_directory(self):
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "role.json")
        with open(path, "w") as f:
            json.dump({"queue": "q", "typo": 2}, f)
        log = RecordingLog()
        result = read_config_beside(path, lambda r, base_dir: os.path.join(base_dir, r.required("queue", str)),
                                    log=log)
        self.assertEqual(result, os.path.join(os.path.abspath(directory), "q"))
        self.assertEqual([kw["key"] for _, kw in log.warnings], ["typo"])


class ParseAddressTests(TestCase):
    """The conversion table of every accepted form."""

    def check(self, text, transport, host=None, port_=None, path=None, server=None, client=None, **kw):
        a = parse_address(text, **kw)
        self.assertEqual((a.transport, a.host, a.port, a.path), (transport, host, port_, path), text)
        if server is not None:
            self.assertEqual(a.server_description(), server, text)
        if client is not None:
            self.assertEqual(a.client_description(), client, text)
        return a

    def test_seed_forms(self):
        self.check("tcp@0.0.0.0:3333", "tcp", "0.0.0.0", 3333,
                   server="tcp:3333:interface=0.0.0.0", client="tcp:host=0.0.0.0:port=3333")
        self.check("TCP@127.0.0.1:6000", "tcp", "127.0.0.1", 6000, client="tcp:host=127.0.0.1:port=6000")
        self.check("udp@127.0.0.1:3000", "udp", "127.0.0.1", 3000)
        self.check("stream@/tmp/gw.sock", "unix", path="/tmp/gw.sock",
                   server="unix:/tmp/gw.sock:mode=660:lockfile=1", client="unix:path=/tmp/gw.sock")
        self.check("dgram@/tmp/gw.dgram", "unixgram", path="/tmp/gw.dgram")

    def test_ipv6(self):
        self.check("tcp@[::1]:3333", "tcp", "::1", 3333,
                   server=r"tcp6:3333:interface=\:\:1", client=r"tcp:host=\:\:1:port=3333")
        self.check("tcp@::1:3333", "tcp", "::1", 3333)
        self.check("udp@[2001:db8::1]:5", "udp", "2001:db8::1", 5)

    def test_plain_inetv4(self):
        self.check("192.168.1.1:10000", "tcp", "192.168.1.1", 10000)
        self.check("192.168.1.1 10000", "udp", "192.168.1.1", 10000, default_transport="udp")

    def test_twisted_descriptions(self):
        self.check("tcp:3333:interface=0.0.0.0", "tcp", "0.0.0.0", 3333, server="tcp:3333:interface=0.0.0.0",
                   client="tcp:host=0.0.0.0:port=3333")
        self.check("tcp:3333", "tcp", "0.0.0.0", 3333, server="tcp:3333")
        self.check("tcp:port=3333", "tcp", "0.0.0.0", 3333)
        self.check("tcp6:3333", "tcp", "::", 3333)
        self.check("tcp:host=jobmaster.example:port=6000", "tcp", "jobmaster.example", 6000,
                   client="tcp:host=jobmaster.example:port=6000")
        a = self.check("ssl:3334:privateKey=k.pem:certKey=c.pem", "ssl", "0.0.0.0", 3334,
                       server="ssl:3334:privateKey=k.pem:certKey=c.pem")
        self.assertRaises(ValueError, a.client_description)
        self.check("ssl:host=pool:port=3334", "ssl", "pool", 3334, client="ssl:host=pool:port=3334")
        self.check("unix:/run/x.sock", "unix", path="/run/x.sock", server="unix:/run/x.sock",
                   client="unix:/run/x.sock")
        self.check("unix:path=/run/x.sock", "unix", path="/run/x.sock", client="unix:path=/run/x.sock",
                   server="unix:/run/x.sock:mode=660:lockfile=1")
        self.check("udp:3000:interface=127.0.0.1", "udp", "127.0.0.1", 3000)
        self.check("udp:host=127.0.0.1:port=3000", "udp", "127.0.0.1", 3000)
        e = self.check("systemd:domain=INET:index=0", "endpoint", server="systemd:domain=INET:index=0")
        self.assertEqual(e.description, "systemd:domain=INET:index=0")

    def test_bad_forms_name_the_key(self):
        for text, words in [
            ("", "empty"),
            ("tcp@", "not of the form"),
            ("tcp@1.2.3.4", "not of the form"),
            ("tcp@1.2.3.4:", "bad port"),
            ("tcp@1.2.3.4:65536", "bad port"),
            ("tcp@1.2.3.4:-1", "bad port"),
            ("tcp@example.com:80", "not an IP address"),
            ("stream@", "no socket path"),
            ("seqpacket@/x", "not supported"),
            ("http@1.2.3.4:1", "unknown protocol"),
            ("tcp:interface=0.0.0.0", "names no port"),
            ("tcp:host=h", "no port"),
            ("tcp:abc", "bad port"),
            ("ssl:443", "privateKey"),
            ("unix:", "no socket path"),
            ("hello", "not an address"),
        ]:
            e = self.assertRaises(ConfigError, parse_address, text, key="svr.bind[1]")
            self.assertEqual(e.key, "svr.bind[1]")
            self.assertIn(words, e.message, text)

    def test_not_a_string(self):
        self.assertRaises(ConfigError, parse_address, 3333)

    def test_datagram_and_sockaddr(self):
        udp = parse_address("udp@127.0.0.1:3000")
        self.assertTrue(udp.is_datagram)
        self.assertEqual(udp.sockaddr, ("127.0.0.1", 3000))
        self.assertEqual(parse_address("dgram@/tmp/x").sockaddr, "/tmp/x")
        self.assertFalse(parse_address("tcp:1").is_datagram)
        self.assertRaises(ValueError, udp.server_description)
        self.assertRaises(ValueError, udp.client_description)
        self.assertEqual(str(udp), "udp@127.0.0.1:3000")

    def test_endpoints(self):
        reactor = MemoryReactor()
        self.assertIsInstance(parse_address("tcp@0.0.0.0:3333").server_endpoint(reactor), TCP4ServerEndpoint)
        self.assertIsInstance(parse_address("tcp@[::1]:3333").server_endpoint(reactor), TCP6ServerEndpoint)
        self.assertIsInstance(parse_address("tcp@10.0.0.1:6000").client_endpoint(reactor), TCP4ClientEndpoint)
        self.assertIsInstance(parse_address("stream@/tmp/a").server_endpoint(reactor), UNIXServerEndpoint)
        self.assertIsInstance(parse_address("stream@/tmp/a").client_endpoint(reactor), UNIXClientEndpoint)

    def test_server_endpoint_listens_where_configured(self):
        reactor = MemoryReactor()
        parse_address("tcp@127.0.0.1:3333").server_endpoint(reactor).listen(DatagramProtocol)
        port_, _, _, interface = reactor.tcpServers[0]
        self.assertEqual((port_, interface), (3333, "127.0.0.1"))

    @defer.inlineCallbacks
    def test_unix_server_replaces_stale_socket(self):
        """A socket left by a crashed instance (stale lock) is replaced."""
        from twisted.internet import reactor
        from twisted.internet.protocol import Factory

        # A short directory: unix socket paths are limited to 108 bytes.
        directory = tempfile.mkdtemp(prefix="viabtc-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "cli.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()  # leaves the socket file behind, as a crashed process does
        os.symlink("2147483646", path + ".lock")  # its lock, held by a dead pid
        listening = yield parse_address(f"stream@{path}").server_endpoint(reactor).listen(Factory())
        self.addCleanup(listening.stopListening)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)

    def test_ssl_server_endpoint(self):
        key, cert = _self_signed(self.mktemp())
        a = parse_address(f"ssl:3334:privateKey={key}:certKey={cert}")
        self.assertIsInstance(a.server_endpoint(MemoryReactor()), SSL4ServerEndpoint)
        self.assertEqual(ConfigReader({"s": a.text}).address("s", side="server"), a)

    def test_listen_udp(self):
        from twisted.internet import reactor

        listening = parse_address("udp@127.0.0.1:0").listen_udp(reactor, DatagramProtocol())
        self.addCleanup(listening.stopListening)
        self.assertEqual(listening.getHost().host, "127.0.0.1")
        self.assertRaises(ValueError, parse_address("tcp@127.0.0.1:3000").listen_udp, reactor, DatagramProtocol())

    @settings(max_examples=500, deadline=None)
    @given(st.text())
    def test_fuzz_only_config_error(self, text):
        try:
            a = parse_address(text, key="k")
        except ConfigError as e:
            self.assertEqual(e.key, "k")
            return
        self.assertIsInstance(a, Address)

    @settings(max_examples=500, deadline=None)
    @given(st.from_regex(r"(tcp|udp|stream|dgram|ssl|unix|tcp6)[@:][\[\]0-9a-f.:=a-z/\\ -]{0,30}", fullmatch=True))
    def test_fuzz_address_like(self, text):
        try:
            a = parse_address(text, key="k")
        except ConfigError:
            return
        for describe in (a.server_description, a.client_description):
            try:
                describe()
            except ValueError:
                pass


def _self_signed(base):
    """A throwaway key and self-signed certificate in PEM files."""
    from OpenSSL import crypto

    key = crypto.PKey()
    key.generate_key(crypto.TYPE_RSA, 2048)
    cert = crypto.X509()
    cert.get_subject().CN = "localhost"
    cert.set_serial_number(1)
    cert.gmtime_adj_notBefore(0)
    cert.gmtime_adj_notAfter(3600)
    cert.set_issuer(cert.get_subject())
    cert.set_pubkey(key)
    cert.sign(key, "sha256")
    os.mkdir(base)
    key_path, cert_path = os.path.join(base, "k.pem"), os.path.join(base, "c.pem")
    with open(key_path, "wb") as f:
        f.write(crypto.dump_privatekey(crypto.FILETYPE_PEM, key))
    with open(cert_path, "wb") as f:
        f.write(crypto.dump_certificate(crypto.FILETYPE_PEM, cert))
    return key_path, cert_path


class SSLClientTests(TestCase):
    """
    A client ``ssl:`` address (a module link) must verify its server: a CA
    (``caCertsDir=`` or ``caCertFile=``) and a ``hostname=``.  The links
    themselves are tested over real TLS in ``tests.security.test_link_tls``.
    """

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.dir, "ca"))
        os.makedirs(os.path.join(self.dir, "empty"))
        self.ca, self.other = make_ca(), make_ca("another CA")
        self.write("ca/pool.pem", pem(self.ca))
        self.write("ca.pem", pem(self.ca))
        self.write("bundle.pem", pem(self.other) + b"\n" + pem(self.ca))
        self.write("not-a-cert.pem", b"hello\n")
        self.write("empty/readme.txt", b"no certificates here\n")

    def write(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def path(self, name):
        return os.path.join(self.dir, name)

    def client(self, text, key="job.addr"):
        return ConfigReader({"addr": text}, key.rsplit(".", 1)[0]).address("addr", side="client")

    def refused(self, text, *words):
        e = self.assertRaises(ConfigError, self.client, text)
        self.assertEqual(e.key, "job.addr")
        for word in words:
            self.assertIn(word, e.message, text)
        return e

    def test_unverified_forms_are_refused_naming_what_to_add(self):
        self.refused("ssl:host=pool:port=6000", "hostname=", "caCertsDir=", "man in the middle")
        e = self.refused(f"ssl:host=pool:port=6000:caCertsDir={self.path('ca')}", "add hostname=")
        self.assertNotIn("caCertFile", e.message)
        self.refused(f"ssl:host=pool:port=6000:caCertsDir={self.path('ca')}:hostname=", "add hostname=")
        e = self.refused("ssl:host=pool:port=6000:hostname=pool", "add caCertsDir=", "caCertFile=")
        self.assertNotIn("add hostname", e.message)
        self.refused("ssl:host=pool:port=6000:hostname=pool:caCertsDir=", "add caCertsDir=")
        self.refused(f"ssl:host=pool:port=6000:hostname=pool:caCertsDir={self.path('ca')}"
                     f":caCertFile={self.path('ca.pem')}", "keep one")
        self.refused(f"ssl:host=pool:port=6000:hostname=pool:caCertFile={self.path('ca.pem')}"
                     f":certKey={self.path('ca.pem')}", "caCertsDir=")

    def test_unreadable_trust_is_refused_at_load(self):
        for text, words in [
            (f"ssl:host=pool:port=6000:hostname=pool:caCertsDir={self.path('missing')}", "missing"),
            (f"ssl:host=pool:port=6000:hostname=pool:caCertsDir={self.path('empty')}", "holds no"),
            (f"ssl:host=pool:port=6000:hostname=pool:caCertFile={self.path('missing.pem')}", "missing.pem"),
            (f"ssl:host=pool:port=6000:hostname=pool:caCertFile={self.path('not-a-cert.pem')}", "holds no"),
        ]:
            self.refused(text, words)

    def test_verifying_forms_are_accepted(self):
        directory = self.client(f"ssl:host=pool:port=6000:caCertsDir={self.path('ca')}:hostname=pool")
        self.assertEqual((directory.transport, directory.host, directory.port), ("ssl", "pool", 6000))
        self.assertIsInstance(directory.client_endpoint(MemoryReactor()), SSL4ClientEndpoint)
        for name in ("ca.pem", "bundle.pem"):
            single = self.client(f"ssl:host=pool:port=6000:caCertFile={self.path(name)}:hostname=pool")
            self.assertEqual((single.transport, single.host, single.port), ("ssl", "pool", 6000))

    def test_ca_file_form_connects_where_configured(self):
        """The TLS-wrapped TCP endpoint keeps host, port and timeout; the TLS keys are not passed on."""
        reactor = MemoryReactor()
        ca_file = quoteStringArgument(self.path("ca.pem"))
        address = self.client(f"ssl:host=pool.example:port=6000:caCertFile={ca_file}:hostname=pool:timeout=7")
        address.client_endpoint(reactor).connect(Factory.forProtocol(Protocol))
        host, port_, _, timeout, _ = reactor.tcpClients[0]
        self.assertEqual((host, port_, timeout), ("pool.example", 6000, 7))

    def test_endpoint_of_an_unverified_address_is_never_built(self):
        """``parse_address`` alone does not check the side; building the endpoint does."""
        a = parse_address("ssl:host=pool:port=6000")
        e = self.assertRaises(ValueError, a.client_endpoint, MemoryReactor())
        self.assertIn("hostname=", str(e))

    def test_problem_phrases(self):
        self.assertIsNone(ssl_client_problem("ssl:host=h:port=1:caCertsDir=d:hostname=h"))
        self.assertIsNone(ssl_client_problem("ssl:host=h:port=1:caCertFile=f:hostname=h"))
        self.assertIn("hostname=", ssl_client_problem("ssl:host=h:port=1:caCertsDir=d"))

    def test_server_side_ssl_is_unaffected(self):
        key, cert = _self_signed(self.mktemp())
        a = ConfigReader({"bind": f"ssl:3334:privateKey={key}:certKey={cert}"}).address("bind", side="server")
        self.assertEqual(a.transport, "ssl")

    def test_link_blocks_refuse_unverified_addresses(self):
        data = {"name": "w", "addr": ["tcp@127.0.0.1:3000", "ssl:host=10.0.0.2:port=3000"], "max_pkg_size": 1024}
        for build in (lambda: RPCClientBlock.from_reader(ConfigReader(data, "writer")),
                      lambda: link_block(ConfigReader({"writer": data}), "writer")):
            e = self.assertRaises(ConfigError, build)
            self.assertEqual(e.key, "writer.addr[1]")
            self.assertIn("hostname=", e.message)


class BlockTests(TestCase):
    def test_server_block(self):
        r = ConfigReader({"bind": ["tcp@0.0.0.0:6000", "udp@0.0.0.0:6000"], "max_pkg_size": 10240, "buf_limit": 100})
        block = ServerBlock.from_reader(r)
        self.assertEqual(block.max_pkg_size, 10240)
        self.assertEqual(block.buf_limit, 100)
        self.assertEqual([a.transport for a in block.stream_binds], ["tcp"])
        self.assertEqual([a.transport for a in block.datagram_binds], ["udp"])
        single = ServerBlock.from_reader(ConfigReader({"bind": "tcp@0.0.0.0:1", "max_pkg_size": 1}))
        self.assertEqual(len(single.binds), 1)
        self.assertIsNone(single.buf_limit)

    def test_server_block_errors(self):
        e = self.assertRaises(ConfigError, ServerBlock.from_reader, ConfigReader({"bind": [], "max_pkg_size": 1}, "svr"))
        self.assertEqual(e.key, "svr.bind")
        e = self.assertRaises(ConfigError, ServerBlock.from_reader, ConfigReader({"bind": "tcp@0.0.0.0:1"}, "svr"))
        self.assertEqual(str(e), "svr.max_pkg_size: required key is missing")
        e = self.assertRaises(ConfigError, ServerBlock.from_reader,
                              ConfigReader({"bind": "tcp@0.0.0.0:1", "max_pkg_size": True}, "svr"))
        self.assertEqual(e.key, "svr.max_pkg_size")

    def test_rpc_client_block(self):
        block = RPCClientBlock.from_reader(ConfigReader(
            {"name": "jobmaster", "addr": ["tcp@127.0.0.1:6000", "tcp@127.0.0.2:6000"], "max_pkg_size": 10240}))
        self.assertEqual([a.host for a in block.addrs], ["127.0.0.1", "127.0.0.2"])
        self.assertEqual((block.reconnect_timeout, block.heartbeat_timeout), (1.0, 3.0))
        clamped = RPCClientBlock.from_reader(ConfigReader(
            {"name": "w", "addr": "udp@127.0.0.1:3000", "max_pkg_size": 1, "heartbeat_timeout": 1,
             "reconnect_timeout": 2.5}))
        self.assertEqual((clamped.heartbeat_timeout, clamped.reconnect_timeout), (2.0, 2.5))
        e = self.assertRaises(ConfigError, RPCClientBlock.from_reader,
                              ConfigReader({"name": "j", "addr": "tcp@127.0.0.1:0", "max_pkg_size": 1}, "job"))
        self.assertEqual(e.key, "job.addr")

    def test_link_block(self):
        def link(addr, required=True):
            reader = ConfigReader({} if addr is None else
                                  {"writer": {"name": "w", "addr": addr, "max_pkg_size": 65536}})
            return link_block(reader, "writer", required=required)

        self.assertEqual([a.port for a in link(["tcp@127.0.0.1:1", "tcp@127.0.0.1:2"]).addrs], [1, 2])
        self.assertTrue(link("udp@127.0.0.1:3").addrs[0].is_datagram)
        self.assertIsNone(link(None, required=False))
        self.assertEqual(self.assertRaises(ConfigError, link, None).key, "writer")
        for addr in (["udp@127.0.0.1:1", "udp@127.0.0.1:2"], ["tcp@127.0.0.1:1", "udp@127.0.0.1:2"],
                     "dgram@/tmp/writer.sock"):
            e = self.assertRaises(ConfigError, link, addr)
            self.assertEqual((e.key, e.message), ("writer.addr", "a UDP link takes exactly one udp@ address"))

    def test_optional_block(self):
        reader = ConfigReader({"alert": {"host": "gw-1"}})
        self.assertEqual(optional_block(reader, "alert", AlertBlock).host, "gw-1")
        self.assertIsNone(optional_block(reader, "log", LogBlock))
        e = self.assertRaises(ConfigError, optional_block, ConfigReader({"log": 1}), "log", LogBlock)
        self.assertEqual(e.key, "log")

    def test_coin_block_inline_and_addr(self):
        inline = CoinRPCBlock.from_reader(ConfigReader(
            {"name": "BTC", "host": "127.0.0.1", "port": 8332, "user": "u", "pass": "p"}))
        self.assertEqual(inline.nodes[0].password, "p")
        self.assertNotIn("'p'", repr(inline))
        one = CoinRPCBlock.from_reader(ConfigReader(
            {"name": "BTC", "addr": {"host": "h", "port": 1, "user": "u", "pass": "p"}}))
        self.assertEqual(one.nodes[0].host, "h")
        many = CoinRPCBlock.from_reader(ConfigReader({"name": "BTC", "addr": [
            {"host": "a", "port": 1, "user": "u", "pass": "p"},
            {"host": "b", "port": 2, "cookie_file": "/node/.cookie", "url": "http://b:2/wallet/w"}]}))
        self.assertEqual([n.host for n in many.nodes], ["a", "b"])
        self.assertEqual((many.nodes[1].cookie_file, many.nodes[1].user), ("/node/.cookie", None))

    def test_coin_block_errors(self):
        e = self.assertRaises(ConfigError, CoinRPCBlock.from_reader, ConfigReader(
            {"name": "BTC", "addr": [{"host": "a", "port": 1, "user": "u"}]}, "main_coin"))
        self.assertEqual(str(e), "main_coin.addr[0].pass: required key is missing")
        e = self.assertRaises(ConfigError, CoinRPCBlock.from_reader, ConfigReader(
            {"name": "BTC", "host": "a", "port": 0, "user": "u", "pass": "p"}, "coin"))
        self.assertEqual(e.key, "coin.port")
        e = self.assertRaises(ConfigError, CoinRPCBlock.from_reader, ConfigReader(
            {"name": "BTC", "host": "a", "addr": []}, "coin"))
        self.assertEqual(e.key, "coin.addr")
        e = self.assertRaises(ConfigError, CoinRPCBlock.from_reader, ConfigReader(
            {"name": "BTC", "addr": [{"host": "a", "port": 1, "user": "u", "pass": "p", "url": "ftp://x"}]}, "c"))
        self.assertEqual(e.key, "c.addr[0].url")

    def test_alert_block(self):
        block = AlertBlock.from_reader(ConfigReader({"host": "pool-1", "addr": "192.168.1.1:10000"}))
        self.assertEqual((block.addr.transport, block.addr.sockaddr), ("udp", ("192.168.1.1", 10000)))
        self.assertIsNone(AlertBlock.from_reader(ConfigReader({"host": "h"})).addr)
        e = self.assertRaises(ConfigError, AlertBlock.from_reader, ConfigReader({"host": "h", "addr": "tcp@1.2.3.4:1"}, "alert"))
        self.assertEqual(e.key, "alert.addr")

    def test_log_block(self):
        block = LogBlock.from_reader(ConfigReader({"path": "/var/log/x", "flag": "fatal, error,warn"}))
        self.assertEqual(block.flags, frozenset({"fatal", "error", "warn"}))
        self.assertEqual(LogBlock.from_reader(ConfigReader({})).flags, frozenset({"fatal", "error", "warn", "info"}))
        e = self.assertRaises(ConfigError, LogBlock.from_reader, ConfigReader({"flag": "fatal,verbose"}, "log"))
        self.assertEqual(e.key, "log.flag")
        self.assertIn("verbose", e.message)

    def test_process_block_apply(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        want = hard if hard != resource.RLIM_INFINITY else soft
        got = ProcessBlock(file_limit=want).apply()
        self.assertEqual(got, {"file_limit": want})
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE)[0], want)

    def test_process_block_apply_beyond_what_is_allowed_caps(self):
        # 2**40 descriptors exceeds the kernel's nr_open, so even root cannot
        # have it; the soft limit ends at the hard limit instead.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        self.assertEqual(ProcessBlock(file_limit=2**40).apply(), {"file_limit": hard})

    def test_process_block_zero_untouched(self):
        self.assertEqual(ProcessBlock.from_reader(ConfigReader({})).apply(), {})

    def test_redis_block(self):
        block = RedisBlock.from_reader(ConfigReader({"host": "10.0.0.5", "port": 6380, "auth": "s3cret", "db": 2}))
        self.assertEqual((block.host, block.port, block.password, block.db), ("10.0.0.5", 6380, "s3cret", 2))
        self.assertNotIn("s3cret", repr(block))
        self.assertEqual(RedisBlock.from_reader(ConfigReader({})), RedisBlock())

    def test_redis_block_sentinel_form(self):
        r = ConfigReader({"name": "mymaster", "addr": ["127.0.0.1:26381", "127.0.0.1:26382"]}, "redis")
        block = RedisBlock.from_reader(r)
        self.assertEqual(block.sentinels, (("127.0.0.1", 26381), ("127.0.0.1", 26382)))
        self.assertEqual((block.master_name, block.min_replicas), ("mymaster", 1))
        self.assertEqual(r.unused(), [])
        self.assertEqual(RedisBlock.from_reader(ConfigReader(
            {"name": "m", "addr": "10.0.0.1:26379", "min_replicas": 0})).min_replicas, 0)
        self.assertEqual(RedisBlock.from_reader(ConfigReader({})).min_replicas, 0)
        e = self.assertRaises(ConfigError, RedisBlock.from_reader, ConfigReader({"addr": ["127.0.0.1:1"]}, "redis"))
        self.assertEqual(e.key, "redis.name")
        e = self.assertRaises(ConfigError, RedisBlock.from_reader,
                              ConfigReader({"name": "m", "addr": ["127.0.0.1:1", "stream@/x"]}, "redis"))
        self.assertEqual(e.key, "redis.addr[1]")

    def test_secret_block(self):
        self.assertIsNone(SecretBlock.from_reader(ConfigReader({})))
        self.assertRaises(ConfigError, SecretBlock.from_reader, ConfigReader({}), required=True)
        block = SecretBlock.from_reader(ConfigReader({"secret": "0123456789abcdef"}))
        self.assertEqual(block.value, b"0123456789abcdef")
        self.assertNotIn("0123", repr(block))
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"a-long-enough-secret-from-file\n")
        self.assertEqual(SecretBlock.from_reader(ConfigReader({"secret": {"file": path}})).value,
                         b"a-long-enough-secret-from-file")
        e = self.assertRaises(ConfigError, SecretBlock.from_reader, ConfigReader({"secret": "short"}))
        self.assertEqual(e.key, "secret")
        e = self.assertRaises(ConfigError, SecretBlock.from_reader, ConfigReader({"secret": {"file": "/nonexistent"}}))
        self.assertEqual(e.key, "secret.file")
        e = self.assertRaises(ConfigError, SecretBlock.from_reader, ConfigReader({"secret": 5}))
        self.assertEqual(e.key, "secret")


# The blocks each seed module's file holds (ref §10), read the way the roles
# read them; anything left unread is role-specific and listed per file, so a
# new key in a sample or a block parser that stops reading a key shows up.
COMMON = {"process": ProcessBlock, "log": LogBlock, "alert": AlertBlock}
SEED_BLOCKS = {
    "alertcenter": ({"svr": ServerBlock, "redis": RedisBlock}, []),
    "bitpeer": ({"svr": ServerBlock, "http_svr": ServerBlock, "coin": CoinRPCBlock},
                ["name", "peer_config_path", "reconnect_timeout", "broadcast_limit", "start_string",
                 "jobmaster_update_interval", "request_auth", "jobmaster_url"]),
    "blockmaster": ({"svr": ServerBlock, "http_svr": ServerBlock, "coin": CoinRPCBlock},
                    ["blockmaster_update_interval", "request_auth", "blockmaster_url"]),
    "gateway": ({"svr": ServerBlock, "http_svr": ServerBlock, "monitor": ServerBlock, "job": RPCClientBlock,
                 "writer": RPCClientBlock},
                ["coin", "queue", "worker_id", "worker_num", "diff_min", "diff_max", "diff_default",
                 "target_time", "retarget_time", "client_max_idle_time"]),
    "jobmaster": ({"svr": ServerBlock, "http_svr": ServerBlock, "main_coin": CoinRPCBlock,
                   "rsk_coin": CoinRPCBlock, "vcash_coin": CoinRPCBlock},
                  ["aux_merkle_nonce", "aux_merkle_size", "aux_job_timeout", "rsk_job_interval",
                   "blockmaster_timeout", "main_coin_recipient", "aux_coin[3].address", "coin_recipients",
                   "main_block_version", "job_rebroadcast_timeout", "ip_banned_time", "pool_name",
                   "coinbase_message", "coinbase_account", "spv_mining_timeout"]),
    "metarelay": ({"svr": ServerBlock, "monitor": ServerBlock, "writer": RPCClientBlock}, ["queue", "trust"]),
    "metawriter": ({"svr": ServerBlock, "monitor": ServerBlock, "redis": RedisBlock}, ["dup_timeout", "trust_file"]),
    "mineragent": ({"svr": ServerBlock},
                   ["stratum_host", "stratum_port", "worker_num", "diff_min", "diff_max", "diff_default",
                    "target_time", "retarget_time", "connect_timeout", "broadcast_timeout",
                    "client_max_idle_time"]),
    "poolbench": ({}, ["name", "pool_list", "max_delay", "is_notify", "jobmaster_update_interval",
                       "request_auth", "jobmaster_url"]),
}

# Arrays of tcp@ addresses (peers the role connects to).
ADDRESS_LISTS = {"blockmaster": ["blockmaster", "bitpeer"], "jobmaster": ["blockmaster", "jobmonitor"]}


class SeedSampleTests(TestCase):
    """Every block of every seed sample configuration parses (ref §10)."""

    def test_all_samples_covered(self):
        names = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(SEED_CONFIGS, "*.json"))}
        self.assertEqual(names - {"metawriter-trust"}, set(SEED_BLOCKS))

    def test_every_sample_parses(self):
        for name, (blocks, role_keys) in SEED_BLOCKS.items():
            reader = ConfigReader.from_file(os.path.join(SEED_CONFIGS, f"{name}.json"))
            for key, block in {**COMMON, **blocks}.items():
                optional = key == "alert" and name in ("mineragent", "alertcenter")
                section = reader.section(key, required=not optional)
                if section is not None:
                    self.assertIsInstance(block.from_reader(section), block, f"{name}: {key}")
            for key in ADDRESS_LISTS.get(name, ()):
                self.assertTrue(reader.addresses(key, side="client"), f"{name}: {key}")
            for coin in reader.sections("aux_coin", required=False):
                CoinRPCBlock.from_reader(coin)
            cli = cli_address(reader)
            if name not in ("alertcenter", "metarelay"):
                self.assertEqual((cli.transport, cli.host), ("tcp", "127.0.0.1"), name)
            self.assertEqual(sorted(reader.unused()), sorted(role_keys), name)

    def test_jobmaster_lists(self):
        reader = ConfigReader.from_file(os.path.join(SEED_CONFIGS, "jobmaster.json"))
        aux = [CoinRPCBlock.from_reader(r) for r in reader.sections("aux_coin")]
        self.assertEqual([c.name for c in aux], ["SYS", "EMC", "NMC", "ELA"])
        self.assertEqual(reader.addresses("blockmaster", side="client")[0].port, 5000)
        self.assertEqual(reader.addresses("jobmonitor", side="client")[0].port, 9000)
        # ELA's "address" is the jobmaster's own key in an aux_coin entry.
        self.assertIn("aux_coin[3].address", reader.unused())

    def test_gateway_writer_is_udp(self):
        reader = ConfigReader.from_file(os.path.join(SEED_CONFIGS, "gateway.json"))
        writer = RPCClientBlock.from_reader(reader.section("writer"))
        self.assertTrue(writer.addrs[0].is_datagram)

    def test_metarelay_trust_ips_and_bitpeer_magic(self):
        relay = ConfigReader.from_file(os.path.join(SEED_CONFIGS, "metarelay.json"))
        self.assertEqual(relay.list("trust", str), ("127.0.0.1", "192.168.1.1"))
        bitpeer = ConfigReader.from_file(os.path.join(SEED_CONFIGS, "bitpeer.json"))
        self.assertEqual(bitpeer.required("start_string", str, hex_bytes(4)), bytes.fromhex("f9beb4d9"))

    def test_poolbench_pool_list(self):
        reader = ConfigReader.from_file(os.path.join(SEED_CONFIGS, "poolbench.json"))
        pool = reader.sections("pool_list")[0]
        self.assertEqual((pool.required("host", str), pool.required("port", int, port)), ("127.0.0.1", 443))
        self.assertIs(pool.required("is_self", bool), True)
