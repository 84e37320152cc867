"""Server-side SVG charts carry their data and round axes."""

import json
import re
from html import unescape

from twisted.trial import unittest

from viabtc.dashboard import svg


class TickTests(unittest.TestCase):
    def test_nice_ticks(self):
        self.assertEqual(svg.nice_ticks(0), [0.0, 1.0])
        self.assertEqual(svg.nice_ticks(9.3), [0.0, 2.5, 5.0, 7.5, 10.0])
        self.assertEqual(svg.nice_ticks(1.07e6)[-1], 1.5e6)
        self.assertEqual(svg.nice_ticks(float("nan")), [0.0, 1.0])
        self.assertEqual(svg.nice_ticks(1, integer=True), [0.0, 1.0])
        self.assertEqual(svg.nice_ticks(9, integer=True), [0.0, 5.0, 10.0])
        self.assertEqual(svg.nice_ticks(30, integer=True), [0.0, 10.0, 20.0, 30.0])


class TimeAxisTests(unittest.TestCase):
    def test_round_label_times(self):
        self.assertEqual(svg.label_interval(59 * 60), 600)
        self.assertEqual(svg.label_interval(359 * 60), 3600)
        self.assertEqual(svg.label_interval(5 * 60), 60)
        series = tuple((1_700_000_040 + 60 * i, 0.0) for i in range(60))
        text = svg.line_chart(series, label="x", fmt=str)
        labels = re.findall(r'<text class="xlabel"[^>]*>([^<]*)</text>', text)
        self.assertEqual(len(labels), 6)
        self.assertTrue(all(label.endswith("0") for label in labels), labels)


class ChartTests(unittest.TestCase):
    series = ((60, 1.0), (120, 3.0), (180, 2.0))

    def test_line_chart_points_and_data(self):
        text = svg.line_chart(self.series, label="x", fmt=str, chart_id="c")
        data = json.loads(unescape(re.search(r'data-series="([^"]*)"', text).group(1)))
        self.assertEqual(data, [[60, 1.0], [120, 3.0], [180, 2.0]])
        points = re.search(r'<polyline class="line" points="([^"]*)"', text).group(1).split()
        self.assertEqual(len(points), 3)
        ys = [float(p.split(",")[1]) for p in points]
        self.assertLess(ys[1], ys[2])
        self.assertLess(ys[2], ys[0])
        self.assertIn('id="c"', text)

    def test_empty_chart(self):
        self.assertIn("no data yet", svg.line_chart((), label="x", fmt=str))

    def test_labels_escaped(self):
        text = svg.line_chart(self.series, label='<a "b">', fmt=lambda v: "<%g>" % v)
        self.assertNotIn("<a ", text)
        self.assertIn("&lt;3&gt;", text)

    def test_sparkline_and_bars(self):
        self.assertEqual(len(re.search(r'points="([^"]*)"', svg.sparkline(self.series, label="s")).group(1).split()), 3)
        self.assertIn("width:100.0%", svg.bars((("a", 4), ("b", 2))))
        self.assertIn("none", svg.bars(()))
