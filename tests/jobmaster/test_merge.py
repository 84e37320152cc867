"""
``viabtc.jobmaster.merge`` and jobs that merge-mine, pure: the work over
several aux blocks, the job carrying the commitment and the aux targets as
the seed's job JSON does, and a share solved for such a job turned into an
AuxPoW that the stand-in daemon's independent check accepts.
"""

import json

from twisted.trial.unittest import TestCase

from viabtc.bitcoin.auxpow import COMMITMENT_SIZE, MERGED_MINING_HEADER, expected_index
from viabtc.bitcoin.coinbase import tag_budget
from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.network import REGTEST
from viabtc.bitcoin.transaction import Transaction, TxOut
from viabtc.jobmaster.candidate import BadCandidate, check_candidate
from viabtc.jobmaster.jobs import JobSettings, Payout, build_empty_job, build_job
from viabtc.jobmaster.merge import (
    AuxBlock, RskWork, VcashWork, aux_proof, merge, rsk_submission, vcash_submission,
)
from viabtc.jobmaster.messages import parse_found_block
from viabtc.stratum.job import Job, PreparedJob

from tests.auxdaemon import RskStandIn, VcashStandIn, verify_auxpow
from tests.jobmaster.mining import solve
from tests.jobmaster.templates import aux_block, make_template

EASY = 2**256 - 1


def settings(**kw):
    kw.setdefault("payout", Payout(bytes.fromhex("0014") + bytes(20)))
    kw.setdefault("network", REGTEST)
    kw.setdefault("pool_name", "viabtc")
    kw.setdefault("coinbase_message", "mm")
    return JobSettings(**kw)


class AuxBlockTests(TestCase):
    def test_from_namecoin_reply(self):
        reply = {"hash": "AB" * 32, "chainid": 1, "previousblockhash": "00" * 32,
                 "coinbasevalue": 5000000000, "bits": "207fffff", "height": 101,
                 "_target": "ff" * 31 + "7f"}
        block = AuxBlock.from_reply("NMC", reply)
        self.assertEqual(block.display_hash, "ab" * 32)
        self.assertEqual(block.block_hash, bytes.fromhex("ab" * 32)[::-1])
        self.assertEqual(block.target, int("7f" + "ff" * 31, 16))
        self.assertEqual(block.height, 101)
        # The job's entry: display-order (big-endian) target hex, as the seed sends it.
        self.assertEqual(block.aux().to_dict(), {"aux_name": "NMC", "aux_hash": "ab" * 32,
                                                 "aux_target": "7f" + "ff" * 31})

    def test_bad_replies(self):
        good = {"hash": "ab" * 32, "chainid": 1, "bits": "207fffff"}
        for bad in ({}, dict(good, hash="ab"), dict(good, chainid="1"), dict(good, chainid=True),
                    {"hash": "ab" * 32, "chainid": 1}, [1]):
            self.assertRaises(ValueError, AuxBlock.from_reply, "NMC", bad)


class MergeTests(TestCase):
    def test_two_chains(self):
        nmc, sys_ = aux_block("NMC", 1), aux_block("SYS", 2)
        work, left_out = merge([nmc, sys_], 4, 0)
        self.assertEqual(left_out, ())
        self.assertEqual([(e.block.name, e.slot) for e in work.entries], [("NMC", 3), ("SYS", 0)])
        self.assertEqual(work.commitment[:4], MERGED_MINING_HEADER)
        self.assertEqual(work.commitment[4:36], work.root[::-1])
        self.assertEqual(len(work.commitment), COMMITMENT_SIZE)
        self.assertEqual(work.entry("SYS").block, sys_)
        self.assertIsNone(work.entry("BTC"))
        self.assertEqual([a.aux_name for a in work.auxes()], ["NMC", "SYS"])

    def test_collision_leaves_the_later_chain_out(self):
        self.assertEqual(expected_index(0, 1, 4), expected_index(0, 5, 4))
        work, left_out = merge([aux_block("NMC", 1), aux_block("XYZ", 5)], 4, 0)
        self.assertEqual([e.block.name for e in work.entries], ["NMC"])
        self.assertEqual([b.name for b in left_out], ["XYZ"])
        self.assertEqual(merge([], 4, 0), (None, ()))


