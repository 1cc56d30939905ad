#!/usr/bin/env bash
# The control plane end to end: a real peakflow-collector in NS_B and a real agent in NS_A
# (its wall clock faked with libfaketime, real traffic on veth pairs), the customer's API
# played by the chat stand-in's generic endpoint.
#
#   1. `set --agent a1 push.enabled false` before the agent starts: within one report
#      interval it applies central v1, and the customer hour 15 is recorded `skipped`, the
#      stand-in receives nothing.
#   2. An offset for a1 (v2) and the switch back on (v3, `unset`) while it runs: applied
#      without a restart, each changed key logged with its old and new value; the audit log
#      holds the three changes.
#   3. The collector stopped, the agent restarted an hour later: it applies v3 from its own
#      database, and the customer hour 16 reaches the stand-in with exactly the adjusted
#      values of the stored 5-minute rows (raw rows unchanged); hour 15 never does.
#   4. The collector back, `set interfaces [new, missing]` (v4): the agent attaches to the
#      new interface and leaves the old one, counts the new one's traffic exactly, and the
#      interface it cannot attach to is reported back and shown by `show --agent`.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=history_lib.sh
source "$PF_IT_DIR/history_lib.sh"

COLL_BIN=$(dirname "$PF_BIN")/peakflow-collector
[[ -x $COLL_BIN ]] || fail "peakflow-collector not found beside $PF_BIN"
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
source "$PF_IT_DIR/fleet_lib.sh"
TZNAME=Asia/Shanghai
HIST_DB="$PF_T/a1.db"
COLL_PORT=8999
INTERVAL=5
# $IF_A2 and $IF_B2 (fleet_lib.sh): a second interface of the agent's machine
PORT_A2=5011

control_cleanup() {
    local rc=$?
    set +e
    [[ -n $COLL_PID ]] && pf_kill_pid "$COLL_PID"
    if [[ -n $DAEMON_PID ]]; then
        pf_kill_pid "$DAEMON_PID"
        DAEMON_PID=""
    fi
    if [[ -e $PIN_ROOT/$IF_A2 ]] && pf_netns_exists "$NS_A"; then
        pf_ns_argv "$NS_A"
        timeout -k 5 20 "${PF_NS_ARGV[@]}" "$PF_BIN" detach "$IF_A2" >/dev/null 2>&1
    fi
    rm -rf "${PIN_ROOT:?}/$IF_A2"
    rm -f "$RUN_DIR/$IF_A2.pid" "$RUN_DIR/$IF_A2.clsact"
    (exit "$rc")
    hist_cleanup
}
trap control_cleanup EXIT

pf_setup_pair
pf_start_servers
fleet_second_pair
nsenter "--net=/run/netns/$NS_A" -- "$PY" "$PF_IT_DIR/traffic.py" serve --bind "$IP_A2" --port "$PORT_A2" \
    >"$PF_T/server-a2.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do grep -qs listening "$PF_T/server-a2.log" && break; sleep 0.05; done

# --- the customer's stand-in and the collector, in NS_B ------------------------------------
echo '{}' >"$PF_T/robots.json"
REC="$PF_T/standin.jsonl"
nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/../standins/chat_standin.py" --config "$PF_T/robots.json" \
    --record "$REC" --port-file "$PF_T/standin.port" --bind 0.0.0.0 >"$PF_T/standin.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do [[ -s $PF_T/standin.port ]] && break; sleep 0.05; done
[[ -s $PF_T/standin.port ]] || fail "stand-in did not start: $(cat "$PF_T/standin.log")"
STANDIN_PORT=$(cat "$PF_T/standin.port")

COLL_DB="$PF_T/collector.db"
fleet_collector_conf "$IP_B:$COLL_PORT" "$COLL_DB"
start_collector() { fleet_start_collector "$NS_B" "$IP_B:$COLL_PORT" "$1"; } # NAME
stop_collector() {
    fleet_stop_collector TERM
    assert_eq "collector exit status after SIGTERM" 0 "$STOP_RC"
}

