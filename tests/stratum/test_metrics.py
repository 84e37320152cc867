"""The Stratum server's metric families, shared by the gateway and the mineragent."""

from twisted.trial.unittest import TestCase

from tests.scrape import Scrape

from viabtc.metrics import RoleMetrics
from viabtc.stratum.metrics import event_families, reject_reason, share_families


class ReasonTests(TestCase):
    def test_reject_reason(self):
        self.assertEqual(reject_reason(23), "low_difficulty")
        self.assertEqual(reject_reason(99), "code_99")


class FamilyTests(TestCase):
    def test_shares_and_events_from_one_counts_dict(self):
        counts = {"reject_21": 2, "reject_99": 1, "connection_new": 4, "share": 7}
        metrics = RoleMetrics("test")
        metrics.add(lambda: share_families(7, counts) + event_families("events", "Events.", counts, {"share"}))
        got = Scrape(metrics.render().decode())
        self.assertEqual(got.value("viabtc_shares_total", reason="", result="accepted"), 7)
        self.assertEqual(got.value("viabtc_shares_total", reason="job_not_found", result="rejected"), 2)
        self.assertEqual(got.value("viabtc_shares_total", reason="code_99", result="rejected"), 1)
        self.assertEqual(got.named("viabtc_events_total"), {frozenset({("event", "connection_new")}): 4})
