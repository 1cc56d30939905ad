#!/usr/bin/env bash
# The billing history, end to end: the daemon (generic XDP, drain every second) writes
# known UDP traffic into SQLite while its wall clock, faked with libfaketime, crosses the
# start of the peak window (18:00 local) and the end of the local day (Asia/Shanghai,
# UTC+8). Each crossing is a separate short run, so every restart also resumes from the
# stored snapshots. Checked with the sqlite3 CLI, exactly:
#   - every row is in the 5-minute bucket of the local time its traffic was drained at,
#     peak=0 before 18:00 and after midnight, peak=1 from 18:00 to midnight;
#   - after midnight the finished local day is in `finalized`, its daily rows equal the
#     sums of its buckets and its hourly rows the sums of each local hour;
#   - after a kill -9 mid-traffic and a restart, the interface-total buckets (mac = -1)
#     add up to the kernel's own interface counters since the first attach, and so do
#     the peer's MAC rows (every frame on the pair is from or to the peer); that run is
#     stopped with SIGQUIT (PeakFlow_Tracker's old unit sends it): exit 0 and a last drain;
#   - a database that is not a database, or one on a read-only file system: the daemon
#     exits 1 with one error line naming the file, before attaching anything.
# Generic XDP because with native XDP on veth the kernel's rx_bytes lacks the 14-byte
# Ethernet header (see pf_calibrate_native_rx in lib.sh); in generic mode both count frames.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=history_lib.sh
source "$PF_IT_DIR/history_lib.sh"

