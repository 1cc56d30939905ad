#!/usr/bin/env bash
# The fleet: a real peakflow-collector and two real agents, each counting real traffic on
# its own veth pair, reporting over a separate management link (not counted) through a
# proxy that can drop one answer.
#
#   NS_B ──veth── NS_A (agent a1 counts IF_A) ──mgmt── NS_H (proxy :8998 → collector
#   NS_D ──veth── NS_C (agent a2 counts IF_C) ──mgmt──        127.0.0.1:8999, chat stand-in)
#
# Checked: each agent's per-bucket, per-MAC rows at the collector equal the agent's own
# history exactly, and their sums equal the kernel's counters; a collector stopped for
# several report intervals while traffic flows gets the backlog, exactly; an answer lost
# after the collector committed makes the agent send the same batch again, which is
# acknowledged and not stored twice; kill -9 of the collector and of an agent loses
# nothing; an agent that stops raises exactly one offline alert (stand-in and alert file)
# and one recovery when it is back; a collector restart raises none; tokens, bodies and
# JSON that are wrong are refused with their status and store nothing.
#
# Time: the agents run with their wall clock set back (libfaketime, a fixed offset, real
# speed) so that a 5-minute bucket closes 35 s after they start, in the middle of the
# collector's outage: the backlog then holds a closed bucket (the buckets stream, seq 1)
# besides the open one (live rows). The collector runs on the real clock.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

COLL_BIN=$(dirname "$PF_BIN")/peakflow-collector
[[ -x $COLL_BIN ]] || fail "peakflow-collector not found beside $PF_BIN"
# shellcheck source-path=SCRIPTDIR source=fleet_lib.sh
source "$PF_IT_DIR/fleet_lib.sh"
command -v sqlite3 >/dev/null || fail "sqlite3 is needed"

NS_C="pf-it-$PF_ID-c"
NS_D="pf-it-$PF_ID-d"
NS_H="pf-it-$PF_ID-h"
IF_C="pfc$PF_ID"
IF_D="pfd$PF_ID"
MAC_C=02:70:66:00:00:0c
MAC_D=02:70:66:00:00:0d
IP_C=198.18.0.5
IP_D=198.18.0.6
PORT_C=5003
HUB_A=198.18.1.2 # the hub's ends of the management links
HUB_C=198.18.1.6
PROXY_PORT=8998
COLL_PORT=8999
INTERVAL=5 # seconds between reports (the smallest the agent takes)
OFFLINE_AFTER=3
A1_PID=""
A2_PID=""
AGENT_PIDS=() # every agent started under libfaketime (their shm files go at cleanup)
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[[ -r $FAKETIME_LIB ]] || fail "libfaketime not found at $FAKETIME_LIB (Debian package libfaketime)"

fleet_cleanup() {
    local rc=$? ns pid
    set +e
    [[ -n $A1_PID ]] && pf_kill_pid "$A1_PID"
    [[ -n $A2_PID ]] && pf_kill_pid "$A2_PID"
    # libfaketime leaves these behind for a process killed with -9.
    for pid in "${AGENT_PIDS[@]}"; do rm -f "/dev/shm/faketime_shm_$pid" "/dev/shm/sem.faketime_sem_$pid"; done
    [[ -n $COLL_PID ]] && pf_kill_pid "$COLL_PID"
    if [[ -e $PIN_ROOT/$IF_C ]] && pf_netns_exists "$NS_C"; then
        pf_ns_argv "$NS_C"
        timeout -k 5 20 "${PF_NS_ARGV[@]}" "$PF_BIN" detach "$IF_C" >/dev/null 2>&1
    fi
    rm -rf "${PIN_ROOT:?}/$IF_C"
    rm -f "$RUN_DIR/$IF_C.pid" "$RUN_DIR/$IF_C.clsact"
    for ns in "$NS_C" "$NS_D" "$NS_H"; do
        pf_netns_exists "$ns" && ip netns del "$ns"
    done
    (exit "$rc")
    pf_cleanup
}
trap fleet_cleanup EXIT

