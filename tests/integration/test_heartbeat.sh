#!/usr/bin/env bash
# The heartbeat service with measured traffic, end to end: NS_A plays the "backend" host
# (198.18.0.1) with a real agent counting its veth, NS_B the "redis" host (198.18.0.2, an
# echo server on port 6379). The collector listens in NS_B on a second veth pair
# (198.18.2.2), so the agent's reports do not cross the counted interface: every frame on
# $IF_A is traffic between backend and redis.
#
#   1. The agent's heartbeat checks (tcp:// to redis, process: for itself) reach the
#      collector through the link: both services online, redis at its own address.
#   2. After real UDP and TCP traffic between the two, `redis_to_backend` for the bucket
#      shows exactly the bytes and packets the kernel counted on $IF_A in it (the agent's
#      5-minute row of the interface, from the kernel's counters).
#   3. `peakflow-bpf heartbeat send` by hand with a heartbeat token; a viewer sees
#      placeholders and no traffic.
#
# The agent's clock runs a little ahead (libfaketime, at most 300 s, which the collector
# allows), starting 30 s before a 5-minute boundary, so its bucket closes within the test.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=history_lib.sh
source "$PF_IT_DIR/history_lib.sh"

COLL_BIN=$(dirname "$PF_BIN")/peakflow-collector
[[ -x $COLL_BIN ]] || fail "peakflow-collector not found beside $PF_BIN"
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
source "$PF_IT_DIR/fleet_lib.sh"
HIST_DB="$PF_T/backend.db"
IP_C=$IP_B2 # the collector, on the second pair
COLL_PORT=8999
REDIS_PORT=6379

hb_cleanup() {
    local rc=$?
    set +e
    [[ -n $COLL_PID ]] && pf_kill_pid "$COLL_PID"
    (exit "$rc")
    hist_cleanup
}
trap hb_cleanup EXIT

pf_setup_pair
fleet_second_pair
nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" serve --bind "$IP_B" --port "$REDIS_PORT" \
    >"$PF_T/redis.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do grep -qs listening "$PF_T/redis.log" && break; sleep 0.05; done
grep -qs listening "$PF_T/redis.log" || fail "the redis stand-in did not start: $(cat "$PF_T/redis.log")"

# --- the collector ---------------------------------------------------------------------------
fleet_collector_conf "$IP_C:$COLL_PORT" "$PF_T/collector.db"
coll token create backend >"$PF_T/backend.token"
chmod 600 "$PF_T/backend.token" # a secret file: refused when others may read it
chmod 600 "$PF_T/backend.token"
coll heartbeat token create cron-1 >"$PF_T/hb.token"
chmod 600 "$PF_T/hb.token"
printf 'correct horse battery\n' >"$PF_T/pw"
chmod 600 "$PF_T/pw"
coll user add ann --role admin --password-file "$PF_T/pw" >/dev/null
coll user add vic --role viewer --password-file "$PF_T/pw" >/dev/null
ADMIN=$(coll user token ann)
VIEWER=$(coll user token vic)
fleet_start_collector "$NS_B" "$IP_C:$COLL_PORT" collector

# --- the agent on the backend host -------------------------------------------------------------
CFG="$PF_T/backend.yaml"
cat >"$CFG" <<EOF
database: $HIST_DB
interfaces: [$IF_A]
host_watch:
  enabled: false
reports:
  enabled: false
collector:
  url: http://$IP_C:$COLL_PORT
  token_file: $PF_T/backend.token
  interval: 5
  name: backend
heartbeats:
  - service_name: redis-main
    check: tcp://$IP_B:$REDIS_PORT
    interval: 3600
  - service_name: 后端api
    check: process:peakflow-bpf
    interval: 5
    ip: $IP_A
EOF
chmod 600 "$CFG"

real=$(date +%s)
boundary=$(((real + 30 + 299) / 300 * 300))
fake0=$((boundary - 30)) # ahead of the real clock by 0 to 299 s
DAEMON_LOG="$PF_T/backend.log"
pf_ns_argv "$NS_A"
HIST_FAKE0=$fake0
HIST_LAUNCH_NS=$(date +%s%N)
"${PF_NS_ARGV[@]}" env LD_PRELOAD="$HIST_FAKETIME_LIB" FAKETIME="@$(hist_utc "$fake0")" \
    FAKETIME_DONT_FAKE_MONOTONIC=1 TZ=UTC "$PF_BIN" attach --config "$CFG" --interval 1 --xdp-mode generic \
    >"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!
HIST_PIDS+=("$DAEMON_PID")
pf_wait_ready backend

# status START END TOKEN -> the answer on stdout
status() {
    nsenter "--net=/run/netns/$NS_B" -- curl -sS -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
        -d "{\"start_time\": $1, \"end_time\": $2}" "http://$IP_C:$COLL_PORT/heartbeat/status"
}

# 1. The checks' heartbeats, through the link.
for ((i = 0; i < 100; i++)); do
    status $((boundary - 600)) $(($(date +%s) + 290)) "$ADMIN" >"$PF_T/s1.json"
    "$PY" - "$PF_T/s1.json" <<'EOF' 2>/dev/null && break
