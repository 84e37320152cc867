"""Tests for viabtc.jobmaster.jobs and viabtc.jobmaster.candidate (pure)."""

import json

import attrs
from hypothesis import given, strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import assemble_block, parse_block
from viabtc.bitcoin.coinbase import (
    Recipient, coinbase_tag, miner_script_sig_prefix, real_coinbase1, tag_budget,
)
from viabtc.bitcoin.hashing import hash_to_display_hex, hash_to_int, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root_from_branch
from viabtc.bitcoin.network import MAINNET, REGTEST
from viabtc.bitcoin.signet import (
    OP_TRUE_CHALLENGE, check_signet_block, commitment_output_script, find_solution,
)
from viabtc.bitcoin.target import bits_to_target
from viabtc.bitcoin.transaction import WITNESS_COMMITMENT_HEADER, Transaction
from viabtc.jobmaster.candidate import BadCandidate, check_candidate
from viabtc.jobmaster.jobs import (
    JobSettings, Payout, build_empty_job, build_job, check_coinbase_text, format_job_id,
    next_job_id, tag_room,
)
from viabtc.jobmaster.messages import FoundBlock
from viabtc.stratum.job import Job

from tests.jobmaster.templates import make_template

MAIN = bytes.fromhex("0014") + b"\x11" * 20
A = bytes.fromhex("76a914") + b"\xaa" * 20 + bytes.fromhex("88ac")
B = bytes.fromhex("a914") + b"\xbb" * 20 + bytes.fromhex("87")


def settings(recipients=(), main=MAIN, network=REGTEST, **changes):
    return JobSettings(payout=Payout(main, recipients), network=network, pool_name="pool",
                       coinbase_message="msg", coinbase_account=True, **changes)


def coinbase_for(context, extranonce=b"\0" * 12, unique_id=7, nonce_id=9, account=None):
    """The full coinbase a gateway builds for ``context`` (ref §4.4)."""
    job = context.job
    budget = tag_budget(job.height, context.coinbaseaux, agent=False)
    tag = coinbase_tag(job.pool_name, job.coinbase_message, account, budget)
    prefix = miner_script_sig_prefix(job.height, tag, context.coinbaseaux, unique_id, nonce_id)
    return real_coinbase1(context.coinbase1, prefix) + extranonce + context.coinbase2


def solve(context, coinbase=None, time=None):
    """Grind a header for ``context`` meeting its (regtest) target: a FoundBlock."""
    coinbase = coinbase if coinbase is not None else coinbase_for(context)
    root = merkle_root_from_branch(sha256d(coinbase), context.branch)
    for nonce in range(1 << 20):
        header = BlockHeader(context.version, context.prevhash, root,
                             time or context.job.curtime, context.nbits, nonce).serialize()
        block_hash = sha256d(header)
        if hash_to_int(block_hash) <= context.target:
            return FoundBlock(context.job_id, block_hash, header, coinbase, "main", "BTC")
    raise AssertionError("no nonce found")


def outputs(context):
    tx, _ = Transaction.parse(coinbase_for(context))
    return [(o.value, o.script) for o in tx.outputs]


class JobIdTests(TestCase):

    def test_wraps_skipping_zero(self):
        self.assertEqual(next_job_id(0), 1)
        self.assertEqual(next_job_id(1), 2)
        self.assertEqual(next_job_id(0xFFFE), 0xFFFF)
        self.assertEqual(next_job_id(0xFFFF), 1)

    def test_format(self):
        self.assertEqual([format_job_id(n) for n in (1, 0xA, 0xFF, 0x1000, 0xFFFF)],
                         ["1", "a", "ff", "1000", "ffff"])

    @given(st.integers(0, 0xFFFF))
    def test_always_a_valid_id(self, last):
        n = next_job_id(last)
        self.assertTrue(1 <= n <= 0xFFFF)
        self.assertEqual(int(format_job_id(n), 16), n)


