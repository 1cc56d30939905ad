#!/usr/bin/env bash
# What the whole daemon costs on an idle host: accounting (10 s drains) plus the process
# watch (every 5 s) and host health (CPU and memory every 5 s, disk, system and users every
# minute), with the default config. The daemon runs on a veth pair of its own with no
# traffic; the host is topped up with sleeping processes to PROCS processes in all. Over
# SECONDS it samples the daemon's own /proc/PID/stat and status, and prints CPU as percent
# of one CPU and resident memory (now and peak). Figures only, no pass/fail.
#   bash tests/bench/daemon_cost.sh build/user/peakflow-bpf [SECONDS=60] [PROCS=300]
set -euo pipefail
SECONDS_RUN=${2:-60}
PROCS=${3:-300}
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" "$1"

have=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
for ((i = have; i < PROCS; i++)); do
    sleep $((SECONDS_RUN + 60)) &
    BG_PIDS+=($!)
done
pf_setup_pair
pf_start_daemon cost
sleep 6 # past start-up: the first samples of every item, the first drain
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
t0=$(ticks)
s0=$(date +%s.%N)
sleep "$SECONDS_RUN"
t1=$(ticks)
s1=$(date +%s.%N)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
procs=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
# Where the resident memory is: anonymous, file-backed and shared (smaps_rollup), and the
# mappings that hold most of it, summed by name (smaps).
rollup=$(awk '/^(Anonymous|Rss|Shared_Clean|Shared_Dirty|Private_Clean|Private_Dirty):/ {printf "%s %.1f MB  ", $1, $2 / 1024}' \
    "/proc/$DAEMON_PID/smaps_rollup")
top=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6 ? $6 : "[anonymous]"); sub(/.*\//, "", name); next}
    /^Rss:/ {rss[name] += $2}
    END {for (n in rss) if (rss[n] >= 256) printf "%8.1f MB  %s\n", rss[n] / 1024, n}' "/proc/$DAEMON_PID/smaps" | sort -rn | head -8)
pf_stop_daemon
echo "resident memory: $rollup"
echo "largest mappings (RSS by name):"
echo "$top"
awk -v t="$((t1 - t0))" -v hz="$hz" -v s0="$s0" -v s1="$s1" -v rss="$rss" -v hwm="$hwm" -v n="$procs" 'BEGIN {
    printf "daemon cost over %.0f s with %d processes on the host: CPU %.2f%% of one CPU, RSS %.1f MB (peak %.1f MB)\n",
        s1 - s0, n, t / hz / (s1 - s0) * 100, rss / 1024, hwm / 1024 }'
