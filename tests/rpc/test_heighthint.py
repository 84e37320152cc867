"""The cmd 4 body every hinting module writes, read back by the jobmaster's parser."""

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from viabtc.jobmaster.messages import parse_height_hint
from viabtc.rpc.heighthint import height_hint_body

PREV = bytes(range(32))


class HeightHintBodyTests(SynchronousTestCase):
    def test_seed_fields(self):
        body = json.loads(height_hint_body(101, 1700000000, PREV))
        self.assertEqual(body, {"height": 101, "curtime": 1700000000,
                                "prevhash": PREV[::-1].hex()})

    def test_nbits_only_when_known(self):
        self.assertEqual(json.loads(height_hint_body(5, 7, PREV, 0x207FFFFF))["nbits"], 0x207FFFFF)

    @given(st.integers(1, 2**31 - 1), st.integers(0, 2**32 - 1), st.binary(min_size=32, max_size=32),
           st.none() | st.integers(0, 2**32 - 1))
    def test_jobmaster_reads_it(self, height, curtime, prevhash, nbits):
        hint = parse_height_hint(height_hint_body(height, curtime, prevhash, nbits))
        self.assertEqual((hint.height, hint.curtime, hint.prevhash, hint.nbits),
                         (height, curtime, prevhash, nbits))
