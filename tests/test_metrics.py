"""The shared /metrics mechanism: per-role registries, routing beside the seed's answers, where it listens."""

import json

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from viabtc.config import ConfigError
from viabtc.metrics import MetricsOnly, RoleMetrics, WithMetrics, counter, link_families
from viabtc.tap import metrics_binds


def names(text):
    return {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}


class Seed(Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"ok\n"


def get(resource, path):
    request = DummyRequest(path.strip(b"/").split(b"/") if path != b"/" else [b""])
    child = resource
    while not getattr(child, "isLeaf", False) and request.postpath:
        segment = request.postpath.pop(0)
        request.prepath.append(segment)
        child = child.getChildWithDefault(segment, request)
    body = child.render(request)
    return getattr(request, "responseCode", None) or 200, body if isinstance(body, bytes) else b"".join(request.written)


class RoleMetricsTests(TestCase):
    def test_registries_are_per_role(self):
        a, b = RoleMetrics("gateway"), RoleMetrics("jobmaster")
        a.add(lambda: [counter("things", "Things.", 3)])
        got_a, got_b = names(a.render().decode()), names(b.render().decode())
        self.assertEqual(got_a["viabtc_things_total"].value, 3)
        self.assertNotIn("viabtc_things_total", got_b)
        self.assertEqual(got_b["viabtc_role_info"].labels, {"role": "jobmaster"})
        self.assertIn("process_cpu_seconds_total", got_a)

    def test_sources_read_at_scrape_time(self):
        counts = {"n": 1}
        metrics = RoleMetrics("x")
        metrics.add(lambda: [counter("n", "N.", counts["n"])])
        counts["n"] = 5
        self.assertEqual(names(metrics.render().decode())["viabtc_n_total"].value, 5)

    def test_link_families(self):
        class Link:
            connected = True

        (family,) = link_families({"jobmaster": Link(), "writer": None})
        self.assertEqual([(s.labels, s.value) for s in family.samples], [({"link": "jobmaster"}, 1)])


class RoutingTests(TestCase):
    def test_metrics_beside_the_seeds_answers(self):
        metrics = RoleMetrics("gateway")
        site = WithMetrics(Seed(), metrics)
        code, body = get(site, b"/metrics")
        self.assertIn(b"viabtc_role_info", body)
        for path in (b"/", b"/x", b"/metrics/y"):
            self.assertEqual(get(site, path), (200, b"ok\n"), path)

    def test_metrics_only(self):
        root = MetricsOnly(RoleMetrics("jobmaster"))
        self.assertIn(b"viabtc_role_info", get(root, b"/metrics")[1])
        self.assertEqual(get(root, b"/other")[0], 404)

    def test_a_failing_source_is_a_500(self):
        metrics = RoleMetrics("x")
        metrics.add(lambda: 1 / 0)
        self.assertEqual(get(MetricsOnly(metrics), b"/metrics")[0], 500)
        self.flushLoggedErrors(ZeroDivisionError)


class BindTests(TestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_metrics_key(self):
        binds = metrics_binds(self.write({"metrics": "tcp@127.0.0.1:9101"}), object())
        self.assertEqual([a.text for a in binds], ["tcp@127.0.0.1:9101"])

    def test_unused_seed_http_svr(self):
        data = {"http_svr": {"bind": ["tcp@127.0.0.1:8081"], "max_pkg_size": 1024}}
        self.assertEqual([a.text for a in metrics_binds(self.write(data), object())], ["tcp@127.0.0.1:8081"])

        class ServesHTTP:
            http_svr = None

        self.assertEqual(metrics_binds(self.write(data), ServesHTTP()), ())

    def test_errors_name_the_key(self):
        with self.assertRaises(ConfigError) as caught:
            metrics_binds(self.write({"metrics": "udp@127.0.0.1:9101"}), object())
        self.assertIn("metrics", str(caught.exception))
