#!/usr/bin/env bash
# The customer's hourly report against real traffic: the daemon (generic XDP, drain every
# second) counts known UDP traffic while its wall clock, faked with libfaketime, crosses
# three 5-minute boundaries of the local hour 15:00-16:00 (Asia/Shanghai) in two short
# runs, and the 16:00 boundary into the next hour. Then `report --customer-hour` (run in
# the namespace, so it reads the interface's own MAC from sysfs) must print:
#   - 12 points v0..v11 equal to the stored 5-minute interface rows of that hour, zero
#     where no traffic was drained;
#   - whose sum equals the kernel's own counter deltas of $IF_A over the hour, exactly:
#     tx_bytes with the default direction, rx_bytes + tx_bytes with direction: both;
#   - the configured static fields, the interface's MAC and version 1, byte for byte;
#   - for the next hour, only the traffic drained after 16:00.
# Generic XDP: with native XDP on veth the kernel's rx_bytes lacks the Ethernet header.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=history_lib.sh
source "$PF_IT_DIR/history_lib.sh"

TZNAME=Asia/Shanghai
HIST_DB="$PF_T/h.db"
write_config() { # FILE DIRECTION
    cat >"$1" <<EOF2
timezone: $TZNAME
customer_report:
  enabled: false
  iface: $IF_A
  direction: $2
  provider_id: "P-100"
  provider_uiid: 9f3c-77
  isp_id: 3
  device_type: 12
  fields:
    region: sh
EOF2
}
CFG="$PF_T/tx.yaml"
CFG_BOTH="$PF_T/both.yaml"
write_config "$CFG" tx
write_config "$CFG_BOTH" both
DAEMON_ARGS=(--config "$CFG" --database "$HIST_DB" --interval 1 --xdp-mode generic)
SUM_PKTS="SELECT COALESCE(SUM(tx_packets), 0) FROM bucket5m WHERE mac = -1"

pf_setup_pair
pf_start_servers
base=$(pf_quiesce "$NS_A" "$IF_A")

t_1500=$(hist_epoch $TZNAME "2026-11-21 15:00:00")
t_1505=$((t_1500 + 300))
t_1555=$((t_1500 + 3300))
t_1600=$((t_1500 + 3600))

# Run 1: 15:04:45 -> across 15:05.
hist_start_daemon first $((t_1505 - 15)) "${DAEMON_ARGS[@]}"
hist_udp 21 "100,1200"
hist_wait_sql "$SUM_PKTS" "21" "first run, traffic before 15:05"
hist_before "$t_1505" "committing the traffic sent before 15:05"
hist_sleep_until $((t_1505 + 1))
hist_udp 13 "1,700"
hist_wait_sql "$SUM_PKTS" "34" "first run, traffic after 15:05"
pf_stop_daemon TERM
assert_eq "first run: exit status" 0 "$DAEMON_RC"
hist_remove_faketime_shm

# Traffic while no daemon runs: counted by the kernel programs, drained by the next start
# (at 15:59:45, into the 15:55 bucket).
hist_udp 5 "333"

# Run 2: 15:59:45 -> across 16:00.
hist_start_daemon second $((t_1600 - 15)) "${DAEMON_ARGS[@]}"
hist_udp 17 "64,1472"
hist_wait_sql "$SUM_PKTS" "56" "second run, traffic before 16:00"
hist_before "$t_1600" "committing the traffic sent before 16:00"
k_hour=$(pf_quiesce "$NS_A" "$IF_A") # the kernel's counters at the end of the hour
hist_before "$t_1600" "reading the kernel's counters before 16:00"
hist_sleep_until $((t_1600 + 1))
hist_udp 9 "250"
hist_wait_sql "$SUM_PKTS" "65" "second run, traffic after 16:00"
k_end=$(pf_quiesce "$NS_A" "$IF_A")
pf_stop_daemon TERM
assert_eq "second run: exit status" 0 "$DAEMON_RC"

read -r b_rxb _ b_txb _ <<<"$base"
read -r h_rxb _ h_txb _ <<<"$k_hour"
read -r _ _ e_txb _ <<<"$k_end"
hour_tx=$((h_txb - b_txb))
hour_rx=$((h_rxb - b_rxb))
pf_log "kernel deltas over 15:00-16:00: tx $hour_tx B, rx $hour_rx B; after 16:00: tx $((e_txb - h_txb)) B"

# The stored 5-minute interface rows of the hour, as v0..v11 (tx).
points_sql() { # COLUMN-EXPRESSION HOUR-START
    local i out="" v
    for ((i = 0; i < 12; i++)); do
        v=$(hist_sql "SELECT COALESCE(SUM($1), 0) FROM bucket5m WHERE mac = -1 AND ts = $(($2 + i * 300))")
        out+="${out:+,}\"v$i\":$v"
    done
    echo "$out"
}
stored_tx=$(points_sql tx_bytes "$t_1500")
stored_both=$(points_sql "rx_bytes + tx_bytes" "$t_1500")
assert_eq "buckets of 15:xx holding rows" "$t_1500 $t_1505 $t_1555" \
    "$(hist_sql "SELECT ts FROM bucket5m WHERE mac = -1 AND ts >= $t_1500 AND ts < $t_1600 ORDER BY ts" | tr '\n' ' ' | sed 's/ $//')"

