#!/usr/bin/env bash
# detach takes away exactly what attach put there:
#  1. no clsact before: after detach no XDP program, no TC filter, no clsact, no pins;
#  2. clsact and someone else's BPF filters before (--xdp-mode off, so TC ingress is ours
#     too): our filters go, the clsact qdisc and the foreign filters stay - and the
#     foreign filters saw every packet while we were attached (ours does not end
#     classification);
#  3. --detach-on-exit: SIGTERM removes everything;
#  4. detach after the daemon was kill -9'd removes everything;
#  5. with someone else's XDP program on the interface, --xdp-mode off counts next to it
#     and detach leaves it alone.
# Traffic still flows after each detach.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

pf_setup_pair
pf_start_servers

pf_detach_ok() { # WHAT
    pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
    assert_eq "$1: detach exit status (stderr: $(cat "$PF_T/detach.err"))" 0 "$PF_RC"
}

pf_still_flows() { # the pair still passes traffic both ways
    pf_traffic "$NS_B" udp --to "$IP_A" --port "$PORT_A" --count 5
    pf_traffic "$NS_A" udp --to "$IP_B" --port "$PORT_B" --count 5
}

# --- 1. plain attach / SIGTERM / detach -------------------------------------------------
pf_has_clsact "$NS_A" "$IF_A" && fail "case 1: test bug: clsact already on $IF_A"
pf_start_daemon case1
pf_assert_ours_attached "case 1: attached" native
[[ -n $(ls "$PIN_ROOT/$IF_A") ]] || fail "case 1: pin directory $PIN_ROOT/$IF_A is empty"
pf_stop_daemon TERM
assert_eq "case 1: exit status after SIGTERM" 0 "$DAEMON_RC"
pf_assert_ours_attached "case 1: after SIGTERM (programs and pins stay)" native
pf_detach_ok "case 1"
pf_assert_nothing_attached "case 1: after detach" "$NS_A" "$IF_A"
pf_still_flows

# --- 2. clsact and foreign filters existed before attach --------------------------------
# The foreign filters are BPF programs too (so "remove every bpf filter" would be caught),
# at a later priority than ours; each counts the packets it sees in a global variable and
# returns TC_ACT_UNSPEC.
command -v clang >/dev/null || fail "clang is needed to build the foreign TC program"
command -v bpftool >/dev/null || fail "bpftool is needed to read the foreign TC program's counter"
cat >"$PF_T/foreign_tc.c" <<'CSRC'
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

__u64 seen = 0;

SEC("tc")
int foreign_tc(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&seen, 1);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
CSRC
clang -target bpf -O2 -g -I"/usr/include/$(uname -m)-linux-gnu" -c "$PF_T/foreign_tc.c" -o "$PF_T/foreign_tc.o" 2>"$PF_T/clang.log" ||
    fail "building the foreign TC program failed: $(cat "$PF_T/clang.log")"
tc -n "$NS_A" qdisc add dev "$IF_A" clsact
for dir in ingress egress; do
    tc -n "$NS_A" filter add dev "$IF_A" "$dir" pref 100 handle 7 bpf da obj "$PF_T/foreign_tc.o" sec tc
done
foreign_filter() { # ingress|egress -> the foreign filter's line of `tc filter show`
    pf_tc_filters "$NS_A" "$IF_A" "$1" | grep 'name foreign_tc' || true
}
foreign_seen() { # ingress|egress -> packets the foreign filter has seen
    local id map
    id=$(foreign_filter "$1" | sed -n 's/.* id \([0-9]*\) .*/\1/p')
    [[ -n $id ]] || fail "case 2: the foreign $1 filter is gone: $(pf_tc_filters "$NS_A" "$IF_A" "$1")"
    map=$(bpftool -j prog show id "$id" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["map_ids"][0])')
    bpftool -j map dump id "$map" |
        "$PY" -c 'import json,sys; v=json.load(sys.stdin)[0]["value"]; print(int.from_bytes(bytes(int(b,16) for b in v[:8]),"little"))'
}
foreign_lines="$(foreign_filter ingress)|$(foreign_filter egress)"

