# shellcheck shell=bash
# Shared setup, cleanup and checks for the integration tests.
#
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"     # $1: the peakflow-bpf binary
#
# Topology made by pf_setup_pair (all names carry this shell's PID, so nothing collides):
#
#   netns $NS_A                                   netns $NS_B
#   $IF_A  $MAC_A  198.18.0.1/30  <--- veth --->  $IF_B  $MAC_B  198.18.0.2/30
#   (peakflow-bpf attaches here)                  (the peer)
#
# The pair is kept silent on its own: IPv6 is off and both ends have permanent neighbour
# entries (no ARP), so every frame on the wire is traffic the test made, and every frame
# $IF_A sees comes from or goes to $MAC_B.
#
# Everything the test creates - namespaces, daemons, helper processes, pins, the temp dir -
# is removed by pf_cleanup, which runs on EXIT, INT and TERM.

PF_IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PF_TEST_NAME=$(basename "$0" .sh)
PY=/usr/bin/python3
ETH_HLEN=14

pf_log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$PF_TEST_NAME" "$*" >&2; }

fail() {
    printf '\nFAIL [%s]: %s\n' "$PF_TEST_NAME" "$*" >&2
    exit 1
}

# assert_eq WHAT EXPECTED GOT
assert_eq() {
    [[ "$2" == "$3" ]] || fail "$1: expected '$2', got '$3'"
}

# ---------------------------------------------------------------------------------------
# Preconditions and names

