# -*- test-case-name: tests.dashboard.test_svg -*-
"""
Charts drawn on the server as inline SVG.

The dashboard must work on a machine with no internet and without a
charting library to vendor and keep up to date, so charts are plain SVG
text: a time axis in UTC, a y axis with round ticks, the series as a
polyline over a filled area.  Each chart also carries its data as a
``data-series`` attribute (JSON ``[[minute, value], ...]``), which the live
refresh and the browser test read back.  Pure: strings in, strings out.
"""

import json
import math
import time
from html import escape


def nice_ticks(top, count=4, integer=False):
    """
    Round tick values from 0 up to at least ``top`` (about ``count``
    steps); whole steps only when ``integer`` (counts).
    """
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    if integer:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if integer and step != int(step):
            continue
        if step >= raw:
            break
    ticks = [0.0]
    while ticks[-1] < top * (1 - 1e-12):
        ticks.append(ticks[-1] + step)
    return ticks


#: Seconds between time labels, round clock times, smallest first.
_LABEL_INTERVALS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def label_interval(span, labels=6):
    """Seconds between x-axis labels at round clock times: at most about ``labels`` over ``span`` s."""
    for every in _LABEL_INTERVALS:
        if span / every <= labels:
            return every
    return _LABEL_INTERVALS[-1]


def _clock(minute):
    return time.strftime("%H:%M", time.gmtime(minute))


def number(value):
    return ("%.2f" % value).rstrip("0").rstrip(".")


def _data(series):
    return escape(json.dumps([[int(t), v] for t, v in series], separators=(",", ":")))


def line_chart(series, *, label, fmt, width=720, height=220, css="pool", chart_id=None, integer=False):
    """
    An SVG line chart of ``series`` (``((minute, value), ...)``, oldest
    first); ``fmt`` turns a y value into its label (e.g. a hashrate with
    unit), ``label`` names the chart for screen readers; ``integer``: the
    values are counts, so the y axis has whole steps.
    """
    left, right, top, bottom = 78, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _t, v in series]
    ticks = nice_ticks(max(values) if values else 0.0, integer=integer)
    y_max = ticks[-1]
    n = len(series)

    def x(i):
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v):
        return top + plot_h - plot_h * v / y_max

    attrs = f' id="{escape(chart_id)}"' if chart_id else ""
    out = [f'<svg class="chart {css}"{attrs} viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(label)}" data-series="{_data(series)}">']
    for tick in ticks:
        ty = y(tick)
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        out.append(f'<text class="ylabel" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">'
                   f'{escape(fmt(tick))}</text>')
    if n:
        every = label_interval(series[-1][0] - series[0][0])
        for i, (t, _v) in enumerate(series):
            if t % every == 0:
                out.append(f'<text class="xlabel" x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">'
                           f'{_clock(t)}</text>')
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_t, v) in enumerate(series))
        base = top + plot_h
        out.append(f'<path class="area" d="M{x(0):.1f},{base} L{points.replace(" ", " L")} '
                   f'L{x(n - 1):.1f},{base} Z"/>')
        out.append(f'<polyline class="line" points="{points}"/>')
        last_t, last_v = series[-1]
        out.append(f'<circle class="last" cx="{x(n - 1):.1f}" cy="{y(last_v):.1f}" r="3">'
                   f'<title>{_clock(last_t)} UTC: {escape(fmt(last_v))}</title></circle>')
    else:
        out.append(f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
                   f'text-anchor="middle">no data yet</text>')
    out.append("</svg>")
    return "".join(out)


def sparkline(series, *, label, width=140, height=28):
    """A small axis-less line of ``series`` for a table row."""
    values = [v for _t, v in series]
    top = max(values) if values and max(values) > 0 else 1.0
    n = len(series)
    pad = 2

    def x(i):
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else 0)

    def y(v):
        return height - pad - (height - 2 * pad) * v / top

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(label)}" data-series="{_data(series)}">'
            f'<polyline class="line" points="{points}"/></svg>')


def bars(items, *, fmt=number):
    """Horizontal bars (HTML) for ``((label, value), ...)``, longest = full width."""
    if not items:
        return '<p class="empty">none</p>'
    top = max(v for _l, v in items) or 1
    rows = []
    for name, value in items:
        share = 100.0 * value / top
        rows.append(f'<div class="bar"><span class="bar-label">{escape(name)}</span>'
                    f'<span class="bar-track"><span class="bar-fill" style="width:{share:.1f}%"></span></span>'
                    f'<span class="bar-value">{escape(fmt(value))}</span></div>')
    return '<div class="bars">' + "".join(rows) + "</div>"
