"""Tests for viabtc.stratum.duplicates."""

from twisted.trial.unittest import TestCase

from viabtc.stratum.duplicates import DuplicateFilter


class DuplicateFilterTests(TestCase):
    def test_second_sighting_is_a_duplicate(self):
        dups = DuplicateFilter()
        self.assertFalse(dups.seen("1", b"a"))
        self.assertTrue(dups.seen("1", b"a"))
        self.assertFalse(dups.seen("2", b"a"))
        self.assertEqual(len(dups), 2)

    def test_drop_job_frees_its_set(self):
        dups = DuplicateFilter()
        dups.seen("1", b"a")
        dups.seen("1", b"b")
        dups.seen("2", b"c")
        dups.drop_job("1")
        self.assertEqual(len(dups), 1)
        self.assertFalse(dups.seen("1", b"a"))
        dups.drop_job("unknown")

    def test_cap_evicts_oldest_job_first(self):
        dups = DuplicateFilter(max_entries=4)
        for h in (b"a", b"b"):
            dups.seen("old", h)
        for h in (b"c", b"d"):
            dups.seen("new", h)
        self.assertFalse(dups.seen("new", b"e"))
        self.assertEqual(len(dups), 3)
        self.assertTrue(dups.seen("new", b"c"))
        self.assertFalse(dups.seen("old", b"a"))

    def test_memory_stays_bounded_with_one_job(self):
        dups = DuplicateFilter(max_entries=100)
        for i in range(1000):
            dups.seen("only", i.to_bytes(4, "little"))
            self.assertLessEqual(len(dups), 100)
        self.assertTrue(dups.seen("only", (999).to_bytes(4, "little")))

    def test_invalid_cap(self):
        self.assertRaises(ValueError, DuplicateFilter, 0)
