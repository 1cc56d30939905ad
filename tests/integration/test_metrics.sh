#!/usr/bin/env bash
# /metrics scraped by a real Prometheus server: the daemon serves the Prometheus text format
# on --metrics-listen; a Prometheus started in the same network namespace scrapes it every
# second, and what its query API returns for our interface and peer MAC must equal the
# kernel's interface statistics over the same window, exactly (generic XDP, so veth counts
# whole frames on rx). The exposition itself must pass `promtool check metrics`.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

PROMETHEUS=/usr/bin/prometheus
PROMTOOL=/usr/bin/promtool
[[ -x $PROMETHEUS && -x $PROMTOOL ]] || fail "prometheus and promtool are needed (Debian package 'prometheus')"
help=$("$PF_BIN" attach --help 2>&1 || true)
grep -q -- '--metrics-listen' <<<"$help" || fail "daemon has no --metrics-listen (peakflow-bpf attach --help)"

METRICS_PORT=19977 # in NS_A, a fresh namespace: nothing else listens there
PROM_PORT=19090
METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics"
PROM_URL="http://127.0.0.1:$PROM_PORT"

# http_get NS URL: body on stdout (10 s limit); fails on anything but 200.
cat >"$PF_T/http_get.py" <<'PYEOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    if r.status != 200:
        sys.exit(f"HTTP {r.status}")
    sys.stdout.write(r.read().decode())
PYEOF
http_get() {
    timeout -k 5 20 nsenter "--net=/run/netns/$1" -- "$PY" "$PF_T/http_get.py" "$2"
}

# prom_query QUERY -> one line per series, "label=value ... value", sorted; nothing while
# Prometheus has no such series.
cat >"$PF_T/prom_query.py" <<'PYEOF'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    with urllib.request.urlopen(url, timeout=10) as r:
        d = json.load(r)
except OSError:
    sys.exit(0)  # not up yet
if d.get("status") != "success":
    sys.exit("query failed: " + json.dumps(d))
lines = []
for s in d["data"]["result"]:
    labels = " ".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k not in ("instance", "job"))
    v = float(s["value"][1])
    lines.append(f"{labels} {int(v) if v.is_integer() else v}")
print("\n".join(sorted(lines)))
PYEOF
prom_query() {
    timeout -k 5 20 nsenter "--net=/run/netns/$NS_A" -- "$PY" "$PF_T/prom_query.py" "$PROM_URL" "$1"
}

pf_setup_pair
pf_start_servers

base=$(pf_quiesce "$NS_A" "$IF_A")
pf_start_daemon metrics --xdp-mode generic --interval 3600 --metrics-listen "127.0.0.1:$METRICS_PORT"
pf_assert_ours_attached "metrics" generic

pf_known_traffic
now=$(pf_quiesce "$NS_A" "$IF_A")
read -r b_rxb b_rxp b_txb b_txp <<<"$base"
read -r k_rxb k_rxp k_txb k_txp <<<"$now"
d_rxb=$((k_rxb - b_rxb)) d_rxp=$((k_rxp - b_rxp)) d_txb=$((k_txb - b_txb)) d_txp=$((k_txp - b_txp))
((d_rxp > 0 && d_txp > 0)) || fail "test bug: no traffic (kernel deltas $d_rxp rx, $d_txp tx packets)"
pf_log "kernel deltas: rx $d_rxb B/$d_rxp pkts, tx $d_txb B/$d_txp pkts"

# The exposition, read directly: 200, valid for promtool, our interface in it.
http_get "$NS_A" "$METRICS_URL" >"$PF_T/metrics.txt" || fail "GET $METRICS_URL in $NS_A failed"
"$PROMTOOL" check metrics <"$PF_T/metrics.txt" >"$PF_T/promtool.log" 2>&1 ||
    fail "promtool check metrics rejects /metrics: $(cat "$PF_T/promtool.log")"
[[ ! -s $PF_T/promtool.log ]] || fail "promtool check metrics complains about /metrics: $(cat "$PF_T/promtool.log")"
grep -qxF "peakflow_interface_bytes_total{device=\"$IF_A\",direction=\"rx\"} $d_rxb" "$PF_T/metrics.txt" ||
    fail "/metrics has no rx bytes line for $IF_A with $d_rxb: $(grep "$IF_A" "$PF_T/metrics.txt")"
# Anything but /metrics: 404 exactly (not a refused connection, a 500 or a timeout).
status=$(timeout -k 5 20 nsenter "--net=/run/netns/$NS_A" -- "$PY" -c 'import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)' "http://127.0.0.1:$METRICS_PORT/" 2>&1 || true)
assert_eq "GET / on the metrics port: HTTP status" 404 "$status"

