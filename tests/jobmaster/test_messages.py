"""Tests for viabtc.jobmaster.messages: cmd 2/4 bodies from peers."""

import json

from hypothesis import given, strategies as st
from twisted.trial.unittest import TestCase

from viabtc.jobmaster.messages import BadMessage, HeightHint, parse_found_block, parse_height_hint

HASH = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"


def body(**fields):
    return json.dumps(fields).encode()


def found(**changes):
    fields = {"job_id": "1f", "hash": HASH, "block_head": "00" * 80,
              "coinbase": "01" * 100, "type": "main", "name": "BTC"}
    fields.update(changes)
    return body(**{k: v for k, v in fields.items() if v is not None})


class FoundBlockTests(TestCase):

    def test_valid(self):
        block = parse_found_block(found())
        self.assertEqual(block.job_id, "1f")
        self.assertEqual(block.block_hash, bytes.fromhex(HASH)[::-1])
        self.assertEqual(block.header, bytes(80))
        self.assertEqual(block.coinbase, b"\x01" * 100)
        self.assertEqual((block.kind, block.name), ("main", "BTC"))

    def test_each_field_checked(self):
        cases = {
            "job_id": [None, 5, "", "12345", "1F", "zz"],
            "hash": [None, 1, HASH[:-2], "g" * 64],
            "block_head": [None, "00" * 79, "00" * 81, "zz" * 80, []],
            "coinbase": [None, "0", "01" * 10, {}],
            "type": [None, "both", 1],
            "name": [7],
        }
        for key, values in cases.items():
            for value in values:
                with self.assertRaises(BadMessage, msg=f"{key}={value!r}") as e:
                    parse_found_block(found(**{key: value}))
                self.assertIn(key, str(e.exception))

    def test_not_an_object(self):
        for raw in (b"", b"[]", b"\xff\xfe", b"{", b"null"):
            self.assertRaises(BadMessage, parse_found_block, raw)

    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_never_raise_anything_else(self, raw):
        for parse in (parse_found_block, parse_height_hint):
            try:
                parse(raw)
            except BadMessage:
                pass


class HeightHintTests(TestCase):

    def test_seed_form(self):
        hint = parse_height_hint(body(height=800001, curtime=1700000000, prevhash=HASH))
        self.assertEqual(hint, HeightHint(800001, 1700000000, bytes.fromhex(HASH)[::-1]))

    def test_optional_fields(self):
        hint = parse_height_hint(body(height=2, curtime=1, prevhash=HASH,
                                      nbits=0x1d00ffff, target="00" * 31 + "ff"))
        self.assertEqual((hint.nbits, hint.target), (0x1d00ffff, 255))

    def test_bad(self):
        good = {"height": 2, "curtime": 1, "prevhash": HASH}
        for key, value in (("height", 0), ("height", -1), ("height", "2"), ("height", 2.0),
                           ("curtime", 1 << 32), ("prevhash", HASH.upper()[:63]),
                           ("nbits", -1), ("target", "00")):
            fields = dict(good, **{key: value})
            with self.assertRaises(BadMessage) as e:
                parse_height_hint(body(**fields))
            self.assertIn(key, str(e.exception))
        for key in good:
            fields = {k: v for k, v in good.items() if k != key}
            self.assertRaises(BadMessage, parse_height_hint, body(**fields))