# --- topology ------------------------------------------------------------------------------
pf_setup_pair
pf_start_servers
ip netns add "$NS_C"
ip netns add "$NS_D"
ip netns add "$NS_H"
for ns in "$NS_C" "$NS_D" "$NS_H"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip link add name "$IF_C" netns "$NS_C" address "$MAC_C" type veth peer name "$IF_D" netns "$NS_D" address "$MAC_D"
ip -n "$NS_C" addr add "$IP_C/30" dev "$IF_C"
ip -n "$NS_D" addr add "$IP_D/30" dev "$IF_D"
ip -n "$NS_C" neigh replace "$IP_D" lladdr "$MAC_D" dev "$IF_C" nud permanent
ip -n "$NS_D" neigh replace "$IP_C" lladdr "$MAC_C" dev "$IF_D" nud permanent
ip -n "$NS_C" link set "$IF_C" up
ip -n "$NS_D" link set "$IF_D" up
# Management links: agent namespace <-> hub, never attached to.
ip link add name "pma$PF_ID" netns "$NS_A" type veth peer name "pha$PF_ID" netns "$NS_H"
ip link add name "pmc$PF_ID" netns "$NS_C" type veth peer name "phc$PF_ID" netns "$NS_H"
ip -n "$NS_A" addr add 198.18.1.1/30 dev "pma$PF_ID"
ip -n "$NS_H" addr add "$HUB_A/30" dev "pha$PF_ID"
ip -n "$NS_C" addr add 198.18.1.5/30 dev "pmc$PF_ID"
ip -n "$NS_H" addr add "$HUB_C/30" dev "phc$PF_ID"
for l in "$NS_A pma$PF_ID" "$NS_H pha$PF_ID" "$NS_C pmc$PF_ID" "$NS_H phc$PF_ID"; do
    read -r ns dev <<<"$l"
    ip -n "$ns" link set "$dev" up
done
nsenter "--net=/run/netns/$NS_C" -- "$PY" "$PF_IT_DIR/traffic.py" serve --bind "$IP_C" --port "$PORT_C" \
    >"$PF_T/server-c.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do grep -qs listening "$PF_T/server-c.log" && break; sleep 0.05; done
grep -q listening "$PF_T/server-c.log" || fail "echo server in $NS_C did not start"
for ((i = 0; i < 100; i++)); do
    ip -n "$NS_C" -o link show "$IF_C" | grep -q 'state UP' && ip -n "$NS_A" -o link show "pma$PF_ID" | grep -q 'state UP' &&
        ip -n "$NS_C" -o link show "pmc$PF_ID" | grep -q 'state UP' && break
    sleep 0.1
done

# --- the collector, its chat stand-in and the proxy, in the hub --------------------------
cat >"$PF_T/robots.json" <<'EOF'
{"dingtalk": {"ctok": {"keyword": "peakflow"}}}
EOF
REC="$PF_T/standin.jsonl"
nsenter "--net=/run/netns/$NS_H" -- "$PY" "$PF_IT_DIR/../standins/chat_standin.py" --config "$PF_T/robots.json" \
    --record "$REC" --port-file "$PF_T/standin.port" >"$PF_T/standin.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do [[ -s $PF_T/standin.port ]] && break; sleep 0.05; done
[[ -s $PF_T/standin.port ]] || fail "chat stand-in did not start: $(cat "$PF_T/standin.log")"
STANDIN_PORT=$(cat "$PF_T/standin.port")

COLL_DB="$PF_T/collector.db"
ALERT_FILE="$PF_T/alerts.log"
cat >"$PF_T/collector.yaml" <<EOF
listen: "127.0.0.1:$COLL_PORT"
database: $COLL_DB
offline_after: $OFFLINE_AFTER
alert_file: $ALERT_FILE
push:
  node_name: fleet
  retry: {initial_backoff: 0.2}
  sinks:
    - {name: ops, type: dingtalk, url: "http://127.0.0.1:$STANDIN_PORT/robot/send", token: ctok, keyword: peakflow}
EOF
chmod 600 "$PF_T/collector.yaml"

start_collector() { fleet_start_collector "$NS_H" "127.0.0.1:$COLL_PORT" "$1"; } # NAME
stop_collector() { fleet_stop_collector "$1"; }                                     # SIGNAL

