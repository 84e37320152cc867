"""
Operating a real pool: what the operator sees and does, over one real
mining run (one run, since each costs a minute or two of suite time).

``viabtc.devnet.pool.LocalPool`` (what ``scripts/run-pool`` runs) starts
bcoin regtest, redis-server and every role as a twistd process, the
dashboard included, and ``viabtc-miner`` processes mine through the gateway:

0. what ``scripts/run-pool --blocks 3 --hashrate`` prints: blocks the node
   accepted, the first statistics minute read back from Redis;
1. the dashboard in Debian's chromium, driven by playwright, once the
   metawriter has written a complete minute: the pool and worker charts
   hold the minutes Redis holds (read back from the DOM), blocks show the
   height and time the node gives for their hash, the worker search
   filters, the page never asks for another host; screenshots are kept as
   ``_trial_temp/dashboard-*.png``;
2. ``/metrics`` of the gateway (on its seed ``http_svr``), jobmaster (on
   its seed ``http_svr``), metawriter and alertcenter (``metrics`` key)
   parse with prometheus-client's own parser, and the gateway's share
   counters move by exactly what a miner saw accepted;
3. SIGHUP to the jobmaster with a broken file changes nothing (logged);
   with ``bans`` naming the miner's address it bans the connected miner at
   the gateway, and the new coinbase message is what ``viabtc-cli jobmaster
   getcoinbase`` reads back.
"""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

from twisted.trial import unittest

from tests.scrape import Scrape
from tests.support import require_service
from viabtc.devnet import ServiceUnavailable
from viabtc.devnet.bcoin import bcoin_executable
from viabtc.devnet.pool import LocalPool, watch
from viabtc.devnet.process import stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HASHES = 2**32 / 60


def browser():
    """``(sync_playwright, chromium path)``, or ServiceUnavailable."""
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


