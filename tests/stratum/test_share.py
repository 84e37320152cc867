"""Tests for viabtc.stratum.share."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import hash_to_int, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.target import MAX_TARGET
from viabtc.stratum.share import REJECTED, Reject, ShareTarget, check_share

from tests.stratum.jobs import (
    CURTIME,
    IDENTITY,
    PREVHASH,
    TXIDS,
    agent_coinbase1,
    miner_coinbase1,
    prepared_job,
    regtest_job,
)

EXTRANONCE2 = bytes.fromhex("0011223344556677")
#: every hash meets it
EASY = ShareTarget(1e-12, MAX_TARGET)
NOW = CURTIME + 30


def miner_prefix(prepared):
    return miner_coinbase1(prepared, "alice", 100, IDENTITY.nonce_id) + IDENTITY.extranonce1


def check(prepared, prefix=None, extranonce2=EXTRANONCE2, ntime=CURTIME, nonce=7, version_bits=0,
          version_mask=0, current=EASY, previous=EASY, now=NOW):
    if prefix is None:
        prefix = miner_prefix(prepared)
    return check_share(prepared, prefix, extranonce2, ntime, nonce, version_bits, version_mask, current, previous, now)


def expected_header(prepared, prefix, ntime=CURTIME, nonce=7, version=0x20000000, extranonce2=EXTRANONCE2):
    """The header built independently: full merkle tree, BlockHeader."""
    coinbase = prefix + extranonce2 + prepared.coinbase2
    root = merkle_root([sha256d(coinbase)] + TXIDS)
    prev = bytes.fromhex(PREVHASH)[::-1]
    return coinbase, BlockHeader(version, prev, root, ntime, prepared.nbits, nonce).serialize()


class ValidShareTests(TestCase):
    def test_valid_share(self):
        prepared = prepared_job()
        prefix = miner_prefix(prepared)
        result = check(prepared, prefix)
        coinbase, header = expected_header(prepared, prefix)
        self.assertIsNone(result.reject)
        self.assertEqual(result.coinbase, coinbase)
        self.assertEqual(result.header, header)
        self.assertEqual(result.hash, sha256d(header))
        self.assertEqual(result.difficulty, EASY.difficulty)
        self.assertFalse(result.is_block)
        self.assertEqual(result.aux, ())

    def test_coinbase_is_the_miners_layout(self):
        prepared = prepared_job()
        coinbase = check(prepared).coinbase
        self.assertTrue(coinbase.startswith(prepared.coinbase1))
        self.assertIn(b"/viabtc/test/Mined by alice/", coinbase)
        # unique id (100 << 16) + 0x1a, then nonce_id, then extranonce1 and 2
        ids = b"\x14" + ((100 << 16) + 0x1A).to_bytes(4, "little") + IDENTITY.nonce_id.to_bytes(4, "little")
        self.assertIn(ids + IDENTITY.extranonce1 + EXTRANONCE2 + prepared.coinbase2, coinbase)

    def test_agent_layout_is_just_another_prefix(self):
        prepared = prepared_job()
        prefix = agent_coinbase1(prepared, "alice", 0xDEADBEEF, 9) + IDENTITY.extranonce1
        result = check(prepared, prefix)
        self.assertIsNone(result.reject)
        self.assertEqual(result.header, expected_header(prepared, prefix)[1])

    def test_version_rolling(self):
        prepared = prepared_job()
        prefix = miner_prefix(prepared)
        result = check(prepared, prefix, version_bits=0x00ffe000, version_mask=0x1FFFE000)
        self.assertIsNone(result.reject)
        self.assertEqual(result.header, expected_header(prepared, prefix, version=0x20ffe000)[1])

    def test_version_rolling_replaces_masked_job_bits(self):
        prepared = prepared_job(version=0x20002000)
        prefix = miner_prefix(prepared)
        result = check(prepared, prefix, version_bits=0x4000, version_mask=0x1FFFE000)
        self.assertEqual(result.header, expected_header(prepared, prefix, version=0x20004000)[1])

    def test_block(self):
        prepared = regtest_job()
        for nonce in range(64):
            result = check(prepared, nonce=nonce)
            if result.is_block:
                break
        else:
            self.fail("no regtest block in 64 nonces")
        self.assertLessEqual(hash_to_int(result.hash), prepared.block_target)
        self.assertEqual(sha256d(result.header), result.hash)

    def test_not_a_block_just_above_the_target(self):
        prepared = regtest_job()
        for nonce in range(64):
            result = check(prepared, nonce=nonce)
            if not result.is_block:
                self.assertGreater(hash_to_int(result.hash), prepared.block_target)
                return
        self.fail("every hash was a block")

    def test_block_easier_than_share_is_credited_at_block_difficulty(self):
        prepared = regtest_job()
        hard = ShareTarget(1e9, 1)
        for nonce in range(64):
            result = check(prepared, nonce=nonce, current=hard, previous=hard)
            if result.reject is None:
                break
        else:
            self.fail("no regtest block in 64 nonces")
        self.assertTrue(result.is_block)
        self.assertEqual(result.difficulty, prepared.block_difficulty)

    def test_aux_block(self):
        aux = {"aux_name": "NMC", "aux_hash": "cd" * 32, "aux_target": "ff" * 32}
        prepared = prepared_job(auxes=[aux])
        result = check(prepared)
        self.assertEqual([a.aux_name for a in result.aux], ["NMC"])
        self.assertFalse(result.is_block)
        none = prepared_job(auxes=[dict(aux, aux_target="00" * 32)])
        self.assertEqual(none.aux_max_target, 0)
        self.assertEqual(check(none).aux, ())
        self.assertEqual(prepared_job().aux_max_target, -1)

    @settings(max_examples=30)
    @given(st.lists(st.integers(0, MAX_TARGET), min_size=1, max_size=4))
    def test_aux_targets_met(self, targets):
        auxes = [{"aux_name": f"A{i}", "aux_hash": "cd" * 32, "aux_target": format(t, "064x")}
                 for i, t in enumerate(targets)]
        prepared = prepared_job(auxes=auxes)
        self.assertEqual(prepared.aux_max_target, max(targets))
        result = check(prepared)
        value = hash_to_int(result.hash)
        self.assertEqual([a.aux_name for a in result.aux],
                         [f"A{i}" for i, t in enumerate(targets) if value <= t])


class RejectTests(TestCase):
    def test_codes_and_messages(self):
        seed = {21: "Job not found", 22: "Duplicate share", 23: "Low difficulty share",
                24: "Unauthorized worker", 25: "Not subscribed", 31: "invalid config"}
        for code, message in seed.items():
            self.assertEqual(Reject(code).message, message)
        self.assertEqual(Reject.STALE_JOB.message, "Stale job")
        self.assertEqual(Reject.INVALID_NTIME.message, "ntime out of range")
        self.assertEqual(Reject.INVALID_VERSION_BITS.message, "Invalid version bits")
        self.assertEqual(len({r.value for r in Reject}), len(Reject))

    def test_version_bits_outside_negotiated_mask(self):
        prepared = prepared_job()
        self.assertIs(check(prepared, version_bits=0x2000), REJECTED[Reject.INVALID_VERSION_BITS])
        self.assertIs(
            check(prepared, version_bits=0x40000000, version_mask=0x1FFFE000),
            REJECTED[Reject.INVALID_VERSION_BITS],
        )
        self.assertIs(
            check(prepared, version_bits=0x2000 | 1, version_mask=0x1FFFE000),
            REJECTED[Reject.INVALID_VERSION_BITS],
        )

    def test_ntime_bounds(self):
        prepared = prepared_job()
        invalid = REJECTED[Reject.INVALID_NTIME]
        self.assertIsNone(check(prepared, ntime=CURTIME - 7200).reject)
        self.assertIs(check(prepared, ntime=CURTIME - 7201), invalid)
        self.assertIsNone(check(prepared, ntime=NOW + 7200).reject)
        self.assertIs(check(prepared, ntime=NOW + 7201), invalid)
        self.assertIs(check(prepared, ntime=2**32, now=2**33), invalid)

    def test_ntime_floor_from_the_jobs_mintime(self):
        # The block after real testnet4 block 2015 (time 1715029532) opens a
        # period: BIP94 forbids a time more than 600 s before its parent's.
        floor = 1715029532 - 600
        prepared = prepared_job(curtime=1715029600, mintime=floor)
        invalid = REJECTED[Reject.INVALID_NTIME]
        self.assertIs(check(prepared, ntime=floor - 1, now=1715029600), invalid)
        self.assertIsNone(check(prepared, ntime=floor, now=1715029600).reject)
        # A mintime below the window does not widen it.
        prepared = prepared_job(mintime=CURTIME - 9000)
        self.assertIs(check(prepared, ntime=CURTIME - 7201), invalid)

    def test_low_difficulty_and_grace(self):
        prepared = prepared_job()
        value = hash_to_int(check(prepared).hash)
        met = ShareTarget(2.0, value)
        missed = ShareTarget(4.0, value - 1)
        self.assertEqual(check(prepared, current=met, previous=missed).difficulty, 2.0)
        # missed the current difficulty, met the previous one: grace
        self.assertEqual(check(prepared, current=missed, previous=met).difficulty, 2.0)
        self.assertIs(check(prepared, current=missed, previous=missed), REJECTED[Reject.LOW_DIFFICULTY])

    def test_integer_target_edge(self):
        prepared = prepared_job()
        value = hash_to_int(check(prepared).hash)
        self.assertIsNone(check(prepared, current=ShareTarget(1.0, value), previous=ShareTarget(1.0, value)).reject)
        edge = ShareTarget(1.0, value - 1)
        self.assertIs(check(prepared, current=edge, previous=edge).reject, Reject.LOW_DIFFICULTY)

    def test_share_target_for_difficulty(self):
        self.assertEqual(ShareTarget.for_difficulty(1).target, 0xFFFF << 208)
        self.assertRaises(ValueError, ShareTarget.for_difficulty, 0)
        self.assertRaises(ValueError, ShareTarget.for_difficulty, float("nan"))


class PropertyTests(TestCase):
    prepared = prepared_job()
    prefix = miner_prefix(prepared)
    u32 = st.integers(min_value=-(2**33), max_value=2**33)

    @settings(max_examples=300)
    @given(
        extranonce2=st.binary(max_size=20),
        ntime=u32,
        nonce=u32,
        version_bits=u32,
        version_mask=st.integers(min_value=0, max_value=2**32 - 1),
        difficulty=st.floats(min_value=1e-12, max_value=1e12),
        now=st.floats(min_value=0, max_value=2**33),
    )
    def test_any_submit_fields_give_a_result(self, extranonce2, ntime, nonce, version_bits, version_mask, difficulty, now):
        target = ShareTarget.for_difficulty(difficulty)
        result = check(self.prepared, self.prefix, extranonce2, ntime, nonce, version_bits, version_mask, target, target, now)
        if result.reject is None:
            self.assertLessEqual(hash_to_int(result.hash), target.target)
            self.assertEqual(len(result.header), 80)
        else:
            self.assertIsInstance(result.reject, Reject)
