"""Stats packet bodies: exact bytes, round trips, fuzzing, size bound, minute stamps."""

import struct

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from viabtc.stats import records
from viabtc.stats.records import (
    BlockRecord, EventRecord, MonitorFloatRecord, MonitorIntRecord, RecordError, ShareRecord,
    Fault, body_minute, decode_body, encode_bodies, read_body,
)

from tests.stats.seedbodies import seed_body

NAN = float("nan")
INF = float("inf")

PREFIX = bytes(range(32))


def fixed_random(n):
    """Deterministic 'random' bytes so bodies can be compared byte for byte."""
    return PREFIX[:n]


def body(hexpayload):
    return PREFIX + bytes.fromhex(hexpayload.replace(" ", ""))


class ExactBytesTests(unittest.TestCase):
    """Each record type against bytes worked out by hand from ref §4.9."""

    def check(self, command, recs, expected):
        self.assertEqual(encode_bodies(command, recs, random=fixed_random), [expected])
        self.assertEqual(decode_body(command, expected), recs)

    def test_block(self):
        self.check(records.META_BLOCK, [BlockRecord("alice", "rig1", "BTC", "00ab")], body(
            "05 616c696365  04 72696731  03 425443  04 30306162"))

    def test_event(self):
        self.check(records.META_EVENT, [EventRecord("a", "w", "btc", "1.2.3.4", "connected")], body(
            "01 61  01 77  03 627463  07 312e322e332e34  09 636f6e6e6563746564"))

    def test_share(self):
        # num 3, pow 0xffff (canonical fd ffff, unlike the seed's fe ffff0000), goal 0.5
        self.check(records.META_SHARE, [ShareRecord("alice", "10.0.0.1", "btc", 3, 0xFFFF, 0.5)], body(
            "05 616c696365  08 31302e302e302e31  03 627463  03  fdffff  000000000000e03f"))

    def test_monitor_int(self):
        self.check(records.META_MONITOR_INT, [MonitorIntRecord("pow", "h", "btc", 0x10000)], body(
            "03 706f77  01 68  03 627463  fe00000100"))

    def test_monitor_float(self):
        self.check(records.META_MONITOR_FLOAT, [MonitorFloatRecord("goal", "h", "btc", 1.5)], body(
            "04 676f616c  01 68  03 627463  000000000000f83f"))

    def test_several_records_and_large_varints(self):
        recs = [MonitorIntRecord("a", "", "", 0xFC), MonitorIntRecord("b", "", "", 0xFD),
                MonitorIntRecord("c", "", "", 0x100000000)]
        self.check(records.META_MONITOR_INT, recs, body(
            "0161 00 00 fc  0162 00 00 fdfd00  0163 00 00 ff0000000001000000"))

    def test_empty_body(self):
        """A body of only the prefix holds no records (the seed's loop accepts it)."""
        self.assertEqual(decode_body(records.META_SHARE, PREFIX), [])
        self.assertEqual(encode_bodies(records.META_SHARE, []), [])


class SeedVarintTests(unittest.TestCase):
    """The seed's two over-long varints are accepted; other over-long forms are not."""

    def decode_sum(self, varint_hex):
        return decode_body(records.META_MONITOR_INT, body("0161 00 00" + varint_hex))[0].sum

    def test_seed_0xffff(self):
        self.assertEqual(self.decode_sum("feffff0000"), 0xFFFF)

    def test_seed_0xffffffff(self):
        self.assertEqual(self.decode_sum("ffffffffff00000000"), 0xFFFFFFFF)

    def test_other_noncanonical(self):
        for bad in ("fdfc00", "fe01000000", "fffeffffff00000000"):
            self.assertRaises(RecordError, self.decode_sum, bad)

    def test_encoder_is_canonical(self):
        self.assertEqual(records.encode_varint(0xFFFF), bytes.fromhex("fdffff"))
        self.assertEqual(records.encode_varint(0xFFFFFFFF), bytes.fromhex("feffffffff"))


