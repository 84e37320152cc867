"""Tests for viabtc.stratum.job."""

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.target import bits_to_target
from viabtc.stratum.job import Aux, Job, JobError, PreparedJob, job_id_number, notify_prevhash

from tests.stratum.jobs import HARD_BITS, PREVHASH, job_dict, make_job

AUX = {"aux_name": "NMC", "aux_hash": "ab" * 32, "aux_target": "00000000ffff" + "00" * 26}


class JobJSONTests(TestCase):
    def test_round_trip(self):
        body = job_dict(auxes=[AUX], clean_jobs=False)
        job = Job.from_json(json.dumps(body))
        self.assertEqual(job.job_id, "1a")
        self.assertEqual(job.auxes, (Aux("NMC", "ab" * 32, AUX["aux_target"]),))
        self.assertEqual(Job.from_json(job.to_json()), job)
        self.assertEqual(json.loads(job.to_json()), body)

    def test_compact_and_seed_key_order(self):
        raw = make_job().to_json()
        self.assertNotIn(b" ", raw)
        keys = list(json.loads(raw))
        self.assertEqual(keys[:3], ["job_id", "version", "curtime"])
        self.assertEqual(keys[-2:], ["merkle_branch", "auxes"])

    def test_accepts_bytes_str_and_dict(self):
        body = job_dict()
        expected = Job.from_json(body)
        self.assertEqual(Job.from_json(json.dumps(body)), expected)
        self.assertEqual(Job.from_json(json.dumps(body).encode()), expected)

    def test_auxes_optional(self):
        body = job_dict()
        del body["auxes"]
        self.assertEqual(Job.from_json(body).auxes, ())

    def test_optional_keys_of_ours(self):
        job = Job.from_json(job_dict(segwit=True, network="regtest"))
        self.assertEqual((job.segwit, job.network), (True, "regtest"))
        self.assertEqual(json.loads(job.to_json())["network"], "regtest")
        self.assertNotIn(b"segwit", make_job().to_json())
        self.assertEqual(make_job(mintime=5).mintime, 5)
        self.assertNotIn(b"mintime", make_job().to_json())

    def test_every_key_is_required(self):
        for key in job_dict():
            if key == "auxes":
                continue
            body = job_dict()
            del body[key]
            with self.assertRaises(JobError) as e:
                Job.from_json(body)
            self.assertIn(key, str(e.exception))

    def test_invalid_fields(self):
        bad = {
            "job_id": ["", "12345", "xyz", 1],
            "version": ["1", -1, 2**32, True, 1.5],
            "curtime": ["1", -5, 2**32],
            "nbits": [None, 2**32],
            "height": [-1, 2**31, "5"],
            "prevhash": ["00" * 31, "zz" * 32, 5],
            "target": ["0" * 63, None],
            "pool_name": [None, 3],
            "coinbase_message": [[]],
            "coinbase_account": [1, "true"],
            "coinbaseaux": ["abc", "gg", None],
            "coinbase1": ["", "0", 12],
            "coinbase2": ["", "xx"],
            "clean_jobs": [0, None],
            "main_name": [None],
            "aux_target": ["00" * 31, None],
            "merkle_branch": ["ab" * 32, ["ab" * 31], [5], None],
            "auxes": [{}, [5], [{"aux_name": "x", "aux_hash": "y"}], [dict(AUX, aux_target="00" * 31)]],
            "segwit": ["yes"],
            "network": [1],
            "mintime": ["5", -1, 2**32],
        }
        for key, values in bad.items():
            for value in values:
                with self.assertRaises(JobError, msg=f"{key}={value!r}") as e:
                    Job.from_json(job_dict(**{key: value}))
                self.assertIn(key, str(e.exception))

    def test_read_json_drops_only_bad_auxes_and_optional_keys(self):
        """From another host, a bad aux or optional key costs only itself; ``from_json`` still refuses it."""
        other = dict(AUX, aux_name="other")
        body = job_dict(auxes=[AUX, {"aux_name": 5}, "x", other], network=7, segwit=True)
        job, dropped = Job.read_json(body)
        self.assertEqual((job.auxes, job.network, job.segwit), (Job.from_json(job_dict(auxes=[AUX, other])).auxes,
                                                                None, True))
        self.assertEqual(dropped, ["auxes[1].aux_name: expected str, got int", "auxes[2]: expected an object",
                                   "network: expected str, got int"])
        job, dropped = Job.read_json(job_dict(auxes={}))
        self.assertEqual((job.auxes, dropped), ((), ["auxes: expected list, got dict"]))
        self.assertRaises(JobError, Job.from_json, body)
        self.assertRaises(JobError, Job.read_json, job_dict(prevhash="00"))

    def test_not_json(self):
        for body in (b"{", b"[]", "5", b"\xff"):
            self.assertRaises(JobError, Job.from_json, body)

    @given(st.dictionaries(st.sampled_from(sorted(job_dict())), st.none() | st.integers() | st.text()))
    def test_arbitrary_values_raise_only_job_error(self, changes):
        try:
            Job.from_json(job_dict(**changes))
        except JobError:
            pass


