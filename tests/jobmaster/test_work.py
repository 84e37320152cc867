"""Tests for viabtc.jobmaster.work: the job sequence and the two modes."""

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.network import REGTEST
from viabtc.jobmaster.jobs import JobSettings, Payout
from viabtc.jobmaster.messages import HeightHint
from viabtc.jobmaster.nextbits import ChainFacts
from viabtc.jobmaster.merge import merge
from viabtc.jobmaster.work import MAX_JOBS, Work

from tests.jobmaster.templates import aux_block, make_template

SETTINGS = JobSettings(payout=Payout(bytes.fromhex("0014") + bytes(20)), network=REGTEST)


def facts_for(template):
    return ChainFacts(REGTEST, template.height - 1, template.previous_hash, template.bits,
                      template.curtime - 600, template.bits)


class WorkCase(TestCase):
    """A ``Work`` on a clock, recording what it publishes and requests."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.published = []
        self.requests = []
        self.work = Work(SETTINGS, self.clock, self.published.append, self.requests.append,
                         rebroadcast_timeout=50, spv_timeout=30)


class WorkTests(WorkCase):

    def jobs(self):
        return [(c.job.job_id, c.job.height, c.job.clean_jobs, c.empty) for c in self.published]

    def test_first_template_is_a_clean_job(self):
        self.work.template_arrived(make_template(height=10), new_tip=True)
        self.assertEqual(self.jobs(), [("1", 10, True, False)])
        self.assertIs(self.work.lookup("1"), self.work.current)

    def test_refresh_cycle(self):
        template = make_template(height=10)
        self.work.template_arrived(template, new_tip=True)
        self.clock.advance(5)
        self.work.template_arrived(make_template(height=10, n_txs=4), new_tip=False)
        self.assertEqual(len(self.published), 1)  # too soon after the last job
        self.clock.advance(44)
        self.work.tick()
        self.assertEqual(self.requests, [])
        self.clock.advance(1)
        self.work.tick()
        self.work.tick()
        self.assertEqual(self.requests, [False])
        self.work.template_arrived(make_template(height=10, n_txs=5), new_tip=False)
        self.assertEqual(self.jobs(), [("1", 10, True, False), ("2", 10, False, False)])
        self.assertEqual(len(self.work), 2)

    def test_new_tip_clears_jobs(self):
        self.work.template_arrived(make_template(height=10), new_tip=True)
        self.clock.advance(1)
        self.work.template_arrived(make_template(height=11), new_tip=True)
        self.assertEqual(self.jobs(), [("1", 10, True, False), ("2", 11, True, False)])
        self.assertIsNone(self.work.lookup("1"))
        self.assertEqual(len(self.work), 1)

    def test_out_of_order_template_ignored(self):
        self.work.template_arrived(make_template(height=11), new_tip=True)
        with capturedLogs() as events:
            self.work.template_arrived(make_template(height=10), new_tip=False)
        self.assertEqual(len(self.published), 1)
        self.assertEqual(self.work.template.height, 11)
        self.assertTrue(any("out of order" in e["log_format"] for e in events))

    def test_job_count_is_bounded(self):
        template = make_template(height=10, n_txs=0)
        self.work.template_arrived(template, new_tip=True)
        for _ in range(MAX_JOBS + 5):
            self.clock.advance(60)
            self.work.template_arrived(template, new_tip=False)
        self.assertEqual(len(self.work), MAX_JOBS)
        self.assertIsNone(self.work.lookup("1"))

    def test_job_build_failure_is_critical_not_raised(self):
        work = Work(JobSettings(payout=Payout(None), network=REGTEST), self.clock,
                    self.published.append, self.requests.append, 50, 30)
        with capturedLogs() as events:
            work.template_arrived(make_template(), new_tip=True)
        self.assertEqual(self.published, [])
        self.assertTrue(any(e["log_level"] == LogLevel.critical for e in events))


class TimewarpFloorTests(WorkCase):
    """BIP94's floor, once the parent's time is known from chain facts."""

    def test_full_job_at_a_period_start(self):
        first = make_template(height=2016, curtime=1_700_000_000)
        self.work.template_arrived(first, new_tip=True)
        self.assertEqual(self.published[-1].job.mintime, first.mintime)
        # The parent is dated 2000 s after the template's curtime.
        self.work.facts_arrived(ChainFacts(REGTEST, 2015, first.previous_hash, first.bits,
                                           first.curtime + 2000, first.bits))
        self.clock.advance(60)
        again = make_template(height=2016, prevhash=first.previous_hash, curtime=1_700_000_060)
        self.work.template_arrived(again, new_tip=False)
        job = self.published[-1].job
        self.assertEqual((job.mintime, job.curtime), (first.curtime + 1400,) * 2)

    def test_empty_job_at_a_period_start(self):
        template = make_template(height=2015)
        self.work.template_arrived(template, new_tip=True)
        self.work.facts_arrived(facts_for(template))
        hint = HeightHint(2015, int(self.clock.seconds()) - 5, sha256d(b"block 2015"))
        self.assertIsNone(self.work.hint_arrived(hint))
        job = self.published[-1].job
        self.assertEqual((job.height, job.mintime), (2016, hint.curtime - 600))
        self.assertGreaterEqual(job.curtime, job.mintime)


class EmptyModeTests(WorkCase):

    def setUp(self):
        super().setUp()
        self.template = make_template(height=10)
        self.work.template_arrived(self.template, new_tip=True)
        self.work.facts_arrived(facts_for(self.template))
        self.hinted = sha256d(b"block 10")

    def hint(self, height=10, prevhash=None):
        return HeightHint(height, int(self.clock.seconds()) - 5, prevhash or self.hinted)

    def test_hint_checks(self):
        self.assertIn("next block", self.work.hint_arrived(self.hint(11)))
        self.assertIn("next block", self.work.hint_arrived(self.hint(9)))
        self.work.facts = None
        self.assertIn("facts", self.work.hint_arrived(self.hint()))
        self.assertEqual(len(self.published), 1)
        self.assertEqual(self.work.mode, "normal")

    def test_disabled(self):
        work = Work(SETTINGS, self.clock, self.published.append, self.requests.append, 50, 0)
        work.template_arrived(self.template, new_tip=True)
        work.facts_arrived(facts_for(self.template))
        self.assertIn("disabled", work.hint_arrived(self.hint()))

    def test_hint_starts_empty_mode(self):
        self.assertIsNone(self.work.hint_arrived(self.hint()))
        self.assertEqual(self.work.mode, "empty")
        context = self.published[-1]
        self.assertEqual((context.job.height, context.prevhash, context.empty, context.job.clean_jobs),
                         (11, self.hinted, True, True))
        self.assertEqual(context.nbits, self.template.bits)
        self.assertEqual(len(self.work), 1)
        # The same height again is not higher than the last hint.
        self.assertIn("not higher", self.work.hint_arrived(self.hint()))

    def test_lagging_template_keeps_empty_job(self):
        self.work.hint_arrived(self.hint())
        self.clock.advance(1)
        self.work.template_arrived(make_template(height=10, n_txs=7), new_tip=False)
        self.assertEqual(len(self.published), 2)
        self.assertEqual(self.work.mode, "empty")

    def test_catch_up_on_the_hinted_block_is_not_clean(self):
        self.work.hint_arrived(self.hint())
        self.clock.advance(1)
        self.work.template_arrived(make_template(height=11, prevhash=self.hinted), new_tip=True)
        self.assertEqual(self.work.mode, "normal")
        last = self.published[-1]
        self.assertEqual((last.job.height, last.empty, last.job.clean_jobs), (11, False, False))
        self.assertEqual(len(self.work), 2)  # the empty job stays valid

    def test_switches_logged_with_source_and_duration(self):
        with capturedLogs() as events:
            self.work.hint_arrived(self.hint(), "127.0.0.1:5100")
            self.clock.advance(2.5)
            self.work.template_arrived(make_template(height=11, prevhash=self.hinted), new_tip=True)
        lines = [e["log_format"].format(**e) for e in events if e.get("role") == "jobmaster"]
        self.assertIn("empty-block mode: block 10 announced by 127.0.0.1:5100, node behind", lines)
        self.assertIn("full templates again after 2.500 s of empty blocks on block 10 "
                      "(announced by 127.0.0.1:5100)", lines)

    def test_catch_up_on_another_block_is_clean(self):
        self.work.hint_arrived(self.hint())
        self.clock.advance(1)
        self.work.template_arrived(make_template(height=11, prevhash=b"\x07" * 32), new_tip=True)
        last = self.published[-1]
        self.assertEqual((last.job.height, last.empty, last.job.clean_jobs), (11, False, True))
        self.assertEqual(len(self.work), 1)

    def test_timeout(self):
        self.work.hint_arrived(self.hint())
        with capturedLogs() as events:
            self.clock.advance(30)
        self.assertEqual(self.work.mode, "normal")
        self.assertEqual(self.requests, [True])
        self.assertTrue(any(e["log_level"] == LogLevel.critical and "timeout" in e["log_format"]
                            for e in events))
        # The node's template (still at height 10) now makes a clean full job.
        self.work.template_arrived(make_template(height=10, n_txs=2), new_tip=False)
        last = self.published[-1]
        self.assertEqual((last.job.height, last.empty, last.job.clean_jobs), (10, False, True))

    def test_stop_cancels_the_timeout(self):
        self.work.hint_arrived(self.hint())
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.work.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.work.mode, "empty")
        self.work.stop()  # twice is harmless

    def test_refresh_in_empty_mode(self):
        self.work = Work(SETTINGS, self.clock, self.published.append, self.requests.append,
                         rebroadcast_timeout=50, spv_timeout=120)
        self.work.template_arrived(self.template, new_tip=True)
        self.work.facts_arrived(facts_for(self.template))
        self.work.hint_arrived(self.hint())
        self.clock.advance(25)
        self.work.tick()
        self.assertEqual(len(self.published), 3)
        self.clock.advance(25)
        self.work.tick()
        self.assertEqual(self.requests, [])
        last = self.published[-1]
        self.assertEqual((last.job.height, last.empty, last.job.clean_jobs), (11, True, False))
        self.assertEqual(last.job.curtime, int(self.clock.seconds()))
        self.assertEqual(len(self.work), 2)


class MergedWorkTests(TestCase):
    """``Work`` with aux chains: every job commits to the merge of its time."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.published = []
        self.blocks = [aux_block("NMC", 1)]
        self.work = Work(SETTINGS, self.clock, self.published.append, lambda clean: None,
                         rebroadcast_timeout=50, spv_timeout=30,
                         merge=lambda: merge(self.blocks, 4, 0)[0] if self.blocks else None)

    def test_aux_change_makes_a_job_at_once(self):
        self.work.template_arrived(make_template(height=10), new_tip=True)
        self.assertEqual([a.aux_name for a in self.published[0].job.auxes], ["NMC"])
        self.clock.advance(1)
        self.blocks = [aux_block("NMC", 1, seed="next"), aux_block("SYS", 2)]
        self.work.aux_changed()
        self.assertEqual(len(self.published), 2)
        job = self.published[1].job
        self.assertFalse(job.clean_jobs)
        self.assertEqual([a.aux_name for a in job.auxes], ["NMC", "SYS"])
        self.assertEqual(job.prevhash, self.published[0].job.prevhash)
        # The older job keeps its own merge, for shares still reported for it.
        self.assertIsNot(self.work.lookup("1").merge, self.work.lookup("2").merge)
        # A dead aux daemon: the next job has no aux part at all.
        self.blocks = []
        self.work.aux_changed()
        self.assertEqual(self.published[2].job.auxes, ())
        self.assertEqual(self.published[2].job.coinbaseaux, "")

    def test_no_job_yet(self):
        self.work.aux_changed()
        self.assertEqual(self.published, [])

    def test_empty_mode_refreshes_the_empty_job(self):
        template = make_template(height=10)
        self.work.template_arrived(template, new_tip=True)
        self.work.facts_arrived(facts_for(template))
        reason = self.work.hint_arrived(HeightHint(10, template.curtime + 1, sha256d(b"hinted")))
        self.assertIsNone(reason)
        self.blocks = [aux_block("NMC", 1, seed="next")]
        self.work.aux_changed()
        last = self.published[-1]
        self.assertTrue(last.empty)
        self.assertEqual(last.job.auxes[0].aux_hash, self.blocks[0].display_hash)