class MergedJobTests(TestCase):
    def job(self, blocks, size=4, nonce=0, template=None, **kw):
        work, _ = merge(blocks, size, nonce)
        template = template or make_template(coinbaseaux=bytes.fromhex("0badcafe"))
        return build_job(template, settings(**kw), 1, True, merge=work)

    def test_job_carries_commitment_and_aux_targets(self):
        nmc = aux_block("NMC", 1, target=0x0000FFFF << 200)
        job, context = self.job([nmc, aux_block("SYS", 2)])
        aux = bytes.fromhex(job.coinbaseaux)
        self.assertEqual(aux, context.merge.commitment + bytes.fromhex("0badcafe"))
        body = json.loads(job.to_json())
        self.assertEqual(body["aux_target"], "")
        self.assertEqual(body["auxes"][0], {"aux_name": "NMC", "aux_hash": nmc.display_hash,
                                            "aux_target": format(0x0000FFFF << 200, "064x")})
        self.assertEqual(len(body["auxes"]), 2)
        # The seed's bytes: compact JSON, its key order, auxes last.
        self.assertIn(b',"aux_target":"","merkle_branch":[', job.to_json())
        self.assertIn(('"auxes":[{"aux_name":"NMC","aux_hash":"%s","aux_target":"%064x"},'
                       % (nmc.display_hash, 0x0000FFFF << 200)).encode(), job.to_json())
        self.assertIn(b'"],"auxes":[{"aux_name"', job.to_json())
        # What a gateway (ours or the seed's) reads back.
        prepared = PreparedJob.prepare(Job.from_json(job.to_json()), 0.0)
        self.assertEqual([t.target for t in prepared.aux_targets], [0x0000FFFF << 200, EASY])

    def test_without_merge_no_auxes(self):
        job, context = build_job(make_template(), settings(), 1, True)
        self.assertEqual(job.auxes, ())
        self.assertIsNone(context.merge)

    def test_template_coinbaseaux_dropped_before_the_commitment(self):
        # A tag that fits beside the commitment but not beside both.
        room = tag_budget(2**31 - 1, bytes(COMMITMENT_SIZE), agent=True)
        name = "p" * (room - 2)
        job, context = self.job([aux_block("NMC", 1)], pool_name=name, coinbase_message="")
        self.assertEqual(bytes.fromhex(job.coinbaseaux), context.merge.commitment)
        self.assertTrue(context.coinbaseaux_dropped)
        self.assertEqual(len(job.auxes), 1)

    def test_empty_job_keeps_the_commitment(self):
        _, base = self.job([aux_block("NMC", 1)])
        work, _ = merge([aux_block("NMC", 1, seed="next")], 4, 0)
        job, context = build_empty_job(base, base.height + 1, sha256d(b"hint"), base.nbits,
                                       1_700_000_100, settings(), 2, True, merge=work)
        self.assertEqual(bytes.fromhex(job.coinbaseaux), work.commitment + bytes.fromhex("0badcafe"))
        self.assertIs(context.merge, work)