import json, sys
s = json.load(open(sys.argv[1]))["service_status"]
assert s["redis"] and s["backend"], s
EOF
    sleep 0.1
done
"$PY" - "$PF_T/s1.json" "$IP_A" "$IP_B" <<'EOF' || fail "heartbeats from the agent's checks: $(cat "$PF_T/s1.json")"
import json, sys
s = json.load(open(sys.argv[1]))["service_status"]
ip_a, ip_b = sys.argv[2], sys.argv[3]
assert [(r["service_name"], r["ip_address"], r["is_online"]) for r in s["redis"]] == [("redis-main", ip_b, True)], s
assert [(r["service_name"], r["ip_address"], r["is_online"]) for r in s["backend"]] == [("后端api", ip_a, True)], s
EOF
pf_log "the agent's checks: redis-main at $IP_B and 后端api at $IP_A online through the link"

# 2. Traffic between backend and redis in the bucket [boundary - 300, boundary).
pf_traffic "$NS_A" udp --to "$IP_B" --port "$REDIS_PORT" --count 30 --sizes "100,1200,64" --src "$IP_A" --sport 40001
pf_traffic "$NS_A" tcp --to "$IP_B" --port "$REDIS_PORT" --bytes 200000
hist_sleep_until $((boundary + 20))
bucket=$((boundary - 300))
kernel=$(hist_sql "SELECT rx_bytes + tx_bytes, rx_packets + tx_packets FROM bucket5m WHERE mac = -1 AND ts = $bucket")
[[ -n $kernel ]] || fail "no 5-minute row of $IF_A for $bucket"
read -r want_bytes want_packets <<<"${kernel//|/ }"
((want_packets > 60)) || fail "the bucket holds only $want_packets packets"
for ((i = 0; i < 300; i++)); do
    status "$bucket" "$boundary" "$ADMIN" >"$PF_T/s2.json"
    "$PY" - "$PF_T/s2.json" "$want_bytes" <<'EOF' 2>/dev/null && break
import json, sys
t = json.load(open(sys.argv[1]))["traffic_status"]["redis_to_backend"]
assert t and t[0]["bytes"] == int(sys.argv[2])
EOF
    sleep 0.2
done
"$PY" - "$PF_T/s2.json" "$IP_A" "$IP_B" "$want_bytes" "$want_packets" <<'EOF' ||
import json, sys
j = json.load(open(sys.argv[1]))
t = j["traffic_status"]
ip_a, ip_b, b, p = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
r = t["redis_to_backend"]
assert len(r) == 1, r
r = r[0]
assert (r["source_ip"], r["target_ip"], r["bytes"], r["packets"]) == (ip_b, ip_a, b, p), (r, b, p)
# The UDP exchange, the TCP connection and the check's connect: three 5-tuples.
assert r["flows"] == 3 and r["data_count"] == 3, r
for k in ("data_collection_to_kafka", "kafka_to_database", "database_to_backend", "backend_to_frontend"):
    assert t[k] == [], (k, t[k])
print("redis_to_backend:", r)
EOF
    fail "redis_to_backend is not what the kernel counted ($want_bytes bytes, $want_packets packets): $(cat "$PF_T/s2.json")"
pf_log "redis_to_backend = $want_bytes bytes, $want_packets packets: the kernel's counters of $IF_A for the bucket"

# 3. By hand, and what a viewer sees.
out=$(nsenter "--net=/run/netns/$NS_A" -- "$PF_BIN" heartbeat send --url "http://$IP_C:$COLL_PORT" \
    --name 前端web --token-file "$PF_T/hb.token")
[[ $out =~ ^"heartbeat recorded: 前端web at $IP_A2 (id "[0-9]+", "[0-9T:.-]+"Z)"$ ]] || fail "heartbeat send: $out"
if nsenter "--net=/run/netns/$NS_A" -- "$PF_BIN" heartbeat send --url "http://$IP_C:$COLL_PORT" --name x \
    2>"$PF_T/send.err"; then
    fail "a heartbeat without a token was recorded"
fi
assert_eq "heartbeat send without a token" \
    "peakflow-bpf: heartbeat send: http://$IP_C:$COLL_PORT/heartbeat/report answered HTTP 401: missing credentials: send Authorization: Bearer with a heartbeat token, or report from an address in heartbeat.allow_from" \
    "$(cat "$PF_T/send.err")"
status "$bucket" "$boundary" "$VIEWER" >"$PF_T/s3.json"
"$PY" - "$PF_T/s3.json" <<'EOF' || fail "a viewer's status: $(cat "$PF_T/s3.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert all(v == [] for v in j["traffic_status"].values()), j["traffic_status"]
for k in ("redis", "backend"):
    assert all(r["ip_address"] == "隐私保护" for r in j["service_status"][k]), j
EOF
pf_stop_daemon TERM
assert_eq "agent exit status" 0 "$DAEMON_RC"
fleet_stop_collector TERM
assert_eq "collector exit status" 0 "$STOP_RC"
pf_log "heartbeat send by hand recorded; a viewer sees placeholders and no traffic"