# A real Prometheus in the same namespace, scraping every second.
mkdir "$PF_T/prom-data"
cat >"$PF_T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: peakflow
    static_configs:
      - targets: ['127.0.0.1:$METRICS_PORT']
YML
"$PROMTOOL" check config "$PF_T/prometheus.yml" >"$PF_T/promtool-config.log" 2>&1 ||
    fail "promtool check config: $(cat "$PF_T/promtool-config.log")"
nsenter "--net=/run/netns/$NS_A" -- "$PROMETHEUS" --config.file="$PF_T/prometheus.yml" \
    --storage.tsdb.path="$PF_T/prom-data" --web.listen-address="127.0.0.1:$PROM_PORT" \
    >"$PF_T/prometheus.log" 2>&1 &
BG_PIDS+=("$!")
prom_pid=$!

for ((i = 0; i < 300; i++)); do
    kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited: $(tail -n 20 "$PF_T/prometheus.log")"
    up=$(prom_query "up{job=\"peakflow\"}")
    [[ $up == "__name__=up 1" ]] && break
    sleep 0.1
done
[[ ${up:-} == "__name__=up 1" ]] || fail "prometheus did not scrape the daemon successfully within 30 s (up: '${up:-}')"
pf_log "prometheus (pid $prom_pid) scraped the daemon"

assert_eq "prometheus: peakflow_interface_bytes_total (kernel deltas)" \
    "$(printf '%s\n%s' "__name__=peakflow_interface_bytes_total device=$IF_A direction=rx $d_rxb" \
        "__name__=peakflow_interface_bytes_total device=$IF_A direction=tx $d_txb")" \
    "$(prom_query "peakflow_interface_bytes_total{device=\"$IF_A\"}")"
assert_eq "prometheus: peakflow_interface_packets_total (kernel deltas)" \
    "$(printf '%s\n%s' "__name__=peakflow_interface_packets_total device=$IF_A direction=rx $d_rxp" \
        "__name__=peakflow_interface_packets_total device=$IF_A direction=tx $d_txp")" \
    "$(prom_query "peakflow_interface_packets_total{device=\"$IF_A\"}")"
# Every frame on the pair is from or to the peer.
assert_eq "prometheus: peakflow_mac_bytes_total for $MAC_B" \
    "$(printf '%s\n%s' "__name__=peakflow_mac_bytes_total device=$IF_A direction=rx mac=$MAC_B $d_rxb" \
        "__name__=peakflow_mac_bytes_total device=$IF_A direction=tx mac=$MAC_B $d_txb")" \
    "$(prom_query "peakflow_mac_bytes_total{device=\"$IF_A\",mac=\"$MAC_B\"}")"
assert_eq "prometheus: MAC series with bytes other than $MAC_B's" "" \
    "$(prom_query "peakflow_mac_bytes_total{device=\"$IF_A\",mac!=\"$MAC_B\"} > 0")"
assert_eq "prometheus: peakflow_mac_series_dropped" "__name__=peakflow_mac_series_dropped device=$IF_A 0" \
    "$(prom_query "peakflow_mac_series_dropped{device=\"$IF_A\"}")"
assert_eq "prometheus: peakflow_events_total (only IPv4, no ARP, nothing dropped)" \
    "$(printf '__name__=peakflow_events_total device=%s event=%s 0\n' "$IF_A" flow_map_full "$IF_A" mac_map_full \
        "$IF_A" non_ip "$IF_A" unparsable | head -c -1)" \
    "$(prom_query "peakflow_events_total{device=\"$IF_A\"}")"
assert_eq "prometheus: peakflow_build_info series" 1 "$(prom_query "count(peakflow_build_info == 1)" | awk '{print $NF}')"
assert_eq "prometheus: peakflow_scrape_errors" "__name__=peakflow_scrape_errors 0" "$(prom_query peakflow_scrape_errors)"
flows=$(prom_query "peakflow_flow_map_entries{device=\"$IF_A\"}" | awk '{print $NF}')
if ! [[ $flows =~ ^[0-9]+$ ]] || ((flows == 0)); then
    fail "prometheus: peakflow_flow_map_entries for $IF_A: want > 0, got '$flows'"
fi

# Scraping is on lo: nothing moved on the pair meanwhile.
assert_eq "kernel counters of $IF_A after the scrapes" "$now" "$(pf_kstats "$NS_A" "$IF_A")"

pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