coll token create a1 >"$PF_T/a1.token" || fail "token create a1"
coll token create a2 >"$PF_T/a2.token" || fail "token create a2"
coll token create a3 >"$PF_T/a3.token" || fail "token create a3"
chmod 600 "$PF_T"/a[123].token # secret files: refused when others may read them
grep -Eqx 'pfc_[0-9a-f]{64}' "$PF_T/a1.token" || fail "token create printed '$(cat "$PF_T/a1.token")', not a token alone"
chmod 600 "$PF_T"/a?.token
# Only the hash is stored: the token itself is nowhere in the database.
! grep -qaF "$(cat "$PF_T/a1.token")" "$COLL_DB"* || fail "the token is stored in clear in $COLL_DB"
assert_eq "collector database mode" 600 "$(stat -c %a "$COLL_DB")"

start_collector collector-1
PROXY_REC="$PF_T/proxy.jsonl"
nsenter "--net=/run/netns/$NS_H" -- "$PY" "$PF_IT_DIR/fleet_proxy.py" --listen "0.0.0.0:$PROXY_PORT" \
    --upstream "127.0.0.1:$COLL_PORT" --record "$PROXY_REC" --drop-seq 1 >"$PF_T/proxy.log" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do grep -qs listening "$PF_T/proxy.log" && break; sleep 0.05; done

# --- the agents ------------------------------------------------------------------------------
agent_config() { # NAME NODE HUB-ADDRESS
    # No process watch: a busy machine (a compiler next door) would raise runaway-process
    # alerts, which agents forward to the collector's alert file; only offline alerts are
    # counted here.
    cat >"$PF_T/$1.yaml" <<EOF
database: $PF_T/$1.db
host_watch:
  enabled: false
collector:
  url: http://$3:$PROXY_PORT
  token_file: $PF_T/$1.token
  interval: $INTERVAL
  name: $1
  node: $2
EOF
}
agent_config a1 north "$HUB_A"
agent_config a2 south "$HUB_C"

# The agents' clock: FAKE_OFFSET seconds behind, so that the bucket now open at the agents
# closes at real time CLOSE_AT, 35 s from now.
now=$(date +%s)
FAKE_OFFSET=$((-((now - 265) % 300)))
CLOSE_AT=$((now + 35))

start_agent() { # a1|a2 LOGNAME
    local name=$1 log="$PF_T/$2.log" ns=$NS_A ifn=$IF_A pid i
    [[ $name == a2 ]] && ns=$NS_C ifn=$IF_C
    pf_ns_argv "$ns"
    "${PF_NS_ARGV[@]}" env LD_PRELOAD="$FAKETIME_LIB" FAKETIME="$FAKE_OFFSET" FAKETIME_DONT_FAKE_MONOTONIC=1 \
        "$PF_BIN" attach "$ifn" --config "$PF_T/$name.yaml" --xdp-mode generic --interval 1 >"$log" 2>&1 &
    pid=$!
    AGENT_PIDS+=("$pid")
    if [[ $name == a1 ]]; then A1_PID=$pid; else A2_PID=$pid; fi
    for ((i = 0; i < 200; i++)); do
        grep -Eqs '(^|[^[:alpha:]])ready' "$log" && return 0
        kill -0 "$pid" 2>/dev/null || fail "agent $name ($2) exited: $(tail -n 20 "$log")"
        sleep 0.1
    done
    fail "agent $name ($2) not ready after 20 s"
}
# stop_agent a1|a2 SIGNAL: sets STOP_RC to its exit status
stop_agent() {
    local pid=$A1_PID
    [[ $1 == a2 ]] && pid=$A2_PID
    kill -s "$2" "$pid"
    STOP_RC=0
    { timeout 20 tail --pid="$pid" -f /dev/null || fail "agent $1 did not stop on SIG$2"; } 2>/dev/null
    wait "$pid" 2>/dev/null || STOP_RC=$?
    if [[ $1 == a1 ]]; then A1_PID=""; else A2_PID=""; fi
}
# sleep_until EPOCH (real time)
sleep_until() {
    local left=$(($1 - $(date +%s)))
    ((left > 0)) || return 0
    sleep "$left" &
    BG_PIDS+=($!)
    wait $!
}