[[ $# -ge 1 ]] || fail "usage: bash $0 /path/to/peakflow-bpf"
PF_BIN=$(realpath "$1")
[[ -x "$PF_BIN" ]] || fail "peakflow-bpf binary '$1' is not executable"
[[ $(id -u) -eq 0 ]] || fail "integration tests need root (they create network namespaces and attach BPF programs)"
[[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || fail "no bpffs mounted at /sys/fs/bpf"
for _t in ip tc nsenter unshare timeout setpriv mount "$PY"; do
    command -v "$_t" >/dev/null || fail "required tool '$_t' not found"
done

PF_ID=$$
NS_A="pf-it-$PF_ID-a"
NS_B="pf-it-$PF_ID-b"
IF_A="pfa$PF_ID"
IF_B="pfb$PF_ID"
MAC_A=02:70:66:00:00:0a
MAC_B=02:70:66:00:00:0b
IP_A=198.18.0.1
IP_B=198.18.0.2
PORT_A=5001 # echo server in NS_A
PORT_B=5002 # echo server in NS_B
PIN_ROOT=/sys/fs/bpf/peakflow
RUN_DIR=/run/peakflow

PF_T=""
DAEMON_PID=""
DAEMON_LOG=""
# shellcheck disable=SC2034 # set by pf_stop_daemon, read by the test scripts
DAEMON_RC=""
BG_PIDS=()
[[ -e $PIN_ROOT ]] && PF_PIN_ROOT_EXISTED=1 || PF_PIN_ROOT_EXISTED=0
[[ -e $RUN_DIR ]] && PF_RUN_DIR_EXISTED=1 || PF_RUN_DIR_EXISTED=0
[[ -e /var/lib/peakflow ]] && PF_VARLIB_EXISTED=1 || PF_VARLIB_EXISTED=0
for _i in "$IF_A" "$IF_B"; do
    [[ ! -e $PIN_ROOT/$_i ]] || fail "pin directory $PIN_ROOT/$_i already exists before the test; refusing to touch it"
done

pf_netns_exists() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }

pf_kill_pid() { # PID: TERM, then KILL after 5 s; only for processes this shell started
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

pf_cleanup() {
    local rc=$? ifn ns pid f
    set +eu
    trap - EXIT INT TERM
    if ((rc != 0)) && [[ -n $PF_T ]]; then
        for f in "$PF_T"/*.log; do
            [[ -s $f ]] || continue
            printf -- '--- %s (last 30 lines) ---\n' "$(basename "$f")" >&2
            tail -n 30 "$f" >&2
        done
    fi
    [[ -n $DAEMON_PID ]] && pf_kill_pid "$DAEMON_PID"
    for pid in "${BG_PIDS[@]}"; do pf_kill_pid "$pid"; done
    for ifn in "$IF_A" "$IF_B"; do
        ns=$NS_A
        [[ $ifn == "$IF_B" ]] && ns=$NS_B
        if [[ -e $PIN_ROOT/$ifn || -e $RUN_DIR/$ifn.pid || -e $RUN_DIR/$ifn.clsact ]]; then
            if pf_netns_exists "$ns"; then
                pf_ns_argv "$ns"
                timeout -k 5 20 "${PF_NS_ARGV[@]}" "$PF_BIN" detach "$ifn" >/dev/null 2>&1
            else
                timeout -k 5 20 "$PF_BIN" detach "$ifn" >/dev/null 2>&1
            fi
        fi
        rm -rf "${PIN_ROOT:?}/$ifn"
        rm -f "$RUN_DIR/$ifn.pid" "$RUN_DIR/$ifn.clsact" "$RUN_DIR/$ifn.export-state"
    done
    ((PF_PIN_ROOT_EXISTED)) || rmdir "$PIN_ROOT" 2>/dev/null
    ((PF_RUN_DIR_EXISTED)) || rmdir "$RUN_DIR" 2>/dev/null
    for ns in "$NS_A" "$NS_B"; do
        pf_netns_exists "$ns" && ip netns del "$ns"
    done
    if ((!PF_VARLIB_EXISTED)) && [[ -e /var/lib/peakflow ]]; then
        pf_log "WARNING: /var/lib/peakflow appeared during the test (ours are told to use $PF_T/history.db); not removing it"
    fi
    [[ -n $PF_T ]] && rm -rf "$PF_T"
    if ((rc == 0)); then
        pf_log "PASS"
    else
        pf_log "FAILED (exit $rc)"
    fi
    exit "$rc"
}
trap pf_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PF_T=$(mktemp -d "/tmp/pf-it-$PF_ID.XXXXXX")
chmod 755 "$PF_T"
mkdir "$PF_T/bpfmnt"

# Every attach gets this config: built-in defaults (whatever /etc/peakflow/config.yaml
# says on this machine does not apply) and the history database in the temp dir.
PF_CONFIG="$PF_T/config.yaml"
cat >"$PF_CONFIG" <<CONF
# peakflow-bpf integration test $PF_TEST_NAME: built-in defaults, history in the temp dir
database: $PF_T/history.db
CONF

# ---------------------------------------------------------------------------------------
# Running things inside a namespace
#
# `ip netns exec` gives the command a fresh sysfs for the namespace, which hides the bpffs
# mounted at /sys/fs/bpf (iproute2 does not remount it; checked with iproute2 6.1). A
# peakflow-bpf started that way would mount a private bpffs that dies with the process, so
# its pins would not survive a restart and `dump` from another process would not see them.
# The pins must live in the one global bpffs, so we build the same environment by hand:
# enter the network namespace, take a private mount namespace, mount a sysfs that shows
# the namespace's interfaces, and bind the global bpffs back onto /sys/fs/bpf.
#
# Every step execs the next (nsenter and unshare do not fork for these options), so a
# command started in the background keeps the PID in $!.
#
# PF_IT_PLAIN_NETNS_EXEC=1 runs peakflow-bpf under plain `ip netns exec` instead, to check
# how the CLI copes with the hidden bpffs.
# shellcheck disable=SC2016 # expanded by the inner sh
PF_NS_SH='set -e
m=$1/bpfmnt; shift
mount --bind /sys/fs/bpf "$m"
umount -l /sys
mount -t sysfs sysfs /sys
mount --bind "$m" /sys/fs/bpf
umount -l "$m"
exec "$@"'

pf_ns_argv() { # NS: sets PF_NS_ARGV to the command prefix that runs a command in NS
    if [[ ${PF_IT_PLAIN_NETNS_EXEC:-0} == 1 ]]; then
        PF_NS_ARGV=(ip netns exec "$1")
    else
        PF_NS_ARGV=(nsenter "--net=/run/netns/$1" -- unshare --mount --propagation private -- sh -c "$PF_NS_SH" pf-ns "$PF_T")
    fi
}

pf_ns() { # NS CMD...: runs CMD in NS (foreground)
    local ns=$1
    shift
    pf_ns_argv "$ns"
    "${PF_NS_ARGV[@]}" "$@"
}

# pf_run OUTPREFIX NS ARGS...: runs `peakflow-bpf ARGS` in NS with a 30 s limit; stdout to
# OUTPREFIX.out, stderr to OUTPREFIX.err; sets PF_RC.
pf_run() {
    local out=$1 ns=$2
    shift 2
    PF_RC=0
    pf_ns_argv "$ns"
    timeout -k 5 30 "${PF_NS_ARGV[@]}" "$PF_BIN" "$@" >"$out.out" 2>"$out.err" || PF_RC=$?
}

# ---------------------------------------------------------------------------------------
# Topology

pf_setup_pair() {
    local ns
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    for ns in "$NS_A" "$NS_B"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done
    ip link add name "$IF_A" netns "$NS_A" address "$MAC_A" type veth peer name "$IF_B" netns "$NS_B" address "$MAC_B"
    ip netns exec "$NS_A" sysctl -qw "net.ipv6.conf.$IF_A.disable_ipv6=1"
    ip netns exec "$NS_B" sysctl -qw "net.ipv6.conf.$IF_B.disable_ipv6=1"
    ip -n "$NS_A" addr add "$IP_A/30" dev "$IF_A"
    ip -n "$NS_B" addr add "$IP_B/30" dev "$IF_B"
    ip -n "$NS_A" neigh replace "$IP_B" lladdr "$MAC_B" dev "$IF_A" nud permanent
    ip -n "$NS_B" neigh replace "$IP_A" lladdr "$MAC_A" dev "$IF_B" nud permanent
    ip -n "$NS_A" link set "$IF_A" up
    ip -n "$NS_B" link set "$IF_B" up
    local i
    for ((i = 0; i < 50; i++)); do
        if ip -n "$NS_A" -o link show "$IF_A" | grep -q 'state UP' &&
            ip -n "$NS_B" -o link show "$IF_B" | grep -q 'state UP'; then
            return 0
        fi
        sleep 0.1
    done
    fail "veth pair $IF_A/$IF_B did not come up within 5 s"
}

# pf_start_servers: UDP+TCP echo servers on $IP_A:$PORT_A (NS_A) and $IP_B:$PORT_B (NS_B).
pf_start_servers() {
    local ns ip port log pid i
    for ns in "$NS_A" "$NS_B"; do
        if [[ $ns == "$NS_A" ]]; then ip=$IP_A port=$PORT_A; else ip=$IP_B port=$PORT_B; fi
        log="$PF_T/server-$ip.log"
        nsenter "--net=/run/netns/$ns" -- "$PY" "$PF_IT_DIR/traffic.py" serve --bind "$ip" --port "$port" >"$log" 2>&1 &
        pid=$!
        BG_PIDS+=("$pid")
        for ((i = 0; i < 100; i++)); do
            grep -qs listening "$log" && break
            kill -0 "$pid" 2>/dev/null || fail "echo server on $ip:$port exited: $(cat "$log")"
            sleep 0.05
        done
        grep -q listening "$log" || fail "echo server on $ip:$port not listening after 5 s"
    done
    pf_calibrate_native_rx
}

# pf_calibrate_native_rx: measures how the kernel counts rx_bytes on $IF_A while a native
# XDP program is attached, and sets PF_NATIVE_RX_SHORT to the bytes per frame it leaves
# out. veth counts native-XDP rx after eth_type_trans() pulled the Ethernet header
# (drivers/net/veth.c, veth_xdp_rcv: xdp_bytes += skb->len), so its rx_bytes is 14 bytes
# per frame short of the frame length (seen on 6.18: 100-byte UDP payloads count 142 bytes
# without XDP or in generic mode, 128 with native XDP). Our counters are frame lengths in
# every mode; measuring instead of assuming keeps the tests right on kernels that fix it.
pf_calibrate_native_rx() {
    local b p b2 p2 n=10 frame=$((14 + 20 + 8 + 100))
    pf_build_foreign_xdp
    ip -n "$NS_A" link set dev "$IF_A" xdpdrv obj "$PF_T/foreign_xdp.o" sec xdp
    read -r b p _ <<<"$(pf_quiesce "$NS_A" "$IF_A")"
    pf_traffic "$NS_B" udp --to "$IP_A" --port "$PORT_A" --count "$n" --sizes 100
    read -r b2 p2 _ <<<"$(pf_quiesce "$NS_A" "$IF_A")"
    ip -n "$NS_A" link set dev "$IF_A" xdpdrv off
    ((p2 - p == n)) || fail "calibration: expected $n frames received on $IF_A, kernel counted $((p2 - p))"
    PF_NATIVE_RX_SHORT=$((frame - (b2 - b) / n))
    case $PF_NATIVE_RX_SHORT in
    0 | "$ETH_HLEN") ;;
    *) fail "calibration: with native XDP the kernel counted $(((b2 - b) / n)) bytes per $frame-byte frame" ;;
    esac
    pf_log "kernel rx_bytes under native XDP on veth: $PF_NATIVE_RX_SHORT bytes per frame short of the frame length"
}

# pf_traffic NS ARGS...: runs traffic.py ARGS in NS, 60 s limit.
pf_traffic() {
    local ns=$1 rc=0
    shift
    timeout -k 5 60 nsenter "--net=/run/netns/$ns" -- "$PY" "$PF_IT_DIR/traffic.py" "$@" >>"$PF_T/traffic.log" 2>&1 || rc=$?
    ((rc == 0)) || fail "traffic.py $* in $ns failed (exit $rc): $(tail -n 5 "$PF_T/traffic.log")"
}

# pf_known_traffic: UDP and TCP, each way, each side initiating. The UDP exchanges use
# fixed ports so their flows can be checked byte for byte (see pf_check_udp_flows).
PF_UDP_COUNT=60
PF_UDP_SIZES=1,64,200,512,1000,1472
PF_SPORT_B=40001 # NS_B -> NS_A datagrams
PF_SPORT_A=40002 # NS_A -> NS_B datagrams
pf_known_traffic() {
    pf_traffic "$NS_B" udp --to "$IP_A" --port "$PORT_A" --count "$PF_UDP_COUNT" --sizes "$PF_UDP_SIZES" --src "$IP_B" --sport "$PF_SPORT_B"
    pf_traffic "$NS_A" udp --to "$IP_B" --port "$PORT_B" --count "$PF_UDP_COUNT" --sizes "$PF_UDP_SIZES" --src "$IP_A" --sport "$PF_SPORT_A"
    pf_traffic "$NS_B" tcp --to "$IP_A" --port "$PORT_A" --bytes 1000000
    pf_traffic "$NS_A" tcp --to "$IP_B" --port "$PORT_B" --bytes 1000000
}

# Bytes on the wire (L2, no FCS) of the UDP exchange one pf_known_traffic call makes in
# one direction: Ethernet 14 + IPv4 20 + UDP 8 + payload, per datagram.
pf_udp_wire_bytes() {
    "$PY" -c '
import sys
sizes = [int(x) for x in sys.argv[2].split(",")]
n = int(sys.argv[1])
print(sum(14 + 20 + 8 + sizes[i % len(sizes)] for i in range(n)))' "$PF_UDP_COUNT" "$PF_UDP_SIZES"
}

# ---------------------------------------------------------------------------------------
# Kernel counters

# pf_kstats NS IF -> "rx_bytes rx_packets tx_bytes tx_packets" from /sys/class/net/IF/statistics
pf_kstats() {
    # shellcheck disable=SC2016 # expanded by the inner sh
    ip netns exec "$1" sh -c 'cd "/sys/class/net/$1/statistics" && echo $(cat rx_bytes) $(cat rx_packets) $(cat tx_bytes) $(cat tx_packets)' sh "$2"
}

# pf_quiesce NS IF: waits until the counters have not moved for ~1 s (15 s limit); prints them.
pf_quiesce() {
    local prev="" cur stable=0 i
    for ((i = 0; i < 50; i++)); do
        cur=$(pf_kstats "$1" "$2")
        if [[ $cur == "$prev" ]]; then
            ((++stable >= 3)) && {
                echo "$cur"
                return 0
            }
        else
            stable=0
        fi
        prev=$cur
        sleep 0.3
    done
    fail "counters of $2 still changing after 15 s ($cur)"
}

# ---------------------------------------------------------------------------------------
# The daemon

# pf_wait_ready NAME: waits (20 s limit) for the daemon $DAEMON_PID to log its "ready"
# line in $DAEMON_LOG, and checks that the PID is peakflow-bpf itself (the namespace
# wrapper execs it).
pf_wait_ready() {
    local name=$1 i
    for ((i = 0; i < 200; i++)); do
        grep -Eqs '(^|[^[:alpha:]])ready' "$DAEMON_LOG" && break
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            local rc=0
            wait "$DAEMON_PID" || rc=$?
            DAEMON_PID=""
            fail "daemon '$name' exited with status $rc before logging 'ready': $(tail -n 20 "$DAEMON_LOG")"
        fi
        sleep 0.1
    done
    grep -Eq '(^|[^[:alpha:]])ready' "$DAEMON_LOG" || fail "daemon '$name' logged no 'ready' line within 20 s"
    [[ $(readlink "/proc/$DAEMON_PID/exe") == "$PF_BIN" ]] ||
        fail "test bug: pid $DAEMON_PID is $(readlink "/proc/$DAEMON_PID/exe"), not $PF_BIN"
}

# pf_start_daemon NAME ARGS...: `peakflow-bpf attach $IF_A ARGS` in NS_A, in the background;
# waits for its "ready" line. Log: $PF_T/NAME.log.
pf_start_daemon() {
    local name=$1
    shift
    [[ -z $DAEMON_PID ]] || fail "test bug: a daemon (pid $DAEMON_PID) is already running"
    DAEMON_LOG="$PF_T/$name.log"
    pf_ns_argv "$NS_A"
    "${PF_NS_ARGV[@]}" "$PF_BIN" attach "$IF_A" --config "$PF_CONFIG" "$@" >"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    pf_wait_ready "$name"
    pf_log "daemon '$name' ready (pid $DAEMON_PID, attach $IF_A $*)"
}

# pf_wait_outbox_empty: waits (up to 30 s) until the daemon in NS_A reports an empty push
# outbox on its /metrics (127.0.0.1:9977). A row leaves the outbox only in the transaction
# that records its confirmed delivery, and a send always starts from a row: once it is
# empty every message has been answered and no sink worker has one left to send, so a
# message sent twice is in the stand-in's log by then (where a fixed sleep could miss it).
pf_wait_outbox_empty() {
    local i depth=""
    for ((i = 0; i < 300; i++)); do
        depth=$(pf_ns "$NS_A" "$PY" -c 'import urllib.request
for l in urllib.request.urlopen("http://127.0.0.1:9977/metrics", timeout=5).read().decode().splitlines():
    if l.startswith("peakflow_outbox_depth "): print(l.split()[1])' 2>/dev/null || true)
        [[ $depth == 0 ]] && return 0
        sleep 0.1
    done
    fail "the push outbox did not empty within 30 s (depth: ${depth:-no answer from /metrics})"
}

# pf_streams SECONDS: background load both ways (UDP at 400 pps plus a paced TCP
# connection, each direction); sets STREAM_PIDS. pf_wait_streams waits for them.
pf_streams() {
    local log="$PF_T/traffic.log"
    nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" stream --to "$IP_A" --port "$PORT_A" --seconds "$1" --pps 400 >>"$log" 2>&1 &
    STREAM_PIDS=($!)
    nsenter "--net=/run/netns/$NS_A" -- "$PY" "$PF_IT_DIR/traffic.py" stream --to "$IP_B" --port "$PORT_B" --seconds "$1" --pps 400 >>"$log" 2>&1 &
    STREAM_PIDS+=($!)
    BG_PIDS+=("${STREAM_PIDS[@]}")
}

pf_wait_streams() {
    local pid rc
    for pid in "${STREAM_PIDS[@]}"; do
        rc=0
        timeout 60 tail --pid="$pid" -f /dev/null || fail "traffic stream $pid did not finish"
        wait "$pid" || rc=$?
        ((rc == 0)) || fail "traffic stream $pid failed (exit $rc): $(tail -n 5 "$PF_T/traffic.log")"
    done
}

# pf_check_stop_signals_blocked: every thread of the running daemon but the main one blocks
# SIGHUP, SIGINT, SIGQUIT and SIGTERM (SigBlk bits 0, 1, 2 and 14), so these signals always reach the
# main thread's sigtimedwait (the kernel unblocks them in its SigBlk while it waits, so the
# main thread's own mask cannot be read here) and end in a clean stop or a reload, never in
# the default action on another thread. A thread started before the signals were blocked
# (spdlog's flusher for log_dir was one) fails it.
pf_check_stop_signals_blocked() {
    local task blk n=0
    for task in /proc/"$DAEMON_PID"/task/*; do
        [[ ${task##*/} != "$DAEMON_PID" ]] || continue
        blk=$(awk '/^SigBlk:/ {print $2}' "$task/status" 2>/dev/null) || continue
        [[ -n $blk ]] || continue
        (((0x$blk & 0x4007) == 0x4007)) ||
            fail "daemon thread ${task##*/} ($(cat "$task/comm")) does not block SIGHUP/SIGINT/SIGQUIT/SIGTERM (SigBlk $blk)"
        n=$((n + 1))
    done
    ((n > 0)) || fail "found no daemon thread besides the main one under /proc/$DAEMON_PID/task"
    pf_log "all $n daemon threads besides the main one block SIGHUP, SIGINT, SIGQUIT and SIGTERM"
}

# pf_stop_daemon [SIGNAL]: signals the daemon (TERM by default), waits up to 20 s; sets
# DAEMON_RC to its exit status (128+n when killed by signal n).
pf_stop_daemon() {
    local sig=${1:-TERM} i
    [[ -n $DAEMON_PID ]] || fail "test bug: no daemon running"
    kill -s "$sig" "$DAEMON_PID"
    # stderr off while the job ends: bash would print a "Killed" notice for SIGKILL.
    {
        for ((i = 0; i < 200; i++)); do
            kill -0 "$DAEMON_PID" || break
            sleep 0.1
        done
    } 2>/dev/null
    kill -0 "$DAEMON_PID" 2>/dev/null && fail "daemon (pid $DAEMON_PID) still running 20 s after SIG$sig"
    DAEMON_RC=0
    # shellcheck disable=SC2034 # read by the test scripts
    wait "$DAEMON_PID" 2>/dev/null || DAEMON_RC=$?
    DAEMON_PID=""
}

# ---------------------------------------------------------------------------------------
# Reading our counters

# pf_dump FILE [ARGS...]: `peakflow-bpf dump $IF_A --json ARGS` in NS_A into FILE; must succeed.
pf_dump() {
    local file=$1
    shift
    pf_run "$PF_T/dump" "$NS_A" dump "$IF_A" --json "$@"
    ((PF_RC == 0)) || fail "dump $IF_A --json $* failed (exit $PF_RC): $(cat "$PF_T/dump.err")"
    cp "$PF_T/dump.out" "$file"
}

pfjson() { "$PY" "$PF_IT_DIR/pfjson.py" "$@" || fail "dump output not as the contract says (see above)"; }

# pf_check_exact WHAT BASELINE [flows]: quiesces, dumps, and checks that our counters for
# $IF_A equal the kernel's counters minus BASELINE (a pf_kstats line taken before the first
# attach), per interface and for the peer's MAC row, and that no other MAC has counted
# anything. With "flows", also checks the fixed-port UDP flows of pf_known_traffic
# (needs exactly one pf_known_traffic call since BASELINE).
pf_check_exact() {
    local what=$1 base=$2 want_flows=${3:-} k1 k2 dump="$PF_T/check.json"
    local b_rxb b_rxp b_txb b_txp k_rxb k_rxp k_txb k_txp
    read -r b_rxb b_rxp b_txb b_txp <<<"$base"
    for _ in 1 2 3; do
        k1=$(pf_quiesce "$NS_A" "$IF_A")
        if [[ $want_flows == flows ]]; then pf_dump "$dump" --flows --top 1000; else pf_dump "$dump"; fi
        k2=$(pf_kstats "$NS_A" "$IF_A")
        [[ $k1 == "$k2" ]] && break
        pf_log "$what: kernel counters moved during the dump ($k1 -> $k2), again"
    done
    [[ $k1 == "$k2" ]] || fail "$what: kernel counters of $IF_A would not stay still"
    read -r k_rxb k_rxp k_txb k_txp <<<"$k1"
    local d_rxb=$((k_rxb - b_rxb)) d_rxp=$((k_rxp - b_rxp)) d_txb=$((k_txb - b_txb)) d_txp=$((k_txp - b_txp))

    local rxb rxp txb txp mode
    read -r rxb rxp txb txp mode <<<"$(pfjson "$dump" iface "$IF_A")"
    # Native XDP on veth: the kernel's rx_bytes leaves out the Ethernet header (see
    # pf_calibrate_native_rx); ours count whole frames.
    local exp_rxb=$d_rxb note=""
    if [[ $mode == native && ${PF_NATIVE_RX_SHORT:-0} != 0 ]]; then
        exp_rxb=$((d_rxb + PF_NATIVE_RX_SHORT * d_rxp))
        note=" (kernel rx_bytes delta $d_rxb + $PF_NATIVE_RX_SHORT x $d_rxp frames: veth counts native-XDP rx without the Ethernet header)"
    fi
    ((d_rxp > 0 && d_txp > 0)) || fail "$what: test bug: no traffic in the window (kernel deltas $d_rxp rx, $d_txp tx packets)"
    pf_log "$what: mode $mode; kernel deltas rx $d_rxb B/$d_rxp pkts, tx $d_txb B/$d_txp pkts; ours rx $rxb/$rxp, tx $txb/$txp"
    assert_eq "$what: $IF_A rx_packets (kernel delta)" "$d_rxp" "$rxp"
    assert_eq "$what: $IF_A rx_bytes$note" "$exp_rxb" "$rxb"
    assert_eq "$what: $IF_A tx_packets (kernel delta)" "$d_txp" "$txp"
    assert_eq "$what: $IF_A tx_bytes (kernel delta)" "$d_txb" "$txb"

    local m
    m=$(pfjson "$dump" mac "$IF_A" "$MAC_B")
    assert_eq "$what: MAC row $MAC_B 'rx_bytes rx_packets tx_bytes tx_packets' (all frames are from/to the peer)" \
        "$exp_rxb $d_rxp $d_txb $d_txp" "$m"
    m=$(pfjson "$dump" other-macs "$IF_A" "$MAC_B")
    assert_eq "$what: MAC rows other than the peer's with non-zero counters" "" "$m"
    m=$(pfjson "$dump" events "$IF_A")
    # Only IPv4 from us, no ARP: nothing unparsable, nothing non-IP, nothing dropped for space.
    assert_eq "$what: events 'mac_map_full flow_map_full unparsable non_ip'" "0 0 0 0" "$m"

    if [[ $want_flows == flows ]]; then
        local wire n
        wire=$(pf_udp_wire_bytes)
        n=$PF_UDP_COUNT
        assert_eq "$what: flow rx udp $IP_B:$PF_SPORT_B -> $IP_A:$PORT_A 'bytes packets'" "$wire $n" \
            "$(pfjson "$dump" flow "$IF_A" rx "$IP_B" "$IP_A" "$PF_SPORT_B" "$PORT_A" udp)"
        assert_eq "$what: flow tx udp $IP_A:$PORT_A -> $IP_B:$PF_SPORT_B (echoes) 'bytes packets'" "$wire $n" \
            "$(pfjson "$dump" flow "$IF_A" tx "$IP_A" "$IP_B" "$PORT_A" "$PF_SPORT_B" udp)"
        assert_eq "$what: flow tx udp $IP_A:$PF_SPORT_A -> $IP_B:$PORT_B 'bytes packets'" "$wire $n" \
            "$(pfjson "$dump" flow "$IF_A" tx "$IP_A" "$IP_B" "$PF_SPORT_A" "$PORT_B" udp)"
        assert_eq "$what: flow rx udp $IP_B:$PORT_B -> $IP_A:$PF_SPORT_A (echoes) 'bytes packets'" "$wire $n" \
            "$(pfjson "$dump" flow "$IF_A" rx "$IP_B" "$IP_A" "$PORT_B" "$PF_SPORT_A" udp)"
    fi
    pf_log "$what: exact match"
}

# ---------------------------------------------------------------------------------------
# What is attached to an interface, as the kernel reports it

pf_xdp_attached() { # NS IF -> "native", "generic" or "none" (any XDP program, ours or not)
    # The first line of `ip link show` carries the attach flag: "xdp" (driver/native),
    # "xdpgeneric", "xdpoffload" or "xdpmulti".
    local first
    first=$(ip -n "$1" link show dev "$2" | head -n 1)
    if [[ $first =~ \ xdpgeneric\  ]]; then
        echo generic
    elif [[ $first =~ \ xdp(drv)?\  ]]; then
        echo native
    elif [[ $first =~ \ xdp[a-z]+\  ]]; then
        echo other
    else
        echo none
    fi
}

pf_xdp_prog_id() { # NS IF -> id of the attached XDP program, or empty
    ip -n "$1" -d link show dev "$2" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -n 1
}

pf_tc_filters() { # NS IF ingress|egress -> `tc filter show` (empty without clsact)
    tc -n "$1" filter show dev "$2" "$3" 2>/dev/null || true
}

pf_has_clsact() { # NS IF
    tc -n "$1" qdisc show dev "$2" | grep -q 'qdisc clsact'
}

# pf_assert_nothing_attached WHAT NS IF [keep-clsact]: no XDP program, none of our TC
# filters, no clsact qdisc (so no TC filter at all; unless keep-clsact), no pin directory.
pf_assert_nothing_attached() {
    local what=$1 ns=$2 ifn=$3 keep=${4:-} dir
    assert_eq "$what: XDP program on $ifn (ip -d link show)" none "$(pf_xdp_attached "$ns" "$ifn")"
    for dir in ingress egress; do
        if pf_tc_filters "$ns" "$ifn" "$dir" | grep -q 'pf_tc_'; then
            fail "$what: expected none of our TC filters on $ifn $dir, got: $(pf_tc_filters "$ns" "$ifn" "$dir")"
        fi
    done
    if [[ $keep != keep-clsact ]] && pf_has_clsact "$ns" "$ifn"; then
        fail "$what: expected no clsact qdisc on $ifn, got: $(tc -n "$ns" qdisc show dev "$ifn")"
    fi
    [[ ! -e $PIN_ROOT/$ifn ]] || fail "$what: expected no pin directory $PIN_ROOT/$ifn, got: $(ls -la "$PIN_ROOT/$ifn")"
}

# pf_assert_ours_attached WHAT XDPMODE(native|generic|off): our programs on $IF_A, pins there.
pf_assert_ours_attached() {
    local what=$1 mode=$2
    if [[ $mode == off ]]; then
        ip -n "$NS_A" -d link show dev "$IF_A" | grep -q 'pf_xdp_ingress' &&
            fail "$what: our XDP program is attached to $IF_A in --xdp-mode off: $(ip -n "$NS_A" -d link show dev "$IF_A")"
        pf_tc_filters "$NS_A" "$IF_A" ingress | grep -q 'pf_tc_ingress' ||
            fail "$what: expected our pf_tc_ingress filter on $IF_A ingress, got: $(pf_tc_filters "$NS_A" "$IF_A" ingress)"
    else
        assert_eq "$what: XDP mode on $IF_A (ip -d link show)" "$mode" "$(pf_xdp_attached "$NS_A" "$IF_A")"
        ip -n "$NS_A" -d link show dev "$IF_A" | grep -q 'pf_xdp_ingress' ||
            fail "$what: the XDP program on $IF_A is not pf_xdp_ingress: $(ip -n "$NS_A" -d link show dev "$IF_A")"
    fi
    pf_tc_filters "$NS_A" "$IF_A" egress | grep -q 'pf_tc_egress' ||
        fail "$what: expected our pf_tc_egress filter on $IF_A egress, got: $(pf_tc_filters "$NS_A" "$IF_A" egress)"
    pf_has_clsact "$NS_A" "$IF_A" || fail "$what: no clsact qdisc on $IF_A"
    [[ -d $PIN_ROOT/$IF_A ]] || fail "$what: no pin directory $PIN_ROOT/$IF_A"
}

# pf_build_foreign_xdp: builds $PF_T/foreign_xdp.o, a pass-through XDP program named
# foreign_pass - "someone else's" program.
pf_build_foreign_xdp() {
    [[ -e $PF_T/foreign_xdp.o ]] && return 0
    command -v clang >/dev/null || fail "clang is needed to build the foreign XDP program"
    cat >"$PF_T/foreign_xdp.c" <<'CSRC'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int foreign_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
CSRC
    clang -target bpf -O2 -g -I"/usr/include/$(uname -m)-linux-gnu" -c "$PF_T/foreign_xdp.c" -o "$PF_T/foreign_xdp.o" 2>"$PF_T/clang.log" ||
        fail "building the foreign XDP program failed: $(cat "$PF_T/clang.log")"
}