class MalformedTests(unittest.TestCase):
    """Every malformed body is a RecordError with a reason."""

    def bad(self, command, data):
        self.assertRaises(RecordError, decode_body, command, data)

    def test_short_prefix(self):
        self.bad(records.META_SHARE, PREFIX[:31])

    def test_truncated_varstr(self):
        self.bad(records.META_BLOCK, body("05 6162"))

    def test_trailing_garbage(self):
        good = body("01 61  01 62  01 63  01 64")
        self.assertEqual(len(decode_body(records.META_BLOCK, good)), 1)
        self.bad(records.META_BLOCK, good + b"\x01")

    def test_bad_utf8(self):
        self.bad(records.META_BLOCK, body("01 ff  01 62  01 63  01 64"))

    def test_truncated_double(self):
        self.bad(records.META_MONITOR_FLOAT, body("0161 00 00 0000"))

    def test_non_finite_double(self):
        nan = struct.pack("<d", float("nan")).hex()
        inf = struct.pack("<d", float("inf")).hex()
        self.bad(records.META_MONITOR_FLOAT, body("0161 00 00" + nan))
        self.bad(records.META_MONITOR_FLOAT, body("0161 00 00" + inf))

    def test_count_beyond_redis(self):
        self.bad(records.META_MONITOR_INT, body("0161 00 00 ff0000000000000080"))

    def test_unknown_command(self):
        self.bad(103, PREFIX)
        self.assertRaises(RecordError, encode_bodies, 103, [])

    def test_bad_records_refused_on_encode(self):
        for command, rec in (
            (records.META_SHARE, BlockRecord("a", "b", "c", "d")),
            (records.META_MONITOR_INT, MonitorIntRecord("k", "h", "c", -1)),
            (records.META_MONITOR_INT, MonitorIntRecord("k", "h", "c", 2**63)),
            (records.META_MONITOR_FLOAT, MonitorFloatRecord("k", "h", "c", float("nan"))),
            (records.META_BLOCK, BlockRecord("a", "b", "c", 5)),
            (records.META_BLOCK, BlockRecord("x" * 800, "b", "c", "d")),
        ):
            self.assertRaises(RecordError, encode_bodies, command, [rec])


class ReadBodyTests(unittest.TestCase):
    """What other hosts send is read record by record: a bad value costs only itself."""

    def test_infinite_goal_dropped_alone(self):
        data = seed_body(records.META_SHARE, [
            ("alice", "gw", "btc", 3, 48, 0.5), ("bob", "gw", "btc", 2, 0, INF), ("carol", "gw", "btc", 1, 16, 0.25),
        ])
        read = read_body(records.META_SHARE, data)
        self.assertEqual(read.records, (
            ShareRecord("alice", "gw", "btc", 3, 48, 0.5), ShareRecord("bob", "gw", "btc", 2, 0, 0.0),
            ShareRecord("carol", "gw", "btc", 1, 16, 0.25),
        ))
        self.assertEqual(read.faults, (Fault("bob", "gw", "goal", "inf", "not finite"),))
        self.assertIsNone(read.error)
        self.assertRaises(RecordError, decode_body, records.META_SHARE, data)

    def test_each_impossible_share_value(self):
        cases = [
            ((2, 10, NAN), {"goal"}, (2, 10, 0.0)),
            ((2, 10, -INF), {"goal"}, (2, 10, 0.0)),
            ((2, 10, -0.5), {"goal"}, (2, 10, 0.0)),
            ((1, 10, 1e78), {"goal"}, (1, 10, 0.0)),
            ((-1, 10, 0.5), {"num"}, (0, 10, 0.5)),
            ((2, -5, 0.5), {"pow"}, (2, 0, 0.5)),
            ((0, 7, 0.0), {"pow"}, (0, 0, 0.0)),
            ((0, 0, 0.5), {"goal"}, (0, 0, 0.0)),
            ((-1, -1, INF), {"num", "pow", "goal"}, (0, 0, 0.0)),
            ((2, 2**63 - 1, 1e77), set(), (2, 2**63 - 1, 1e77)),
        ]
        for (num, pow_, goal), fields, kept in cases:
            read = read_body(records.META_SHARE, seed_body(records.META_SHARE, [("k", "h", "c", num, pow_, goal)]))
            self.assertEqual({f.field for f in read.faults}, fields, (num, pow_, goal))
            self.assertEqual([(r.num, r.pow, r.goal) for r in read.records], [kept])

    def test_monitor_values(self):
        ints = read_body(records.META_MONITOR_INT, seed_body(records.META_MONITOR_INT, [
            ("share", "h", "btc", -3), ("pow", "h", "btc", 2**63 - 1)]))
        self.assertEqual([(r.key, r.sum) for r in ints.records], [("share", 0), ("pow", 2**63 - 1)])
        self.assertEqual([(f.key, f.field, f.value) for f in ints.faults], [("share", "sum", repr(2**64 - 3))])
        bad = (NAN, INF, -INF, -1.0, 1e300)
        floats = read_body(records.META_MONITOR_FLOAT, seed_body(records.META_MONITOR_FLOAT, [
            ("goal", "h", "btc", value) for value in bad + (0.75,)]))
        self.assertEqual([r.sum for r in floats.records], [0.0] * len(bad) + [0.75])
        self.assertEqual(len(floats.faults), len(bad))

    def test_string_not_utf8_drops_that_record_only(self):
        data = seed_body(records.META_SHARE, [("a", "h", "btc", 1, 1, 0.0), (b"\xff", "h", "btc", 1, 1, 0.0),
                                              ("c", "h", "btc", 1, 1, 0.0)])
        read = read_body(records.META_SHARE, data)
        self.assertEqual([r.key for r in read.records], ["a", "c"])
        self.assertEqual([(f.key, f.field) for f in read.faults], [("\\xff", "key")])

    def test_torn_record_ends_the_body(self):
        data = seed_body(records.META_SHARE, [("a", "h", "btc", 1, 1, 0.0), ("b", "h", "btc", 1, 1, 0.0)])
        for cut in range(1, 17):
            read = read_body(records.META_SHARE, data[:-cut])
            self.assertEqual([r.key for r in read.records], ["a"])
            self.assertIn("truncated", read.error)
        # An over-long varint is corrupt framing too.
        read = read_body(records.META_MONITOR_INT, body("0161 00 00 01  0162 00 00 fe01000000  0163 00 00 01"))
        self.assertEqual(([r.key for r in read.records], read.error), (["a"], "non-canonical varint at offset 41"))

    def test_unreadable(self):
        self.assertRaises(RecordError, read_body, records.META_SHARE, PREFIX[:31])
        self.assertRaises(RecordError, read_body, 103, PREFIX)