base_a=$(pf_quiesce "$NS_A" "$IF_A")
base_c=$(pf_quiesce "$NS_C" "$IF_C")
start_agent a1 a1-first
start_agent a2 a2-first

traffic_c() { # COUNT
    pf_traffic "$NS_D" udp --to "$IP_C" --port "$PORT_C" --count "$1" --sizes 100,700,1400
}

# --- checks ----------------------------------------------------------------------------------
# Rows "iface ts mac peak rx_bytes rx_packets tx_bytes tx_packets", sorted; mac as 12 hex
# digits, "-" for the interface total.
agent_rows() { # NAME
    sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 10000' "$PF_T/$1.db" \
        "SELECT i.name, b.ts, CASE WHEN b.mac < 0 THEN '-' ELSE printf('%012x', b.mac) END, b.peak,
                b.rx_bytes, b.rx_packets, b.tx_bytes, b.tx_packets
         FROM bucket5m b JOIN iface i ON i.id = b.iface_id ORDER BY 1, 2, 3"
}
collector_rows() { # NAME
    sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 10000' "$COLL_DB" \
        "SELECT iface, ts, CASE WHEN mac < 0 THEN '-' ELSE printf('%012x', mac) END, peak,
                rx_bytes, rx_packets, tx_bytes, tx_packets
         FROM fleet_buckets WHERE agent = '$1' ORDER BY 1, 2, 3"
}
# wait_synced NAME WHAT: waits (40 s) until the collector holds exactly the agent's rows.
wait_synced() {
    local i a c
    for ((i = 0; i < 400; i++)); do
        a=$(agent_rows "$1")
        c=$(collector_rows "$1")
        [[ -n $a && $a == "$c" ]] && { pf_log "$2: collector holds $(wc -l <<<"$a") rows of $1, identical"; return 0; }
        sleep 0.1
    done
    diff <(echo "$a") <(echo "$c") | head -n 20 >&2
    fail "$2: the collector's rows of $1 differ from the agent's after 40 s (diff above: < agent, > collector)"
}
# check_kernel NAME NS IF PEER-MAC BASE WHAT: the agent's history sums equal the kernel's
# counters since BASE, for the interface total and for the peer's MAC.
check_kernel() {
    local name=$1 ns=$2 ifn=$3 peer=$4 base=$5 what=$6 k b_rxb b_rxp b_txb b_txp k_rxb k_rxp k_txb k_txp
    read -r b_rxb b_rxp b_txb b_txp <<<"$base"
    k=$(pf_quiesce "$ns" "$ifn")
    read -r k_rxb k_rxp k_txb k_txp <<<"$k"
    local want="$((k_rxb - b_rxb)) $((k_rxp - b_rxp)) $((k_txb - b_txb)) $((k_txp - b_txp))"
    local q="SELECT sum(rx_bytes), sum(rx_packets), sum(tx_bytes), sum(tx_packets) FROM fleet_buckets WHERE agent = '$name'"
    local i got="" gotmac=""
    for ((i = 0; i < 300; i++)); do
        got=$(sqlite3 -batch -noheader -separator ' ' "$COLL_DB" "$q AND iface = '$ifn' AND mac = -1")
        gotmac=$(sqlite3 -batch -noheader -separator ' ' "$COLL_DB" "$q AND iface = '$ifn' AND mac = $((16#${peer//:/}))")
        [[ $got == "$want" && $gotmac == "$want" ]] && break
        sleep 0.1
    done
    assert_eq "$what: $name's $ifn totals at the collector 'rx_bytes rx_packets tx_bytes tx_packets' (kernel deltas)" "$want" "$got"
    assert_eq "$what: $name's $ifn row for peer $peer at the collector (kernel deltas)" "$want" "$gotmac"
    pf_log "$what: $name at the collector equals the kernel's counters: $want"
}

pf_known_traffic
traffic_c 200
check_kernel a1 "$NS_A" "$IF_A" "$MAC_B" "$base_a" "first traffic"
check_kernel a2 "$NS_C" "$IF_C" "$MAC_D" "$base_c" "first traffic"
wait_synced a1 "first traffic"
wait_synced a2 "first traffic"