class AuxProofTests(TestCase):
    """A share for a merged job, as a gateway reports it, proved to each aux chain."""

    def test_share_becomes_an_accepted_auxpow_for_each_chain(self):
        blocks = [aux_block("NMC", 1), aux_block("SYS", 2), aux_block("ELA", 1224)]
        work, _ = merge(blocks, 8, 7)
        self.assertEqual(len(work.entries), 3)
        job, context = build_job(make_template(n_txs=5), settings(), 1, True, merge=work)
        body = solve(job)
        for entry in work.entries:
            found = parse_found_block(json.dumps(dict(body, type="aux", name=entry.block.name)))
            check_candidate(found, context, target=entry.block.target)
            auxpow = aux_proof(found, context, entry)
            self.assertIsNone(verify_auxpow(auxpow.serialize(), entry.block.block_hash,
                                            entry.block.chain_id, entry.block.target))
            # The coinbase is the parent's, the branch the job's.
            self.assertEqual(auxpow.coinbase, found.coinbase)
            self.assertEqual(auxpow.coinbase_branch, context.branch)
            script = Transaction.parse(auxpow.coinbase)[0].inputs[0].script_sig
            self.assertEqual(script.count(MERGED_MINING_HEADER), 1)
            self.assertLessEqual(len(script), 100)

    def test_share_missing_the_aux_target_is_refused(self):
        hard = aux_block("NMC", 1, target=1)
        work, _ = merge([hard], 1, 0)
        job, context = build_job(make_template(), settings(), 1, True, merge=work)
        found = parse_found_block(json.dumps(dict(solve(job), type="aux", name="NMC")))
        self.assertRaises(BadCandidate, check_candidate, found, context, target=hard.target)
        self.assertRaises(ValueError, aux_proof, found, context, work.entries[0])

    def test_stand_in_refuses_what_namecoin_refuses(self):
        work, _ = merge([aux_block("NMC", 1)], 4, 0)
        job, context = build_job(make_template(), settings(), 1, True, merge=work)
        found = parse_found_block(json.dumps(dict(solve(job), type="aux", name="NMC")))
        entry = work.entries[0]
        raw = aux_proof(found, context, entry).serialize()
        self.assertIsNone(verify_auxpow(raw, entry.block.block_hash, 1, EASY))
        self.assertIn("wrong index", verify_auxpow(raw, entry.block.block_hash, 2, EASY))
        self.assertIn("missing chain merkle root", verify_auxpow(raw, sha256d(b"x"), 1, EASY))
        self.assertIn("high-hash", verify_auxpow(raw, entry.block.block_hash, 1, 1))
        self.assertEqual(verify_auxpow(raw[:-1], entry.block.block_hash, 1, EASY), "bad-auxpow-encoding")


def rsk_work(stand_in):
    reply = {"blockHashForMergedMining": "0x" + stand_in.work_hash().hex(),
             "target": "0x" + format(stand_in.target, "064x"), "parentBlockHash": "0x" + "11" * 32}
    return RskWork.from_reply("RSK", reply, stand_in.number + 1)


def vcash_work(stand_in):
    return VcashWork.from_reply("VCASH", {"height": stand_in.height,
                                          "cur_hash": stand_in.header_hash().hex(),
                                          "bits": stand_in.bits})