class JobIdTests(TestCase):
    def test_numbers(self):
        self.assertEqual(job_id_number("1"), 1)
        self.assertEqual(job_id_number("ffff"), 0xFFFF)
        self.assertEqual(job_id_number("A0"), 0xA0)

    def test_invalid(self):
        for job_id in ("", "10000", "-1", "0x1", " 1", None, 5):
            self.assertRaises(JobError, job_id_number, job_id)


class PreparedJobTests(TestCase):
    def test_fields(self):
        job = make_job()
        prepared = PreparedJob.prepare(job, 12.5)
        self.assertEqual(prepared.number, 0x1A)
        self.assertEqual(prepared.prevhash, bytes.fromhex(PREVHASH)[::-1])
        self.assertEqual(prepared.block_target, bits_to_target(HARD_BITS))
        self.assertEqual(prepared.branch, tuple(bytes.fromhex(h) for h in job.merkle_branch))
        self.assertEqual(prepared.coinbase2, bytes.fromhex(job.coinbase2))
        self.assertEqual(prepared.received, 12.5)
        self.assertTrue(prepared.clean)

    def test_notify_prevhash_swaps_words_of_internal_order(self):
        internal = bytes.fromhex(PREVHASH)[::-1]
        swapped = b"".join(internal[i : i + 4][::-1] for i in range(0, 32, 4))
        self.assertEqual(notify_prevhash(PREVHASH), swapped.hex())

    def test_notify_line(self):
        job = make_job(clean_jobs=False)
        prepared = PreparedJob.prepare(job, 0)
        line = prepared.notify_line(b"c0ffee")
        self.assertTrue(line.endswith(b"\n"))
        message = json.loads(line)
        self.assertEqual(message["id"], None)
        self.assertEqual(message["method"], "mining.notify")
        self.assertEqual(
            message["params"],
            [
                "1a",
                notify_prevhash(PREVHASH),
                "c0ffee",
                job.coinbase2,
                list(job.merkle_branch),
                "20000000",
                f"{HARD_BITS:08x}",
                f"{job.curtime:08x}",
                False,
            ],
        )
        self.assertIs(json.loads(prepared.notify_line(b"00", clean=True))["params"][-1], True)

    def test_target_must_match_nbits(self):
        job = make_job(target="00" * 32)
        self.assertRaises(JobError, PreparedJob.prepare, job, 0)

    def test_zero_target(self):
        job = make_job(nbits=0x1D000000, target="00" * 32)
        self.assertRaises(JobError, PreparedJob.prepare, job, 0)

    def test_aux_targets(self):
        prepared = PreparedJob.prepare(make_job(auxes=[AUX]), 0)
        self.assertEqual(prepared.aux_targets[0].target, int(AUX["aux_target"], 16))

    def test_invalid_nbits(self):
        job = make_job(nbits=0x04923456)
        self.assertRaises(JobError, PreparedJob.prepare, job, 0)