# agents: one row per agent, identity as announced.
coll agents --json >"$PF_T/agents.json" || fail "agents --json failed"
"$PY" - "$PF_T/agents.json" "$IF_A" "$IF_C" <<'EOF' || fail "agents --json is not as expected: $(cat "$PF_T/agents.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = {a["name"]: a for a in doc["agents"]}
assert set(rows) == {"a1", "a2", "a3"}, rows
for name, node, iface, mac in (("a1", "north", sys.argv[2], "02:70:66:00:00:0a"), ("a2", "south", sys.argv[3], "02:70:66:00:00:0c")):
    r = rows[name]
    assert set(r) == {"name", "node", "host", "iface", "mac", "version", "last_seen", "last_seen_epoch", "state", "backlog"}, r
    assert (r["node"], r["iface"], r["mac"], r["state"]) == (node, iface, mac, "online"), r
    assert r["version"].startswith("0."), r
    assert isinstance(r["last_seen_epoch"], int) and r["last_seen_epoch"] > 0, r
assert rows["a3"]["state"] == "never", rows["a3"]
EOF

# --- the collector away for several report intervals while traffic flows -----------------
# The outage spans the close of the agents' bucket, so the backlog holds a closed bucket.
(($(date +%s) <= CLOSE_AT - 8)) || fail "test timing: the first phase ran past $((CLOSE_AT - 8)) (machine too slow?)"
stop_collector TERM
assert_eq "collector exit status after SIGTERM" 0 "$STOP_RC"
pf_streams 8
traffic_c 300
pf_wait_streams
sleep_until $((CLOSE_AT + 8))
start_collector collector-2
pf_known_traffic
check_kernel a1 "$NS_A" "$IF_A" "$MAC_B" "$base_a" "after an outage of the collector"
check_kernel a2 "$NS_C" "$IF_C" "$MAC_D" "$base_c" "after an outage of the collector"
wait_synced a1 "after an outage of the collector"
wait_synced a2 "after an outage of the collector"

# --- an answer lost after the commit: the same batch again, not stored twice ---------------
# The proxy threw away the collector's answer to the first report with buckets seq 1 (the
# closed bucket): the agent sent that batch again and was told it is held.
for ((i = 0; i < 300; i++)); do grep -q '"dropped": true' "$PROXY_REC" && break; sleep 0.1; done
grep -q '"dropped": true' "$PROXY_REC" || fail "no report carried buckets seq 1 (proxy log: $(tail -n 3 "$PROXY_REC"))"
cat >"$PF_T/resend.py" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
i = next(n for n, r in enumerate(recs) if r["dropped"])
who = recs[i]["agent"]
sent = next(b for b in recs[i]["batches"] if b[0] == "buckets")
later = [r for r in recs[i + 1:] if r["agent"] == who and r["path"].endswith("/report")]
if not later:
    sys.exit(3)  # not yet
nxt = later[0]
again = [b for b in nxt["batches"] if b[0] == "buckets"]
assert again and again[0][:2] == ["buckets", 1], nxt
assert nxt["status"] == 200 and json.loads(nxt["answer"])["acked"]["buckets"] == 1, nxt
print(f"agent {who}: buckets seq 1 ({sent[2]} rows) committed, answer lost, sent again ({again[0][2]} rows), acknowledged as held")
EOF
for ((i = 0; i < 300; i++)); do
    rc=0
    "$PY" "$PF_T/resend.py" "$PROXY_REC" || rc=$?
    ((rc == 3)) || break
    sleep 0.1
done
((rc == 0)) || fail "the batch whose answer was lost was not handled as a resend (see above)"
grep -q 'duplicate' "$PF_T/collector-2.log" || fail "the collector did not log the resent batch as a duplicate"

# --- kill -9 of the collector mid-traffic, and of an agent ---------------------------------
pf_streams 6
sleep 2
stop_collector KILL
assert_eq "collector exit status after kill -9" 137 "$STOP_RC"
start_collector collector-3
stop_agent a2 KILL
assert_eq "agent a2 exit status after kill -9" 137 "$STOP_RC"
traffic_c 100
start_agent a2 a2-second
pf_wait_streams
traffic_c 100
check_kernel a1 "$NS_A" "$IF_A" "$MAC_B" "$base_a" "after kill -9 of collector and agent"
check_kernel a2 "$NS_C" "$IF_C" "$MAC_D" "$base_c" "after kill -9 of collector and agent"
wait_synced a1 "after kill -9 of collector and agent"
wait_synced a2 "after kill -9 of collector and agent"