class RskVcashTests(TestCase):
    """RSK's and VCASH's outputs and submissions, checked by their stand-ins' plain checks."""

    def test_rsk_work_from_reply(self):
        work = RskWork.from_reply("RSK", {"blockHashForMergedMining": "0x" + "ab" * 32,
                                          "target": "0x5555" + "55" * 30}, 0x77)
        self.assertEqual(work.output(), TxOut(0, b"\x6a\x29RSKBLOCK:" + bytes.fromhex("ab" * 32)))
        self.assertEqual(len(work.output().script), 43)
        # The seed's auxes entry: the height mined (hex) as the "hash".
        self.assertEqual(work.aux().to_dict(), {"aux_name": "RSK", "aux_hash": "77",
                                                "aux_target": "5555" + "55" * 30})
        # A short target is padded: a gateway needs 64 hex digits (ref §12.14).
        short = RskWork.from_reply("RSK", {"blockHashForMergedMining": "ab" * 32, "target": "0xffff"}, 1)
        self.assertEqual(short.aux().aux_target, "0" * 60 + "ffff")
        for bad in ({}, {"blockHashForMergedMining": "0x12", "target": "0x1"},
                    {"blockHashForMergedMining": "ab" * 32, "target": "0x0"}):
            self.assertRaises(ValueError, RskWork.from_reply, "RSK", bad, 1)

    def test_vcash_work_from_reply(self):
        work = VcashWork.from_reply("VCASH", {"height": 5, "cur_hash": "cd" * 32, "bits": 0x1D00FFFF})
        self.assertEqual(work.output().script, bytes.fromhex("6a24b9e11b6d") + bytes.fromhex("cd" * 32))
        self.assertEqual(len(work.output().script), 38)
        self.assertEqual(work.aux().aux_target, format(0xFFFF << 208, "064x"))
        self.assertRaises(ValueError, VcashWork.from_reply, "VCASH", {"height": 5, "cur_hash": "cd"})

    def test_bad_block_hashes_named(self):
        for value, why in ((None, "blockHashForMergedMining is missing"),
                           ("0xzz" + "ab" * 31, "blockHashForMergedMining is not hex"),
                           ("0X" + "ab" * 31, "blockHashForMergedMining is not 32 bytes")):
            with self.assertRaises(ValueError) as e:
                RskWork.from_reply("RSK", {"blockHashForMergedMining": value, "target": "0x1"}, 1)
            self.assertEqual(str(e.exception), why)
        with self.assertRaises(ValueError) as e:
            VcashWork.from_reply("VCASH", {"height": 5, "cur_hash": "cd" * 31, "bits": 1})
        self.assertEqual(str(e.exception), "cur_hash is not 32 bytes")

    def test_outputs_in_the_seeds_order(self):
        rsk, vcash = RskStandIn(), VcashStandIn()
        work, _ = merge([aux_block("NMC", 1)], 4, 0, rsk_work(rsk), vcash_work(vcash))
        job, context = build_job(make_template(), settings(), 1, True, merge=work)
        tx = Transaction.parse(bytes.fromhex(job.coinbase1) + b"\x01\x00" + bytes.fromhex(job.coinbase2))[0]
        scripts = [out.script for out in tx.outputs]
        self.assertTrue(scripts[1].startswith(b"\x6a\x29RSKBLOCK:"))
        self.assertTrue(scripts[2].startswith(bytes.fromhex("6a24b9e11b6d")))
        self.assertTrue(scripts[3].startswith(bytes.fromhex("6a24aa21a9ed")))  # witness commitment last
        self.assertEqual([a.aux_name for a in job.auxes], ["NMC", "RSK", "VCASH"])
        # Empty-block jobs: RSK but no VCASH output (as the seed).
        empty, _ = build_empty_job(context, context.height + 1, sha256d(b"hint"), context.nbits,
                                   1_700_000_100, settings(), 2, True, merge=work)
        self.assertIn(b"RSKBLOCK:", bytes.fromhex(empty.coinbase2))
        self.assertNotIn(bytes.fromhex("b9e11b6d"), bytes.fromhex(empty.coinbase2))

    def test_rsk_alone_has_no_commitment(self):
        work, _ = merge([], 1, 0, rsk_work(RskStandIn()))
        job, context = build_job(make_template(coinbaseaux=b"\x01"), settings(), 1, True, merge=work)
        self.assertEqual(job.coinbaseaux, "01")
        self.assertEqual([a.aux_name for a in job.auxes], ["RSK"])

    def test_submissions_accepted_by_the_stand_ins(self):
        rsk, vcash = RskStandIn(), VcashStandIn()
        for n_txs in (0, 1, 2, 4, 6):
            work, _ = merge([], 1, 0, rsk_work(rsk), vcash_work(vcash))
            job, context = build_job(make_template(n_txs=n_txs), settings(), 1, True, merge=work)
            found = parse_found_block(json.dumps(dict(solve(job), type="aux", name="RSK")))
            params = rsk_submission(work.rsk, found, context)
            self.assertEqual(params[4], format(n_txs + 1, "x"))
            self.assertIsNone(rsk.check(*params))
            # The seed's count, without the coinbase, is refused whenever it
            # gives another tree height (here for 0, 1, 2 and 4 other transactions).
            def tree_height(count):
                return (count - 1).bit_length()

            if tree_height(n_txs) != tree_height(n_txs + 1):
                self.assertIsNotNone(rsk.check(*params[:4], format(n_txs, "x")))
            self.assertIsNone(vcash.check(vcash_submission(work.vcash, found, context)))
