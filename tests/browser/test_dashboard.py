#!/usr/bin/python3
"""The collector's dashboard in a real headless Chromium (Debian's chromium,
chromium-driver and python3-selenium), against a real peakflow-collector on 127.0.0.1
with a temporary SQLite database: users made with the CLI, agents' data put in by real
wire reports (docs/fleet.md, "Wire protocol"), heartbeats by POST /heartbeat/report.

Checks: the login (a wrong password refused with the collector's reason), the top bar,
the overview's exact figures, the agents table (rows, search, sort), an agent page's
5-minute chart (one bar per stored bucket) and daily bars (one per day of the month),
an agent's host health, runaway processes (a process named <script> shown as text) and
95th percentile, the push history (filter, a failure highlighted, a host's <script> shown
as text, CSV), the services as admin and as viewer (隐私保护, no traffic), a central switch
set on the configuration page after a confirmation (its entry, audit row and the agents
table; the same change without the CSRF token refused), the logout ending the session, the
viewer's read-only configuration (no edit controls, 403 from the API), light and dark, and
no console errors. Always stops Chromium, chromedriver and the collector and removes its
temporary directory. Usage: test_dashboard.py PATH/TO/peakflow-collector [SCREENSHOT_DIR]
"""

import base64
import calendar
import datetime
import gzip
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zoneinfo

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

TZ = "Asia/Shanghai"
FLEET = "Test <fleet>"
SCRIPT = "<script>alert(1)</script>"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def human_bytes(n):
    """As the dashboard (and the CLI's reports) print bytes."""
    if n < 1024:
        return f"{n} B"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    v, u = float(n), 0
    while v >= 1023.995 and u < len(units) - 1:
        v /= 1024
        u += 1
    return f"{v:.2f} {units[u]}"


def exact_bytes(n):
    return f"{n:,}".replace(",", " ") + " bytes"


