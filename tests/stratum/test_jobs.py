"""Tests for viabtc.stratum.jobs."""

from twisted.trial.unittest import TestCase

from viabtc.stratum.job import JobError
from viabtc.stratum.jobs import JobBook

from tests.stratum.jobs import prepared_job


class JobBookTests(TestCase):
    def test_current_and_lookup(self):
        book = JobBook()
        self.assertIsNone(book.current)
        first = prepared_job(job_id="1")
        second = prepared_job(job_id="2", clean_jobs=False)
        book.add(first)
        book.add(second)
        self.assertIs(book.current, second)
        self.assertIs(book.lookup("1"), first)
        self.assertIs(book.lookup("2"), second)
        self.assertIsNone(book.lookup("3"))
        self.assertFalse(book.is_stale("1"))
        self.assertEqual(len(book), 2)

    def test_clean_job_makes_earlier_jobs_stale(self):
        book = JobBook()
        book.add(prepared_job(job_id="1"))
        book.add(prepared_job(job_id="2", clean_jobs=False))
        book.add(prepared_job(job_id="3"))
        self.assertIsNone(book.lookup("1"))
        self.assertTrue(book.is_stale("1"))
        self.assertTrue(book.is_stale("2"))
        self.assertFalse(book.is_stale("3"))
        self.assertFalse(book.is_stale("9"))
        book.add(prepared_job(job_id="4"))
        self.assertFalse(book.is_stale("1"))
        self.assertTrue(book.is_stale("3"))

    def test_reused_id_after_clean_is_live(self):
        book = JobBook()
        book.add(prepared_job(job_id="1"))
        again = prepared_job(job_id="1")
        book.add(again)
        self.assertIs(book.lookup("1"), again)
        self.assertFalse(book.is_stale("1"))

    def test_duplicate_live_id_refused(self):
        book = JobBook()
        book.add(prepared_job(job_id="1"))
        self.assertRaises(JobError, book.add, prepared_job(job_id="1", clean_jobs=False))

    def test_max_jobs(self):
        book = JobBook(max_jobs=2)
        book.add(prepared_job(job_id="1"))
        book.add(prepared_job(job_id="2", clean_jobs=False))
        book.add(prepared_job(job_id="3", clean_jobs=False))
        self.assertIsNone(book.lookup("1"))
        self.assertEqual(len(book), 2)

    def test_duplicates_follow_jobs(self):
        book = JobBook()
        first = prepared_job(job_id="1")
        book.add(first)
        self.assertFalse(book.is_duplicate(first, b"h"))
        self.assertTrue(book.is_duplicate(first, b"h"))
        book.add(prepared_job(job_id="2"))
        self.assertEqual(len(book.duplicates), 0)
