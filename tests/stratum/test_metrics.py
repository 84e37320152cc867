"""The Stratum server's metric families, shared by the gateway and the mineragent."""

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import TestCase

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
        got = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples}
        self.assertEqual(got[("viabtc_shares_total", (("reason", ""), ("result", "accepted")))], 7)
        self.assertEqual(got[("viabtc_shares_total", (("reason", "job_not_found"), ("result", "rejected")))], 2)
        self.assertEqual(got[("viabtc_shares_total", (("reason", "code_99"), ("result", "rejected")))], 1)
        self.assertEqual({k: v for k, v in got.items() if k[0] == "viabtc_events_total"},
                         {("viabtc_events_total", (("event", "connection_new"),)): 4})
