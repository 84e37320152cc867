"""From a rival's mining.notify to the jobmaster's cmd 4 body: the pure rules."""

import json
import struct

import attrs
from hypothesis import given, strategies as st
from twisted.trial.unittest import TestCase

from tests.tools.fakepool import make_job
from viabtc.bitcoin.serialize import bip34_height_push, compact_size, push_data
from viabtc.jobmaster.messages import parse_height_hint
from viabtc.poolbench.hints import (
    MAX_HEIGHT,
    MAX_HEIGHT_JUMP,
    MAX_NTIME_AHEAD,
    Sighting,
    SuspiciousTip,
    check_tip,
    hint_body,
    hint_curtime,
)
from viabtc.stratum.client import MalformedMessage, StratumJob

NOW = 1_700_000_100


def stratum_job(height, prev_hash=bytes(range(32)), ntime=NOW, coinbase1=None):
    fake = attrs.evolve(make_job("1", height, 0x1D00FFFF), prev_hash=prev_hash, time=ntime)
    if coinbase1 is not None:
        fake = attrs.evolve(fake, coinbase1=coinbase1)
    return StratumJob.from_notify(fake.notify_params(True))


def seed_display_prevhash(stratum_hex):
    """The seed's conversion (ref §7): byte-swap each 4-byte word, then reverse all 32 bytes."""
    raw = bytes.fromhex(stratum_hex)
    swapped = b"".join(raw[i:i + 4][::-1] for i in range(0, 32, 4))
    return swapped[::-1].hex()


class SightingTests(TestCase):
    def test_tip_is_one_below_the_job_height(self):
        sighting = Sighting.from_job(stratum_job(800_001))
        self.assertEqual((sighting.tip, sighting.prevhash, sighting.ntime),
                         (800_000, bytes(range(32)), NOW))

    def test_long_scriptsig_read_right(self):
        # A 300-byte scriptSig has a 3-byte length: the seed's fixed offset
        # 42 would read the length's second byte as the height push.
        script = bip34_height_push(812_345) + push_data(b"x" * 75) * 3 + b"\x00" * 65
        coinbase1 = (struct.pack("<I", 1) + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff"
                     + compact_size(len(script) + 8) + script)
        self.assertEqual(Sighting.from_job(stratum_job(1, coinbase1=coinbase1)).tip, 812_344)

    def test_no_height_is_malformed(self):
        coinbase1 = struct.pack("<I", 1) + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff" + b"\x08\x6a"
        self.assertRaises(MalformedMessage, Sighting.from_job, stratum_job(1, coinbase1=coinbase1))


class HintBodyTests(TestCase):
    def test_body_is_the_seeds(self):
        fake = make_job("1", 800_001, 0x1D00FFFF)
        job = StratumJob.from_notify(fake.notify_params(True))
        body = json.loads(hint_body(Sighting.from_job(job), NOW + 5))
        self.assertEqual(body, {"height": 800_000, "curtime": NOW + 5,
                                "prevhash": seed_display_prevhash(fake.notify_params(True)[1])})

    @given(st.binary(min_size=32, max_size=32), st.integers(2, MAX_HEIGHT),
           st.integers(0, 2**32 - 1 - MAX_NTIME_AHEAD), st.integers(-10**6, 10**6))
    def test_the_jobmaster_reads_what_we_send(self, prev_hash, height, now, skew):
        ntime = min(max(now + skew, 0), 2**32 - 1)
        job = stratum_job(height, prev_hash, ntime)
        hint = parse_height_hint(hint_body(Sighting.from_job(job), now))
        self.assertEqual((hint.height, hint.prevhash, hint.nbits, hint.target),
                         (height - 1, prev_hash, None, None))
        self.assertEqual(hint.curtime, hint_curtime(ntime, now))


class CurtimeTests(TestCase):
    def test_later_ntime_kept(self):
        self.assertEqual(hint_curtime(NOW + 30, NOW), NOW + 30)

    def test_earlier_ntime_is_now(self):
        self.assertEqual(hint_curtime(NOW - 30, NOW + 0.7), NOW)

    def test_far_future_ntime_ignored(self):
        self.assertEqual(hint_curtime(NOW + MAX_NTIME_AHEAD + 1, NOW), NOW)

    @given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
    def test_never_before_now_nor_far_ahead(self, ntime, now):
        curtime = hint_curtime(ntime, now)
        self.assertTrue(now <= curtime <= now + MAX_NTIME_AHEAD)
        if ntime <= now + MAX_NTIME_AHEAD:
            self.assertEqual(curtime, max(ntime, now))


class CheckTipTests(TestCase):
    def test_within_the_jump(self):
        for tip in range(1, 100 + MAX_HEIGHT_JUMP + 1):
            check_tip(tip, 100)

    def test_beyond_the_jump_refused(self):
        e = self.assertRaises(SuspiciousTip, check_tip, 100 + MAX_HEIGHT_JUMP + 1, 100)
        self.assertIn("above the reference 100", str(e))

    def test_no_reference_or_trusted_believed(self):
        check_tip(10**6, None)
        check_tip(10**6, 100, trusted=True)

    def test_absurd_heights_refused_even_when_trusted(self):
        for tip in (0, -1, MAX_HEIGHT + 1):
            self.assertRaises(SuspiciousTip, check_tip, tip, None, trusted=True)

    @given(st.integers(-10, MAX_HEIGHT + 10), st.one_of(st.none(), st.integers(1, MAX_HEIGHT)),
           st.booleans())
    def test_rule(self, tip, reference, trusted):
        believable = 1 <= tip <= MAX_HEIGHT and (
            trusted or reference is None or tip <= reference + MAX_HEIGHT_JUMP)
        try:
            check_tip(tip, reference, trusted)
        except SuspiciousTip:
            self.assertFalse(believable)
        else:
            self.assertTrue(believable)