base=$(pf_quiesce "$NS_A" "$IF_A")
before_in=$(foreign_seen ingress)
before_eg=$(foreign_seen egress)
pf_start_daemon case2 --xdp-mode off
pf_assert_ours_attached "case 2: attached" off
pf_known_traffic
pf_check_exact "case 2: counting next to foreign filters" "$base"
# Ours runs first and returns TC_ACT_UNSPEC, so the foreign filters saw every packet too.
read -r _ k_rxp _ k_txp <<<"$(pf_quiesce "$NS_A" "$IF_A")"
read -r _ b_rxp _ b_txp <<<"$base"
assert_eq "case 2: packets the foreign ingress filter saw while we were attached" \
    "$((k_rxp - b_rxp))" "$(($(foreign_seen ingress) - before_in))"
assert_eq "case 2: packets the foreign egress filter saw while we were attached" \
    "$((k_txp - b_txp))" "$(($(foreign_seen egress) - before_eg))"

pf_stop_daemon TERM
assert_eq "case 2: exit status after SIGTERM" 0 "$DAEMON_RC"
pf_detach_ok "case 2"
pf_assert_nothing_attached "case 2: after detach" "$NS_A" "$IF_A" keep-clsact
pf_has_clsact "$NS_A" "$IF_A" || fail "case 2: the clsact qdisc that existed before attach is gone after detach"
assert_eq "case 2: the foreign filters (ingress|egress) after detach" "$foreign_lines" \
    "$(foreign_filter ingress)|$(foreign_filter egress)"
pf_still_flows
tc -n "$NS_A" qdisc del dev "$IF_A" clsact
pf_assert_nothing_attached "case 2: test's own clsact removed" "$NS_A" "$IF_A"

# --- 3. --detach-on-exit ---------------------------------------------------------------
pf_start_daemon case3 --xdp-mode generic --detach-on-exit
pf_assert_ours_attached "case 3: attached" generic
pf_stop_daemon TERM
assert_eq "case 3: exit status after SIGTERM with --detach-on-exit" 0 "$DAEMON_RC"
pf_assert_nothing_attached "case 3: after SIGTERM with --detach-on-exit" "$NS_A" "$IF_A"
pf_still_flows

# --- 4. detach after kill -9 -----------------------------------------------------------
pf_start_daemon case4
pf_stop_daemon KILL
pf_assert_ours_attached "case 4: after kill -9" native
pf_detach_ok "case 4"
pf_assert_nothing_attached "case 4: after detach" "$NS_A" "$IF_A"
pf_still_flows

# --- 5. someone else's XDP program, counted with --xdp-mode off ----------------------------
# Detach must take only our programs: the foreign XDP program stays, same id, same mode.
pf_build_foreign_xdp
ip -n "$NS_A" link set dev "$IF_A" xdpgeneric obj "$PF_T/foreign_xdp.o" sec xdp
foreign_id=$(pf_xdp_prog_id "$NS_A" "$IF_A")
[[ -n $foreign_id ]] || fail "case 5: test bug: foreign XDP program not attached"
base=$(pf_quiesce "$NS_A" "$IF_A")
pf_start_daemon case5 --xdp-mode off
pf_assert_ours_attached "case 5: attached next to a foreign XDP program" off
assert_eq "case 5: XDP program id on $IF_A while we are attached" "$foreign_id" "$(pf_xdp_prog_id "$NS_A" "$IF_A")"
pf_known_traffic
pf_check_exact "case 5: counting with TC next to a foreign XDP program" "$base"
pf_stop_daemon TERM
assert_eq "case 5: exit status after SIGTERM" 0 "$DAEMON_RC"
pf_detach_ok "case 5"
assert_eq "case 5: XDP program id on $IF_A after detach" "$foreign_id" "$(pf_xdp_prog_id "$NS_A" "$IF_A")"
assert_eq "case 5: XDP mode on $IF_A after detach" generic "$(pf_xdp_attached "$NS_A" "$IF_A")"
ip -n "$NS_A" link set dev "$IF_A" xdpgeneric off
pf_assert_nothing_attached "case 5: after detach and removing the foreign program" "$NS_A" "$IF_A"
pf_still_flows
