#!/usr/bin/env bash
# The push pipeline, scheduled reports, the customer's hourly report and the host watch
# together in one daemon (one config, two runs), under a fake wall clock (libfaketime):
#  - push: a DingTalk robot stand-in that checks the signature (alerts: true) and an http
#    sink, the customer's API, recorded by the stand-in's generic endpoint (no alerts: or
#    reports: keys, so it takes neither);
#  - reports: on_start (daily and monthly off: no midnight in the run);
#  - customer_report: the http sink, direction both;
#  - host_watch: processes every second, CPU threshold 25%, root's processes allowed (the
#    machine's compilers are root's; the burner and the spike run as nobody);
#  - export: flow files in the temp dir; log_dir and the /metrics server on as well, so that
#    every thread the daemon can start is running when the signal mask of each is checked
#    (in run 1, and in run 2 after the reload).
# Run 1 starts 12 s before 5 minutes past the hour H-1 and counts traffic across that
# boundary; run 2 starts 18 s before H, runs a CPU burner and a one-sample spike, counts
# traffic before H, and crosses H. Checked exactly:
#  1. each start's startup report reaches the DingTalk stand-in once, signed correctly,
#     and `history --json` has it sent; the http sink gets none;
#  2. the burner raises one runaway alert at DingTalk with its pid and name, and one
#     recovery notice after it ends; the spike raises nothing; the http sink gets neither;
#     A SIGHUP (same config) during run 2 changes none of this;
#  3. the http sink gets exactly one body, the hour's: v0..v11 equal to the stored
#     5-minute points (`report --five-minutes --json`), their sum equal to the kernel's
#     rx + tx byte deltas of the interface over the hour, version 1, the configured
#     fields; the history has it sent.
# The DingTalk stand-in accepts timestamps within an hour of its (real) clock, so the fake
# hour H is near the machine's clock.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=history_lib.sh
source "$PF_IT_DIR/history_lib.sh"

STANDIN="$PF_IT_DIR/../standins/chat_standin.py"
REC="$PF_T/accepted.jsonl"
# H: the next full hour of the machine's clock (both zones below are whole hours from UTC),
# or the last one when that began under 100 s ago: the runs' fake clocks (H - 3312 and
# H - 18 on) then stay well within an hour of the real one.
now=$(date +%s)
H=$(((now / 3600 + 1) * 3600))
((H - now <= 3500)) || H=$((H - 3600))
H0=$((H - 3600)) # the hour reported
# Both runs on one local day (the startup report's "today"): Asia/Shanghai, or UTC when H
# is midnight there.
TZNAME=Asia/Shanghai
[[ $(TZ=$TZNAME date -d "@$H" +%H) != 00 ]] || TZNAME=UTC
HIST_DB="$PF_T/h.db"
CFG="$PF_T/pipeline.yaml"
SUM_PKTS="SELECT COALESCE(SUM(tx_packets), 0) FROM bucket5m WHERE mac = -1"

pf_setup_pair
pf_start_servers

# The stand-in in NS_A, where the daemon's 127.0.0.1 is.
cat >"$PF_T/robots.json" <<'EOF'
{"dingtalk": {"dtok": {"secret": "SECpipeline", "keyword": "peakflow"}}}
EOF
nsenter "--net=/run/netns/$NS_A" -- "$PY" "$STANDIN" --config "$PF_T/robots.json" --record "$REC" \
    --port-file "$PF_T/port" >"$PF_T/standin.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    [[ -s $PF_T/port ]] && break
    sleep 0.1
done
[[ -s $PF_T/port ]] || fail "stand-in did not start: $(cat "$PF_T/standin.log")"
BASE="http://127.0.0.1:$(cat "$PF_T/port")"

cat >"$CFG" <<EOF
timezone: $TZNAME
push:
  node_name: e2e
  timeout: 10
  retry: {initial_backoff: 0.2, max_backoff: 1}
  sinks:
    - {name: ding, type: dingtalk, url: "$BASE/robot/send", token: dtok, secret: SECpipeline, keyword: peakflow, alerts: true}
    - name: cust
      type: http
      url: "$BASE/webhook/customer"
      headers: {Authorization: "Bearer c0ffee"}
reports:
  on_start: true
  daily: false
  monthly: false
customer_report:
  enabled: true
  sink: cust
  iface: $IF_A
  direction: both
  provider_id: "P-7"
  provider_uiid: e2e-1
  isp_id: 3
  device_type: 12
host_watch:
  proc_interval: 1
  cpu_threshold: 25
  health_interval: 1
  slow_interval: 2
  allow: {users: [root]}
export:
  scan_interval: 1
  files:
    directory: $PF_T/spool
