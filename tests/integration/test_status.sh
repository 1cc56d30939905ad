#!/usr/bin/env bash
# `peakflow-bpf status`: the state of each interface and its exit status.
#  1. a daemon counting: exit 0; programs (XDP native, TC egress), the pins, the daemon's
#     pid; the totals equal the kernel's own interface counters exactly; MAC slots and
#     flows as `dump` sees them; the history's newest bucket.
#  2. the daemon killed with -9: exit 1, "no daemon" (the kernel still counts).
#  3. detached: exit 1, not attached. An interface that does not exist: exit 1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

pf_setup_pair
pf_start_servers

status() { # [ARGS...]: runs status for $IF_A in NS_A; output in $PF_T/status.out, exit in PF_RC
    pf_run "$PF_T/status" "$NS_A" status --config "$PF_CONFIG" "$@"
}
field() { # PYTHON-EXPR over j = the JSON status (its first interface as i)
    "$PY" -c 'import json, sys
j = json.load(open(sys.argv[1])); i = j["interfaces"][0] if j["interfaces"] else None
v = eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v, str) else v)' "$PF_T/status.out" "$1"
}

# --- 1. counting ------------------------------------------------------------------------
read -r rxb0 rxp0 txb0 txp0 <<<"$(pf_quiesce "$NS_A" "$IF_A")"
pf_start_daemon status1 --interval 1
pf_traffic "$NS_B" udp --to "$IP_A" --port "$PORT_A" --count 10
pf_quiesce "$NS_A" "$IF_A" >/dev/null
pf_wait_for "a 5-minute bucket in the history" 10 \
    sqlite3 "$PF_T/history.db" "SELECT 1 FROM bucket5m LIMIT 1" >/dev/null
read -r rxb rxp txb txp <<<"$(pf_kstats "$NS_A" "$IF_A")"
# The kernel's counters since the attach; veth counts native-XDP rx without the Ethernet
# header (lib.sh measures by how much).
krxp=$((rxp - rxp0)) ktxp=$((txp - txp0)) ktxb=$((txb - txb0))
krxb=$((rxb - rxb0 + ${PF_NATIVE_RX_SHORT:-0} * krxp))
status "$IF_A" --json
assert_eq "1: exit status (stderr: $(cat "$PF_T/status.err"))" 0 "$PF_RC"
assert_eq "1: ok" true "$(field 'j["ok"]')"
assert_eq "1: counting, no problem" "true None" "$(field 'str(i["counting"]).lower() + " " + str(i["problem"])')"
assert_eq "1: hooks (xdp tc_ingress tc_egress pinned)" "native False True True" \
    "$(field '" ".join(str(x) for x in [i["xdp"], i["tc_ingress"], i["tc_egress"], i["pinned"]])')"
assert_eq "1: daemon pid" "$DAEMON_PID" "$(field 'i["daemon_pid"]')"
assert_eq "1: totals = the kernel's since the attach (rx bytes packets, tx bytes packets)" "$krxb $krxp $ktxb $ktxp" \
    "$(field '" ".join(str(x) for x in [i["rx"]["bytes"], i["rx"]["packets"], i["tx"]["bytes"], i["tx"]["packets"]])')"
assert_eq "1: MAC capacity per CPU" 4096 "$(field 'i["mac_capacity_per_cpu"]')"
pf_run "$PF_T/dump" "$NS_A" dump "$IF_A" --json --flows --top 1000000
macs=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["interfaces"][0]["macs"]))' "$PF_T/dump.out")
assert_eq "1: MAC slots: the fullest CPU <= dump's MACs <= all CPUs" true \
    "$(field "max(i['mac_used_per_cpu']) <= $macs <= sum(i['mac_used_per_cpu']) and $macs >= 1")"
flows=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["interfaces"][0]["flows"]))' "$PF_T/dump.out")
assert_eq "1: flows in the table, as dump --flows" "$flows" "$(field 'i["flows"]')"
assert_eq "1: history readable, a bucket, no outbox (no push sinks)" "True True None" \
    "$(field '" ".join(str(x) for x in [j["history"]["readable"], j["history"]["newest_bucket"] is not None, j["history"]["outbox"]])')"
status "$IF_A"
assert_eq "1: text exit status" 0 "$PF_RC"
assert_eq "1: text, first lines" "$IF_A: counting|  programs: XDP native, TC egress|  daemon: pid $DAEMON_PID" \
    "$(head -3 "$PF_T/status.out" | paste -sd'|')"
grep -q "^history: $PF_T/history.db; newest 5-minute bucket 20[0-9-]* [0-9:]* ([0-9]* s ago)$" \
    "$PF_T/status.out" || fail "1: history line: $(tail -1 "$PF_T/status.out")"
pf_log "1: a counting interface: exit 0, totals exact"

# --- 2. the daemon gone ------------------------------------------------------------------
pf_stop_daemon KILL
status "$IF_A" --json
assert_eq "2: exit status" 1 "$PF_RC"
assert_eq "2: problem" "no daemon: the kernel counts, but nothing drains the counters into the history" \
    "$(field 'i["problem"]')"
assert_eq "2: ok" false "$(field 'j["ok"]')"

# --- 3. detached; no such interface -----------------------------------------------------
pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "3: detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
status "$IF_A"
assert_eq "3: exit status" 1 "$PF_RC"
assert_eq "3: text" "$IF_A: NOT counting: not attached (no pinned maps): peakflow-bpf attach $IF_A|  programs: none|  daemon: none" \
    "$(head -3 "$PF_T/status.out" | paste -sd'|')"
status nosuch0 --json
assert_eq "3: no such interface" "1 no such interface" "$PF_RC $(field 'i["problem"]')"
pf_log "2, 3: no daemon, detached, no such interface: exit 1 with the reason"