class PayoutTests(TestCase):

    def test_recipients_and_main_remainder(self):
        template = make_template(coinbase_value=1_000_000_001)
        _, context = build_job(template, settings([Recipient(A, 0.2), Recipient(B, 0.3)]), 1, True)
        self.assertEqual(outputs(context)[:3], [(200_000_000, A), (300_000_000, B), (500_000_001, MAIN)])

    def test_recipients_take_all(self):
        template = make_template(coinbase_value=1_000_000_001)
        _, context = build_job(template, settings([Recipient(A, 0.5), Recipient(B, 0.5)]), 1, True)
        self.assertEqual(outputs(context)[:2], [(500_000_000, A), (500_000_001, B)])
        self.assertEqual(len(outputs(context)), 3)  # and the witness commitment

    @given(st.lists(st.floats(0, 0.3), max_size=3), st.integers(0, 21_000_000 * 10**8))
    def test_never_pays_more_than_the_coinbase_value(self, percents, value):
        template = make_template(coinbase_value=value, n_txs=0)
        recipients = [Recipient(A, p) for p in percents]
        _, context = build_job(template, settings(recipients), 1, True)
        self.assertEqual(sum(v for v, _ in outputs(context)), value)


class WitnessCommitmentTests(TestCase):

    def test_only_with_the_segwit_rule(self):
        _, context = build_job(make_template(segwit=False), settings(), 1, True)
        self.assertFalse(context.segwit)
        self.assertFalse(any(s.startswith(WITNESS_COMMITMENT_HEADER) for _, s in outputs(context)))
        _, context = build_job(make_template(segwit=True), settings(), 1, True)
        self.assertTrue(context.segwit)
        value, script = outputs(context)[-1]
        self.assertEqual((value, script), (0, make_template().default_witness_commitment))

    def test_disabled_by_config(self):
        _, context = build_job(make_template(), settings(segwit_commitment=False), 1, True)
        self.assertFalse(context.segwit)
        self.assertEqual(len(outputs(context)), 1)

    def test_computed_when_template_lacks_it(self):
        _, given_ = build_job(make_template(), settings(), 1, True)
        _, computed = build_job(make_template(commitment=False), settings(), 1, True)
        self.assertEqual(given_.coinbase2, computed.coinbase2)


class JobFieldTests(TestCase):

    def test_job_json(self):
        template = make_template(height=1000, n_txs=3, coinbaseaux=bytes.fromhex("0a0b0c"))
        job, context = build_job(template, settings(block_version=0), 0x1F, True)
        body = json.loads(job.to_json())
        self.assertEqual(body["job_id"], "1f")
        self.assertEqual(body["height"], 1000)
        self.assertEqual(body["version"], 0x20000000)
        self.assertEqual(body["nbits"], 0x207FFFFF)
        self.assertEqual(body["curtime"], template.curtime)
        self.assertEqual(body["prevhash"], hash_to_display_hex(template.previous_hash))
        self.assertEqual(int(body["target"], 16), bits_to_target(0x207FFFFF))
        self.assertEqual(len(body["target"]), 64)
        self.assertEqual(body["coinbaseaux"], "0a0b0c")
        self.assertEqual((body["pool_name"], body["coinbase_message"], body["coinbase_account"]),
                         ("pool", "msg", True))
        self.assertEqual(body["coinbase1"], "01000000" "01" + "00" * 32 + "ffffffff")
        self.assertTrue(body["clean_jobs"])
        self.assertEqual((body["main_name"], body["aux_target"], body["auxes"]), ("BTC", "", []))
        self.assertEqual(len(body["merkle_branch"]), 2)
        self.assertEqual(body["merkle_branch"][0], template.transactions[0].txid.hex())
        self.assertEqual((body["segwit"], body["network"]), (True, "regtest"))
        self.assertEqual(Job.from_json(job.to_json()), job)
        self.assertEqual(context.transactions, tuple(tx.data for tx in template.transactions))

    def test_mintime_and_timewarp_floor(self):
        template = make_template(height=2016)
        job, _ = build_job(template, settings(), 1, True)
        self.assertEqual((job.mintime, job.curtime), (template.mintime, template.curtime))
        self.assertEqual(json.loads(job.to_json())["mintime"], template.mintime)
        # The parent is dated 1000 s after the template's curtime: a block
        # opening a period may not be more than 600 s older (BIP94).
        floor = template.curtime + 1000 - 600
        job, _ = build_job(template, settings(), 1, True, time_floor=floor)
        self.assertEqual((job.mintime, job.curtime), (floor, floor))

    def test_version_override(self):
        job, _ = build_job(make_template(), settings(block_version=0x20000010), 1, False)
        self.assertEqual(job.version, 0x20000010)
        self.assertFalse(job.clean_jobs)

    def test_coinbaseaux_dropped_when_no_room(self):
        long_settings = settings()
        long_settings = attrs.evolve(long_settings, pool_name="p" * 40, coinbase_message="m" * 20)
        _, context = build_job(make_template(coinbaseaux=b"\xff" * 30), long_settings, 1, True)
        self.assertEqual(context.coinbaseaux, b"")
        self.assertTrue(context.coinbaseaux_dropped)
        _, context = build_job(make_template(coinbaseaux=b"\xff" * 4), long_settings, 1, True)
        self.assertEqual(context.coinbaseaux, b"\xff" * 4)

    def test_tag_check(self):
        check_coinbase_text("p" * 30, "m" * 30)
        self.assertRaises(ValueError, check_coinbase_text, "p" * (tag_room() - 1), "")
        check_coinbase_text("p" * (tag_room() - 2), "")


