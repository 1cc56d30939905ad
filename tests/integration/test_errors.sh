#!/usr/bin/env bash
# Errors are refused cleanly, with a message that says what is wrong, a non-zero exit, and
# nothing left half-attached:
#  - a second attach while a daemon runs on the interface (the first keeps counting);
#  - an unknown interface;
#  - dump of an interface that has no pins;
#  - no privileges (uid 65534 without capabilities; root without capabilities; root with
#    CAP_NET_ADMIN only) for attach, and for dump;
#  - someone else's XDP program on the interface: attach refuses and leaves it in place.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

pf_setup_pair
pf_start_servers

# pf_expect_fail WHAT NS ARGS...: `peakflow-bpf ARGS` in NS must fail: exit status not 0,
# not stopped by our time limit, and no "ready" line. Output in $PF_T/fail.{out,err}.
pf_expect_fail() {
    local what=$1 ns=$2
    shift 2
    pf_run "$PF_T/fail" "$ns" "$@"
    if ((PF_RC == 0 || PF_RC == 124 || PF_RC == 137)) || grep -Eq '(^|[^[:alpha:]])ready' "$PF_T/fail.err"; then
        fail "$what: expected 'peakflow-bpf $*' to fail, got exit $PF_RC; stderr: $(cat "$PF_T/fail.err")"
    fi
    pf_log "$what: exit $PF_RC: $(tr '\n' ' ' <"$PF_T/fail.err")"
}

# pf_expect_msg WHAT ERE...: some line of stderr matches every ERE (case-insensitive).
pf_expect_msg() {
    local what=$1 line re ok
    shift
    while IFS= read -r line; do
        ok=1
        for re in "$@"; do
            grep -Eiq -- "$re" <<<"$line" || { ok=0; break; }
        done
        ((ok)) && return 0
    done <"$PF_T/fail.err"
    fail "$what: expected a line of stderr matching all of [$*], got: $(cat "$PF_T/fail.err")"
}

# pf_expect_error WHAT LINE: the one error line on stderr is exactly LINE (the log lines
# before it are not checked).
pf_expect_error() {
    assert_eq "$1: the error line on stderr" "$2" "$(grep '^peakflow-bpf: error: ' "$PF_T/fail.err")"
}

# --- attach twice -----------------------------------------------------------------------
base=$(pf_quiesce "$NS_A" "$IF_A")
pf_start_daemon first
pf_expect_fail "second attach" "$NS_A" attach "$IF_A" --config "$PF_CONFIG"
pf_expect_msg "second attach" "already attached" "detach"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "second attach: the first daemon died"
pf_assert_ours_attached "second attach: the first is still attached" native
pf_known_traffic
pf_check_exact "first daemon after a refused second attach" "$base"

# --- unknown interface ------------------------------------------------------------------
nosuch="pfno$PF_ID"
pf_expect_fail "unknown interface" "$NS_A" attach "$nosuch" --config "$PF_CONFIG"
pf_expect_error "unknown interface" "peakflow-bpf: error: unknown interface '$nosuch' (see 'ip link' for the names)"
[[ ! -e $PIN_ROOT/$nosuch ]] || fail "unknown interface: a pin directory $PIN_ROOT/$nosuch was created"

# --- dump without pins ------------------------------------------------------------------
pf_expect_fail "dump without pins" "$NS_B" dump "$IF_B" --json
pf_expect_error "dump without pins" "peakflow-bpf: error: peakflow is not attached to $IF_B (no pinned maps in $PIN_ROOT/$IF_B; start 'peakflow-bpf attach $IF_B')"
assert_eq "dump without pins: stderr is the error line only" 1 "$(wc -l <"$PF_T/fail.err")"
[[ ! -e $PIN_ROOT/$IF_B ]] || fail "dump without pins: a pin directory $PIN_ROOT/$IF_B was created"

