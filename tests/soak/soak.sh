#!/usr/bin/env bash
# Soak test (issue 18; requirements 003, sections 12-13: resources and stability before
# going live). Not part of CI: it runs for half an hour by default.
#
#   sudo tests/soak/soak.sh [--minutes N] [--pps N] [--cpu-limit PCT] [--out DIR] \
#       /path/to/peakflow-bpf [/path/to/peakflow-collector]
#
# One peakflow-collector and ten peakflow-bpf agents, each agent in a network namespace of
# its own counting its own veth, with steady UDP and TCP traffic both ways on every
# counted veth for --minutes (default 30). Every 10 s it samples RSS, open fds, threads
# and CPU time of every process, zombies (any <defunct> process whose parent is one of
# ours or a descendant of one), and the collector's SQLite database and WAL sizes. At the
# end it compares, per agent, the kernel's counters of the veth since the attach, the
# agent's pinned counters (`dump`), the sum of the agent's 5-minute history and the
# collector's rows of that agent: byte for byte. It prints a table and exits 1 naming
# every failure:
#
#   - growth that does not level off: a process's RSS, anonymous RSS, fds or threads (or
#     the collector's WAL) whose level over the last third of the run is above its level
#     over the middle third by more than a margin. The level of a third is its
#     second-highest sample, so one sample catching a moment (an agent holding its flow
#     tables mapped: 20 MB more RSS for an instant) does not count. Margins: memory 2%, at
#     least 1 MiB, plus as much as the process's SQLite database grew meanwhile, up to
#     SQLite's default page cache of 2000 KiB (it fills as a database grows from empty);
#     fds and threads 2, for the collector 2 + one per agent (a report in flight each);
#     WAL 10%, at least 1 MiB. The first third is warm-up and is only reported (see
#     soak_report.py);
#   - a zombie in any sample;
#   - an agent whose mean CPU over the run is above --cpu-limit percent of the machine
#     (default 10: "a client above 10% of the machine is not fit to deploy"; % of the
#     machine = CPU time / (wall time x online CPUs));
#   - a process that exited during the run, or a stop that did not exit 0;
#   - an error line in any log;
#   - a byte or packet of difference between the kernel, the agent and the collector.
#
#   ns pf-soak-PID-h (hub)                      ns pf-soak-PID-aN (N = 1..10)
#   bridge psbr-PID 198.18.3.254/24  <-mgmt->   psmN-PID 198.18.3.N/24   (reports; not counted)
#     peakflow-collector :8999
#   phdN-PID 198.18.4.(4N-2)/30      <-data->   psdN-PID 198.18.4.(4N-3)/30 (the agent counts it)
#     soak_traffic.py (all ten)                   traffic.py serve (echo) :5001
#
# The data links are silent on their own (no IPv6, permanent neighbour entries), so every
# frame on them is traffic the test made. XDP runs in generic mode: veth counts native-XDP
# rx without the Ethernet header (see lib.sh), which would make the kernel comparison a
# calibration instead of an equality.
#
# Everything it creates - namespaces, processes, pins under /sys/fs/bpf/peakflow, run
# files, the temp dir - goes at exit, also after a failure or Ctrl-C (lib.sh's cleanup).
# --out DIR keeps the samples, the table, the logs and the collector's database there.
set -euo pipefail

SOAK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MINUTES=30
PPS=50
CPU_LIMIT=10
OUT_DIR=""
AGENTS=10
SAMPLE_EVERY=10
usage() {
    echo "usage: $0 [--minutes N] [--pps N] [--cpu-limit PCT] [--out DIR] PEAKFLOW-BPF [PEAKFLOW-COLLECTOR]" >&2
    exit 2
}
ARGS=()
while (($#)); do
    case $1 in
    --minutes) MINUTES=${2:-}; shift 2 || usage ;;
    --pps) PPS=${2:-}; shift 2 || usage ;;
    --cpu-limit) CPU_LIMIT=${2:-}; shift 2 || usage ;;
    --out) OUT_DIR=${2:-}; shift 2 || usage ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) ARGS+=("$1"); shift ;;
    esac