class EmptyJobTests(TestCase):

    def base(self, network=MAINNET, height=209998):
        _, context = build_job(make_template(height=height), settings(network=network), 5, True)
        return context

    def test_subsidy_at_halving(self):
        s = settings([Recipient(A, 0.5)], network=MAINNET)
        prev = b"\x42" * 32
        _, before = build_empty_job(self.base(), 209999, prev, 0x1D00FFFF, 1, s, 6, True)
        _, after = build_empty_job(self.base(), 210000, prev, 0x1D00FFFF, 1, s, 7, True)
        self.assertEqual(outputs(before), [(25 * 10**8, A), (25 * 10**8, MAIN)])
        self.assertEqual(outputs(after), [(1_250_000_000, A), (1_250_000_000, MAIN)])

    def test_fields(self):
        base = self.base(REGTEST, 500)
        prev = b"\x42" * 32
        job, context = build_empty_job(base, 502, prev, 0x207FFFFF, 1_700_000_100,
                                       settings(), 8, True)
        self.assertEqual((job.height, job.prevhash, job.nbits, job.curtime),
                         (502, hash_to_display_hex(prev), 0x207FFFFF, 1_700_000_100))
        self.assertEqual(job.version, base.version)
        self.assertEqual(job.merkle_branch, ())
        self.assertFalse(job.segwit)
        self.assertEqual(context.transactions, ())
        self.assertTrue(context.empty)
        self.assertEqual(len(outputs(context)), 1)
        block = parse_block(check_candidate(solve(context), context).block)
        self.assertEqual(len(block.transactions), 1)
        self.assertTrue(block.check_merkle_root())