def scrape(port):
    """``{(name, frozenset(labels)): value}`` of ``/metrics`` on ``port``, parsed by prometheus-client."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return Scrape(text).samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def series(page, selector):
    return dict(map(tuple, json.loads(page.get_attribute(selector, "data-series"))))


class OperatingTests(unittest.TestCase):
    # Start-up, then up to a minute (and the metawriter's flush_delay) until a complete minute is in Redis.
    timeout = 300

    def wait(self, predicate, timeout, what, alive=True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alive:
                self.pool.check_alive()
            result = predicate()
            if result:
                return result
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}\n{self.out.getvalue()}")

    def log(self, name):
        with open(os.path.join(self.pool.run_dir, f"{name}.log"), errors="replace") as f:
            return f.read()

    def snapshot(self):
        with urllib.request.urlopen(self.pool.dashboard_url + "api/snapshot.json", timeout=5) as reply:
            return json.load(reply)

    def test_operating_a_mining_run(self):
        require_service(bcoin_executable)
        sync_playwright, chromium = require_service(browser)
        self.out = io.StringIO()
        self.pool = LocalPool(run_dir=os.path.abspath(self.mktemp()), out=self.out)
        self.addCleanup(self.pool.stop)
        self.pool.start()
        self.pool.start_miner()
        self.pool.start_miner(account="demo.cpu1", name="miner1", extra=["--max-shares", "3"])
        self.check_run_pool_watch()
        self.check_dashboard(sync_playwright, chromium)
        self.check_metrics()
        self.check_reload()

    # -- 0. what run-pool prints ---------------------------------------------

    def check_run_pool_watch(self):
        """
        ``scripts/run-pool --blocks 3 --hashrate`` (``viabtc.devnet.pool.watch``)
        over this run: blocks the node accepted and the first statistics minute
        read back from Redis (``test_local_pool`` runs the command itself, without
        ``--hashrate``, so that the suite waits for a minute once).
        """
        found, rate = watch(self.pool, 150, want_blocks=3, want_hashrate=True)
        output = self.out.getvalue()
        self.assertGreaterEqual(found, 3, output)
        self.assertGreaterEqual(len([line for line in output.splitlines() if "accepted by the node" in line]), 3)
        minute, shares, difficulty, hashes = rate
        self.assertIn(f"btc:m:share={shares}", output)
        self.assertEqual(shares, int(minute_hash(self.pool.redis, "btc:m:share")[minute]))
        self.assertGreater(hashes, 0)

    # -- 1. the dashboard ----------------------------------------------------

    def check_dashboard(self, sync_playwright, chromium):
        redis = self.pool.redis
        # A complete minute with the worker's shares, as the metawriter wrote it.
        self.wait(lambda: minute_hash(redis, "btc:s:demo:cpu0"), 150, "a minute of demo.cpu0 in redis")
        # Both workers: the page's search checks below count two rows (demo.cpu1 stops after three
        # shares, and its minute can reach Redis later than demo.cpu0's on a loaded machine).
        self.wait(lambda: {w["worker"] for u in self.snapshot()["users"] for w in u["workers"]} >= {"cpu0", "cpu1"},
                  150, "the dashboard to read both workers")
        # The node the dashboard is given tells the height and time of each block it lists.
        known = self.wait(lambda: [b for b in self.snapshot()["blocks"] if b["height"] is not None], 30,
                          "a block's height from the node")
        header = self.pool.node.rpc("getblockheader", known[0]["hash"])
        self.assertEqual((known[0]["height"], known[0]["time"]), (header["height"], header["time"]))
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
            chrome = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                page = chrome.new_page(viewport={"width": 1360, "height": 900})
                page.route("**/*", route)
                page.goto(self.pool.dashboard_url)
                self.assertIn("pool dashboard", page.title())

                # The pool chart draws every minute Redis has, at pow_float x 2^32 / 60.
                pool = series(page, "#pool-chart")
                both = set(shares) & set(pool)
                self.assertTrue(both, (shares, pool))
                for minute in both:
                    self.assertAlmostEqual(pool[minute], exact[minute] * HASHES, delta=pool[minute] * 1e-9)
                    self.assertGreater(pool[minute], 0)
                points = page.get_attribute("#pool-chart polyline.line", "points").split()
                self.assertEqual(len(points), len(pool))
                self.assertGreater(len({p.split(",")[1] for p in points}), 1, "a flat line: nothing drawn")

                # The worker's sparkline has a rate exactly where Redis has its shares.
                row = page.locator('tr.worker[data-name="demo.cpu0"]')
                spark = dict(map(tuple, json.loads(row.locator("svg.spark").get_attribute("data-series"))))
                for minute, rate in spark.items():
                    self.assertEqual(rate > 0, worker_shares.get(minute, 0) > 0, minute)
                # Blocks found while the dashboard ran carry the time it first listed them.
                found = page.text_content("table.blocks tbody tr td")
                self.assertRegex(found, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
                self.assertIn(str(header["height"]), page.locator("table.blocks td.height").all_text_contents())
                page.screenshot(path=os.path.abspath("dashboard-overview.png"), full_page=True)

                # Live refresh: the page fetches itself again (every 5 s in run-pool's config)
                # and keeps what is typed in the search box.
                page.fill("#worker-search", "cpu")
                updated = page.text_content("#updated")
                page.wait_for_function("t => document.getElementById('updated').textContent !== t",
                                       arg=updated, timeout=20000)
                self.assertEqual(page.input_value("#worker-search"), "cpu")
                self.assertEqual(page.locator("tr.worker:not(.hidden)").count(), 2)
                page.fill("#worker-search", "")

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
                worker, other = series(page, "#worker-cpu0"), series(page, "#worker-cpu1")
                for minute, rate in worker.items():
                    if pool.get(minute):
                        self.assertAlmostEqual(rate + other.get(minute, 0), pool[minute], delta=pool[minute] * 1e-6)
                page.screenshot(path=os.path.abspath("dashboard-user.png"), full_page=True)
            finally:
                chrome.close()
        self.assertEqual(foreign, [])
        self.assertTrue(any(url.endswith("/static/dashboard.js") for url in requests), requests)

    # -- 2. /metrics -----------------------------------------------------------

    def check_metrics(self):
        ports = self.pool.ports
        stop_process(self.pool.processes.pop("miner"), grace=10.0)
        gateway = self.wait(lambda: (lambda s: s if value(s, "viabtc_sessions") == 0 else None)(
            scrape(ports.gateway_http)), 20, "the gateway to see the miners gone")
        self.pool.start_miner(account="demo.cpu2", name="miner2", extra=["--max-shares", "4"])
        self.wait(lambda: self.pool.processes["miner2"].poll() is not None, 60, "miner2 to finish", alive=False)
        self.assertEqual(self.pool.processes["miner2"].returncode, 0)
        with open(os.path.join(self.pool.run_dir, "miner2.log"), errors="replace") as f:
            done = re.search(r"done: \d+ jobs, (\d+) accepted, rejected (\S+),", f.read())
        accepted = int(done.group(1))
        after = scrape(ports.gateway_http)

        def delta(**labels):
            return value(after, "viabtc_shares_total", **labels) - (value(gateway, "viabtc_shares_total", **labels) or 0)

        self.assertEqual(accepted, 4)
        self.assertEqual(delta(result="accepted", reason=""), accepted)
        self.assertEqual(sum(v for (name, labels), v in after.items()
                             if name == "viabtc_shares_total" and ("result", "rejected") in labels),
                         sum(v for (name, labels), v in gateway.items()
                             if name == "viabtc_shares_total" and ("result", "rejected") in labels))
        self.assertEqual(done.group(2), "0")
        self.assertEqual(value(after, "viabtc_link_up", link="jobmaster"), 1)
        self.assertGreater(value(after, "viabtc_share_difficulty_total"), 0)

        jobmaster = scrape(ports.jobmaster_http)
        self.assertEqual(value(jobmaster, "viabtc_gateways"), 1)
        self.assertGreaterEqual(value(jobmaster, "viabtc_job_age_seconds"), 0)
        self.assertGreater(value(jobmaster, "viabtc_node_rpc_seconds_count", method="getblocktemplate"), 0)
        accepted_blocks = sum(v for (name, labels), v in jobmaster.items()
                              if name == "viabtc_submitblock_results_total" and ("outcome", "accepted") in labels)
        self.assertGreater(accepted_blocks, 0)
        metawriter = scrape(ports.metawriter_metrics)
        self.assertGreater(value(metawriter, "viabtc_metawriter_packets_total"), 0)
        alertcenter = scrape(ports.alertcenter_metrics)
        self.assertIsNotNone(value(alertcenter, "viabtc_alerts_sent_total"))
        self.assertEqual(value(alertcenter, "viabtc_role_info", role="alertcenter"), 1)

    # -- 3. SIGHUP -------------------------------------------------------------

    def check_reload(self):
        ports = self.pool.ports
        path = os.path.join(self.pool.run_dir, "jobmaster.json")
        with open(path) as f:
            config = json.load(f)
        jobmaster = self.pool.processes["jobmaster"]
        self.pool.start_miner(account="demo.cpu3", name="miner3")
        self.wait(lambda: value(scrape(ports.gateway_http), "viabtc_sessions") == 1, 30, "miner3 connected")

        with open(path, "w") as f:
            f.write('{"svr": ')
        os.kill(jobmaster.pid, signal.SIGHUP)
        self.wait(lambda: "reload refused, still running on the previous configuration" in self.log("jobmaster"),
                  20, "the refused reload in the jobmaster's log")
        self.assertIsNone(jobmaster.poll())
        self.assertEqual(value(scrape(ports.gateway_http), "viabtc_sessions"), 1)

        with open(path, "w") as f:
            json.dump(dict(config, bans=["127.0.0.1"], coinbase_message="reloaded"), f)
        os.kill(jobmaster.pid, signal.SIGHUP)
        gateway = self.wait(lambda: (lambda s: s if value(s, "viabtc_bans") == 1 else None)(
            scrape(ports.gateway_http)), 20, "the ban at the gateway", alive=False)
        self.wait(lambda: value(scrape(ports.gateway_http), "viabtc_sessions") == 0, 20,
                  "the banned miner closed", alive=False)
        self.assertIn("applied bans, coinbase_message; needs a restart: nothing", self.log("jobmaster"))
        # viabtc-cli finds the jobmaster's cli address in its config and reads the new message.
        cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "viabtc-cli"), "--json",
                              "--config", path, "jobmaster", "getcoinbase"],
                             stdout=subprocess.PIPE, timeout=30, check=False)
        self.assertEqual(cli.returncode, 0, cli.stdout)
        self.assertEqual(json.loads(cli.stdout)["reply"], "reloaded\n")
        self.assertEqual(value(gateway, "viabtc_link_up", link="jobmaster"), 1)
        self.assertIsNone(jobmaster.poll())
