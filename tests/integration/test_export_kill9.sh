#!/usr/bin/env bash
# Flow export across kill -9: the daemon saves what it exported of each flow (the state
# file in the spool directory) after each scan's rows are on disk, and a restart continues
# from there, so the flow entries still in the map are not exported from zero again. The
# rows of all files (the .part left by the kill included) add up exactly to the UDP
# packets and bytes sent, both directions, with traffic running while the daemon is
# killed. Then a flow map re-created while no daemon runs (detach, attach): the saved state
# is not applied to the new map and its flows are exported from zero, again exactly.
# Last, without files (IPFIX and the collector's address pairs): the state in /run/peakflow
# keeps the pairs exact across a kill -9, and a clean stop removes it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

pf_setup_pair
pf_start_servers

SPOOL="$PF_T/spool"
cat >>"$PF_CONFIG" <<CONF
export:
  scan_interval: 1
  active_timeout: 1
  idle_timeout: 3600
  files:
    directory: $SPOOL
    prefix: flows_
    rotate_interval: 2
    timezone: UTC
CONF

SIZE=100
FRAME=$((ETH_HLEN + 20 + 8 + SIZE))
udp_from_b() { # SPORT COUNT
    nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" udp --to "$IP_A" --port "$PORT_A" \
        --count "$2" --sizes "$SIZE" --src "$IP_B" --sport "$1" >/dev/null
}
# All rows written so far: finished files and the open .part (zcat reads a .part up to its
# last flush and then complains about the missing end: that message is expected).
all_rows() {
    local files
    mapfile -t files < <(find "$SPOOL" -maxdepth 1 \( -name '*.csv.gz' -o -name '*.part' \) | sort)
    ((${#files[@]} > 0)) || return 0
    pf_export_rows "${files[@]}" 2>/dev/null
}
flow_sum() { all_rows | pf_export_sum "$1" "$2" "$3" "$4" "$5"; } # DIR SRC SPORT DST DPORT
rx_packets() { [[ $(flow_sum rx "$IP_B" "$1" "$IP_A" "$PORT_A" | cut -d' ' -f1) == "$2" ]]; }
check_flow() { # WHAT SPORT PACKETS: exact packets and bytes in all rows, both directions
    assert_eq "$1: rx flow from port $2 (packets bytes)" "$3 $(($3 * FRAME))" "$(flow_sum rx "$IP_B" "$2" "$IP_A" "$PORT_A")"
    assert_eq "$1: tx flow to port $2 (packets bytes)" "$3 $(($3 * FRAME))" "$(flow_sum tx "$IP_A" "$PORT_A" "$IP_B" "$2")"
}

# 1. Rows for 20 packets, then traffic on a second flow while the daemon is killed.
pf_start_daemon export-k1 --interval 3600
udp_from_b 41001 20
pf_wait_for "20 packets of flow 41001 exported" 10 rx_packets 41001 20
[[ -s $SPOOL/.peakflow-export-state ]] || fail "no state file in the spool directory"
udp_from_b 41001 10 # not exported yet when the kill comes (or partly: either way exact)
read -r _ rx0 _ _ <<<"$(pf_kstats "$NS_A" "$IF_A")"
udp_from_b 41002 20000 2>"$PF_T/sender.err" &
SENDER=$!
BG_PIDS+=("$SENDER")
# The kill comes once the sender is under way (50 of its packets in the kernel's counters
# of $IF_A), not after a fixed sleep: on a loaded machine it may not have started in 0.3 s.
for ((i = 0; i < 250; i++)); do
    read -r _ rx _ _ <<<"$(pf_kstats "$NS_A" "$IF_A")"
    ((rx - rx0 >= 50)) && break
    kill -0 "$SENDER" 2>/dev/null || break
    sleep 0.02
done
sending=1
kill -0 "$SENDER" 2>/dev/null || sending=0
pf_stop_daemon KILL
assert_eq "exit status of the kill -9'd daemon" 137 "$DAEMON_RC"
wait "$SENDER" || fail "the UDP sender of flow 41002 failed: $(cat "$PF_T/sender.err")"
if ((sending)); then
    pf_log "step 1: daemon killed with -9 while flow 41002 was sending"
else
    # Exactness across the kill is checked all the same (its packets were not exported yet).
    pf_log "step 1: daemon killed with -9 (flow 41002 had finished sending just before)"
fi

# 2. Restart: the saved state is continued, more packets, SIGTERM exports the rest.
pf_start_daemon export-k2 --interval 3600
pf_wait_for "the saved state continued (first scan)" 5 \
    grep -q "export: $IF_A: continuing [0-9]* flows from the saved export state" "$DAEMON_LOG"
udp_from_b 41001 5
pf_wait_for "35 packets of flow 41001 exported" 10 rx_packets 41001 35
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
[[ -z $(find "$SPOOL" -name '*.part') ]] || fail ".part left after SIGTERM: $(ls "$SPOOL")"
check_flow "after kill -9 and restart" 41001 35
check_flow "after kill -9 and restart" 41002 20000
pf_log "step 2: every flow exported exactly once across the kill"

# 3. The flow map re-created while no daemon runs: the saved state must not apply to it.
pf_start_daemon export-k3 --interval 3600
udp_from_b 41003 12
pf_wait_for "12 packets of flow 41003 exported" 10 rx_packets 41003 12
pf_stop_daemon KILL
pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
pf_start_daemon export-k4 --interval 3600
pf_wait_for "the re-created flow map noted (first scan)" 5 grep -q "export: $IF_A: the flow map was re-created" "$DAEMON_LOG"
udp_from_b 41003 8
pf_wait_for "20 packets of flow 41003 exported" 10 rx_packets 41003 20
pf_stop_daemon TERM
check_flow "after the map was re-created" 41003 20
pf_log "step 3: a re-created flow map is exported from zero"

# 4. No spool (IPFIX only, and the address pairs for a collector): the state lives in the
# run directory. The pairs in the history (the collector link's spool; no collector
# answers here) add up exactly across a kill -9, and a clean stop leaves no state behind.
STATE="$RUN_DIR/$IF_A.export-state"
printf 'pfc_%064d\n' 7 >"$PF_T/agent.token"
chmod 600 "$PF_T/agent.token" # a secret file: refused when others may read it
chmod 600 "$PF_T/agent.token"
PF_CONFIG="$PF_T/config-pairs.yaml"
cat >"$PF_CONFIG" <<CONF
database: $PF_T/pairs.db
host_watch:
  enabled: false
reports:
  enabled: false
export:
  scan_interval: 1
  active_timeout: 1
  idle_timeout: 3600
  files:
    enabled: false
  ipfix:
    collectors: ["$IP_B:4739"]
collector:
  url: http://$IP_B:9
  token_file: $PF_T/agent.token
CONF
pairs() { # packets bytes of the UDP pair client IP_B, server IP_A:PORT_A, both directions
    sqlite3 "$PF_T/pairs.db" "SELECT COALESCE(SUM(packets),0) || ' ' || COALESCE(SUM(bytes),0) FROM flow_pairs
        WHERE client = '$IP_B' AND server = '$IP_A' AND proto = 17 AND port = $PORT_A" 2>/dev/null
}
pair_packets() { [[ $(pairs | cut -d' ' -f1) == "$1" ]]; }
pf_start_daemon export-k5 --interval 3600
udp_from_b 41004 20
pf_wait_for "40 packets of flow 41004 in the pairs" 10 pair_packets 40
[[ -s $STATE ]] || fail "no export state in $RUN_DIR: $(ls "$RUN_DIR")"
udp_from_b 41005 3000
pf_stop_daemon KILL
assert_eq "exit status of the kill -9'd daemon" 137 "$DAEMON_RC"
pf_start_daemon export-k6 --interval 3600
pf_wait_for "the saved state continued (first scan)" 5 \
    grep -q "export: $IF_A: continuing [0-9]* flows from the saved export state" "$DAEMON_LOG"
udp_from_b 41004 5
pf_wait_for "50 + 6000 packets in the pairs" 10 pair_packets 6050
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
assert_eq "the pairs after kill -9 and restart (packets bytes)" "6050 $((6050 * FRAME))" "$(pairs)"
[[ ! -e $STATE ]] || fail "the export state was left in $RUN_DIR after SIGTERM"
pf_log "step 4: IPFIX and address pairs counted exactly once across the kill"
