# -*- test-case-name: tests.dashboard.test_service -*-
"""
The dashboard's HTML, rendered from a ``Snapshot``.

One overview page (pool hashrate, shares and rejects, connections, blocks,
users, a searchable worker list) and one page per user (its hashrate and
each worker's).  Every asset is the package's own (``static/``); the page
links nothing outside its own host, so it works on a pool's private network.
Pure: a snapshot in, ``str`` out.
"""

import time
from html import escape
from urllib.parse import quote

from viabtc.dashboard import svg
from viabtc.stats.hashrate import format_hashrate

# Chart widths in SVG units, about their CSS pixels on a desktop screen, so
# labels are drawn near their natural size.
FULL = 1180
HALF = 570
#: Newest blocks listed on the overview.
OVERVIEW_BLOCKS = 12


def _count(n):
    return f"{int(n):,}"


def _clock(t, seconds=False):
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.gmtime(t)) + " UTC"


def _ago(minute, now):
    if minute is None:
        return "—"
    minutes = max(0, int((now - minute) // 60))
    return "this minute" if minutes <= 1 else f"{minutes} min ago"


def _percent(part, whole):
    return f"{100.0 * part / whole:.2f} %" if whole else "—"


def _page(title, body, refresh, coin):
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/static/dashboard.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/dashboard.js" defer></script>
</head>
<body data-refresh="{int(refresh * 1000)}">
<header class="top">
<div class="brand"><span class="logo">&#9670;</span> viabtc pool <span class="coin">{escape(coin.upper())}</span></div>
<nav><a href="/">Overview</a><a href="/metrics">Metrics</a></nav>
<div class="live" id="live" title="refreshes every {int(refresh)} s"><span class="dot"></span><span id="live-text">live</span></div>
</header>
<main id="main">
{body}
</main>
<footer>viabtc dashboard · reads Redis only · figures per completed minute (UTC)</footer>
</body>
</html>
"""


def _card(label, value, note="", css=""):
    note_html = f'<div class="note">{escape(note)}</div>' if note else ""
    return (f'<div class="card {css}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{note_html}</div>')


def _blocks_table(snapshot):
    if not snapshot.blocks:
        return '<p class="empty">No blocks in <code>newblock</code> yet.</p>'
    rows = []
    for block in snapshot.blocks[:OVERVIEW_BLOCKS]:
        chain = (f'<span class="tag aux">{escape(block.name)} (aux)</span>' if block.aux
                 else f'<span class="tag main">{escape(block.name)}</span>')
        if block.seen is not None:
            when = _clock(block.seen, seconds=True)
        elif block.time is not None:
            when = _clock(block.time, seconds=True)
        elif block.minute is not None:
            when = "≈ " + _clock(block.minute)
        else:
            when = "—"
        height = "–" if block.height is None else str(block.height)
        rows.append(f'<tr><td>{when}</td><td>{chain}</td><td class="height">{height}</td>'
                    f'<td class="hash"><code>{escape(block.hash)}</code></td>'
                    f'<td>{escape(block.user)}.{escape(block.worker)}</td></tr>')
    more = len(snapshot.blocks) - OVERVIEW_BLOCKS
    note = f'<p class="note">and {more} older in <code>newblock</code></p>' if more > 0 else ""
    return ('<table class="grid-table blocks"><thead><tr><th>Found</th><th>Chain</th><th>Height</th><th>Hash</th>'
            '<th>Finder</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>" + note)


def _user_link(user):
    return f'<a href="/user?name={quote(user)}">{escape(user)}</a>'


def _users_table(snapshot):
    if not snapshot.users:
        return '<p class="empty">No shares from any user yet.</p>'
    rows = []
    for u in snapshot.users:
        rows.append(
            f'<tr><td>{_user_link(u.user)}</td><td class="num">{format_hashrate(u.rate)}</td>'
            f'<td class="num">{len(u.workers)}</td><td class="num">{_count(u.shares)}</td>'
            f'<td class="num">{_percent(u.rejects, u.shares + u.rejects)}</td>'
            f'<td>{svg.sparkline(u.series, label="hashrate of " + u.user)}</td></tr>')
    return ('<table class="grid-table users"><thead><tr><th>User</th><th class="num">Hashrate</th>'
            '<th class="num">Workers</th><th class="num">Shares</th><th class="num">Rejected</th>'
            f'<th>Last {snapshot.worker_minutes} min</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def worker_matches(row, query):
    """True when ``query`` (case-insensitive) is in ``user.worker``."""
    return query.lower() in f"{row.user}.{row.worker}".lower()


def _workers_table(snapshot, query, workers=None):
    workers = snapshot.workers if workers is None else workers
    rows = []
    for w in workers:
        name = f"{w.user}.{w.worker}"
        hidden = "" if not query or worker_matches(w, query) else " hidden"
        rows.append(
            f'<tr class="worker{hidden}" data-name="{escape(name.lower())}">'
            f'<td>{_user_link(w.user)}.<span class="wname">{escape(w.worker)}</span></td>'
            f'<td class="num rate">{format_hashrate(w.rate)}</td>'
            f'<td class="num">{_count(w.shares)}</td>'
            f'<td class="num">{_percent(w.rejects, w.shares + w.rejects)}</td>'
            f'<td>{_ago(w.last_minute, snapshot.updated)}</td>'
            f'<td>{svg.sparkline(w.series, label="hashrate of " + name)}</td></tr>')
    more = ""
    if snapshot.workers_total > len(snapshot.workers) and workers is snapshot.workers:
        more = (f'<p class="note">Showing {len(snapshot.workers)} of {snapshot.workers_total} workers '
                '(<code>max_workers</code>).</p>')
    empty = '<p class="empty" id="no-match" hidden>No worker matches.</p>'
    return (f'<table class="grid-table workers" id="workers"><thead><tr><th>Worker</th><th class="num">Hashrate</th>'
            '<th class="num">Shares</th><th class="num">Rejected</th><th>Last share</th>'
            f'<th>Last {snapshot.worker_minutes} min</th></tr></thead><tbody>' + "".join(rows)
            + "</tbody></table>" + empty + more)


def overview(snapshot, query="", refresh=30.0):
    """The overview page for ``snapshot``; ``query`` pre-filters the worker list."""
    s = snapshot
    hours = s.history_minutes / 60
    span = f"{hours:g} h" if hours >= 1 else f"{s.history_minutes} min"
    accepted_total = s.shares + s.rejects
    cards = "".join([
        _card("Pool hashrate", format_hashrate(s.pool_rate), "mean of the last 10 min (or since start)", "accent"),
        _card("Accepted shares", _count(s.shares), f"last {span}"),
        _card("Rejected", _percent(s.rejects, accepted_total), f"{_count(s.rejects)} shares, last {span}",
              "warn" if s.rejects else ""),
        _card("Connections", "—" if s.connections is None else _count(s.connections), "latest minute"),
        _card("Workers", _count(len(s.workers)), f"{len(s.users)} users"),
        _card("Blocks found", _count(s.blocks_counted),
              (f"+ {_count(s.aux_blocks_counted)} aux, " if s.aux_blocks_counted else "") + f"last {span}"),
    ])
    reasons = svg.bars(s.rejects_by_reason, fmt=_count)
    body = f"""
<section class="cards" id="cards">{cards}</section>
<section class="panel">
<h2>Pool hashrate <span class="sub">last {span}, per minute</span></h2>
{svg.line_chart(s.pool_series, label="pool hashrate", fmt=format_hashrate, chart_id="pool-chart",
                width=FULL, height=260)}
</section>
<div class="columns">
<section class="panel">
<h2>Accepted shares <span class="sub">per minute</span></h2>
{svg.line_chart(s.share_series, label="accepted shares per minute", fmt=svg.number, width=HALF, height=200, css="shares", integer=True,
                chart_id="share-chart")}
</section>
<section class="panel">
<h2>Rejects by reason <span class="sub">last {span}</span></h2>
{reasons}
<h3>Rejected shares per minute</h3>
{svg.line_chart(s.reject_series, label="rejected shares per minute", fmt=svg.number, width=HALF, height=110, css="rejects", integer=True,
                chart_id="reject-chart")}
</section>
</div>
<section class="panel">
<h2>Connections <span class="sub">miners connected, sampled each minute</span></h2>
{svg.line_chart(s.connection_series, label="connections", fmt=svg.number, width=FULL, height=150, css="conns", integer=True,
                chart_id="connection-chart")}
</section>
<section class="panel">
<h2>Blocks found <span class="sub">newest first</span></h2>
{_blocks_table(s)}
</section>
<section class="panel">
<h2>Users</h2>
{_users_table(s)}
</section>
<section class="panel">
<h2>Workers <span class="sub">hashrate = mean of the last 10 min (or since the worker started)</span></h2>
<form class="search" method="get" action="/" role="search">
<input type="search" id="worker-search" name="q" value="{escape(query)}" placeholder="Search user.worker" autocomplete="off">
<span class="count" id="worker-count"></span>
</form>
{_workers_table(s, query)}
</section>
<p class="updated" id="updated">Updated {_clock(s.updated, seconds=True)}</p>
"""
    return _page(f"{s.coin.upper()} pool dashboard", body, refresh, s.coin)


def user_page(snapshot, user, refresh=30.0):
    """The page of ``user``: its hashrate chart and one chart per worker; None for an unknown user."""
    row = next((u for u in snapshot.users if u.user == user), None)
    if row is None:
        return None
    charts = []
    for w in row.workers:
        charts.append(f'<section class="panel worker-panel"><h3>{escape(w.user)}.{escape(w.worker)} '
                      f'<span class="sub">{format_hashrate(w.rate)}</span></h3>'
                      + svg.line_chart(w.series, label=f"hashrate of {w.user}.{w.worker}", fmt=format_hashrate,
                                       width=HALF, height=170, css="worker", chart_id=f"worker-{w.worker}")
                      + "</section>")
    cards = "".join([
        _card("Hashrate", format_hashrate(row.rate), "mean of the last 10 min (or since start)", "accent"),
        _card("Accepted shares", _count(row.shares), f"last {snapshot.worker_minutes} min"),
        _card("Rejected", _percent(row.rejects, row.shares + row.rejects), f"{_count(row.rejects)} shares"),
        _card("Workers", _count(len(row.workers))),
    ])
    body = f"""
<p class="crumbs"><a href="/">Overview</a> / {escape(user)}</p>
<section class="cards">{cards}</section>
<section class="panel">
<h2>{escape(user)} <span class="sub">hashrate, last {snapshot.worker_minutes} min</span></h2>
{svg.line_chart(row.series, label="hashrate of " + user, fmt=format_hashrate, chart_id="user-chart",
                width=FULL, height=240)}
</section>
<div class="worker-grid">{"".join(charts)}</div>
<section class="panel">
<h2>Workers</h2>
{_workers_table(snapshot, "", row.workers)}
</section>
<p class="updated" id="updated">Updated {_clock(snapshot.updated, seconds=True)}</p>
"""
    return _page(f"{user} · {snapshot.coin.upper()} pool", body, refresh, snapshot.coin)


def waiting(coin, refresh=30.0):
    """The page before the first read of Redis succeeded."""
    body = ('<section class="panel"><h2>Waiting for Redis</h2><p>The dashboard has not read the '
            'statistics yet; this page refreshes by itself.</p></section>')
    return _page(f"{coin.upper()} pool dashboard", body, refresh, coin)