# --- no privileges ----------------------------------------------------------------------
# A copy of the binary in a directory anyone can read, so only privileges are in the way.
cp "$PF_BIN" "$PF_T/peakflow-bpf"
chmod 755 "$PF_T/peakflow-bpf"
# pf_unpriv WHAT NS SETPRIV_ARGS -- ARGS...: runs the copy in NS (with the bpffs visible, so
# privileges are the only thing missing) under setpriv; expects failure.
pf_unpriv() {
    local what=$1 ns=$2 sp=()
    shift 2
    while [[ $1 != -- ]]; do
        sp+=("$1")
        shift
    done
    shift
    PF_RC=0
    pf_ns_argv "$ns"
    timeout -k 5 30 "${PF_NS_ARGV[@]}" setpriv "${sp[@]}" -- "$PF_T/peakflow-bpf" "$@" >"$PF_T/fail.out" 2>"$PF_T/fail.err" || PF_RC=$?
    if ((PF_RC == 0 || PF_RC == 124 || PF_RC == 137)) || grep -Eq '(^|[^[:alpha:]])ready' "$PF_T/fail.err"; then
        fail "$what: expected 'peakflow-bpf $*' to fail, got exit $PF_RC; stderr: $(cat "$PF_T/fail.err")"
    fi
    pf_log "$what: exit $PF_RC: $(tr '\n' ' ' <"$PF_T/fail.err")"
}
nobody=(--reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)
nocaps=(--inh-caps=-all --bounding-set=-all)                 # uid 0, no capabilities
# shellcheck disable=SC2054 # setpriv takes a comma list
netadmin=(--inh-caps=-all --bounding-set=-all,+net_admin)    # uid 0, CAP_NET_ADMIN only

pf_unpriv "attach as nobody" "$NS_B" "${nobody[@]}" -- attach "$IF_B" --config "$PF_CONFIG"
pf_expect_msg "attach as nobody" "CAP_BPF|CAP_NET_ADMIN|root"
pf_unpriv "attach as root without capabilities" "$NS_B" "${nocaps[@]}" -- attach "$IF_B" --config "$PF_CONFIG"
pf_expect_msg "attach as root without capabilities" "CAP_BPF|CAP_NET_ADMIN"
pf_unpriv "attach with CAP_NET_ADMIN only" "$NS_B" "${netadmin[@]}" -- attach "$IF_B" --config "$PF_CONFIG"
pf_expect_msg "attach with CAP_NET_ADMIN only" "CAP_BPF"
pf_assert_nothing_attached "attach without privileges" "$NS_B" "$IF_B"
pf_unpriv "dump as nobody" "$NS_A" "${nobody[@]}" -- dump "$IF_A" --json
pf_expect_msg "dump as nobody" "CAP_BPF|CAP_SYS_ADMIN|root"
pf_unpriv "dump as root without capabilities" "$NS_A" "${nocaps[@]}" -- dump "$IF_A" --json
pf_expect_msg "dump as root without capabilities" "CAP_BPF|CAP_SYS_ADMIN"

pf_stop_daemon TERM
assert_eq "first daemon: exit status after SIGTERM" 0 "$DAEMON_RC"
pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
assert_eq "detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"

# --- someone else's XDP program ---------------------------------------------------------
pf_build_foreign_xdp
for xmode in xdpgeneric xdp; do
    ip -n "$NS_B" link set dev "$IF_B" "$xmode" obj "$PF_T/foreign_xdp.o" sec xdp
    id_before=$(pf_xdp_prog_id "$NS_B" "$IF_B")
    mode_before=$(pf_xdp_attached "$NS_B" "$IF_B")
    [[ -n $id_before ]] || fail "test bug: foreign XDP program not attached to $IF_B"
    for want in auto native generic; do
        pf_expect_fail "foreign $xmode program, attach --xdp-mode $want" "$NS_B" attach "$IF_B" --config "$PF_CONFIG" --xdp-mode "$want"
        pf_expect_error "foreign $xmode program, attach --xdp-mode $want" \
            "peakflow-bpf: error: another XDP program (id $id_before, 'foreign_pass') is attached to $IF_B (peakflow does not replace it; remove it, or use --xdp-mode off to count ingress with TC)"
        assert_eq "foreign $xmode program, attach --xdp-mode $want: XDP program id on $IF_B" "$id_before" "$(pf_xdp_prog_id "$NS_B" "$IF_B")"
        assert_eq "foreign $xmode program, attach --xdp-mode $want: XDP mode on $IF_B" "$mode_before" "$(pf_xdp_attached "$NS_B" "$IF_B")"
        pf_tc_filters "$NS_B" "$IF_B" egress | grep -q 'pf_tc_' &&
            fail "foreign $xmode program, attach --xdp-mode $want: a TC filter was left on $IF_B: $(pf_tc_filters "$NS_B" "$IF_B" egress)"
        pf_has_clsact "$NS_B" "$IF_B" &&
            fail "foreign $xmode program, attach --xdp-mode $want: a clsact qdisc was left on $IF_B"
        [[ ! -e $PIN_ROOT/$IF_B ]] ||
            fail "foreign $xmode program, attach --xdp-mode $want: refused attach left $PIN_ROOT/$IF_B behind: $(ls -la "$PIN_ROOT/$IF_B")"
    done
    ip -n "$NS_B" link set dev "$IF_B" "$xmode" off
done
pf_assert_nothing_attached "end" "$NS_B" "$IF_B"