# The points from what was sent, independently of the daemon and its database: the wire
# bytes of each hist_udp burst (echoed, so tx = rx), in the bucket it was sent in.
w_1500=$(hist_wire_bytes 21 "100,1200")
w_1505=$(hist_wire_bytes 13 "1,700")
w_1555=$(($(hist_wire_bytes 5 "333") + $(hist_wire_bytes 17 "64,1472")))
w_1600=$(hist_wire_bytes 9 "250")
sent_points() { # FACTOR V0 V1 V11
    local i out="" v
    for ((i = 0; i < 12; i++)); do
        v=0
        ((i == 0)) && v=$(($1 * $2))
        ((i == 1)) && v=$(($1 * $3))
        ((i == 11)) && v=$(($1 * $4))
        out+="${out:+,}\"v$i\":$v"
    done
    echo "$out"
}

body() { # V-POINTS HOUR
    echo "{\"flux_dat\":\"2026-11-21\",\"flux_hour\":\"2026-11-21 $2\",\"provider_id\":\"P-100\",\"provider_uiid\":\"9f3c-77\",\"isp_id\":3,\"mac\":\"$MAC_A\",$1,\"version\":1,\"device_type\":12,\"region\":\"sh\"}"
}
sum_points() { # BODY -> v0 + ... + v11
    "$PY" -c 'import json,sys; b=json.loads(sys.argv[1]); print(sum(b["v%d" % i] for i in range(12)))' "$1"
}

pf_run "$PF_T/c15" "$NS_A" report --customer-hour 2026-11-21T15 -f "$CFG" --database "$HIST_DB"
assert_eq "report --customer-hour 15 exit status ($(cat "$PF_T/c15.err"))" 0 "$PF_RC"
got=$(cat "$PF_T/c15.out")
assert_eq "customer body of 15:xx (tx) vs the stored buckets" "$(body "$stored_tx" 15)" "$got"
assert_eq "customer body of 15:xx (tx) vs the traffic sent" "$(body "$(sent_points 1 "$w_1500" "$w_1505" "$w_1555")" 15)" "$got"
assert_eq "sum of v0..v11 (tx) vs the kernel's tx_bytes delta over the hour" "$hour_tx" "$(sum_points "$got")"

pf_run "$PF_T/b15" "$NS_A" report --customer-hour 2026-11-21T15 -f "$CFG_BOTH" --database "$HIST_DB"
assert_eq "report --customer-hour (both) exit status ($(cat "$PF_T/b15.err"))" 0 "$PF_RC"
got=$(cat "$PF_T/b15.out")
assert_eq "customer body of 15:xx (both) vs the stored buckets" "$(body "$stored_both" 15)" "$got"
assert_eq "customer body of 15:xx (both) vs the traffic sent" "$(body "$(sent_points 2 "$w_1500" "$w_1505" "$w_1555")" 15)" "$got"
assert_eq "sum of v0..v11 (both) vs the kernel's rx_bytes + tx_bytes deltas over the hour" \
    "$((hour_rx + hour_tx))" "$(sum_points "$got")"

pf_run "$PF_T/c16" "$NS_A" report --customer-hour 2026-11-21T16 --mac "$MAC_A" -f "$CFG" --database "$HIST_DB"
assert_eq "report --customer-hour 16 exit status ($(cat "$PF_T/c16.err"))" 0 "$PF_RC"
got=$(cat "$PF_T/c16.out")
assert_eq "customer body of 16:xx (tx) vs the stored buckets" "$(body "$(points_sql tx_bytes "$t_1600")" 16)" "$got"
assert_eq "customer body of 16:xx (tx) vs the traffic sent" "$(body "$(sent_points 1 "$w_1600" 0 0)" 16)" "$got"
assert_eq "sum of v0..v11 of 16:xx vs the kernel's tx_bytes delta after 16:00" "$((e_txb - h_txb))" "$(sum_points "$got")"

# Bad input: one error line, exit 1 (malformed hour) or 2 (usage).
pf_run "$PF_T/bad" "$NS_A" report --customer-hour 2026-11-21T25 -f "$CFG" --database "$HIST_DB"
assert_eq "malformed hour: exit status" 1 "$PF_RC"
assert_eq "malformed hour: message" "peakflow-bpf: error: '2026-11-21T25' is not a local hour YYYY-MM-DDTHH" \
    "$(cat "$PF_T/bad.err")"
pf_run "$PF_T/badmac" "$NS_A" report --customer-hour 2026-11-21T15 --mac 02:00:00:00:00:99 -f "$CFG" --database "$HIST_DB"
assert_eq "unreported MAC: exit status" 1 "$PF_RC"
assert_eq "unreported MAC: message" "peakflow-bpf: error: MAC 02:00:00:00:00:99 is not reported on $IF_A" \
    "$(cat "$PF_T/badmac.err")"
pf_log "customer hour report: 12 points = stored buckets, sums = kernel deltas, exactly"

pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