class MinuteStampTests(unittest.TestCase):
    def test_stamped_prefix(self):
        [data] = encode_bodies(records.META_SHARE, [ShareRecord("u", "h", "btc", 1, 2, 0.0)],
                               random=fixed_random, minute=1482252540)
        self.assertEqual(data[:16], b"VBTCmin\x01" + struct.pack("<Q", 1482252540))
        self.assertEqual(data[16:32], PREFIX[:16])
        self.assertEqual(body_minute(data), 1482252540)
        # The records after the prefix are what a C writer reads.
        self.assertEqual(decode_body(records.META_SHARE, data), [ShareRecord("u", "h", "btc", 1, 2, 0.0)])

    def test_seed_body_is_unstamped(self):
        self.assertIsNone(body_minute(PREFIX))

    def test_magic_with_impossible_minute(self):
        self.assertRaises(RecordError, body_minute, b"VBTCmin\x01" + struct.pack("<Q", 61) + bytes(16))

    def test_bad_minute_refused(self):
        for minute in (61, -60, 1.5):
            self.assertRaises(RecordError, records.make_prefix, minute)


# At most 20 characters (80 UTF-8 bytes) so the largest record fits the smallest max_body.
names = st.text(max_size=20)
counts = st.integers(min_value=0, max_value=records.MAX_COUNT)
floats = st.floats(min_value=0.0, max_value=records.MAX_SHARE_GOAL)


@st.composite
def share_records(draw):
    """Sound share records: no pow and no goal without shares."""
    num = draw(counts)
    pow_ = draw(counts) if num else 0
    goal = draw(floats) if num else 0.0
    return ShareRecord(draw(names), draw(names), draw(names), num, pow_, goal)


RECORD_STRATEGIES = {
    records.META_BLOCK: st.builds(BlockRecord, names, names, names, names),
    records.META_EVENT: st.builds(EventRecord, names, names, names, names, names),
    records.META_SHARE: share_records(),
    records.META_MONITOR_INT: st.builds(MonitorIntRecord, names, names, names, counts),
    records.META_MONITOR_FLOAT: st.builds(MonitorFloatRecord, names, names, names, floats),
}


@st.composite
def command_and_records(draw):
    command = draw(st.sampled_from(sorted(RECORD_STRATEGIES)))
    return command, draw(st.lists(RECORD_STRATEGIES[command], max_size=30))


class PropertyTests(unittest.TestCase):
    @given(command_and_records(), st.integers(min_value=600, max_value=1400),
           st.one_of(st.none(), st.integers(min_value=0, max_value=2**40).map(lambda m: m * 60)))
    @settings(max_examples=300, deadline=None)
    def test_round_trip_and_bound(self, command_recs, max_body, minute):
        """Records survive encoding; every body fits max_body; no body is empty."""
        command, recs = command_recs
        bodies = encode_bodies(command, recs, max_body=max_body, minute=minute)
        decoded = []
        for data in bodies:
            self.assertLessEqual(len(data), max_body)
            self.assertEqual(body_minute(data), minute)
            part = decode_body(command, data)
            self.assertTrue(part)
            decoded.extend(part)
        self.assertEqual(decoded, recs)

    @given(st.sampled_from(sorted(RECORD_STRATEGIES)), st.binary(max_size=300))
    @settings(max_examples=500, deadline=None)
    def test_fuzzed_bodies(self, command, data):
        """Arbitrary bytes decode or raise RecordError, never anything else."""
        try:
            decode_body(command, data)
            body_minute(data)
        except RecordError:
            pass

    @given(command_and_records(), st.data())
    @settings(max_examples=200, deadline=None)
    def test_mutated_bodies(self, command_recs, data):
        """A valid body truncated or with a flipped byte still only raises RecordError."""
        command, recs = command_recs
        for raw in encode_bodies(command, recs):
            cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
            flip = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
            mutated = bytearray(raw[:cut] if cut < len(raw) else raw)
            if flip < len(mutated):
                mutated[flip] ^= 0xFF
            try:
                decode_body(command, bytes(mutated))
            except RecordError:
                pass

    @given(st.sampled_from(sorted(RECORD_STRATEGIES)), st.binary(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_fuzzed_bodies_read_or_raise_record_error(self, command, data):
        try:
            read = read_body(command, data)
        except RecordError:
            return
        for record in read.records:
            # Whatever was read can be written again by our own encoder.
            encode_bodies(command, [record])