class Collector:
    """A real collector in a temporary directory, and what the test sends it."""

    def __init__(self, binary, tmp):
        self.binary = binary
        self.tmp = tmp
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(tmp, "collector.yaml")
        with open(self.config, "w") as f:
            f.write(
                f"listen: 127.0.0.1:{self.port}\ndatabase: {tmp}/collector.db\ntimezone: {TZ}\n"
                f'fleet_name: "{FLEET}"\nheartbeat:\n  allow_from: [127.0.0.1/32]\n'
            )
        self.proc = None

    def cli(self, *args):
        r = subprocess.run([self.binary, *args, "-f", self.config], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise Failure(f"peakflow-collector {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout.strip()

    def user(self, name, role, password):
        pw = os.path.join(self.tmp, f"{name}.pw")
        with open(pw, "w") as f:
            f.write(password + "\n")
        os.chmod(pw, 0o600)
        self.cli("user", "add", name, "--role", role, "--password-file", pw)

    def start(self):
        self.log = open(os.path.join(self.tmp, "collector.log"), "w")
        self.proc = subprocess.Popen([self.binary, "serve", "-f", self.config], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/api/v1/health", timeout=1).read()
                return
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise Failure("the collector did not start: " + open(os.path.join(self.tmp, "collector.log")).read()[-2000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def post(self, path, body, headers):
        rq = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(rq, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def report(self, token, name, buckets, push=(), host=(), flows=(), interval=60):
        """One wire report (protocol 1, gzip) with a buckets, a push, a host and a flows batch."""
        now = int(time.time())
        batches = []
        if buckets:
            batches.append({"stream": "buckets", "seq": 1, "records": [
                {"iface": "eth0", "mac": "", "ts": ts, "peak": peak, "rx_bytes": rx, "rx_packets": rx // 1000 + 1,
                 "tx_bytes": tx, "tx_packets": tx // 1000 + 1} for ts, peak, rx, tx in buckets]})
        if push:
            batches.append({"stream": "push", "seq": 1, "records": list(push)})
        if host:
            batches.append({"stream": "host", "seq": 1, "records": list(host)})
        if flows:
            batches.append({"stream": "flows", "seq": 1, "records": list(flows)})
        body = {
            "protocol": 1,
            "agent": {"name": name, "host": f"{name}.lan", "node": "beijing-1", "version": "0.1.0 (commit test)",
                      "boot_id": "boot", "interval": interval, "time": now,
                      "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:01", "counted": True}]},
            "spool": secrets.token_hex(16),
            "backlog": {"buckets": 0, "push": 0, "host": 0, "heartbeat": 0, "flows": 0},
            "batches": batches,
        }
        status, answer = self.post("/api/v1/agents/report", gzip.compress(json.dumps(body).encode()), {
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"})
        check(status == 200 and answer["status"] == "ok", f"report of {name} refused: {status} {answer}")


class Browser:
    def __init__(self, tmp):
        opts = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1440,900", f"--user-data-dir={tmp}/chromium", "--no-first-run",
                  "--disable-extensions", "--disable-background-networking", "--hide-scrollbars"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service("/usr/bin/chromedriver", log_output=os.path.join(tmp, "chromedriver.log")) \
            if "log_output" in Service.__init__.__code__.co_varnames \
            else Service("/usr/bin/chromedriver", log_path=os.path.join(tmp, "chromedriver.log"))
        self.d = webdriver.Chrome(service=self.service, options=opts)
        # --window-size counts the window's frame: the page itself gets exactly 1440x900.
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        self.errors = []

    def quit(self):
        try:
            self.d.quit()
        finally:
            p = getattr(self.service, "process", None)
            if p and p.poll() is None:
                p.kill()

    def wait(self, what, cond, timeout=10):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05,
                                 ignored_exceptions=[StaleElementReferenceException]).until(lambda d: cond(d))
        except TimeoutException:
            raise Failure(f"timed out waiting for {what} (page {self.d.current_url})") from None

    def els(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def el(self, css):
        return self.wait(css, lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0])

    def text(self, css):
        return self.el(css).text

    def rows(self, css):
        """The cell texts of a table's body rows (none for its 'No data' row), read in one
        script so that a table being redrawn is never half read."""
        return self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
            ".filter(tr => !tr.querySelector('td.empty')).map(tr => [...tr.cells].map(td => td.innerText.trim()))",
            css)

    def go(self, hash_route, ready_css):
        self.d.execute_script("location.hash = arguments[0]", hash_route)
        self.wait(f"{hash_route} ({ready_css})", lambda d: d.find_elements(By.CSS_SELECTOR, ready_css)
                  and d.find_element(By.ID, "main").get_attribute("aria-busy") == "false")

    def console_errors(self):
        self.errors += [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]
        return self.errors

    def refused_on_purpose(self, path, status):
        """Reads the log past a refusal the test asked for: Chromium logs the failed load of
        `path` (status) as an error; every other error is kept."""
        self.errors += [e for e in self.d.get_log("browser") if e["level"] == "SEVERE" and
                        not (path in e["message"] and str(status) in e["message"])]

    def shot(self, directory, name, full=False):
        """The page at 1440x900, or (full) the whole page 1440 wide, as DIR/dashboard-NAME.png."""
        if not directory:
            return
        path = os.path.join(directory, f"dashboard-{name}.png")
        if not full:
            self.d.save_screenshot(path)
            return
        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))


def run_test(binary, shots):
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="pf_dashboard_")
    collector = Collector(binary, tmp)
    browser = None
    try:
        collector.user("alice", "admin", "alice-password")
        collector.user("victor", "viewer", "victor-password")
        tokens = {n: collector.cli("token", "create", n) for n in ("nas-1", "nas-2", "nas-3")}
        collector.start()

        # The data: three closed buckets of nas-1 (the last one peak), one of nas-2 sharing a
        # bucket with nas-1; a sent and a failed push row of nas-1 (the failure's text a script).
        tz = zoneinfo.ZoneInfo(TZ)
        now = int(time.time())
        b = now - now % 300
        nas1 = [(b - 900, False, 1_500_000, 250_000), (b - 600, False, 3_000_000, 500_000), (b - 300, True, 700, 300)]
        nas2 = [(b - 600, False, 2_000_000, 1_000_000)]
        push = [
            {"id": 1, "time": now - 30, "node": "beijing-1", "host": "nas-1.lan", "sink": "ding", "kind": "daily",
             "period": "2026-12-05", "bytes": 812, "status": "sent", "attempts": 1, "error": "", "value": 1054720},
            {"id": 2, "time": now - 20, "node": "beijing-1", "host": "nas-1.lan", "sink": "customer",
             "kind": "hourly", "period": "2026-12-05T08", "bytes": 412, "status": "failed", "attempts": 1,
             "error": SCRIPT, "value": 78000},
        ]
        # nas-1's host stream: two health samples and a runaway process whose name is a script.
        host = [
            {"type": "sys", "time": now - 120, "load1": 0.5, "cpu": 20.0, "mem_total": 1 << 30, "mem_used": 40.0,
             "disk_total": 100 << 30, "disk_used": 12.5, "temperature": None},
            {"type": "sys", "time": now - 60, "load1": 1.5, "cpu": 60.0, "mem_total": 1 << 30, "mem_used": 50.0,
             "disk_total": 100 << 30, "disk_used": 12.5, "temperature": 48.0},
            {"type": "episode", "id": 3, "pid": 4242, "name": SCRIPT, "user": "bob", "since": now - 900,
             "detected": now - 895, "ended": now - 300, "end_reason": "exited", "peak_cpu": 99.5, "peak_mem": 1.5},
        ]
        # nas-1 measured the traffic between redis-main (198.18.0.5) and a backend (198.18.0.1).
        flows = [{"ts": b - 600, "iface": "eth0", "other": False, "src": "198.18.0.1", "dst": "198.18.0.5",
                  "proto": 6, "port": 6379, "bytes": 48213, "packets": 311, "flows": 3}]
        collector.report(tokens["nas-1"], "nas-1", nas1, push, host, flows)
        collector.report(tokens["nas-2"], "nas-2", nas2)
        for ip, service in (("198.18.0.5", "redis-main"), ("198.18.0.1", "后端-api")):
            status, _ = collector.post("/heartbeat/report", json.dumps(
                {"ip_address": ip, "service_name": service}).encode(), {"Content-Type": "application/json"})
            check(status == 200, f"heartbeat report of {service} refused: {status}")

        # What the pages must show, from what was sent: today and this month on the
        # collector's local clock.
        today = datetime.datetime.fromtimestamp(now, tz).date()
        local = lambda ts: datetime.datetime.fromtimestamp(ts, tz).date()  # noqa: E731
        all_rows = [("nas-1",) + r for r in nas1] + [("nas-2",) + r for r in nas2]
        day_rows = [r for r in all_rows if local(r[1]) == today]
        month_rows = [r for r in all_rows if (local(r[1]).year, local(r[1]).month) == (today.year, today.month)]
        day_total = sum(r[3] + r[4] for r in day_rows)
        day_up = sum(r[4] for r in day_rows)
        month_total = sum(r[3] + r[4] for r in month_rows)
        buckets_24h = len({r[1] for r in all_rows})
        nas1_today = len([r for r in nas1 if local(r[0]) == today])
        days_in_month = calendar.monthrange(today.year, today.month)[1]

        browser = Browser(tmp)
        d = browser.d
        d.get(collector.url + "/")

        # Login: a wrong password gets the collector's reason, then alice logs in.
        browser.el("#login-user").send_keys("alice")
        browser.el("#login-password").send_keys("wrong-password")
        browser.el("#login-submit").click()
        browser.wait("the login error", lambda _: "wrong user name or password" in browser.text("#login-error"))
        browser.el("#login-password").clear()
        browser.el("#login-password").send_keys("alice-password")
        browser.el("#login-submit").click()
        browser.wait("the overview", lambda _: browser.els("#agent-counts"))
        check(browser.text("#fleet-name") == FLEET, f"fleet name: {browser.text('#fleet-name')!r}")
        check(browser.text("#who") == "alice" and browser.text("#role") == "admin", "top bar user and role")
        d.get_log("browser")  # the refused login's 401 is logged by Chromium: expected, not an error

        # Overview: counts, today's and the month's totals (exact figure on hover), the
        # fleet's chart, top agents.
        counts = {s: browser.text(f'#agent-counts [data-state="{s}"] .count-n') for s in ("online", "offline", "never")}
        check(counts == {"online": "2", "offline": "0", "never": "1"}, f"agent counts: {counts}")
        total = browser.el('#today [data-field="total"] .bytes')
        check(total.text == human_bytes(day_total), f"today's total {total.text!r}, want {human_bytes(day_total)!r}")
        check(total.get_attribute("title") == exact_bytes(day_total), f"today's exact total {total.get_attribute('title')!r}")
        up = browser.el('#today [data-field="up"] .bytes')
        check(up.get_attribute("title") == exact_bytes(day_up), f"today's up {up.get_attribute('title')!r}")
        month = browser.el('#month [data-field="total"] .bytes')
        check(month.get_attribute("title") == exact_bytes(month_total), f"month total {month.get_attribute('title')!r}")
        pts = len(browser.els("#fleet-chart g.pt"))
        check(pts == buckets_24h, f"fleet chart: {pts} points, want {buckets_24h}")
        peak = len(browser.els("#fleet-chart g.pt.peak"))
        check(peak == 1, f"fleet chart: {peak} peak points, want 1")
        top = [r[0] for r in browser.rows("#top-agents")]
        want_top = sorted({r[0] for r in day_rows}, key=lambda n: -sum(r[3] + r[4] for r in day_rows if r[0] == n))
        check(top == want_top, f"top agents {top}, want {want_top}")
        check("No open alerts." in browser.text("#open-alerts"), "open alerts")
        browser.shot(shots, "overview")

        # Agents: three rows by name; search; sort by name, descending on a second click.
        browser.el("#nav-agents").click()
        browser.wait("the agents table", lambda _: len(browser.rows("#agents-table")) == 3)
        rows = browser.rows("#agents-table")
        check([r[0] for r in rows] == ["nas-1", "nas-2", "nas-3"], f"agents {[r[0] for r in rows]}")
        check(rows[0][1:8] == ["beijing-1", "nas-1.lan", "eth0", "02:00:00:00:00:01", "0.1.0 (commit test)",
                               "online", rows[0][7]], f"nas-1 row {rows[0]}")
        check(len(rows[0][7]) == 19 and rows[0][7][4] == "-" and rows[0][7][13] == ":", f"last report {rows[0][7]!r}")
        check(rows[2][6] == "never" and rows[2][9] == "file", f"nas-3 row {rows[2]}")
        browser.el("#agent-search").send_keys("nas-2")
        browser.wait("the search", lambda _: [r[0] for r in browser.rows("#agents-table")] == ["nas-2"])
        browser.el("#agent-search").clear()
        browser.el("#agent-search").send_keys(" ")
        browser.el('#agents-table th[data-key="name"]').click()
        browser.wait("the descending sort", lambda _: [r[0] for r in browser.rows("#agents-table")] == ["nas-3", "nas-2", "nas-1"])
        browser.shot(shots, "agents")

        # An agent: one bar per stored bucket of the day, one per day of the month.
        browser.go("#/agents/nas-1", "#day-chart svg")
        browser.wait("the month chart", lambda _: browser.els("#month-chart svg"))
        n = len(browser.els("#day-chart g.pt"))
        check(n == nas1_today, f"agent day chart: {n} points, want {nas1_today}")
        n = len(browser.els("#month-chart g.day"))
        check(n == days_in_month, f"agent month chart: {n} days, want {days_in_month}")
        browser.wait("the agent's push history", lambda _: len(browser.rows("#agent-history table")) == 2)
        # Its host health (the newest sample; the 24 hours' average and maximum), the runaway
        # process with its name as text, the month's 95th percentile.
        latest = dict(zip([e.text for e in browser.els("#host-latest dt")], [e.text for e in browser.els("#host-latest dd")]))
        check(latest.get("CPU") == "60.0 %" and latest.get("Memory used") == "50.0 % of 1.00 GiB"
              and latest.get("Disk used") == "12.5 % of 100.00 GiB" and latest.get("Temperature") == "48.0 °C",
              f"host health {latest}")
        check(browser.rows("#host-24h")[0] == ["CPU", "40.0 %", "60.0 %"], f"24 hours {browser.rows('#host-24h')}")
        eps = browser.rows("#episodes-table")
        check(len(eps) == 1 and eps[0][1:4] == [SCRIPT, "4242", "bob"] and eps[0][5:] == ["10m 0s", "exited", "99.5 %", "1.5 %"],
              f"episodes {eps}")
        check(not browser.els("#episodes script") and not browser.els("main script"), "a process name became an element")
        p95 = browser.rows("#p95")
        check(len(p95) == 1 and p95[0][0] == "eth0" and p95[0][1].endswith("bit/s"), f"p95 {p95}")
        browser.shot(shots, "agent")
        browser.shot(shots, "agent-full", full=True)

        # Push history: both rows; failed only; the failure highlighted and its text as text.
        browser.go("#/history", "#history-result table")
        check(len(browser.rows("#history-result table")) == 2, "history rows")
        Select(browser.el("#f-status")).select_by_value("failed")
        browser.el("#history-apply").click()
        browser.wait("the failed filter", lambda _: len(browser.rows("#history-result table")) == 1)
        failed = browser.els("#history-result table tbody tr.row-failed")
        check(len(failed) == 1, "the failed row is highlighted")
        check(failed[0].find_element(By.CSS_SELECTOR, ".error-text").text == SCRIPT, "the error shown as text")
        check(not browser.els("#history-result script"), "a host's <script> became an element")
        href = browser.el("#history-csv").get_attribute("href")
        check(href.endswith("/api/v1/history.csv?status=failed"), f"CSV link {href}")
        csv = d.execute_async_script("fetch(arguments[0]).then(r => r.text()).then(arguments[1])", href)
        lines = csv.split("\r\n")
        check(len(lines) == 3 and lines[2] == "" and lines[1].startswith("beijing-1,nas-1.lan,customer,hourly,"),
              f"CSV {csv!r}")
        browser.shot(shots, "history")

        # Services as admin: the address and the traffic tables.
        browser.go("#/services", "#service-types table")
        redis = browser.rows('#service-types table[data-type="redis"]')
        check(len(redis) == 1 and redis[0][:3] == ["redis-main", "198.18.0.5", "online"], f"redis as admin {redis}")
        check(not browser.els("#traffic-admins-only"), "admins see the traffic")
        traffic = browser.rows("#traffic-table")
        check(traffic == [["redis → backend", "198.18.0.5", "198.18.0.1", human_bytes(48213), "311", "3", "3"]],
              f"traffic between services {traffic}")
        browser.shot(shots, "services")

        # Configuration: the admin switches nas-2's push off (asked to confirm first); the
        # value, its source and the audit row show, and the agents table says off.
        browser.go("#/config", "#config-table")
        Select(browser.el("#config-scope")).select_by_value("nas-2")
        browser.wait("nas-2's configuration", lambda _: "nas-2" in browser.text("#config-entries"))
        browser.el("#config-key").send_keys("push.enabled")
        browser.el("#config-value").send_keys("false")
        browser.el("#config-set").click()
        confirm = browser.wait("the confirmation", lambda dr: dr.switch_to.alert)
        check("Reports stop" in confirm.text, f"confirmation {confirm.text!r}")
        confirm.accept()
        browser.wait("the saved change", lambda _: "Saved: version 1." in browser.text("#config-status"))
        entries = browser.rows("#config-table")
        check(entries == [["push.enabled", "false", "agent v1"]], f"nas-2's entries {entries}")
        audit = browser.rows("#audit-table")
        check(len(audit) == 1 and audit[0][1:] == ["1", "alice", "127.0.0.1", "nas-2", "push.enabled", "-", "false"],
              f"audit {audit}")
        # The fleet's provider id through the form of the usual settings: afterwards its
        # effective value and source beside it, and a second audit row.
        Select(browser.el("#config-scope")).select_by_value("")
        browser.wait("the fleet's settings", lambda _: "Fleet-wide" in browser.text("#config-entries"))
        row = '#config-form tr[data-key="customer_report.provider_id"]'
        check(browser.text(row + " .effective") == "agent's file", f"provider id before: {browser.text(row + ' .effective')!r}")
        browser.el(row + " input").send_keys("P-0042")
        browser.el(row + " .field-set").click()
        browser.wait("the saved setting", lambda _: "Saved: version 2." in browser.text("#config-status"))
        got = [browser.text(row + " .effective"), browser.text(row + " .source")]
        check(got == ['"P-0042"', "fleet v2"], f"provider id after: {got}")
        check(browser.rows("#config-table") == [["customer_report.provider_id", '"P-0042"', "fleet v2"]],
              f"the fleet's entries {browser.rows('#config-table')}")
        audit = browser.rows("#audit-table")
        check(len(audit) == 2 and audit[0][1:] == ["2", "alice", "127.0.0.1", "fleet", "customer_report.provider_id",
                                                   "-", '"P-0042"'], f"audit {audit}")
        browser.shot(shots, "config")
        browser.go("#/agents", "#agents-table")
        switch = [r[9] for r in browser.rows("#agents-table")]
        check(switch == ["file", "off", "file"], f"switches {switch}")
        # The page sent its CSRF token with that change; the same change without it is refused.
        put = ("fetch('/api/v1/config', {method: 'PUT', headers: {'Content-Type': 'application/json'}, "
               "body: JSON.stringify({key: 'push.enabled', value: true})})"
               ".then(async r => arguments[0]([r.status, await r.text()]))")
        status, body = d.execute_async_script(put)
        check(status == 403 and "missing X-CSRF-Token header" in body, f"a change without the CSRF token: {status} {body}")
        browser.refused_on_purpose("/api/v1/config", 403)

        # Light and dark, kept across a reload.
        html = d.find_element(By.TAG_NAME, "html")
        bg = lambda: d.execute_script("return getComputedStyle(document.body).backgroundColor")  # noqa: E731
        check(html.get_attribute("data-theme") == "light" and bg() == "rgb(245, 245, 245)", f"light: {bg()}")
        browser.el("#theme-toggle").click()
        check(html.get_attribute("data-theme") == "dark" and bg() == "rgb(0, 0, 0)", f"dark: {bg()}")
        browser.shot(shots, "agents-dark")
        d.refresh()
        browser.wait("the page after a reload", lambda _: len(browser.rows("#agents-table")) == 3)
        check(d.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == "dark", "dark after a reload")
        browser.el("#theme-toggle").click()
        check(d.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == "light", "light again")
        errors = browser.console_errors()
        check(not errors, f"console errors: {errors}")

        # The viewer: placeholders instead of addresses, no traffic.
        browser.el("#logout").click()
        browser.wait("the login form", lambda _: browser.els("#login-form"))
        me = d.execute_async_script("fetch('/api/v1/me').then(r => arguments[0](r.status))")
        check(me == 401, f"the session after the logout: /api/v1/me answers {me}")
        browser.refused_on_purpose("/api/v1/me", 401)
        browser.el("#login-user").send_keys("victor")
        browser.el("#login-password").send_keys("victor-password")
        browser.el("#login-submit").click()
        browser.wait("the viewer's top bar", lambda _: browser.els("#role") and browser.text("#role") == "viewer")
        browser.go("#/services", "#service-types table")
        redis = browser.rows('#service-types table[data-type="redis"]')
        check(len(redis) == 1 and redis[0][:3] == ["redis-main", "隐私保护", "online"], f"redis as viewer {redis}")
        check(browser.els("#traffic-admins-only") and not browser.els("#traffic-table"), "the viewer's traffic note")
        browser.shot(shots, "services-viewer")
        browser.go("#/config", "#audit-table")
        check(browser.els("#config-readonly") and not browser.els("#config-editor, #config-form"),
              "the viewer has no edit controls")
        audit = browser.rows("#audit-table")
        check(len(audit) == 2 and all(r[3] == "隐私保护" for r in audit), f"the viewer's audit {audit}")
        browser.shot(shots, "config-viewer")
        # The API refuses the viewer's change, with the session's CSRF token too (the role).
        change = ("fetch('/api/v1/me').then(r => r.json()).then(me => fetch('/api/v1/config', {method: 'PUT', "
                  "headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token}, "
                  "body: JSON.stringify({agent: 'nas-1', key: 'push.enabled', value: false})}))"
                  ".then(async r => arguments[0]([r.status, await r.text()]))")
        status, body = d.execute_async_script(change)
        check(status == 403 and json.loads(body) == {"status": "error", "message": "this needs the admin role"},
              f"the viewer's change: {status} {body}")
        browser.refused_on_purpose("/api/v1/config", 403)
        # No edit control anywhere the viewer goes.
        for route, ready in (("#/overview", "#agent-counts"), ("#/agents", "#agents-table"),
                             ("#/agents/nas-1", "#episodes-table"), ("#/history", "#history-result table")):
            browser.go(route, ready)
            check(not browser.els("#config-editor, #config-set, #config-unset, #config-form"), f"edit controls on {route}")
        errors = browser.console_errors()
        check(not errors, f"console errors: {errors}")
        print(f"dashboard: all checks passed in {time.monotonic() - t0:.1f} s "
              f"({buckets_24h} fleet buckets, {nas1_today} of nas-1 today, {days_in_month} days)")
    finally:
        if browser:
            browser.quit()
        collector.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_dashboard.py PATH/TO/peakflow-collector [SCREENSHOT_DIR]")

    def on_signal(signum, _frame):
        raise SystemExit(f"test_dashboard: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run_test(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "")
    except Failure as e:
        print(f"test_dashboard: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # selenium's own (no such element, a crashed browser): one line first
        print(f"test_dashboard: FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        raise
