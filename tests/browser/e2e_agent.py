#!/usr/bin/python3
"""The dashboard of a collector fed by a real agent (tests/integration/test_dashboard_agent.sh
runs it inside the collector's network namespace): logs in, and checks the overview's
agent counts and today's exact total and upload, the agents table's row of the agent, and
its page's 5-minute chart, one point per bucket the agent stored today, and its peer MAC's
row of the day with the agent's figure; then switches the agent's pushes off on the
configuration page (the test then waits for the agent to apply it); no console errors.
Reuses test_dashboard.py's browser and checks.

Usage: e2e_agent.py URL USER PASSWORD_FILE AGENT TOTAL UP BUCKETS PEER_MAC PEER_TOTAL
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_dashboard as td  # noqa: E402


def main(url, user, password_file, agent, total, up, buckets, peer_mac, peer_total):
    import tempfile
    import shutil
    tmp = tempfile.mkdtemp(prefix="pf_e2e_")
    browser = None
    try:
        browser = td.Browser(tmp)
        browser.d.get(url + "/")
        browser.el("#login-user").send_keys(user)
        with open(password_file) as f:
            browser.el("#login-password").send_keys(f.read().strip())
        browser.el("#login-submit").click()
        browser.wait("the overview", lambda _: browser.els("#agent-counts"))
        browser.d.get_log("browser")  # GET /api/v1/me's 401 before the login: expected, not an error
        counts = {s: browser.text(f'#agent-counts [data-state="{s}"] .count-n') for s in ("online", "offline", "never")}
        td.check(counts == {"online": "1", "offline": "0", "never": "0"}, f"agent counts: {counts}")
        t = browser.el('#today [data-field="total"] .bytes')
        td.check(t.get_attribute("title") == td.exact_bytes(total),
                 f"today's total {t.get_attribute('title')!r}, the agent's history {td.exact_bytes(total)!r}")
        u = browser.el('#today [data-field="up"] .bytes')
        td.check(u.get_attribute("title") == td.exact_bytes(up),
                 f"today's up {u.get_attribute('title')!r}, the agent's history {td.exact_bytes(up)!r}")
        browser.el("#nav-agents").click()
        browser.wait("the agents table", lambda _: len(browser.rows("#agents-table")) == 1)
        row = browser.rows("#agents-table")[0]
        td.check(row[0] == agent and row[6] == "online", f"the agent's row {row}")
        browser.go(f"#/agents/{agent}", "#day-chart svg")
        n = len(browser.els("#day-chart g.pt"))
        td.check(n == buckets, f"day chart: {n} points, the agent stored {buckets} buckets today")
        browser.wait("the peers", lambda _: browser.els("#mac-table"))
        peers = browser.d.execute_script(
            "return [...document.querySelectorAll('#mac-table tbody tr')].map(tr => "
            "[tr.cells[0].innerText.trim(), tr.cells[4].querySelector('.bytes')?.title ?? ''])")
        mine = [p for p in peers if p[0] == peer_mac]
        td.check(mine == [[peer_mac, td.exact_bytes(peer_total)]],
                 f"the peer {peer_mac}: {mine} (all {peers}), the agent's history {td.exact_bytes(peer_total)!r}")
        # The admin switches the agent's pushes off on the configuration page (asked first).
        browser.go("#/config", "#config-form")
        from selenium.webdriver.support.ui import Select
        Select(browser.el("#config-scope")).select_by_value(agent)
        browser.wait(f"{agent}'s settings", lambda _: agent in browser.text("#config-entries"))
        row = '#config-form tr[data-key="push.enabled"]'
        Select(browser.el(row + " select")).select_by_value("false")
        browser.el(row + " .field-set").click()
        browser.wait("the confirmation", lambda dr: dr.switch_to.alert).accept()
        browser.wait("the saved switch", lambda _: "Saved: version 1." in browser.text("#config-status"))
        errors = browser.console_errors()
        td.check(not errors, f"console errors: {errors}")
        print(f"dashboard with a real agent: overview {total} bytes today ({up} up), {n} buckets on {agent}'s page, "
              f"peer {peer_mac} {peer_total} bytes")
    finally:
        if browser:
            browser.quit()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 10:
        sys.exit(__doc__.strip().splitlines()[-1])
    try:
        main(*sys.argv[1:5], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], int(sys.argv[9]))
    except td.Failure as e:
        print(f"e2e_agent: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
