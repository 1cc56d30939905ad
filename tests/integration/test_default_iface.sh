#!/usr/bin/env bash
# `attach` with no interface, inside a network namespace entered the way an operator does
# (`nsenter --net`, which keeps the host's mounts, so /sys/class/net still lists the host's
# interfaces): the interface of the default route is judged from the namespace's own links.
#  - default route via a veth (named like the nc-b of issue #19, not "veth..."): refused as
#    "a veth", not "not present";
#  - default route via a real bridge whose members are veths: refused, naming the members;
#  - the same with a real bond, when this kernel has the bonding driver (else said and
#    skipped);
#  - an interface named on the command line that does not exist: refused as unknown;
#  - each refusal exits 1 before it creates anything: the configured database (in a
#    directory that does not exist yet) and log_dir are still absent afterwards.
# Not covered here: a bridge or bond with one or several *physical* members, which is what
# the start then counts on or refuses. A namespace cannot hold a device-backed NIC (no
# netdevsim in the test kernels either); the unit tests (ifaces_test.cpp) cover that logic
# on link descriptions like the ones this test's refusals show being read right.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

BR="pfbr$PF_ID"
BOND="pfbd$PF_ID"
IF_C="pfc$PF_ID" # a second veth pair, both ends in NS_A: bridge or bond members
IF_D="pfd$PF_ID"
HINT="(name the interface to count on: peakflow-bpf attach IFACE, or interfaces: in the config)"
VIRTUAL="; virtual interfaces are never picked automatically"

ip netns add "$NS_A"
ip netns add "$NS_B"
ip -n "$NS_A" link set lo up
ip link add name "$IF_A" netns "$NS_A" type veth peer name "$IF_B" netns "$NS_B"
ip -n "$NS_A" link add name "$IF_C" type veth peer name "$IF_D"
for ifn in "$IF_A" "$IF_C" "$IF_D"; do ip -n "$NS_A" link set "$ifn" up; done
ip -n "$NS_B" link set "$IF_B" up

# The situation of the issue: in this mount namespace /sys is the host's.
[[ ! -e /sys/class/net/$IF_A ]] || fail "test bug: the host's /sys lists $IF_A; the test needs a /sys that does not"

# expect_refusal WHAT LINE [IFACE]: `attach [IFACE]` in NS_A, under plain nsenter --net,
# with a config whose database and log_dir are in a directory that does not exist yet;
# must exit 1 with LINE as its last line of stderr (the log's lines come before it) and
# leave that directory absent.
expect_refusal() {
    local what=$1 want=$2 dir="$PF_T/fresh-$1"
    shift 2
    cat >"$PF_T/$what.yaml" <<CONF
database: $dir/db/history.db
log_dir: $dir/log
CONF
    chmod 600 "$PF_T/$what.yaml"
    PF_RC=0
    timeout -k 5 30 nsenter "--net=/run/netns/$NS_A" -- "$PF_BIN" attach "$@" --config "$PF_T/$what.yaml" \
        >"$PF_T/$what.out" 2>"$PF_T/$what.err" || PF_RC=$?
    pf_log "$what: exit $PF_RC: $(cat "$PF_T/$what.err")"
    assert_eq "$what: exit status" 1 "$PF_RC"
    assert_eq "$what: last line of stderr" "$want" "$(tail -n 1 "$PF_T/$what.err")"
    [[ ! -e $dir ]] || fail "$what: the refused start created $(find "$dir")"
}

# members BRIDGE_OR_BOND -> its members "A is a veth, B is a veth", in the kernel's order
# (the dump's, which `ip link show master` shows too).
members() {
    ip -n "$NS_A" -o link show master "$1" | awk -F': ' '{sub(/@.*/, "", $2); print $2}' |
        sed 's/$/ is a veth/' | paste -sd, - | sed 's/,/, /g'
}

# --- default route via a veth ---------------------------------------------------------------
ip -n "$NS_A" addr add 198.18.0.1/30 dev "$IF_A"
ip -n "$NS_B" addr add 198.18.0.2/30 dev "$IF_B"
ip -n "$NS_A" route add default via 198.18.0.2 dev "$IF_A"
expect_refusal veth \
    "peakflow-bpf: error: no interface to count on: the default route goes via $IF_A (a veth)$VIRTUAL $HINT"

# --- a named interface that does not exist: refused before anything is created too -------
expect_refusal unknown "peakflow-bpf: error: unknown interface 'pfno$PF_ID' (see 'ip link' for the names)" "pfno$PF_ID"

# --- default route via a bridge of veths ----------------------------------------------------
ip -n "$NS_A" route del default
ip -n "$NS_A" addr flush dev "$IF_A"
ip -n "$NS_A" link add name "$BR" type bridge
ip -n "$NS_A" link set "$IF_A" master "$BR"
ip -n "$NS_A" link set "$IF_C" master "$BR"
ip -n "$NS_A" link set "$BR" up
ip -n "$NS_A" addr add 198.18.0.1/30 dev "$BR"
ip -n "$NS_A" route add default via 198.18.0.2 dev "$BR"
m=$(members "$BR")
[[ $m == *"$IF_A is a veth"* && $m == *"$IF_C is a veth"* ]] || fail "test bug: members of $BR: '$m'"
expect_refusal bridge \
    "peakflow-bpf: error: no interface to count on: the default route goes via $BR (a bridge with no physical member: $m)$VIRTUAL $HINT"
ip -n "$NS_A" link del "$BR"

# --- default route via a bond of veths ------------------------------------------------------
if ip -n "$NS_A" link add name "$BOND" type bond 2>"$PF_T/bond.err"; then
    ip -n "$NS_A" link set "$IF_C" down
    ip -n "$NS_A" link set "$IF_C" master "$BOND"
    ip -n "$NS_A" link set "$BOND" up
    ip -n "$NS_A" addr add 198.18.0.5/30 dev "$BOND"
    ip -n "$NS_A" route add default via 198.18.0.6 dev "$BOND"
    m=$(members "$BOND")
    [[ $m == "$IF_C is a veth" ]] || fail "test bug: members of $BOND: '$m'"
    expect_refusal bond \
        "peakflow-bpf: error: no interface to count on: the default route goes via $BOND (a bond with no physical member: $m)$VIRTUAL $HINT"
else
    pf_log "SKIPPED the bond case: this kernel makes no bond ($(cat "$PF_T/bond.err"); CONFIG_BONDING)"
fi