coll token create a1 >"$PF_T/a1.token" || fail "token create a1"
chmod 600 "$PF_T/a1.token" # a secret file: refused when others may read it
chmod 600 "$PF_T/a1.token"
start_collector collector-1
assert_eq "set before the agent's first report" "push.enabled = false for agent a1: version 1" \
    "$(coll set --agent a1 push.enabled false)"
# Refused values name the reason and change nothing.
if coll set --agent a1 adjustments '[{direction: up}]' >"$PF_T/bad.out" 2>"$PF_T/bad.err"; then
    fail "an adjustment with direction 'up' was accepted"
fi
assert_eq "refused value: message" \
    "peakflow-collector: error: key 'adjustments.direction': expected rx, tx or both, got 'up'" "$(cat "$PF_T/bad.err")"
if coll set --agent nobody push.enabled false 2>"$PF_T/bad.err"; then fail "an unknown agent was configured"; fi
assert_eq "unknown agent: message" \
    "peakflow-collector: error: no agent named 'nobody' (see 'peakflow-collector token list')" "$(cat "$PF_T/bad.err")"

# --- the agent -------------------------------------------------------------------------------
CFG="$PF_T/a1.yaml"
cat >"$CFG" <<EOF
timezone: $TZNAME
database: $HIST_DB
interfaces: [$IF_A]
host_watch:
  enabled: false
reports:
  enabled: false
push:
  retry: {initial_backoff: 0.2, max_backoff: 1}
  sinks:
    - name: cust
      type: http
      url: "http://$IP_B:$STANDIN_PORT/webhook/customer"
customer_report:
  enabled: true
  sink: cust
  provider_id: "P-1"
  isp_id: 3
collector:
  url: http://$IP_B:$COLL_PORT
  token_file: $PF_T/a1.token
  interval: $INTERVAL
  name: a1
  node: north
EOF
chmod 600 "$CFG"

# start_agent NAME FAKE_EPOCH: the interfaces come from the config (and the collector), not
# from the command line, which would win over both.
start_agent() {
    local name=$1 fake=$2
    DAEMON_LOG="$PF_T/$name.log"
    pf_ns_argv "$NS_A"
    HIST_FAKE0=$fake
    HIST_LAUNCH_NS=$(date +%s%N)
    "${PF_NS_ARGV[@]}" env LD_PRELOAD="$HIST_FAKETIME_LIB" FAKETIME="@$(hist_utc "$fake")" \
        FAKETIME_DONT_FAKE_MONOTONIC=1 TZ=UTC "$PF_BIN" attach --config "$CFG" --interval 1 --xdp-mode generic \
        >"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    HIST_PIDS+=("$DAEMON_PID")
    pf_wait_ready "$name"
    pf_log "agent '$name' ready (pid $DAEMON_PID), its clock started at $(hist_utc "$fake") UTC"
}
wait_log() { # PATTERN WHAT [SECONDS]
    local i
    for ((i = 0; i < ${3:-15} * 10; i++)); do
        grep -Eq "$1" "$DAEMON_LOG" && return 0
        sleep 0.1
    done
    fail "$2: no log line /$1/ after ${3:-15} s: $(tail -n 15 "$DAEMON_LOG")"
}
customer_requests() {
    if [[ -e $REC.all ]]; then grep -c '"path": "/webhook/customer"' "$REC.all" || true; else echo 0; fi
}

t_1500=$(hist_epoch $TZNAME "2026-11-21 15:00:00")
t_1600=$((t_1500 + 3600))
t_1700=$((t_1600 + 3600))

# 1. Switched off centrally before the first report.
# 15 s before 16:00: the agent reports (and takes v1) as it starts; the switch and the
# traffic took 1 s on a 2-CPU machine at load 12 (hist_before stops the test with "test
# timing" on a slower one).
start_agent first $((t_1600 - 15))
wait_log 'central config v1 from the collector: 1 key\(s\) applied' "the central switch" 10
wait_log 'push: switched off' "the push switch applied without a restart"
hist_udp 20 "100,1200"
hist_before "$t_1600" "switching push off centrally and the traffic of hour 15"
hist_sleep_until $((t_1600 + 2))
hist_wait_sql "SELECT status FROM push_history WHERE kind = 'hourly' AND period = '2026-11-21T15'" skipped \
    "the customer hour 15 while switched off"