# Collector restarts raised no alert: every agent reported within its allowance.
alerts_now=$(grep -c . "$ALERT_FILE" 2>/dev/null || true)
assert_eq "alert file lines after collector restarts (none went offline)" 0 "${alerts_now:-0}"

# --- offline: exactly one alert, one recovery -------------------------------------------
stop_agent a2 TERM
assert_eq "agent a2 exit status after SIGTERM" 0 "$STOP_RC"
t_stop=$SECONDS
for ((i = 0; i < 400; i++)); do grep -qs 'a2' "$ALERT_FILE" && break; sleep 0.1; done
grep -qs 'a2' "$ALERT_FILE" || fail "no offline alert for a2 in the alert file $((SECONDS - t_stop)) s after it stopped"
# Not before OFFLINE_AFTER intervals without a report, timed from a2's last report as the
# collector stored it: a2 may have reported up to an interval before it was stopped, so
# timing from the stop (as this did) failed whenever the last report was 3 s before it.
coll agents --json >"$PF_T/agents-off.json" || fail "agents --json failed"
coll alerts --json >"$PF_T/alerts-off.json" || fail "alerts --json failed"
quiet=$("$PY" -c '
import json, sys
last = [a["last_seen_epoch"] for a in json.load(open(sys.argv[1]))["agents"] if a["name"] == "a2"]
alert = [a["time_epoch"] for a in json.load(open(sys.argv[2]))["alerts"] if a["agent"] == "a2" and a["kind"] == "alert"]
print(alert[0] - last[0])' "$PF_T/agents-off.json" "$PF_T/alerts-off.json") || fail "no last report or no alert of a2: $(cat "$PF_T/agents-off.json" "$PF_T/alerts-off.json")"
((quiet > INTERVAL * OFFLINE_AFTER)) ||
    fail "a2's offline alert came $quiet s after its last report, not more than $OFFLINE_AFTER intervals ($((INTERVAL * OFFLINE_AFTER)) s)"
pf_log "a2 offline: alerted $quiet s after its last report, $((SECONDS - t_stop)) s after it stopped"
# A collector restart while a2 is away raises nothing new. Stopped with SIGQUIT, as an old
# unit's ExecStop does: a clean stop like SIGTERM.
stop_collector QUIT
assert_eq "collector exit status after SIGQUIT" 0 "$STOP_RC"
grep -q 'Quit: stopping' "$PF_T/collector-3.log" || fail "the collector did not log its stop on SIGQUIT"
start_collector collector-4
# The big bodies of the refusals below, made while we wait (a few seconds of gzip).
{
    head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$PF_T/big.json"
    head -c $((200 * 1024 * 1024)) /dev/zero | gzip -1 >"$PF_T/bomb.gz"
} &
BODIES_PID=$!
BG_PIDS+=("$BODIES_PID")
sleep $((INTERVAL * OFFLINE_AFTER + 3))
assert_eq "alert file lines while a2 is away, across a collector restart" 1 "$(grep -c . "$ALERT_FILE")"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} alert a2: ' "$ALERT_FILE" ||
    fail "alert file line not as documented: $(cat "$ALERT_FILE")"
coll agents --json | "$PY" -c 'import json,sys; s={a["name"]:a["state"] for a in json.load(sys.stdin)["agents"]}; sys.exit(0 if s["a2"]=="offline" and s["a1"]=="online" else 1)' ||
    fail "agents: a2 should be offline and a1 online: $(coll agents)"
