"""
The dashboard in a real headless browser after a real mining run.

``viabtc.devnet.pool.LocalPool`` (what ``scripts/run-pool`` runs) starts
bcoin regtest, redis-server and every role as a twistd process, the
dashboard included; two ``viabtc-miner`` processes mine through the
gateway until the metawriter has written a complete minute.  Then Debian's
chromium, driven by playwright, loads the page: the pool and worker charts
must hold the minutes Redis holds (read back from the DOM), the worker
search must filter, and the page must never ask for another host.  A
screenshot is kept as ``_trial_temp/dashboard-*.png``.
"""

import io
import json
import os
import shutil
import time
import urllib.request
from urllib.parse import urlsplit

from twisted.trial import unittest

from viabtc.devnet import ServiceUnavailable, services_required
from viabtc.devnet.bcoin import bcoin_executable
from viabtc.devnet.pool import LocalPool
from tests.support import require_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HASHES = 2**32 / 60


def _browser():
    """``(playwright module, chromium path)``, or ServiceUnavailable."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ServiceUnavailable("playwright is not installed (pip install -e '.[test]')") from None
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        raise ServiceUnavailable("chromium is not installed (scripts/bootstrap installs it)")
    return sync_playwright, path


def minute_hash(redis, key):
    fields = redis.command("HGETALL", key) or []
    return {int(k): float(v) for k, v in zip(fields[::2], fields[1::2])}


class DashboardBrowserTests(unittest.TestCase):
    # Start-up, then up to two minutes until a complete minute is in Redis.
    timeout = 240

    def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pool.check_alive()
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.out.getvalue()}")

    def snapshot(self):
        with urllib.request.urlopen(self.pool.dashboard_url + "api/snapshot.json", timeout=5) as reply:
            return json.load(reply)

    def test_dashboard_shows_a_mining_run(self):
        require_service(bcoin_executable)
        sync_playwright, chromium = require_service(_browser)
        self.out = io.StringIO()
        self.pool = LocalPool(run_dir=os.path.abspath(self.mktemp()), out=self.out)
        self.addCleanup(self.pool.stop)
        self.pool.start()
        self.pool.start_miner()
        self.pool.start_miner(account="demo.cpu1", name="miner1", extra=["--max-shares", "3"])
        redis = self.pool.redis

        # A complete minute with the worker's shares, as the metawriter wrote it.
        self.wait(lambda: minute_hash(redis, "btc:s:demo:cpu0"), 150, "a minute of demo.cpu0 in redis")
        self.wait(lambda: any(w["worker"] == "cpu0" for u in self.snapshot()["users"] for w in u["workers"]),
                  30, "the dashboard to read it")
        shares = minute_hash(redis, "btc:m:share")
        exact = minute_hash(redis, "btc:m:pow_float")
        worker_shares = minute_hash(redis, "btc:s:demo:cpu0")

        requests, foreign = [], []
        own = urlsplit(self.pool.dashboard_url).netloc

        def route(r):
            requests.append(r.request.url)
            if urlsplit(r.request.url).netloc != own:
                foreign.append(r.request.url)
                return r.abort()
            return r.continue_()

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                page.route("**/*", route)
                page.goto(self.pool.dashboard_url)
                self.assertIn("pool dashboard", page.title())

                # The pool chart draws every minute Redis has, at pow_float x 2^32 / 60.
                pool = dict(map(tuple, json.loads(page.get_attribute("#pool-chart", "data-series"))))
                for minute, count in shares.items():
                    if minute in pool:
                        self.assertAlmostEqual(pool[minute], exact[minute] * HASHES, delta=pool[minute] * 1e-9)
                        self.assertGreater(pool[minute], 0)
                self.assertTrue(set(shares) & set(pool), (shares, pool))
                points = page.get_attribute("#pool-chart polyline.line", "points").split()
                self.assertEqual(len(points), len(pool))
                ys = {float(point.split(",")[1]) for point in points}
                self.assertGreater(len(ys), 1, "the line is flat: nothing drawn")

                # The worker's sparkline holds its minutes; workers add up to the pool.
                row = page.locator('tr.worker[data-name="demo.cpu0"]')
                spark = dict(map(tuple, json.loads(row.locator("svg.spark").get_attribute("data-series"))))
                for minute in spark:
                    self.assertEqual(spark[minute] > 0, worker_shares.get(minute, 0) > 0, minute)
                page.screenshot(path=os.path.abspath("dashboard-overview.png"), full_page=True)

                # The search filters the worker list as one types.
                self.assertEqual(page.locator("tr.worker").count(), 2)
                page.fill("#worker-search", "cpu1")
                self.assertTrue(row.is_hidden())
                self.assertTrue(page.locator('tr.worker[data-name="demo.cpu1"]').is_visible())
                page.fill("#worker-search", "nobody")
                self.assertTrue(page.locator("#no-match").is_visible())
                page.fill("#worker-search", "")
                self.assertTrue(row.is_visible())

                # The user's page charts each worker; together they make the pool.
                page.click('a[href="/user?name=demo"]')
                page.wait_for_selector("#worker-cpu0")
                worker = dict(map(tuple, json.loads(page.get_attribute("#worker-cpu0", "data-series"))))
                other = dict(map(tuple, json.loads(page.get_attribute("#worker-cpu1", "data-series"))))
                for minute, rate in worker.items():
                    if minute in pool and pool[minute]:
                        self.assertAlmostEqual(rate + other.get(minute, 0), pool[minute], delta=pool[minute] * 1e-6)
                page.screenshot(path=os.path.abspath("dashboard-user.png"), full_page=True)
            finally:
                browser.close()
        self.assertEqual(foreign, [])
        self.assertTrue(any(url.endswith("/static/dashboard.js") for url in requests), requests)