assert_eq "customer requests while switched off" 0 "$(customer_requests)"
pf_log "switched off centrally: hour 15 recorded as skipped, nothing sent"

# 2. An offset and the switch back on, while it runs.
assert_eq "set an offset" \
    'adjustments = [{"direction":"tx","factor":2,"offset_bytes":100}] for agent a1: version 2' \
    "$(coll set --agent a1 adjustments '[{direction: tx, factor: 2, offset_bytes: 100}]')"
assert_eq "unset the switch" "push.enabled unset for agent a1: version 3" "$(coll unset --agent a1 push.enabled)"
wait_log 'central config v3 from the collector' "central v3" 10
wait_log 'central config v3: push.enabled: false -> true$' "the switch's old and new value in the log"
grep -Eq 'central config v[23]: adjustments: \[\] -> \[\{"direction":"tx","factor":2.0,"offset_bytes":100\}\]' "$DAEMON_LOG" ||
    fail "the offset's old and new value are not in the log: $(grep 'central config' "$DAEMON_LOG")"
wait_log 'push: switched on' "the push switch back on"
for ((i = 0; i < 100; i++)); do
    coll show --agent a1 | grep -q 'the agent runs version 3$' && break
    sleep 0.1
done
coll show --agent a1 >"$PF_T/show.out"
assert_eq "show --agent a1" "central config for agent a1: version 3; the agent runs version 3
KEY          VALUE                                               SOURCE
adjustments  [{\"direction\":\"tx\",\"factor\":2,\"offset_bytes\":100}]  agent v2" "$(cat "$PF_T/show.out")"
coll audit --json >"$PF_T/audit.json"
"$PY" - "$PF_T/audit.json" <<'EOF' || fail "audit log: $(cat "$PF_T/audit.json")"
import json, sys
rows = json.load(open(sys.argv[1]))["audit"]
got = [(r["version"], r["agent"], r["key"], r["old"], r["new"], r["from"]) for r in rows]
want = [(3, "a1", "push.enabled", False, None, "cli"),
        (2, "a1", "adjustments", None, [{"direction": "tx", "factor": 2, "offset_bytes": 100}], "cli"),
        (1, "a1", "push.enabled", None, False, "cli")]
assert got == want, got
assert all(r["who"] for r in rows), rows
EOF
hist_udp 12 "300,900"
# (The reports to the collector cross $IF_A too: the rows hold more than the test's packets.)
hist_wait_sql "SELECT COALESCE(SUM(tx_packets), 0) >= 12 FROM bucket5m WHERE mac = -1 AND ts >= $t_1600" 1 \
    "traffic of hour 16 drained"
pf_stop_daemon TERM
assert_eq "first run: exit status" 0 "$DAEMON_RC"
hist_remove_faketime_shm
stop_collector

# 3. Restarted an hour later with the collector down: the stored v3 applies.
start_agent second $((t_1700 - 12))
wait_log 'central config v3 from the collector: 1 key\(s\) applied' "the stored central config after a restart" 5
hist_udp 4 "64"
hist_sleep_until $((t_1700 + 2))
for ((i = 0; i < 150; i++)); do
    [[ $(customer_requests) -ge 1 ]] && break
    sleep 0.1
done
assert_eq "customer requests after the switch came back on" 1 "$(customer_requests)"
raw=$(hist_sql "SELECT ts, tx_bytes FROM bucket5m WHERE mac = -1 AND ts >= $t_1600 AND ts < $t_1700 ORDER BY ts")
"$PY" - "$REC" "$t_1600" "$raw" <<'EOF' || fail "the customer's hour 16 is not the adjusted stored rows"
import json, sys
rec, t0, raw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stored = {int(ts): int(b) for ts, b in (line.split() for line in raw.splitlines())}
bodies = [json.loads(json.loads(l)["body_raw"]) for l in open(rec) if '"/webhook/customer"' in l]
assert len(bodies) == 1, bodies
b = bodies[0]
assert b["flux_hour"] == "2026-11-21 16", b
for i in range(12):
    want = stored.get(t0 + i * 300, 0) * 2 + 100
    assert b["v%d" % i] == want, (i, b["v%d" % i], want, stored)
assert b["provider_id"] == "P-1" and b["isp_id"] == 3, b
print("hour 16 at the customer: v0..v11 =", [b["v%d" % i] for i in range(12)])
EOF
assert_eq "the customer hour 15 stays skipped" skipped \
    "$(hist_sql "SELECT status FROM push_history WHERE kind = 'hourly' AND period = '2026-11-21T15'")"
pf_run "$PF_T/check" "$NS_A" config check "$CFG"
assert_eq "config check: exit status ($(cat "$PF_T/check.err"))" 0 "$PF_RC"
grep -qxF '# central keys (collector v3)' "$PF_T/check.out" || fail "config check: $(cat "$PF_T/check.out")"
grep -qxF '#   adjustments = [{"direction":"tx","factor":2.0,"offset_bytes":100}]  (collector v3)' "$PF_T/check.out" ||
    fail "config check does not show the offset with its source: $(tail -n 12 "$PF_T/check.out")"
grep -qxF '#   push.enabled = true  (file)' "$PF_T/check.out" ||
    fail "config check does not show the switch with its source: $(tail -n 12 "$PF_T/check.out")"
pf_log "after a restart without the collector: v3 applied, hour 16 sent with the offset, raw rows unchanged"

# 4. A new interface list: one that exists, one that does not.
start_collector collector-2
k0=$(pf_kstats "$NS_A" "$IF_A2")
assert_eq "set interfaces" "interfaces = [\"$IF_A2\",\"pfnone$PF_ID\"] for agent a1: version 4" \
    "$(coll set --agent a1 interfaces "[$IF_A2, pfnone$PF_ID]")"
wait_log "reload: counting on $IF_A2 too" "attach to the new interface" 15
wait_log "reload: no longer counting on $IF_A \\(detached\\)" "leave the old interface"
assert_eq "XDP on the old interface" none "$(pf_xdp_attached "$NS_A" "$IF_A")"
assert_eq "XDP on the new interface" generic "$(pf_xdp_attached "$NS_A" "$IF_A2")"
pf_traffic "$NS_B" udp --to "$IP_A2" --port "$PORT_A2" --count 15 --sizes 200
k1=$(pf_kstats "$NS_A" "$IF_A2")
read -r _ rxp0 _ txp0 <<<"$k0"
read -r _ rxp1 _ txp1 <<<"$k1"
hist_wait_sql "SELECT COALESCE(SUM(b.rx_packets), 0) || ' ' || COALESCE(SUM(b.tx_packets), 0) FROM bucket5m b
               JOIN iface i ON i.id = b.iface_id WHERE i.name = '$IF_A2' AND b.mac = -1" \
    "$((rxp1 - rxp0)) $((txp1 - txp0))" "the new interface's packets (kernel deltas)"
for ((i = 0; i < 150; i++)); do
    coll show --agent a1 | grep -q "^not applied: interfaces: cannot attach to pfnone$PF_ID" && break
    sleep 0.1
done
coll show --agent a1 >"$PF_T/show.out"
grep -q "the agent runs version 4$" "$PF_T/show.out" || fail "show: $(cat "$PF_T/show.out")"
grep -q "^not applied: interfaces: cannot attach to pfnone$PF_ID" "$PF_T/show.out" ||
    fail "the interface the agent cannot attach to is not shown at the collector: $(cat "$PF_T/show.out")"
pf_log "interfaces changed centrally: counting on $IF_A2 exactly, pfnone$PF_ID reported back"
pf_stop_daemon TERM
assert_eq "last run: exit status" 0 "$DAEMON_RC"
stop_collector
pf_ns "$NS_A" "$PF_BIN" detach "$IF_A2" >/dev/null 2>&1 || fail "detach $IF_A2"