done
((${#ARGS[@]} == 1 || ${#ARGS[@]} == 2)) || usage
if ! [[ $MINUTES =~ ^[0-9]+$ ]] || ((MINUTES < 2)); then echo "--minutes: a whole number, at least 2" >&2; exit 2; fi
if ! [[ $PPS =~ ^[0-9]+$ ]] || ((PPS < 1)); then echo "--pps: a whole number, at least 1" >&2; exit 2; fi
[[ $CPU_LIMIT =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "--cpu-limit: a number" >&2; exit 2; }
if [[ -n $OUT_DIR ]]; then
    mkdir -p "$OUT_DIR"
    OUT_DIR=$(realpath "$OUT_DIR")
fi

# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$SOAK_DIR/../integration/lib.sh" "${ARGS[0]}"
COLL_BIN=$(realpath "${ARGS[1]:-$(dirname "$PF_BIN")/peakflow-collector}")
[[ -x $COLL_BIN ]] || fail "peakflow-collector '$COLL_BIN' is not executable"
# shellcheck source-path=SCRIPTDIR source=../integration/fleet_lib.sh
source "$PF_IT_DIR/fleet_lib.sh"
for _t in sqlite3 curl getconf; do
    command -v "$_t" >/dev/null || fail "required tool '$_t' not found"
done

NS_H="pf-soak-$PF_ID-h"
BRIDGE="psbr-$PF_ID"
HUB_IP=198.18.3.254
COLL_PORT=8999
ECHO_PORT=5001
REPORT_INTERVAL=10 # the agents' report interval (collector: interval), seconds
RUN_SECONDS=$((MINUTES * 60))
SAMPLES="$PF_T/samples.tsv"
NCPU=$(getconf _NPROCESSORS_ONLN)
CLK_TCK=$(getconf CLK_TCK)

# Per agent N (index N-1): namespace, counted interface, its address and MACs.
AG_NS=() AG_IF=() AG_IP=() AG_MAC=() HUB_IF=() HUB_DATA_IP=() HUB_MAC=() AG_PID=() AG_BASE=()
for ((n = 1; n <= AGENTS; n++)); do
    AG_NS+=("pf-soak-$PF_ID-a$n")
    AG_IF+=("psd$n-$PF_ID")
    AG_IP+=("198.18.4.$((4 * n - 3))")
    AG_MAC+=("$(printf '02:70:73:00:01:%02x' "$n")")
    HUB_IF+=("phd$n-$PF_ID")
    HUB_DATA_IP+=("198.18.4.$((4 * n - 2))")
    HUB_MAC+=("$(printf '02:70:73:00:02:%02x' "$n")")
    AG_PID+=("")
    AG_BASE+=("")
    [[ ! -e $PIN_ROOT/${AG_IF[n - 1]} ]] || fail "pin directory $PIN_ROOT/${AG_IF[n - 1]} already exists; refusing to touch it"
done

FAILURES=()
problem() { # WHAT: a failure of the soak, reported at the end with the table
    FAILURES+=("$*")
    pf_log "PROBLEM: $*"
}

soak_cleanup() {
    local rc=$? i ns ifn
    set +eu
    for ((i = 0; i < AGENTS; i++)); do
        [[ -n ${AG_PID[i]} ]] && pf_kill_pid "${AG_PID[i]}"
    done
    [[ -n $COLL_PID ]] && pf_kill_pid "$COLL_PID"
    for ((i = 0; i < AGENTS; i++)); do
        ns=${AG_NS[i]} ifn=${AG_IF[i]}
        if [[ -e $PIN_ROOT/$ifn || -e $RUN_DIR/$ifn.pid || -e $RUN_DIR/$ifn.clsact ]] && pf_netns_exists "$ns"; then
            pf_ns_argv "$ns"
            timeout -k 5 20 "${PF_NS_ARGV[@]}" "$PF_BIN" detach "$ifn" >/dev/null 2>&1
        fi
        rm -rf "${PIN_ROOT:?}/$ifn"
        rm -f "$RUN_DIR/$ifn.pid" "$RUN_DIR/$ifn.clsact" "$RUN_DIR/$ifn.export-state"
    done
    for ns in "${AG_NS[@]}" "$NS_H"; do
        pf_netns_exists "$ns" && ip netns del "$ns"
    done
    if [[ -n $OUT_DIR && -d $PF_T ]]; then
        cp "$PF_T"/*.log "$PF_T"/*.out "$PF_T"/*.tsv "$PF_T"/*.txt "$PF_T"/collector.db* "$OUT_DIR"/ 2>/dev/null
        pf_log "samples, table and logs kept in $OUT_DIR"
    fi
    (exit "$rc")
    pf_cleanup
}
trap soak_cleanup EXIT

# --- topology --------------------------------------------------------------------------------
pf_log "$("$PF_BIN" --version); $("$COLL_BIN" --version)"
pf_log "$AGENTS agents, $MINUTES min, $PPS datagrams/s + 10 TCP chunks of 4 KiB/s each way per agent; $NCPU CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
new_ns() {
    ip netns add "$1"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$1" link set lo up
}
new_ns "$NS_H"
ip -n "$NS_H" link add name "$BRIDGE" type bridge
ip -n "$NS_H" addr add "$HUB_IP/24" dev "$BRIDGE"
ip -n "$NS_H" link set "$BRIDGE" up
for ((i = 0; i < AGENTS; i++)); do
    n=$((i + 1)) ns=${AG_NS[i]}
    new_ns "$ns"
    # The management link, bridged in the hub (ARP allowed: it is not counted).
    ip link add name "psm$n-$PF_ID" netns "$ns" type veth peer name "phm$n-$PF_ID" netns "$NS_H"
    ip -n "$ns" addr add "198.18.3.$n/24" dev "psm$n-$PF_ID"
    ip -n "$NS_H" link set "phm$n-$PF_ID" master "$BRIDGE"
    ip -n "$ns" link set "psm$n-$PF_ID" up
    ip -n "$NS_H" link set "phm$n-$PF_ID" up
    # The counted link: point to point, silent on its own.
    ip link add name "${AG_IF[i]}" netns "$ns" address "${AG_MAC[i]}" type veth \
        peer name "${HUB_IF[i]}" netns "$NS_H" address "${HUB_MAC[i]}"
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.${AG_IF[i]}.disable_ipv6=1"
    ip netns exec "$NS_H" sysctl -qw "net.ipv6.conf.${HUB_IF[i]}.disable_ipv6=1"
    ip -n "$ns" addr add "${AG_IP[i]}/30" dev "${AG_IF[i]}"
    ip -n "$NS_H" addr add "${HUB_DATA_IP[i]}/30" dev "${HUB_IF[i]}"
    ip -n "$ns" neigh replace "${HUB_DATA_IP[i]}" lladdr "${HUB_MAC[i]}" dev "${AG_IF[i]}" nud permanent
    ip -n "$NS_H" neigh replace "${AG_IP[i]}" lladdr "${AG_MAC[i]}" dev "${HUB_IF[i]}" nud permanent
    ip -n "$ns" link set "${AG_IF[i]}" up
    ip -n "$NS_H" link set "${HUB_IF[i]}" up
done
links_up() {
    local i
    for ((i = 0; i < AGENTS; i++)); do
        ip -n "${AG_NS[i]}" -o link show "${AG_IF[i]}" | grep -q 'state UP' || return 1
        ip -n "${AG_NS[i]}" -o link show "psm$((i + 1))-$PF_ID" | grep -q 'state UP' || return 1
    done
}
for ((w = 0; w < 100; w++)); do links_up && break; sleep 0.1; done
links_up || fail "the links did not come up within 10 s"

# Echo servers, one per agent namespace, for the whole run and the checks after it. Their
# output and the generator's are *.out: lib.sh's cleanup shows the *.log files (the
# product's) after a failure.
for ((i = 0; i < AGENTS; i++)); do
    log="$PF_T/echo-a$((i + 1)).out"
    nsenter "--net=/run/netns/${AG_NS[i]}" -- "$PY" "$PF_IT_DIR/traffic.py" serve --bind "${AG_IP[i]}" \
        --port "$ECHO_PORT" --max-seconds $((RUN_SECONDS + 900)) >"$log" 2>&1 &
    BG_PIDS+=($!)
done
for ((i = 0; i < AGENTS; i++)); do
    log="$PF_T/echo-a$((i + 1)).out"
    for ((w = 0; w < 100; w++)); do grep -qs listening "$log" && break; sleep 0.05; done
    grep -qs listening "$log" || fail "echo server in ${AG_NS[i]} not listening: $(cat "$log")"
done

# --- the collector -------------------------------------------------------------------------
COLL_DB="$PF_T/collector.db"
fleet_collector_conf "$HUB_IP:$COLL_PORT" "$COLL_DB" "alert_file: $PF_T/alerts.txt"
for ((n = 1; n <= AGENTS; n++)); do
    coll token create "a$n" >"$PF_T/a$n.token" || fail "token create a$n"
    chmod 600 "$PF_T/a$n.token" # a secret file: refused when others may read it
    chmod 600 "$PF_T/a$n.token"
done
fleet_start_collector "$NS_H" "$HUB_IP:$COLL_PORT" collector
pf_log "collector ready (pid $COLL_PID) on $HUB_IP:$COLL_PORT"

# --- the agents ----------------------------------------------------------------------------
# Built-in defaults (drain every 10 s, host watch, metrics on the namespace's loopback)
# except the database, generic XDP and the collector link reporting every 10 s.
for ((i = 0; i < AGENTS; i++)); do
    n=$((i + 1))
    cat >"$PF_T/a$n.yaml" <<EOF
database: $PF_T/a$n.db
xdp_mode: generic
collector:
  url: http://$HUB_IP:$COLL_PORT
  token_file: $PF_T/a$n.token
  interval: $REPORT_INTERVAL
  name: a$n
  node: soak
EOF
    chmod 600 "$PF_T/a$n.yaml"
done
for ((i = 0; i < AGENTS; i++)); do
    n=$((i + 1)) log="$PF_T/a$((i + 1)).log"
    AG_BASE[i]=$(pf_quiesce "${AG_NS[i]}" "${AG_IF[i]}")
    pf_ns_argv "${AG_NS[i]}"
    "${PF_NS_ARGV[@]}" "$PF_BIN" attach "${AG_IF[i]}" --config "$PF_T/a$n.yaml" >"$log" 2>&1 &
    AG_PID[i]=$!
    for ((w = 0; w < 300; w++)); do
        grep -Eqs '(^|[^[:alpha:]])ready' "$log" && break
        kill -0 "${AG_PID[i]}" 2>/dev/null || fail "agent a$n exited before it was ready: $(tail -n 20 "$log")"
        sleep 0.1
    done
    grep -Eqs '(^|[^[:alpha:]])ready' "$log" || fail "agent a$n not ready after 30 s"
    [[ $(readlink "/proc/${AG_PID[i]}/exe") == "$PF_BIN" ]] ||
        fail "test bug: pid ${AG_PID[i]} is $(readlink "/proc/${AG_PID[i]}/exe"), not $PF_BIN"
done
pf_log "agents ready: pids ${AG_PID[*]}"
all_online() {
    coll agents --json 2>/dev/null | "$PY" -c '
import json, sys
s = {a["name"]: a["state"] for a in json.load(sys.stdin)["agents"]}
sys.exit(0 if len(s) == int(sys.argv[1]) and set(s.values()) == {"online"} else 1)' "$AGENTS"
}
for ((w = 0; w < 60; w++)); do all_online && break; sleep 1; done
all_online || fail "not every agent reported within 60 s: $(coll agents)"
pf_log "every agent has reported to the collector"

# --- the run -------------------------------------------------------------------------------
# Sample lines (tab-separated): P t name pid rss_kib fds threads cpu_ticks anon_kib db_bytes
# (the process's SQLite database) | D t db wal (the collector's) |
# Z t pid ppid comm | X t name pid (gone).
PROC_NAMES=(collector)
PROC_PIDS=("$COLL_PID")
PROC_DBS=("$COLL_DB")
for ((i = 0; i < AGENTS; i++)); do
    PROC_NAMES+=("a$((i + 1))")
    PROC_PIDS+=("${AG_PID[i]}")
    PROC_DBS+=("$PF_T/a$((i + 1)).db")
done

is_ours() { # PID: is it one of PROC_PIDS or a descendant of one?
    local p=$1 line rest q hops
    for ((hops = 0; hops < 64 && p > 1; hops++)); do
        for q in "${PROC_PIDS[@]}"; do [[ $p == "$q" ]] && return 0; done
        read -r line 2>/dev/null <"/proc/$p/stat" || return 1
        rest=${line##*) }
        read -r _ p _ <<<"$rest"
    done
    return 1
}

sample() { # T: one line per process, the database sizes, the zombies
    local t=$1 i pid line rest k v rss anon thr fds f st
    local -a fl sf
    for i in "${!PROC_PIDS[@]}"; do
        pid=${PROC_PIDS[i]}
        [[ -n $pid ]] || continue
        if ! read -r line 2>/dev/null <"/proc/$pid/stat"; then
            printf 'X\t%s\t%s\t%s\n' "$t" "${PROC_NAMES[i]}" "$pid" >>"$SAMPLES"
            continue
        fi
        rest=${line##*) }
        read -ra sf <<<"$rest"
        rss="" anon="" thr=""
        while read -r k v _; do
            case $k in
            VmRSS:) rss=$v ;;
            RssAnon:) anon=$v ;;
            Threads:) thr=$v ;;
            esac
        done 2>/dev/null <"/proc/$pid/status" || true
        fl=(/proc/"$pid"/fd/*)
        fds=${#fl[@]}
        # stat fields 14 and 15 (utime, stime: all threads) are sf[11] and sf[12].
        printf 'P\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${PROC_NAMES[i]}" "$pid" "${rss:-0}" "$fds" \
            "${thr:-0}" "$((sf[11] + sf[12]))" "${anon:-0}" "$(stat -c %s "${PROC_DBS[i]}" 2>/dev/null || echo 0)" >>"$SAMPLES"
    done
    printf 'D\t%s\t%s\t%s\n' "$t" "$(stat -c %s "$COLL_DB" 2>/dev/null || echo 0)" \
        "$(stat -c %s "$COLL_DB-wal" 2>/dev/null || echo 0)" >>"$SAMPLES"
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        rest=${line##*) }
        st=${rest%% *}
        [[ $st == Z ]] || continue
        read -r _ v _ <<<"$rest"
        if is_ours "$v"; then
            f=${f#/proc/}
            printf 'Z\t%s\t%s\t%s\t%s\n' "$t" "${f%/stat}" "$v" "$(cut -d'(' -f2 <<<"${line%)*}")" >>"$SAMPLES"
        fi
    done
}

check_alive() { # notes each of our processes that exited since the last call
    local i pid rc
    for i in "${!PROC_PIDS[@]}"; do
        pid=${PROC_PIDS[i]}
        [[ -n $pid ]] || continue
        kill -0 "$pid" 2>/dev/null && continue
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
        problem "${PROC_NAMES[i]} (pid $pid) exited during the run with status $rc: $(tail -n 3 "$PF_T/${PROC_NAMES[i]}.log" | tr '\n' ' ')"
        PROC_PIDS[i]=""
        if ((i == 0)); then COLL_PID=""; else AG_PID[i - 1]=""; fi
    done
}

now_us() { echo "${EPOCHREALTIME/./}"; }
since_t0() { # seconds since T0, to 0.1 s
    local d=$(($(now_us) - T0))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

targets=()
for ((i = 0; i < AGENTS; i++)); do targets+=(--target "${AG_IP[i]}:$ECHO_PORT"); done
nsenter "--net=/run/netns/$NS_H" -- "$PY" "$SOAK_DIR/soak_traffic.py" "${targets[@]}" --seconds "$RUN_SECONDS" \
    --pps "$PPS" >"$PF_T/traffic.out" 2>&1 &
TRAFFIC_PID=$!
BG_PIDS+=("$TRAFFIC_PID")
T0=$(now_us)
: >"$SAMPLES"
pf_log "traffic for $RUN_SECONDS s, sampling every $SAMPLE_EVERY s"
for ((k = 0; ; k++)); do
    sample "$(since_t0)"
    check_alive
    kill -0 "$TRAFFIC_PID" 2>/dev/null || break
    if ((k % 30 == 29)); then
        pf_log "$(((k + 1) * SAMPLE_EVERY / 60)) of $MINUTES min; load $(cut -d' ' -f1-3 /proc/loadavg)"
    fi
    # Sleep to the next 10 s mark, in the background so that Ctrl-C is taken at once.
    left=$((T0 + (k + 1) * SAMPLE_EVERY * 1000000 - $(now_us)))
    if ((left > 0)); then
        sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))" &
        wait $!
    fi
done
rc=0
wait "$TRAFFIC_PID" || rc=$?
((rc == 0)) || problem "the traffic generator failed (exit $rc): $(tail -n 3 "$PF_T/traffic.out")"
pf_log "traffic done, $(awk '/ echoed over / {n++; us += $3; ue += $5; ts += $8; te += $11; e += $16}
    END {printf "%d targets: udp %d sent, %d echoed; tcp %d bytes sent, %d echoed; %d send errors", n, us, ue, ts, te, e}' \
    "$PF_T/traffic.out")"

# --- the bytes -----------------------------------------------------------------------------
# Rows "iface ts mac peak rx_bytes rx_packets tx_bytes tx_packets", sorted (as test_fleet.sh).
agent_rows() { # N
    sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 10000' "$PF_T/a$1.db" \
        "SELECT i.name, b.ts, CASE WHEN b.mac < 0 THEN '-' ELSE printf('%012x', b.mac) END, b.peak,
                b.rx_bytes, b.rx_packets, b.tx_bytes, b.tx_packets
         FROM bucket5m b JOIN iface i ON i.id = b.iface_id ORDER BY 1, 2, 3"
}
collector_rows() { # N
    sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 10000' "$COLL_DB" \
        "SELECT iface, ts, CASE WHEN mac < 0 THEN '-' ELSE printf('%012x', mac) END, peak,
                rx_bytes, rx_packets, tx_bytes, tx_packets
         FROM fleet_buckets WHERE agent = 'a$1' ORDER BY 1, 2, 3"
}
sums() { # ROWS (on stdin): the interface rows' "rx_bytes rx_packets tx_bytes tx_packets"
    awk '$3 == "-" {rb += $5; rp += $6; tb += $7; tp += $8} END {printf "%d %d %d %d\n", rb, rp, tb, tp}'
}
declare -A KERNEL DUMP AGENT COLLECTOR
for ((i = 0; i < AGENTS; i++)); do
    read -r b_rxb b_rxp b_txb b_txp <<<"${AG_BASE[i]}"
    read -r k_rxb k_rxp k_txb k_txp <<<"$(pf_quiesce "${AG_NS[i]}" "${AG_IF[i]}")"
    KERNEL[$i]="$((k_rxb - b_rxb)) $((k_rxp - b_rxp)) $((k_txb - b_txb)) $((k_txp - b_txp))"
    pf_run "$PF_T/dump" "${AG_NS[i]}" dump "${AG_IF[i]}" --json
    if ((PF_RC == 0)); then
        read -r rxb rxp txb txp _ <<<"$("$PY" "$PF_IT_DIR/pfjson.py" "$PF_T/dump.out" iface "${AG_IF[i]}")"
        DUMP[$i]="$rxb $rxp $txb $txp"
    else
        DUMP[$i]="dump failed: $(cat "$PF_T/dump.err")"
    fi
done
# The last drain (every 10 s) and the last report (every 10 s) carry the end of it.
pending=("${!AG_NS[@]}")
for ((w = 0; w < 90 && ${#pending[@]}; w++)); do
    still=()
    for i in "${pending[@]}"; do
        a=$(agent_rows $((i + 1)))
        c=$(collector_rows $((i + 1)))
        AGENT[$i]=$(sums <<<"$a")
        COLLECTOR[$i]=$(sums <<<"$c")
        [[ ${AGENT[$i]} == "${KERNEL[$i]}" && $a == "$c" ]] || still+=("$i")
    done
    pending=("${still[@]}")
    ((${#pending[@]} == 0)) || sleep 1
done
{
    printf '%-5s %-14s %-32s\n' agent source "rx_bytes rx_packets tx_bytes tx_packets"
    for ((i = 0; i < AGENTS; i++)); do
        printf '%-5s %-14s %s\n' "a$((i + 1))" kernel "${KERNEL[$i]}" "" dump "${DUMP[$i]}" "" history "${AGENT[$i]}" \
            "" collector "${COLLECTOR[$i]}"
    done
} >"$PF_T/bytes.txt"
for ((i = 0; i < AGENTS; i++)); do
    n=$((i + 1)) k=${KERNEL[$i]}
    [[ ${DUMP[$i]} == "$k" ]] || problem "a$n: the pinned counters (dump) '${DUMP[$i]}' differ from the kernel's '$k' ('rx_bytes rx_packets tx_bytes tx_packets' since the attach)"
    [[ ${AGENT[$i]} == "$k" ]] || problem "a$n: the history's sum '${AGENT[$i]}' differs from the kernel's '$k' after 90 s"
    [[ ${COLLECTOR[$i]} == "$k" ]] || problem "a$n: the collector's sum '${COLLECTOR[$i]}' differs from the kernel's '$k' after 90 s"
    if [[ $(agent_rows "$n") != "$(collector_rows "$n")" ]]; then
        diff <(agent_rows "$n") <(collector_rows "$n") | head -n 10 >&2
        problem "a$n: the collector's 5-minute rows differ from the agent's (diff above: < agent, > collector)"
    fi
done
pf_log "bytes: kernel, pinned counters, history and collector compared for $AGENTS agents ($(awk '{s += $1 + $3} END {print s}' <<<"$(printf '%s\n' "${KERNEL[@]}")") bytes counted in all)"

# --- stop ------------------------------------------------------------------------------------
check_alive
for ((i = 0; i < AGENTS; i++)); do
    [[ -n ${AG_PID[i]} ]] || continue
    kill -TERM "${AG_PID[i]}"
done
for ((i = 0; i < AGENTS; i++)); do
    [[ -n ${AG_PID[i]} ]] || continue
    rc=0
    timeout 30 tail --pid="${AG_PID[i]}" -f /dev/null || problem "a$((i + 1)) still running 30 s after SIGTERM"
    wait "${AG_PID[i]}" 2>/dev/null || rc=$?
    ((rc == 0)) || problem "a$((i + 1)) exited with status $rc on SIGTERM"
    AG_PID[i]=""
done
if [[ -n $COLL_PID ]]; then
    fleet_stop_collector TERM
    ((STOP_RC == 0)) || problem "the collector exited with status $STOP_RC on SIGTERM"
fi
# Errors in the logs (spdlog's level is the third field: "DATE TIME LEVEL message").
for f in "$PF_T"/collector.log "$PF_T"/a[0-9]*.log; do
    errs=$(awk '$3 == "error" || $3 == "critical"' "$f" | head -n 3)
    [[ -z $errs ]] || problem "$(basename "$f" .log) logged errors ($(awk '$3 == "error" || $3 == "critical"' "$f" | wc -l) lines), first: $errs"
done
# Warnings are not failures: the agents' host watch sees the whole machine, and a
# compiler next door is a runaway process to each of them (alerts the collector stores).
warns=$(for f in "$PF_T"/collector.log "$PF_T"/a[0-9]*.log; do
    printf '%s %s, ' "$(basename "$f" .log)" "$(awk '$3 == "warning"' "$f" | wc -l)"
done)
runaways=$(grep -cs 'runaway' "$PF_T/alerts.txt" || true) # no file: no alert at all
pf_log "warning lines in the logs: ${warns%, }; runaway-process alerts at the collector: ${runaways:-0}"

# --- the table -------------------------------------------------------------------------------
report_rc=0
"$PY" "$SOAK_DIR/soak_report.py" "$SAMPLES" --cpus "$NCPU" --clk-tck "$CLK_TCK" --cpu-limit "$CPU_LIMIT" \
    --agents "$AGENTS" >"$PF_T/table.txt" || report_rc=$?
((report_rc <= 1)) || fail "soak_report.py failed (exit $report_rc)"
{
    echo
    echo "== soak: $AGENTS agents and a collector, $MINUTES min, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $NCPU CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    cat "$PF_T/table.txt"
    echo
    cat "$PF_T/bytes.txt"
} | tee "$PF_T/summary.txt"
while IFS= read -r line; do
    [[ $line == PROBLEM:* ]] && FAILURES+=("${line#PROBLEM: }")
done <"$PF_T/table.txt"
if ((${#FAILURES[@]})); then
    printf '\nsoak FAILED (%d):\n' "${#FAILURES[@]}"
    printf '  - %s\n' "${FAILURES[@]}"
    exit 1
fi
echo
echo "soak passed: no growth past the middle third, no zombie, agents' CPU under $CPU_LIMIT% of the machine, every byte equal"
