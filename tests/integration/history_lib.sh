# shellcheck shell=bash
# Helpers for test_history.sh: the daemon under a fake wall clock, and the history
# database read with the sqlite3 CLI. Source after lib.sh (which owns cleanup: it kills
# $DAEMON_PID and $BG_PIDS, detaches, removes the namespaces and $PF_T).
#
# The fake clock is libfaketime, preloaded into peakflow-bpf only (not into nsenter,
# unshare or the shell that sets up the namespace): FAKETIME="@YYYY-MM-DD hh:mm:ss" starts
# the wall clock at that moment when the process starts and lets it run at real speed;
# FAKETIME_DONT_FAKE_MONOTONIC=1 keeps CLOCK_MONOTONIC real, so the drain timer
# (steady_clock) ticks normally. The "@" time is read in the process's $TZ, so we give it
# TZ=UTC and UTC strings; the billing zone comes from the config file, not from $TZ.
# (Names and formats: /usr/share/doc/libfaketime/README.gz, sections 4b-4c.)

HIST_FAKETIME_LIB=${HIST_FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}
[[ -r $HIST_FAKETIME_LIB ]] || fail "libfaketime not found at $HIST_FAKETIME_LIB (Debian package libfaketime)"
command -v sqlite3 >/dev/null || fail "the sqlite3 CLI is needed (Debian package sqlite3)"

HIST_FAKE0=0      # fake UTC epoch the running daemon started at
HIST_LAUNCH_NS=0  # real time (ns) it was launched at
HIST_PIDS=()      # every daemon started under libfaketime

# libfaketime keeps /dev/shm/faketime_shm_<pid> and sem.faketime_sem_<pid> for each process
# it runs in and removes them when the process exits normally. After kill -9 they stay,
# and a later process that happens to get the same PID fails in shm_open. Remove them for
# our daemons that are gone (named by PIDs we started, so nobody else's).
hist_remove_faketime_shm() {
    local pid
    for pid in "${HIST_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        rm -f "/dev/shm/faketime_shm_$pid" "/dev/shm/sem.faketime_sem_$pid"
    done
}

# Runs before lib.sh's pf_cleanup (which ends with `exit`): stop the daemon first so its
# libfaketime files can be removed, then hand over with the original exit status.
hist_cleanup() {
    local rc=$?
    set +eu
    if [[ -n $DAEMON_PID ]]; then
        pf_kill_pid "$DAEMON_PID"
        DAEMON_PID=""
    fi
    hist_remove_faketime_shm
    (exit "$rc")
    pf_cleanup
}
trap hist_cleanup EXIT

# hist_epoch TZNAME "YYYY-MM-DD hh:mm:ss" -> UTC epoch of that local time
hist_epoch() {
    TZ=$1 date -d "$2" +%s
}

# hist_utc EPOCH -> "YYYY-MM-DD hh:mm:ss" in UTC
hist_utc() {
    date -u -d "@$1" '+%Y-%m-%d %H:%M:%S'
}

# hist_start_daemon NAME FAKE_EPOCH ARGS...: like pf_start_daemon, with the wall clock of
# the daemon starting at FAKE_EPOCH.
hist_start_daemon() {
    local name=$1 fake=$2
    shift 2
    [[ -z $DAEMON_PID ]] || fail "test bug: a daemon (pid $DAEMON_PID) is already running"
    DAEMON_LOG="$PF_T/$name.log"
    pf_ns_argv "$NS_A"
    HIST_FAKE0=$fake
    HIST_LAUNCH_NS=$(date +%s%N)
    "${PF_NS_ARGV[@]}" env LD_PRELOAD="$HIST_FAKETIME_LIB" FAKETIME="@$(hist_utc "$fake")" \
        FAKETIME_DONT_FAKE_MONOTONIC=1 TZ=UTC "$PF_BIN" attach "$IF_A" "$@" >"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    HIST_PIDS+=("$DAEMON_PID")
    pf_wait_ready "$name"
    # The daemon's own clock, from its log (spdlog prints the wall clock it sees, here UTC):
    # proves the fake clock is in effect before anything is asserted on bucket times.
    local first
    first=$(head -n 1 "$DAEMON_LOG" | cut -c 1-19)
    local seen
    seen=$(date -u -d "$first" +%s 2>/dev/null) || fail "daemon '$name': no timestamp in its first log line: $(head -n 1 "$DAEMON_LOG")"
    ((seen >= fake && seen <= fake + 10)) ||
        fail "daemon '$name': its clock says $first UTC, expected $(hist_utc "$fake") (is libfaketime working?)"
    pf_log "daemon '$name' ready (pid $DAEMON_PID), its clock started at $(hist_utc "$fake") UTC"
}

# hist_fake_now -> the running daemon's wall clock now, whole seconds (to within the few
# milliseconds between our launch timestamp and its start)
hist_fake_now() {
    echo $((HIST_FAKE0 + ($(date +%s%N) - HIST_LAUNCH_NS) / 1000000000))
}

# hist_sleep_until EPOCH: sleeps until the daemon's clock has reached EPOCH (+0.3 s).
hist_sleep_until() {
    local now_ns target_ns
    now_ns=$(($(date +%s%N) - HIST_LAUNCH_NS + HIST_FAKE0 * 1000000000))
    target_ns=$(($1 * 1000000000 + 300000000))
    ((target_ns > now_ns)) || return 0
    # In the background and waited for: an INT or TERM trap runs at once, not after the sleep.
    sleep "$(printf '%d.%09d' $(((target_ns - now_ns) / 1000000000)) $(((target_ns - now_ns) % 1000000000)))" &
    BG_PIDS+=($!)
    wait $!
}

# hist_before EPOCH WHAT: fails unless the daemon's clock is still at least 3 s before EPOCH.
hist_before() {
    local now
    now=$(hist_fake_now)
    ((now + 3 <= $1)) || fail "test timing: $2 had to happen before $(hist_utc "$1") UTC, the daemon's clock is at $(hist_utc "$now") (machine too slow?)"
}

# hist_sql QUERY -> rows, columns separated by spaces
hist_sql() {
    sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 10000' "$HIST_DB" "$1" ||
        fail "sqlite3 $HIST_DB: query failed: $1"
}

# hist_wait_sql QUERY EXPECTED WHAT: polls (15 s limit) until QUERY prints EXPECTED.
hist_wait_sql() {
    local got="" i
    for ((i = 0; i < 150; i++)); do
        got=$(hist_sql "$1")
        [[ $got == "$2" ]] && return 0
        sleep 0.1
    done
    fail "$3: waited 15 s for '$2', the database says '$got' ($1)"
}

# hist_udp COUNT SIZES: lock-step UDP from the peer to our echo server: COUNT datagrams in,
# COUNT echoes out on $IF_A.
hist_udp() {
    pf_traffic "$NS_B" udp --to "$IP_A" --port "$PORT_A" --count "$1" --sizes "$2"
}

# hist_wire_bytes COUNT SIZES -> bytes on the wire in one direction for hist_udp COUNT SIZES
hist_wire_bytes() {
    "$PY" -c '
import sys
n, sizes = int(sys.argv[1]), [int(x) for x in sys.argv[2].split(",")]
print(sum(14 + 20 + 8 + sizes[i % len(sizes)] for i in range(n)))' "$1" "$2"
}