log_dir: $PF_T/logs
EOF
# It holds secrets, and $PF_T is open to the burner's user: 0640, or attach warns.
chmod 640 "$CFG"
"$PF_BIN" config check "$CFG" >"$PF_T/check.out" || fail "config check: $(cat "$PF_T/check.out")"
DAEMON_ARGS=(--config "$CFG" --database "$HIST_DB" --interval 1 --xdp-mode generic)

# accepted SERVICE [PATH]: the messages the stand-in accepted, one JSON object a line.
accepted() {
    "$PY" - "$REC" "$1" "${2:-}" <<'PYEOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r["service"] == sys.argv[2] and (not sys.argv[3] or r.get("path") == sys.argv[3]):
        print(json.dumps(r, ensure_ascii=False, sort_keys=True))
PYEOF
}
# ding_titles: the markdown titles DingTalk accepted, one a line.
ding_titles() {
    accepted dingtalk | "$PY" -c 'import json, sys
for l in sys.stdin: print(json.loads(l)["body"]["markdown"]["title"])'
}
wait_for() { # WHAT CMD...: up to 20 s
    local what=$1 i
    shift
    for ((i = 0; i < 200; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out waiting for $what"
}
ding_has() { [[ $(ding_titles | grep -c -- "$1" || true) -ge $2 ]]; }
touch "$REC" "$REC.all"

base=$(pf_quiesce "$NS_A" "$IF_A")

# ---------------------------------------------------------------------------------------
pf_log "run 1: across $(hist_utc $((H0 + 300))) UTC"
hist_start_daemon run1 $((H0 + 300 - 12)) "${DAEMON_ARGS[@]}"
# The startup report (with the since-boot figures read at start) is out before any traffic.
wait_for "run 1's startup report at DingTalk" ding_has '^Traffic so far' 1
hist_udp 21 "100,1200"
hist_wait_sql "$SUM_PKTS" 21 "run 1, traffic before :05"
hist_before $((H0 + 300)) "committing the traffic sent before :05"
hist_sleep_until $((H0 + 301))
hist_udp 13 "1,700"
hist_wait_sql "$SUM_PKTS" 34 "run 1, traffic after :05"
k_run1=$(pf_quiesce "$NS_A" "$IF_A")
# Every service, /metrics and the log files are on while the masks are checked.
for line in 'metrics on http://127.0.0.1:9977/metrics' 'export: flow records from' 'host watch: processes every 1 s'; do
    grep -qF "$line" "$DAEMON_LOG" || fail "run 1 did not log '$line': $(tail -n 5 "$DAEMON_LOG")"
done
grep -qs 'ready' "$PF_T"/logs/peakflow_*.log || fail "run 1 wrote no log file in log_dir: $(ls -l "$PF_T/logs")"
pf_check_stop_signals_blocked
pf_stop_daemon TERM
assert_eq "run 1: exit status" 0 "$DAEMON_RC"
hist_remove_faketime_shm

# ---------------------------------------------------------------------------------------
pf_log "run 2: across $(hist_utc "$H") UTC, with a CPU burner and a spike"
install -m 755 "$PF_IT_DIR/spinner.py" "$PF_T/pf-burn"
cp "$PF_T/pf-burn" "$PF_T/pf-spike"
# nice and setpriv exec the script: $! is its pid.
AS_NOBODY=(nice -n -10 setpriv --reuid nobody --regid nogroup --clear-groups --)

# 18 s before H: what must happen before it (the start, the traffic, its drain, the kernel's
# counters) took 6 s on a 2-CPU machine at load 10, and the burner, its alert, the reload
# and the recovery 7 s (hist_before stops the test with "test timing" on a slower one).
hist_start_daemon run2 $((H - 18)) "${DAEMON_ARGS[@]}"
grep -q 'host watch: processes every 1 s' "$DAEMON_LOG" || sleep 1
grep -q 'host watch: processes every 1 s' "$DAEMON_LOG" || fail "the host watch did not start: $(tail -n 5 "$DAEMON_LOG")"
# The spike sleeps 1.5 s, spins 0.4 s (under 2 x 25% of a period: above the threshold in
# one sample at most), sleeps 6 s; the burner spins 6 s.
"${AS_NOBODY[@]}" "$PF_T/pf-spike" 1.5 0.4 6 &
SPIKE=$!
BG_PIDS+=("$SPIKE")
"${AS_NOBODY[@]}" "$PF_T/pf-burn" 0 6 0 &
BURN=$!
BG_PIDS+=("$BURN")
pf_log "burner pid $BURN, spike pid $SPIKE"
hist_udp 17 "64,1472"
hist_wait_sql "$SUM_PKTS" 51 "run 2, traffic before the hour's end"
hist_before "$H" "committing the traffic sent before the hour's end"
k_hour=$(pf_quiesce "$NS_A" "$IF_A")
hist_before "$H" "reading the kernel's counters before the hour's end"
wait_for "the burner's alert at DingTalk" ding_has "^runaway process pf-burn (pid $BURN): CPU" 1
# A reload (SIGHUP, same config) while the burner runs: every service keeps its state, so
# nothing below is sent twice (the startup report, the alert) or missed (the recovery).
kill -HUP "$DAEMON_PID"
wait_for "the reload" grep -q 'reloaded: drain every 1000 ms' "$DAEMON_LOG"
pf_check_stop_signals_blocked
wait "$BURN" || fail "burner failed"
wait_for "the burner's recovery notice at DingTalk" ding_has "^runaway process pf-burn (pid $BURN) ended: exited" 1
wait "$SPIKE" || fail "spike failed"
keep=()
for pid in "${BG_PIDS[@]}"; do [[ $pid == "$BURN" || $pid == "$SPIKE" ]] || keep+=("$pid"); done
BG_PIDS=("${keep[@]}")
hist_sleep_until $((H + 1))
hist_udp 9 "250" # the next hour's: not in the report
hist_wait_sql "$SUM_PKTS" 60 "run 2, traffic after the hour's end"
wait_for "the hourly report at the http sink" grep -q '"path": "/webhook/customer"' "$REC"
# Everything confirmed: the outbox is empty (/metrics, the push service's stats, says so),
# so a message sent twice is in the stand-in's log already when it is checked below.
pf_wait_outbox_empty
pf_stop_daemon TERM
assert_eq "run 2: exit status" 0 "$DAEMON_RC"
assert_eq "warnings and errors in the daemons' logs, other than alerts" "" \
    "$(cat "$PF_T"/run[12].log | grep -E ' (warning|error) ' | grep -v ' warning alert \[' || true)"

# ---------------------------------------------------------------------------------------
# 1. Startup reports: one per start, at DingTalk only, every request signed correctly.
assert_eq "DingTalk requests that the stand-in refused (signature, keyword, rate)" \
    "$(grep -c '"service": "dingtalk", "path"' "$REC.all")" "$(accepted dingtalk | wc -l)"
assert_eq "startup reports at DingTalk" 2 "$(ding_titles | grep -c '^Traffic so far')"
# Run 1's first drain had counted nothing; run 2's has run 1's traffic: the kernel's
# counter deltas of the interface, to the byte.
read -r b_rxb b_rxp b_txb b_txp <<<"$base"
read -r r_rxb _ r_txb _ <<<"$k_run1"
accepted dingtalk | grep 'Traffic so far' | "$PY" -c 'import json, re, sys
b = [json.loads(l)["body"]["markdown"] for l in sys.stdin]
iface, tx, rx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assert len(b) == 2 and all("peakflow" in x["text"] for x in b), b
# The very first start also shows what the interface carried since boot (not billed): the
# kernel counters before run 1, to the byte; later starts do not.
first, boot = b[0]["text"].split("##### Since boot (not billed)\n")
assert "No traffic recorded." in first and iface not in first, b[0]
m = re.search(r"^\*\*%s\*\*: .*\n- up .* \((\d+) B\), (\d+) packets\n- down .* \((\d+) B\), (\d+) packets$" % iface, boot, re.M)
assert m and tuple(map(int, m.groups())) == tuple(int(x) for x in sys.argv[4].split()), (boot, sys.argv[4])
assert "Since boot" not in b[1]["text"], b[1]
assert "\n**%s**\n" % iface in b[1]["text"], b[1]
# "- total: up 18.30 KiB (18735 B), down ... (RX B), sum ... (SUM B)": today and the month
totals = [tuple(map(int, m)) for m in re.findall(r"^- total: up .* \((\d+) B\), down .* \((\d+) B\), sum .* \((\d+) B\)$",
                                                 b[1]["text"], re.M)]
assert totals == [(tx, rx, tx + rx)] * 2, (totals, tx, rx)' "$IF_A" "$((r_txb - b_txb))" "$((r_rxb - b_rxb))" \
    "$b_txb $b_txp $b_rxb $b_rxp" ||
    fail "startup reports at DingTalk not as expected: $(accepted dingtalk | grep 'Traffic so far')"

# 2. The burner: one alert with its pid and name, one recovery; nothing about the spike.
assert_eq "runaway alerts for the burner at DingTalk" 1 "$(ding_titles | grep -c "^runaway process pf-burn (pid $BURN): CPU")"
assert_eq "recovery notices for the burner at DingTalk" 1 "$(ding_titles | grep -c "^runaway process pf-burn (pid $BURN) ended: exited")"
accepted dingtalk | grep "runaway process pf-burn (pid $BURN): CPU" | "$PY" -c 'import json, sys
t = json.loads(sys.stdin.read())["body"]["markdown"]["text"]
assert "- pid: '"$BURN"'\n- name: pf-burn\n" in t and "- user: nobody\n" in t and "pf-burn 0 6 0" in t, t' ||
    fail "the burner's alert text lacks its pid, name, user or command"
assert_eq "messages about the spike (pid $SPIKE)" 0 "$(accepted dingtalk | grep -c "pid $SPIKE\|pf-spike" || true)"
assert_eq "runaway alerts in the daemon's logs for the spike" 0 "$(cat "$PF_T"/run*.log | grep -c "runaway:$SPIKE:" || true)"

# 3. The customer's hour: exactly one request at the http sink, for H0.
assert_eq "requests at the http sink" 1 "$(grep -c '"path": "/webhook/customer"' "$REC.all")"
accepted webhook /webhook/customer >"$PF_T/cust.jsonl"
read -r h_rxb _ h_txb _ <<<"$k_hour"
hour_bytes=$((h_rxb - b_rxb + h_txb - b_txb))
day=$(TZ=$TZNAME date -d "@$H0" +%F)
hh=$(TZ=$TZNAME date -d "@$H0" +%H)
pf_run "$PF_T/five" "$NS_A" report --five-minutes --day "$day" --hour "$((10#$hh))" --iface "$IF_A" --json \
    -f "$CFG" --database "$HIST_DB"
assert_eq "report --five-minutes exit status ($(cat "$PF_T/five.err"))" 0 "$PF_RC"
pf_log "kernel rx + tx byte deltas over the hour: $hour_bytes"
"$PY" - "$PF_T/cust.jsonl" "$PF_T/five.out" "$H0" "$hour_bytes" "$MAC_A" "$day" "$hh" <<'PYEOF' ||
import json, sys
cust, five, h0, hour_bytes, mac, day, hh = sys.argv[1:]
h0, hour_bytes = int(h0), int(hour_bytes)
rec = json.loads(open(cust).read())
assert rec["headers"]["authorization"] == "Bearer c0ffee", rec["headers"]
assert rec["headers"]["content-type"] == "application/json", rec["headers"]
body = json.loads(rec["body_raw"])
rows = json.load(open(five))["reports"][0]["interfaces"][0]["rows"]
stored = {r["start_epoch"]: r["total_bytes"] for r in rows}
points = [stored.get(h0 + 300 * i, 0) for i in range(12)]
want = {"flux_dat": day, "flux_hour": "%s %s" % (day, hh), "provider_id": "P-7", "provider_uiid": "e2e-1",
        "isp_id": 3, "mac": mac, "version": 1, "device_type": 12}
want.update({"v%d" % i: points[i] for i in range(12)})
assert body == want, (body, want)
assert sum(points) == hour_bytes, ("sum of the points", sum(points), "kernel", hour_bytes)
# Run 1 counted on both sides of :05, run 2 before the hour's end: three non-zero points.
assert [i for i in range(12) if points[i]] == [0, 1, 11], points
print("v0..v11 =", points)
PYEOF
    fail "the customer's hourly body is wrong: $(cat "$PF_T/cust.jsonl")"

# The history: every message sent on the first attempt, the http sink only the hour.
"$PF_BIN" history --json --database "$HIST_DB" >"$PF_T/history.json"
"$PY" - "$PF_T/history.json" "$BURN" "$day" "$hh" <<'PYEOF' || fail "history wrong: $(cat "$PF_T/history.json")"
import json, sys
h, burn, day, hh = json.load(open(sys.argv[1]))["history"], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [(r["sink"], r["kind"], r["status"], r["attempts"]) for r in h
        if r["kind"] in ("startup", "hourly") or r["period"].startswith("runaway:%s:" % burn)]
assert rows == [("ding", "startup", "sent", 1), ("ding", "startup", "sent", 1), ("ding", "alert", "sent", 1),
                ("ding", "recovery", "sent", 1), ("cust", "hourly", "sent", 1)], rows
assert [r["period"] for r in h if r["sink"] == "cust"] == ["%sT%s" % (day, hh)], h
assert all(r["status"] == "sent" for r in h), [r for r in h if r["status"] != "sent"]
PYEOF
pf_log "startup reports, the burner's alert and recovery, and the customer's hour: delivered once each, exactly"

pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
