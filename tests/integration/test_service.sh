#!/usr/bin/env bash
# The daemon as a systemd service sees it: READY=1 once attached, WATCHDOG=1 at half the
# watchdog interval, SIGHUP re-reads the config (RELOADING=1 then READY=1) and applies
# what can change while running, a broken config on reload keeps the running one, and
# STOPPING=1 on SIGTERM. Counting goes on across reloads: the totals and the history's
# bucket sums equal the kernel's counters. systemd's notify socket is played by a local
# datagram socket that logs every message.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
command -v sqlite3 >/dev/null || fail "required tool 'sqlite3' not found"

pf_setup_pair
pf_start_servers

NOTIFY_SOCK="$PF_T/notify.sock"
NOTIFY_LOG="$PF_T/notify.log"
"$PY" - "$NOTIFY_SOCK" >"$NOTIFY_LOG" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
t0 = time.monotonic()
while True:
    msg = s.recv(4096).decode()
    print("%.3f %s" % (time.monotonic() - t0, msg.replace("\n", "|")), flush=True)
PY
BG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do grep -qs listening "$NOTIFY_LOG" && break; sleep 0.1; done
grep -q listening "$NOTIFY_LOG" || fail "notify socket listener did not start"

# count_msgs PATTERN: notify messages so far matching PATTERN.
count_msgs() { grep -c -- "$1" "$NOTIFY_LOG" || true; }

write_config() { # DRAIN_SECONDS LOG_LEVEL
    printf 'database: %s\ndrain_interval: %s\nlog_level: %s\n' "$PF_T/history.db" "$1" "$2" >"$PF_CONFIG"
}

base=$(pf_quiesce "$NS_A" "$IF_A")
write_config 1 info
NOTIFY_SOCKET=$NOTIFY_SOCK WATCHDOG_USEC=2000000 pf_start_daemon service --xdp-mode generic

for ((i = 0; i < 50; i++)); do (($(count_msgs 'READY=1') >= 1)) && break; sleep 0.1; done
assert_eq "READY=1 after attaching" 1 "$(count_msgs 'READY=1')"
grep -q "STATUS=counting on $IF_A" "$NOTIFY_LOG" || fail "no STATUS naming $IF_A: $(cat "$NOTIFY_LOG")"

# Watchdog: WATCHDOG_USEC=2 s, pinged at half of it (every 1 s, whatever the drain interval).
# From one ping, the next two are waited for: each comes at least 1 s after the one before,
# so they take about 2 s (the poll may see either ping late by some 100 ms); a fixed 500 ms
# (or a ping at every drain) would take about 1 s, the full interval 4 s. The upper bound
# leaves 1.5 s for a loaded machine.
wait_pings() { # N: until N pings in all
    for ((i = 0; i < 200; i++)); do (($(count_msgs 'WATCHDOG=1') >= $1)) && return 0; sleep 0.02; done
    fail "fewer than $1 WATCHDOG=1 messages: $(tail -n 5 "$NOTIFY_LOG")"
}
wait_pings $(($(count_msgs 'WATCHDOG=1') + 1))
w0=$(count_msgs 'WATCHDOG=1')
t0=$(date +%s%N)
wait_pings $((w0 + 2))
ms=$((($(date +%s%N) - t0) / 1000000))
((ms >= 1800 && ms <= 3500)) || fail "2 WATCHDOG=1 after one took $ms ms, expected about 2000 (a ping every 1 s)"
pf_log "watchdog: 2 pings $ms ms after one"

pf_known_traffic

# Reload with a new interval and log level.
write_config 2 debug
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 50; i++)); do grep -q 'reloaded: drain every 2000 ms' "$DAEMON_LOG" && break; sleep 0.1; done
grep -q 'reloaded: drain every 2000 ms' "$DAEMON_LOG" || fail "no reload logged: $(tail -n 5 "$DAEMON_LOG")"
assert_eq "RELOADING=1 after SIGHUP" 1 "$(count_msgs 'RELOADING=1')"
# The READY=1 that ends the reload comes after RELOADING=1.
[[ $(grep -E 'RELOADING=1|READY=1' "$NOTIFY_LOG" | tail -n 1) == *READY=1* ]] || fail "no READY=1 after RELOADING=1"
for ((i = 0; i < 100; i++)); do grep -q ' debug drain ' "$DAEMON_LOG" && break; sleep 0.1; done
grep -q ' debug drain ' "$DAEMON_LOG" || fail "log level debug from the reloaded config not applied"

pf_known_traffic

# A broken config on reload: logged, the running configuration stays, the daemon lives.
printf 'drain_interval: 2\nbogus_key: 1\n' >"$PF_CONFIG"
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 50; i++)); do grep -q 'reload failed, keeping the running configuration' "$DAEMON_LOG" && break; sleep 0.1; done
grep -q "reload failed, keeping the running configuration: $PF_CONFIG:2:1: key 'bogus_key': unknown key" "$DAEMON_LOG" ||
    fail "broken config on reload not reported as expected: $(tail -n 3 "$DAEMON_LOG")"
kill -0 "$DAEMON_PID" || fail "daemon died on a broken config reload"

pf_known_traffic
pf_check_exact "counting across reloads" "$base"

read -r k_rxb k_rxp k_txb k_txp <<<"$(pf_quiesce "$NS_A" "$IF_A")"
read -r b_rxb b_rxp b_txb b_txp <<<"$base"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
assert_eq "STOPPING=1 on SIGTERM" 1 "$(count_msgs 'STOPPING=1')"

# Every byte the kernel counted since the first attach is in the history, once.
got=$(sqlite3 "$PF_T/history.db" "SELECT SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) FROM bucket5m WHERE mac = -1" | tr '|' ' ')
assert_eq "history bucket sums (rx bytes, rx packets, tx bytes, tx packets)" \
    "$((k_rxb - b_rxb)) $((k_rxp - b_rxp)) $((k_txb - b_txb)) $((k_txp - b_txp))" "$got"

pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
