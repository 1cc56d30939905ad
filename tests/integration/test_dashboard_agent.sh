#!/usr/bin/env bash
# The dashboard with a real agent counting real traffic (issue 17): a peakflow-collector
# in NS_B on a second veth pair (so the reports do not cross the counted interface), the
# agent in NS_A counting $IF_A, UDP both ways between the two. Once the collector holds
# what the agent stored, a headless Chromium in NS_B (tests/browser/e2e_agent.py) logs in
# and finds the agent online, today's total and upload equal to the agent's own history
# (its interface rows of today, themselves equal to the kernel's counters of $IF_A since
# the attach, exactly), one chart point per 5-minute bucket the agent stored today, and the
# peer's row of the day with the agent's figure for that MAC; then the admin switches the
# agent's pushes off on the configuration page and the agent applies it with its next
# report (that the switched-off agent records its customer hour as skipped is
# test_control.sh's, for the same central key). Skipped outside CI without Chromium; CI must run it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

if ! [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] || ! /usr/bin/python3 -c 'import selenium' 2>/dev/null; then
    [[ ${CI:-} == true ]] && fail "chromium, chromium-driver and python3-selenium are needed (scripts/install-deps.sh)"
    pf_log "SKIP: chromium, chromium-driver or python3-selenium missing (scripts/install-deps.sh)"
    exit 0
fi
COLL_BIN=$(dirname "$PF_BIN")/peakflow-collector
[[ -x $COLL_BIN ]] || fail "peakflow-collector not found beside $PF_BIN"
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
source "$PF_IT_DIR/fleet_lib.sh"
IP_C=$IP_B2 # the collector, on the second pair
COLL_PORT=8999
HIST_DB="$PF_T/a1.db"

dash_cleanup() {
    local rc=$?
    set +e
    [[ -n $COLL_PID ]] && pf_kill_pid "$COLL_PID"
    (exit "$rc")
    pf_cleanup
}
trap dash_cleanup EXIT

# Today's figures must not straddle midnight (UTC, both ends' time zone).
left=$((86400 - $(date +%s) % 86400))
((left > 90)) || sleep $((left + 1))

pf_setup_pair
pf_start_servers
fleet_second_pair

fleet_collector_conf "$IP_C:$COLL_PORT" "$PF_T/collector.db" "timezone: UTC"
coll token create a1 >"$PF_T/a1.token"
chmod 600 "$PF_T/a1.token" # a secret file: refused when others may read it
chmod 600 "$PF_T/a1.token"
printf 'correct horse battery\n' >"$PF_T/pw"
chmod 600 "$PF_T/pw"
coll user add ann --role admin --password-file "$PF_T/pw" >/dev/null
ADMIN=$(coll user token ann)
fleet_start_collector "$NS_B" "$IP_C:$COLL_PORT" collector

PF_CONFIG="$PF_T/a1.yaml"
cat >"$PF_CONFIG" <<CONF
timezone: UTC
database: $HIST_DB
interfaces: [$IF_A]
host_watch:
  enabled: false
reports:
  enabled: false
collector:
  url: http://$IP_C:$COLL_PORT
  token_file: $PF_T/a1.token
  interval: 5
  name: a1
CONF
chmod 600 "$PF_CONFIG"
read -r rxb0 rxp0 txb0 _ <<<"$(pf_quiesce "$NS_A" "$IF_A")"
pf_start_daemon a1 --interval 1
pf_traffic "$NS_B" udp --to "$IP_A" --port "$PORT_A" --count 200
pf_traffic "$NS_A" udp --to "$IP_B" --port "$PORT_B" --count 100
read -r rxb rxp txb _ <<<"$(pf_quiesce "$NS_A" "$IF_A")"
# What the kernel counted on $IF_A since the attach (veth counts native-XDP rx without
# the Ethernet header: lib.sh measured by how much), all of it today.
kernel_total=$((rxb - rxb0 + ${PF_NATIVE_RX_SHORT:-0} * (rxp - rxp0) + txb - txb0))
kernel_up=$((txb - txb0))

# The agent's interface rows of today (mac -1: the interface's own totals).
today=$(($(date +%s) / 86400 * 86400))
mine() {
    sqlite3 "$HIST_DB" "SELECT COALESCE(SUM(rx_bytes + tx_bytes), 0), COALESCE(SUM(tx_bytes), 0), COUNT(DISTINCT ts)
        FROM bucket5m WHERE mac = -1 AND ts >= $today" | tr '|' ' '
}
# The collector's overview, through its JSON API.
theirs() {
    nsenter "--net=/run/netns/$NS_B" -- curl -fsS -H "Authorization: Bearer $ADMIN" \
        "http://$IP_C:$COLL_PORT/api/v1/overview" >"$PF_T/overview.json" 2>/dev/null || return 1
    "$PY" -c 'import json, sys
t = json.load(open(sys.argv[1]))["today"]
print(t["total_bytes"], t["up_bytes"])' "$PF_T/overview.json" 2>/dev/null
}
synced() { # the collector holds the agent's today, and the agent no more traffic to drain
    read -r total up buckets <<<"$(mine)"
    ((total > 0)) && [[ $(theirs) == "$total $up" ]]
}
pf_wait_for "the collector holding the agent's today" 30 synced
read -r total up buckets <<<"$(mine)"
assert_eq "the agent's today = the kernel's counters since the attach (total up)" "$kernel_total $kernel_up" "$total $up"
pf_log "the agent's history today: $total bytes, $up up, $buckets buckets; the kernel and the collector have the same"

# The peer's row of today (the MAC stored as a 48-bit big-endian integer).
peer_total=$(sqlite3 "$HIST_DB" "SELECT COALESCE(SUM(rx_bytes + tx_bytes), 0) FROM bucket5m
    WHERE mac = $((16#${MAC_B//:/})) AND ts >= $today")
((peer_total > 0)) || fail "no row of $MAC_B in the agent's history"
nsenter "--net=/run/netns/$NS_B" -- /usr/bin/python3 "$PF_IT_DIR/../browser/e2e_agent.py" \
    "http://$IP_C:$COLL_PORT" ann "$PF_T/pw" a1 "$total" "$up" "$buckets" "$MAC_B" "$peer_total" >"$PF_T/e2e.log" 2>&1 ||
    fail "the dashboard: $(tail -n 5 "$PF_T/e2e.log")"
pf_log "$(tail -n 1 "$PF_T/e2e.log")"
# The switch set on the configuration page reaches the agent with its next report.
pf_wait_for "the agent applying the switch set on the page" 15 \
    grep -q 'central config v1 from the collector: 1 key(s) applied' "$DAEMON_LOG"
central() { # the collector's view of a1's central config: "APPLIED-VERSION PUSH-ENABLED"
    nsenter "--net=/run/netns/$NS_B" -- curl -fsS -H "Authorization: Bearer $ADMIN" \
        "http://$IP_C:$COLL_PORT/api/v1/config?agent=a1" >"$PF_T/central.json" &&
        "$PY" -c 'import json, sys
j = json.load(open(sys.argv[1])); print(j["applied"]["version"], j["config"]["push"]["enabled"])' "$PF_T/central.json"
}
# The agent says which version it runs with its following report.
on_v1() { [[ $(central) == "1 False" ]]; }
pf_wait_for "the collector seeing the agent on version 1" 15 on_v1
pf_stop_daemon TERM
assert_eq "agent exit status" 0 "$DAEMON_RC"
fleet_stop_collector TERM
assert_eq "collector exit status" 0 "$STOP_RC"