start_agent a2 a2-third
for ((i = 0; i < 300; i++)); do [[ $(grep -c . "$ALERT_FILE") == 2 ]] && break; sleep 0.1; done
assert_eq "alert file lines after a2 is back" 2 "$(grep -c . "$ALERT_FILE")"
grep -Eq ' recovery a2: ' "$ALERT_FILE" || fail "no recovery line for a2: $(cat "$ALERT_FILE")"
for ((i = 0; i < 100; i++)); do [[ $(grep -c 'a2' "$REC" 2>/dev/null) == 2 ]] && break; sleep 0.1; done
assert_eq "messages about a2 at the DingTalk stand-in (one alert, one recovery)" 2 "$(grep -c 'a2' "$REC")"
coll alerts --json >"$PF_T/alerts.json" || fail "alerts --json failed"
"$PY" -c '
import json, sys
a = json.load(open(sys.argv[1]))["alerts"]
mine = [x for x in a if x["agent"] == "a2"]
assert [x["kind"] for x in mine] == ["recovery", "alert"], mine  # newest first
' "$PF_T/alerts.json" || fail "alerts --json: $(cat "$PF_T/alerts.json")"

# --- refusals: status and reason, nothing stored, still serving -----------------------------
rows_before=$(sqlite3 "$COLL_DB" "SELECT count(*) FROM fleet_buckets")
post() { # EXPECTED-STATUS WHAT CURL-ARGS...
    local want=$1 what=$2 got
    shift 2
    got=$(nsenter "--net=/run/netns/$NS_H" -- curl -sS -o "$PF_T/post.out" -w '%{http_code}' \
        "http://127.0.0.1:$COLL_PORT/api/v1/agents/report" "$@") || true
    assert_eq "$what: HTTP status ($(cat "$PF_T/post.out"))" "$want" "$got"
    grep -q '"status":"error"' "$PF_T/post.out" || fail "$what: answer is not a JSON error: $(cat "$PF_T/post.out")"
}
good_body='{"protocol":1,"agent":{"name":"a3","host":"h","node":"","version":"x","boot_id":"b","interval":60,"time":1,"interfaces":[]},"spool":"0123456789abcdef0123456789abcdef","backlog":{"buckets":0,"push":0,"host":0},"batches":[]}'
coll token revoke a3 || fail "token revoke a3"
post 401 "revoked token" -H "Authorization: Bearer $(cat "$PF_T/a3.token")" -H 'Content-Type: application/json' --data "$good_body"
post 401 "wrong token" -H "Authorization: Bearer pfc_$(printf '%064d' 7)" -H 'Content-Type: application/json' --data "$good_body"
post 401 "no token" -H 'Content-Type: application/json' --data "$good_body"
post 403 "a1's token for a3's name" -H "Authorization: Bearer $(cat "$PF_T/a1.token")" -H 'Content-Type: application/json' --data "$good_body"
post 400 "malformed JSON" -H "Authorization: Bearer $(cat "$PF_T/a1.token")" -H 'Content-Type: application/json' --data '{"protocol":1,'
wait "$BODIES_PID" || fail "making the 10 MB body and the gzip bomb failed"
post 413 "10 MB body" -H "Authorization: Bearer $(cat "$PF_T/a1.token")" -H 'Content-Type: application/json' --data-binary "@$PF_T/big.json"
post 413 "gzip bomb (200 MB of zeros in $(stat -c %s "$PF_T/bomb.gz") bytes)" -H "Authorization: Bearer $(cat "$PF_T/a1.token")" \
    -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' --data-binary "@$PF_T/bomb.gz"
assert_eq "bucket rows at the collector after the refused requests" "$rows_before" "$(sqlite3 "$COLL_DB" "SELECT count(*) FROM fleet_buckets")"
kill -0 "$COLL_PID" || fail "the collector died on bad input"
pf_known_traffic
check_kernel a1 "$NS_A" "$IF_A" "$MAC_B" "$base_a" "after the refusals"
wait_synced a1 "after the refusals"

# A clean stop of everything.
stop_agent a1 TERM
assert_eq "agent a1 exit status" 0 "$STOP_RC"
stop_agent a2 TERM
assert_eq "agent a2 exit status" 0 "$STOP_RC"
stop_collector TERM
assert_eq "collector exit status" 0 "$STOP_RC"
grep -qF "$(cat "$PF_T/a1.token")" "$PF_T"/*.log && fail "a token appears in a log"
pf_log "fleet: exact at the collector through outages, lost answers and kill -9; one alert, one recovery"
