"""
The compiled reader of the common ``mining.submit`` line
(``viabtc.stratum._submit``) against the general path it short-cuts: JSON,
then ``submit_fields``.  Whatever it returns must be what the general path
reads from that line; whatever else it sees it must leave to the general
path (``None``), never raise.  In CI (``VIABTC_REQUIRE_SERVICES=1``) the
module must have been built: a silent fall-back would cost the gateway a
third of its shares per second with no test noticing.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, TestCase

from viabtc.devnet import services_required
from viabtc.stratum import protocol
from viabtc.stratum.protocol import submit_fields

from tests.stratum.jobs import CURTIME
from tests.stratum.test_protocol import ServerTestCase

try:
    from viabtc.stratum._submit import parse_submit
except ImportError:
    parse_submit = None

PARAMS = ["alice.rig1", "1a", "00000000000001a2", "6622f3b7", "1a2b3c4d"]
FIELDS = (7, "alice.rig1", "1a", bytes.fromhex("00000000000001a2"), 0x6622F3B7, 0x1A2B3C4D, 0)


def general(line):
    """What the general path reads from ``line``: the fields, or None where it would not reach ``_share``."""
    try:
        request = json.loads(line.decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if type(request) is not dict or request.get("method") != "mining.submit":
        return None
    params = request.get("params")
    if type(params) is not list:
        return None
    fields = submit_fields(request.get("id"), params)
    return None if type(fields) is str else fields


class CompiledTestCase(TestCase):
    def setUp(self):
        if parse_submit is None:
            if services_required():
                self.fail("viabtc.stratum._submit was not built (setup.py: a C compiler)")
            raise SkipTest("viabtc.stratum._submit was not built")


class KnownLineTests(CompiledTestCase):
    def test_in_use(self):
        self.assertIs(protocol._parse_submit, parse_submit)

    def test_our_generator_and_cgminer_forms(self):
        compact = b'{"id":7,"method":"mining.submit","params":["alice.rig1","1a","00000000000001a2","6622f3b7","1a2b3c4d"]}'
        spaced = (b'{"params": ["alice.rig1", "1a", "00000000000001A2", "6622F3B7", "1a2b3c4d"], '
                  b'"id": 7, "method": "mining.submit"}\r')
        for line in (compact, spaced, b"  " + compact + b" \t"):
            self.assertEqual(parse_submit(line), FIELDS)
            self.assertEqual(general(line), FIELDS)

    def test_version_bits(self):
        for bits, value in (("1fffe000", 0x1FFFE000), ("4000", 0x4000), ("0", 0)):
            line = json.dumps({"id": 7, "method": "mining.submit", "params": PARAMS + [bits]}).encode()
            self.assertEqual(parse_submit(line), FIELDS[:6] + (value,))

    def test_other_lines_are_left_to_the_general_path(self):
        base = {"id": 7, "method": "mining.submit", "params": PARAMS}
        others = [
            dict(base, id="7"), dict(base, id=None), dict(base, id=-1), dict(base, id=7.0), dict(base, id=10**18),
            dict(base, method="mining.authorize"), dict(base, params=PARAMS[:4]), dict(base, params=PARAMS + ["1", "2"]),
            dict(base, params=PARAMS + [""]), dict(base, params=PARAMS + ["123456789"]),
            dict(base, params=["alice", "1a", "00000000000001a", "6622f3b7", "1a2b3c4d"]),
            dict(base, params=["alice", "1a", "00000000000001ag", "6622f3b7", "1a2b3c4d"]),
            dict(base, params=["alice", "1a", "00000000000001a2", "6622f3b", "1a2b3c4d"]),
            dict(base, params=["alice", "1a", "00000000000001a2", "6622f3b7", " a2b3c4d"]),
            dict(base, params=["alice", 26, "00000000000001a2", "6622f3b7", "1a2b3c4d"]),
            dict(base, params=["al\u00efce", "1a", "00000000000001a2", "6622f3b7", "1a2b3c4d"]),
            dict(base, params=['al"ice', "1a", "00000000000001a2", "6622f3b7", "1a2b3c4d"]),
            dict(base, jsonrpc="2.0"), {"id": 7, "params": PARAMS}, {"method": "mining.submit", "params": PARAMS},
        ]
        for request in others:
            self.assertIsNone(parse_submit(json.dumps(request).encode()), request)
        line = json.dumps(base).encode()
        for broken in (line[:-1], line + b"}", line + b"x", b"x" + line, line.replace(b'"id"', b'"\\u0069d"'),
                       line.replace(b"7", b"07", 1), b'{"id":7,"id":8' + line[7:], line.replace(b"]", b",]"),
                       b"", b"{", b"[]", line.replace(b" ", b"\x0c")):
            self.assertIsNone(parse_submit(broken), broken)

    def test_only_bytes(self):
        with self.assertRaises(TypeError):
            parse_submit("{}")


hexdigits = "0123456789abcdefABCDEF"
#: Parameter values near and on the common form: right and wrong lengths, hex and not.
param = st.one_of(
    st.text(alphabet=hexdigits, min_size=0, max_size=18),
    st.text(alphabet=hexdigits + ' "\\xg.\u00e9', max_size=18),
    st.text(max_size=12),
    st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False),
)
msg_id = st.one_of(st.integers(min_value=-5, max_value=10**19), st.text(max_size=4), st.none(), st.floats(allow_nan=False))
whitespace = st.text(alphabet=" \t\r\n", max_size=2)


@st.composite
def submit_lines(draw):
    request = {
        "id": draw(msg_id),
        "method": draw(st.sampled_from(["mining.submit", "mining.submit", "mining.authorize", "mining.submit "])),
        "params": draw(st.lists(param, min_size=4, max_size=7)),
    }
    keys = draw(st.permutations(list(request)))
    if draw(st.booleans()):
        keys = keys[: draw(st.integers(min_value=0, max_value=3))]
    gap = draw(whitespace)
    separators = (gap + "," + draw(whitespace), draw(whitespace) + ":" + gap)
    ordered = {key: request[key] for key in keys}
    line = json.dumps(ordered, separators=separators, ensure_ascii=draw(st.booleans()))
    return (draw(whitespace) + line + draw(whitespace)).encode()


@st.composite
def common_lines(draw):
    """Lines in the common form, with any valid fields: the fast path must take every one."""
    hexes = lambda n: st.text(alphabet=hexdigits, min_size=n, max_size=n)  # noqa: E731
    params = [draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=40)),
              draw(st.text(alphabet="0123456789abcdef", min_size=1, max_size=16)),
              draw(hexes(16)), draw(hexes(8)), draw(hexes(8))]
    if draw(st.booleans()):
        params.append(draw(st.text(alphabet=hexdigits, min_size=1, max_size=8)))
    request = {"id": draw(st.integers(min_value=0, max_value=10**18 - 1)), "method": "mining.submit", "params": params}
    keys = draw(st.permutations(list(request)))
    return json.dumps({k: request[k] for k in keys}, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))).encode()


class PropertyTests(CompiledTestCase):
    @settings(max_examples=500)
    @given(submit_lines())
    def test_reads_what_the_general_path_reads(self, line):
        fields = parse_submit(line)
        if fields is not None:
            self.assertEqual(fields, general(line))
            self.assertIs(type(fields[0]), int)

    @settings(max_examples=300)
    @given(common_lines())
    def test_takes_every_common_line(self, line):
        fields = parse_submit(line)
        self.assertIsNotNone(fields, line)
        self.assertEqual(fields, general(line))

    @settings(max_examples=300)
    @given(st.binary(max_size=200))
    def test_any_bytes(self, line):
        fields = parse_submit(line)
        if fields is not None:
            self.assertEqual(fields, general(line))


class SameAnswersTests(ServerTestCase):
    """A session answers and counts the same with the compiled reader as without it."""

    def lines(self):
        ntime = b"%08x" % CURTIME
        good = b'{"id":%d,"method":"mining.submit","params":["alice.rig1","1a","%016x","' + ntime + b'","00000000"]}\n'
        return b"".join([
            good % (10, 1), good % (11, 1),  # a share, then its duplicate
            good.replace(b'"1a"', b'"ff"') % (12, 2),  # unknown job
            good.replace(b"alice.rig1", b"mallory.x") % (13, 3),  # an account it never authorized
            good % (14, 4) + b" ", good.replace(b",", b", ") % (15, 5),
            b'{"id":16,"method":"mining.submit","params":["alice.rig1","1a","00","00","00"]}\n',
            good.replace(b'"00000000"]', b'"00000000","ffffffff"]') % (17, 6),  # version bits never negotiated
        ])

    def run_lines(self):
        self.add_job()
        proto, transport = self.miner()
        transport.clear()
        proto.dataReceived(self.lines())
        return transport.value(), list(self.context.events), proto.session.share_valid, proto.session.share_error

    def test_same_with_and_without(self):
        if protocol._parse_submit(b'{"id":1,"method":"mining.submit","params":["a","1","0000000000000000",'
                                  b'"00000000","00000000"]}') is None and services_required():
            self.fail("the compiled submit reader is not in use")
        compiled = self.run_lines()
        self.patch(protocol, "_parse_submit", lambda line: None)
        self.setUp()
        general_path = self.run_lines()
        self.assertEqual(compiled, general_path)
        replies = [json.loads(line) for line in compiled[0].splitlines()]
        self.assertEqual([r["id"] for r in replies], list(range(10, 18)))
        self.assertEqual([r["result"] for r in replies], [True, None, None, None, True, True, None, None])


class UncompiledTests(TestCase):
    """The warning a role logs at start names each share-path module that runs in Python."""

    def test_named(self):
        if protocol.COMPILED and protocol._no_fast_path is None:
            self.assertIsNone(protocol.uncompiled())
        self.patch(protocol, "COMPILED", False)
        self.patch(protocol, "_no_fast_path", protocol._parse_submit)
        why = protocol.uncompiled()
        self.assertIn("viabtc.bitcoin._sha256d", why)
        self.assertIn("viabtc.stratum._submit", why)