class CandidateTests(TestCase):

    def setUp(self):
        self.job, self.context = build_job(make_template(n_txs=5), settings(), 1, True)

    def test_good_block(self):
        found = solve(self.context)
        candidate = check_candidate(found, self.context)
        self.assertEqual((candidate.block_hash, candidate.height, candidate.job_id),
                         (found.block_hash, 1000, "1"))
        block = parse_block(candidate.block)
        self.assertEqual(block.hash(), found.block_hash)
        self.assertEqual(len(block.transactions), 6)
        self.assertTrue(block.check_merkle_root())
        self.assertTrue(block.check_witness_commitment())
        self.assertEqual(block.coinbase_height(), 1000)

    def test_legacy_block_without_witness(self):
        _, context = build_job(make_template(n_txs=2, segwit=False), settings(), 1, True)
        block = parse_block(check_candidate(solve(context), context).block)
        self.assertFalse(block.transactions[0].has_witness())

    def test_block_joined_from_pre_serialised_transactions_is_assemble_block(self):
        """The join of the job's ready bytes and hex is exactly ``assemble_block``'s block."""
        for segwit, n_txs in ((True, 5), (False, 2), (True, 0), (True, 300)):
            _, context = build_job(make_template(n_txs=n_txs, segwit=segwit), settings(), 1, True)
            found = solve(context)
            candidate = check_candidate(found, context)
            expected = assemble_block(found.header, found.coinbase, context.transactions, context.segwit)
            self.assertEqual(candidate.block, expected)
            self.assertEqual(candidate.block_hex, expected.hex().encode())

    def test_context_transactions_serialised_once(self):
        self.assertEqual(self.context.transactions_bytes, b"".join(self.context.transactions))
        self.assertEqual(self.context.transactions_hex, self.context.transactions_bytes.hex().encode())

    def assertBad(self, found, text, context=None):
        with self.assertRaises(BadCandidate) as e:
            check_candidate(found, context or self.context)
        self.assertIn(text, str(e.exception))

    def test_reported_hash_must_match(self):
        found = solve(self.context)
        self.assertBad(attrs.evolve(found, block_hash=bytes(32)), "reported")

    def test_target(self):
        found = solve(self.context)
        for nonce in range(1000):
            header = found.header[:76] + nonce.to_bytes(4, "little")
            h = sha256d(header)
            if hash_to_int(h) > self.context.target:
                break
        self.assertBad(attrs.evolve(found, header=header, block_hash=h), "target")

    def test_other_parent(self):
        context = attrs.evolve(self.context, prevhash=b"\x01" * 32)
        found = solve(context)
        self.assertBad(found, "another block")

    def test_coinbase_must_be_the_jobs(self):
        other = build_job(make_template(n_txs=5),
                          settings([Recipient(A, 0.9)]), 2, True)[1]
        found = solve(self.context, coinbase=coinbase_for(other))
        self.assertBad(found, "coinbase halves")

    def test_merkle_root(self):
        found = solve(self.context)
        good = coinbase_for(self.context)
        other = coinbase_for(self.context, extranonce=b"\1" * 12)
        self.assertNotEqual(good, other)
        self.assertBad(attrs.evolve(found, coinbase=other), "merkle root")

    def test_height(self):
        context = attrs.evolve(self.context, height=1001)
        self.assertBad(solve(self.context), "height", context)


class SignetTests(TestCase):
    """Templates whose rules name signet (a custom ``-signetchallenge`` signet)."""

    def template(self, challenge=OP_TRUE_CHALLENGE, **changes):
        return attrs.evolve(make_template(**changes), rules=("csv", "!segwit", "!signet"),
                            signet_challenge=challenge)

    def check_block(self, context):
        block = parse_block(check_candidate(solve(context), context).block)
        self.assertTrue(block.check_merkle_root())
        self.assertTrue(block.check_witness_commitment())
        check_signet_block(block, OP_TRUE_CHALLENGE)
        script = commitment_output_script(block)
        self.assertEqual(find_solution(script), (b"", ()))
        return block

    def test_op_true_block_passes_our_checks(self):
        job, context = build_job(self.template(n_txs=4), settings(), 1, True)
        self.assertTrue(job.segwit)
        self.assertEqual(context.signet_challenge, OP_TRUE_CHALLENGE)
        self.assertEqual(len(self.check_block(context).transactions), 5)

    def test_commitment_even_when_disabled_by_config(self):
        _, context = build_job(self.template(), settings(segwit_commitment=False), 1, True)
        self.check_block(context)

    def test_empty_block_on_a_signet(self):
        _, base = build_job(self.template(height=500), settings(), 1, True)
        _, context = build_empty_job(base, 502, b"\x42" * 32, 0x207FFFFF, 1_700_000_100,
                                     settings(), 8, True)
        self.assertEqual(len(self.check_block(context).transactions), 1)

    def test_a_challenge_needing_a_signature_makes_no_job(self):
        # The default signet's 1-of-2 multisig challenge.
        challenge = bytes.fromhex(
            "512103ad5e0edad18cb1f0fc0d28a3d4f1f3e445640337489abb10404f2d1e086be430210359ef50"
            "21964fe22d6f8e05b2463c9540ce96883fe3b278760f048f5189f2e6c452ae")
        e = self.assertRaises(ValueError, build_job, self.template(challenge), settings(), 1, True)
        self.assertIn("without its signer", str(e))

    def test_a_block_without_the_solution_is_no_candidate(self):
        _, context = build_job(self.template(), settings(), 1, True)
        # A job whose coinbase lost the commitment (a bug elsewhere) is caught.
        plain, _ = build_job(make_template(segwit=False), settings(), 1, True)
        broken = attrs.evolve(context, coinbase2=bytes.fromhex(plain.coinbase2))
        e = self.assertRaises(BadCandidate, check_candidate, solve(broken), broken)
        self.assertIn("signet", str(e))