TZNAME=Asia/Shanghai
HIST_DB="$PF_T/history/h.db" # the directory does not exist yet: the daemon makes it
CFG="$PF_T/history.yaml"
cat >"$CFG" <<EOF
timezone: $TZNAME
peak_windows: ["18:00-24:00"]
billing_day: 1
log_level: debug
log_dir: $PF_T/logs
EOF
DAEMON_ARGS=(--config "$CFG" --database "$HIST_DB" --interval 1 --xdp-mode generic)
MACB=$((0x${MAC_B//:/}))

# Four traffic phases with different counts and sizes, so a row in the wrong bucket
# cannot pass for the right one. "COUNT SIZES" each.
PH_A=(23 "100,1200")         # before 18:00
PH_B=(31 "1,64,512")         # after 18:00
PH_C=(17 "300,1472,20")      # before midnight
PH_D=(29 "900")              # after midnight
W_A=$(hist_wire_bytes "${PH_A[@]}")
W_B=$(hist_wire_bytes "${PH_B[@]}")
W_C=$(hist_wire_bytes "${PH_C[@]}")
W_D=$(hist_wire_bytes "${PH_D[@]}")

# Interface-total packets committed so far, both directions: what we wait for.
SUM_PKTS="SELECT COALESCE(SUM(rx_packets), 0) || ' ' || COALESCE(SUM(tx_packets), 0) FROM bucket5m WHERE mac = -1"

pf_setup_pair
pf_start_servers
base=$(pf_quiesce "$NS_A" "$IF_A") # the kernel's counters before anything is attached

# Each crossing run starts 12 s before its boundary: what must happen before it (the start,
# the traffic, its drain) took 3 s on a 2-CPU machine at load 10, and hist_before stops
# the test with "test timing" rather than let a slower machine count into the wrong bucket.
# ---- run 1: 17:59:48 -> 18:00 local --------------------------------------------------
t_evening=$(hist_epoch $TZNAME "2026-11-21 17:59:48")
t_peak=$(hist_epoch $TZNAME "2026-11-21 18:00:00") # 10:00:00 UTC, a bucket boundary
hist_start_daemon evening "$t_evening" "${DAEMON_ARGS[@]}"
pf_assert_ours_attached "evening run" generic
[[ -f $HIST_DB ]] || fail "the daemon did not create $HIST_DB"

hist_udp "${PH_A[@]}"
hist_wait_sql "$SUM_PKTS" "${PH_A[0]} ${PH_A[0]}" "evening run, traffic before 18:00"
hist_before "$t_peak" "committing the traffic sent before 18:00"
hist_sleep_until $((t_peak + 1))
hist_udp "${PH_B[@]}"
hist_wait_sql "$SUM_PKTS" "$((PH_A[0] + PH_B[0])) $((PH_A[0] + PH_B[0]))" "evening run, traffic after 18:00"
pf_stop_daemon TERM
assert_eq "evening run: exit status after SIGTERM" 0 "$DAEMON_RC"

# 17:55 local (09:55 UTC) off-peak, 18:00 local (10:00 UTC) peak; the peer's MAC row
# carries the same frames as the interface totals.
expected_evening="$((t_peak - 300)) -1 0 $W_A ${PH_A[0]} $W_A ${PH_A[0]}
$((t_peak - 300)) $MACB 0 $W_A ${PH_A[0]} $W_A ${PH_A[0]}
$t_peak -1 1 $W_B ${PH_B[0]} $W_B ${PH_B[0]}
$t_peak $MACB 1 $W_B ${PH_B[0]} $W_B ${PH_B[0]}"
BUCKETS="SELECT ts, mac, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM bucket5m"
assert_eq "evening run: bucket rows 'ts mac peak rx_bytes rx_packets tx_bytes tx_packets'" \
    "$expected_evening" "$(hist_sql "$BUCKETS ORDER BY ts, mac")"
assert_eq "evening run: days rolled up (none is over)" "0" "$(hist_sql "SELECT COUNT(*) FROM finalized")"
pf_log "evening run: 17:55 bucket off-peak, 18:00 bucket peak, exact"

# ---- run 2: 23:59:48 -> 00:00 local --------------------------------------------------
t_late=$(hist_epoch $TZNAME "2026-11-21 23:59:48")
t_midnight=$(hist_epoch $TZNAME "2026-11-22 00:00:00") # 16:00:00 UTC
t_day=$(hist_epoch $TZNAME "2026-11-21 00:00:00")      # 2026-11-20 16:00:00 UTC
hist_start_daemon midnight "$t_late" "${DAEMON_ARGS[@]}"
grep -q 'resuming from 2 stored counter snapshots' "$DAEMON_LOG" ||
    fail "midnight run: expected 'resuming from 2 stored counter snapshots' (interface + peer MAC) in $(grep -i resum "$DAEMON_LOG" || echo 'no resume line')"

hist_udp "${PH_C[@]}"
n=$((PH_A[0] + PH_B[0] + PH_C[0]))
hist_wait_sql "$SUM_PKTS" "$n $n" "midnight run, traffic before midnight"
hist_before "$t_midnight" "committing the traffic sent before midnight"
hist_sleep_until $((t_midnight + 1))
hist_udp "${PH_D[@]}"
n=$((n + PH_D[0]))
hist_wait_sql "$SUM_PKTS" "$n $n" "midnight run, traffic after midnight"
# The first drain of the new local day rolls the old one up.
hist_wait_sql "SELECT kind, period, start, end, tz FROM finalized" "day 2026-11-21 $t_day $t_midnight $TZNAME" \
    "midnight run, roll-up of 2026-11-21"
pf_stop_daemon TERM
assert_eq "midnight run: exit status after SIGTERM" 0 "$DAEMON_RC"

expected_midnight="$((t_midnight - 300)) -1 1 $W_C ${PH_C[0]} $W_C ${PH_C[0]}
$((t_midnight - 300)) $MACB 1 $W_C ${PH_C[0]} $W_C ${PH_C[0]}
$t_midnight -1 0 $W_D ${PH_D[0]} $W_D ${PH_D[0]}
$t_midnight $MACB 0 $W_D ${PH_D[0]} $W_D ${PH_D[0]}"
assert_eq "midnight run: bucket rows 'ts mac peak rx_bytes rx_packets tx_bytes tx_packets' from 23:55 local" \
    "$expected_midnight" "$(hist_sql "$BUCKETS WHERE ts >= $((t_midnight - 300)) ORDER BY ts, mac")"
assert_eq "midnight run: earlier bucket rows unchanged" \
    "$expected_evening" "$(hist_sql "$BUCKETS WHERE ts < $((t_midnight - 300)) ORDER BY ts, mac")"

# The finished day: daily rows = its bucket sums (computed by SQL here, independently of
# the roll-up), and = what we sent: off-peak phase A, peak phases B and C.
day_sums=$(hist_sql "SELECT mac, peak, SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) FROM bucket5m
    WHERE ts >= $t_day AND ts < $t_midnight GROUP BY mac, peak ORDER BY mac, peak")
daily=$(hist_sql "SELECT mac, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM daily WHERE day = '2026-11-21'
    ORDER BY mac, peak")
assert_eq "daily rows of 2026-11-21 vs its bucket sums" "$day_sums" "$daily"
w_bc=$((W_B + W_C)) n_bc=$((PH_B[0] + PH_C[0]))
assert_eq "daily rows of 2026-11-21 'mac peak rx_bytes rx_packets tx_bytes tx_packets'" \
    "-1 0 $W_A ${PH_A[0]} $W_A ${PH_A[0]}
-1 1 $w_bc $n_bc $w_bc $n_bc
$MACB 0 $W_A ${PH_A[0]} $W_A ${PH_A[0]}
$MACB 1 $w_bc $n_bc $w_bc $n_bc" "$daily"
# Local hours 17:00, 18:00 and 23:00 (09:00, 10:00 and 15:00 UTC).
assert_eq "hourly rows of 2026-11-21 for the interface 'ts peak rx_bytes rx_packets tx_bytes tx_packets'" \
    "$((t_peak - 3600)) 0 $W_A ${PH_A[0]} $W_A ${PH_A[0]}
$t_peak 1 $W_B ${PH_B[0]} $W_B ${PH_B[0]}
$((t_midnight - 3600)) 1 $W_C ${PH_C[0]} $W_C ${PH_C[0]}" \
    "$(hist_sql "SELECT ts, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM hourly WHERE mac = -1 ORDER BY ts")"
assert_eq "rows rolled up for 2026-11-22 (not over)" "0 0" \
    "$(hist_sql "SELECT (SELECT COUNT(*) FROM daily WHERE day >= '2026-11-22'), (SELECT COUNT(*) FROM hourly WHERE ts >= $t_midnight)")"
assert_eq "monthly rows (billing month 2026-11 is not over)" "0" "$(hist_sql "SELECT COUNT(*) FROM monthly")"
# The daily traffic summary log (log_dir): one line for the finished day, from its totals.
summary=$(cat "$PF_T"/logs/traffic_*.log | sed -E 's/^[0-9-]+ [0-9:]+ //')
assert_eq "traffic summary log for 2026-11-21" \
    "2026-11-21 $IF_A peak_up=$w_bc peak_down=$w_bc offpeak_up=$W_A offpeak_down=$W_A total=$((2 * (W_A + w_bc)))" \
    "$summary"
grep -q 'ready: counting on' "$PF_T"/logs/peakflow_*.log || fail "no daily log file with the daemon's log in $PF_T/logs"
# error.log: the error-level lines of the daily logs, exactly (these runs log none, so it
# is there and empty).
[[ -f $PF_T/logs/error.log ]] || fail "no error.log in $PF_T/logs"
assert_eq "error.log: the daily logs' error lines" "$(grep -h '^[0-9-]* [0-9:.]* error ' "$PF_T"/logs/peakflow_*.log || true)" \
    "$(cat "$PF_T/logs/error.log")"
assert_eq "error.log size" 0 "$(stat -c %s "$PF_T/logs/error.log")"
pf_log "midnight run: 23:55 bucket peak, 00:00 bucket off-peak, 2026-11-21 rolled up exactly"

# ---- run 3: kill -9 in the middle of traffic, restart ---------------------------------
t_k=$(hist_epoch $TZNAME "2026-11-22 00:10:00")
hist_start_daemon kill9-first "$t_k" "${DAEMON_ARGS[@]}"
pf_streams 4
sleep 1.5
victim=$DAEMON_PID
pf_stop_daemon KILL
assert_eq "kill -9 run: exit status" 137 "$DAEMON_RC"
kill -0 "$victim" 2>/dev/null && fail "daemon $victim still alive after kill -9"
hist_remove_faketime_shm
sleep 1 # counted by the kernel with no daemon at all
hist_start_daemon kill9-second $((t_k + 120)) "${DAEMON_ARGS[@]}"
pf_wait_streams
hist_udp "${PH_D[@]}"
k=$(pf_quiesce "$NS_A" "$IF_A")
# SIGQUIT, as PeakFlow_Tracker's unit sends (ExecStop=/bin/kill -s QUIT $MAINPID): a stop
# like SIGTERM, exit 0, and its last drain goes in (the sums below equal the kernel's).
pf_stop_daemon QUIT
assert_eq "kill -9 run: exit status after SIGQUIT" 0 "$DAEMON_RC"
grep -q 'Quit: stopping' "$DAEMON_LOG" || fail "no 'Quit: stopping' in the log after SIGQUIT: $(tail -n 5 "$DAEMON_LOG")"
assert_eq "kill -9 run: kernel counters moved while the daemon stopped (the pair must be silent)" \
    "$k" "$(pf_kstats "$NS_A" "$IF_A")"

read -r b_rxb b_rxp b_txb b_txp <<<"$base"
read -r k_rxb k_rxp k_txb k_txp <<<"$k"
kernel="$((k_rxb - b_rxb)) $((k_rxp - b_rxp)) $((k_txb - b_txb)) $((k_txp - b_txp))"
SUMS="SELECT SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) FROM bucket5m"
pf_log "kernel counters since the first attach: $kernel (rx_bytes rx_packets tx_bytes tx_packets)"
assert_eq "sum of all interface-total buckets vs the kernel's $IF_A statistics since the first attach" \
    "$kernel" "$(hist_sql "$SUMS WHERE mac = -1")"
assert_eq "sum of all buckets of the peer's MAC vs the kernel's $IF_A statistics" \
    "$kernel" "$(hist_sql "$SUMS WHERE mac = $MACB")"
assert_eq "bucket rows of any other MAC" "0" "$(hist_sql "SELECT COUNT(*) FROM bucket5m WHERE mac NOT IN (-1, $MACB)")"
assert_eq "kill -9 run: rows before it unchanged" "$expected_evening
$expected_midnight" "$(hist_sql "$BUCKETS WHERE ts < $t_k ORDER BY ts, mac")"
grep -q 'resuming from 2 stored counter snapshots' "$DAEMON_LOG" || fail "kill -9 run: the restart did not resume"
pf_log "kill -9 mid-traffic and restart: stored sums equal the kernel's counters exactly"

pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
pf_assert_nothing_attached "after detach" "$NS_A" "$IF_A"

# ---- databases the daemon cannot use ---------------------------------------------------
# hist_refusal WHAT DBPATH [PREFIX...]: runs `PREFIX... peakflow-bpf attach` in NS_A (30 s
# limit); it must exit 1 with exactly one error line, which it leaves in HIST_ERR_LINE,
# and nothing on stdout, having attached nothing.
hist_refusal() {
    local what=$1 db=$2 out="$PF_T/refusal" rc=0
    shift 2
    pf_ns_argv "$NS_A"
    timeout -k 5 30 "${PF_NS_ARGV[@]}" "$@" "$PF_BIN" attach "$IF_A" --config "$CFG" --database "$db" --interval 1 \
        --xdp-mode generic >"$out.out" 2>"$out.err" || rc=$?
    assert_eq "$what: exit status (stderr: $(cat "$out.err"))" 1 "$rc"
    assert_eq "$what: number of error lines on stderr ($(cat "$out.err"))" 1 "$(grep -ci 'error' "$out.err")"
    HIST_ERR_LINE=$(grep -i 'error' "$out.err")
    assert_eq "$what: stdout" "" "$(cat "$out.out")"
    pf_assert_nothing_attached "$what" "$NS_A" "$IF_A"
    pf_log "$what: refused: $HIST_ERR_LINE"
}

# hist_assert_names_read_only WHAT DBPATH: HIST_ERR_LINE is our error line, names the file
# and says what is wrong with it.
hist_assert_names_read_only() {
    [[ $HIST_ERR_LINE == "peakflow-bpf: error: "* && $HIST_ERR_LINE == *"$2"* && $HIST_ERR_LINE == *read-only* ]] ||
        fail "$1: expected one error line naming $2 and saying 'read-only', got '$HIST_ERR_LINE'"
}

# Not a database: 8 KiB of random bytes. The file must be left as it was.
mkdir "$PF_T/corrupt"
head -c 8192 /dev/urandom >"$PF_T/corrupt/h.db"
cp "$PF_T/corrupt/h.db" "$PF_T/corrupt.orig"
hist_refusal "garbage database" "$PF_T/corrupt/h.db"
assert_eq "garbage database: error line" \
    "peakflow-bpf: error: SQL in $PF_T/corrupt/h.db: file is not a database (the file is corrupt or not a peakflow database)" \
    "$HIST_ERR_LINE"
cmp -s "$PF_T/corrupt/h.db" "$PF_T/corrupt.orig" || fail "garbage database: the daemon modified the file"

# Read-only: a tmpfs mounted read-only in the daemon's own private mount namespace (the
# namespace wrapper makes one), so the mount cannot outlive it. Once with a copy of the
# real history, once with no database yet.
mkdir "$PF_T/ro"
sqlite3 "$HIST_DB" ".backup '$PF_T/ro-copy.db'"
# shellcheck disable=SC2016 # expanded by the inner sh
RO_SH='mount -t tmpfs -o size=16m pf-ro "$1" && { [ -z "$2" ] || cp "$2" "$1/h.db"; } && mount -o remount,ro "$1" && shift 2 && exec "$@"'
hist_refusal "history on a read-only file system" "$PF_T/ro/h.db" sh -c "$RO_SH" ro-mount "$PF_T/ro" "$PF_T/ro-copy.db"
hist_assert_names_read_only "history on a read-only file system" "$PF_T/ro/h.db"
hist_refusal "no history yet, read-only directory" "$PF_T/ro/h.db" sh -c "$RO_SH" ro-mount "$PF_T/ro" ""
hist_assert_names_read_only "no history yet, read-only directory" "$PF_T/ro/h.db"
[[ -z $(findmnt -n "$PF_T/ro" 2>/dev/null) ]] || fail "test bug: the read-only tmpfs is visible outside the daemon's namespace"
[[ -z $(ls -A "$PF_T/ro") ]] || fail "read-only runs left files behind in $PF_T/ro: $(ls -A "$PF_T/ro")"
for pid in "${HIST_PIDS[@]}"; do
    [[ ! -e /dev/shm/faketime_shm_$pid ]] || fail "libfaketime's /dev/shm/faketime_shm_$pid is left over"
done
