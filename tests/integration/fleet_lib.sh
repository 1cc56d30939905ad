# shellcheck shell=bash
# The collector of the fleet tests (test_fleet.sh, test_control.sh): `peakflow-collector
# serve -f $PF_T/collector.yaml` in a namespace, waited for and stopped. Source after
# lib.sh; needs COLL_BIN; the test's cleanup kills $COLL_PID if it is still set.

COLL_PID=""
COLL_BIN=${COLL_BIN:?the test sets COLL_BIN before sourcing fleet_lib.sh}
# A second veth pair between NS_A and NS_B (fleet_second_pair): the management link, so
# that the reports do not cross the counted pair.
IF_A2="pfx$PF_ID"
IF_B2="pfy$PF_ID"
IP_A2=198.18.2.1
IP_B2=198.18.2.2

# fleet_second_pair: $IF_A2 ($IP_A2) in NS_A, $IF_B2 ($IP_B2) in NS_B, up, with fixed MACs and
# permanent neighbour entries (no ARP on it). Gone with the namespaces.
fleet_second_pair() {
    ip link add name "$IF_A2" netns "$NS_A" address 02:70:66:00:00:1a type veth peer name "$IF_B2" netns "$NS_B" \
        address 02:70:66:00:00:1b
    ip -n "$NS_A" addr add "$IP_A2/30" dev "$IF_A2"
    ip -n "$NS_B" addr add "$IP_B2/30" dev "$IF_B2"
    ip -n "$NS_A" neigh replace "$IP_B2" lladdr 02:70:66:00:00:1b dev "$IF_A2" nud permanent
    ip -n "$NS_B" neigh replace "$IP_A2" lladdr 02:70:66:00:00:1a dev "$IF_B2" nud permanent
    ip -n "$NS_A" link set "$IF_A2" up
    ip -n "$NS_B" link set "$IF_B2" up
}

# fleet_collector_conf HOST:PORT DATABASE [LINE...]: $PF_T/collector.yaml (plain HTTP, mode
# 0600) with the extra lines; `coll ARGS` runs the collector's CLI on it.
fleet_collector_conf() {
    local listen=$1 db=$2
    shift 2
    printf 'listen: "%s"\nallow_plain_http: true\ndatabase: %s\n' "$listen" "$db" >"$PF_T/collector.yaml"
    (($# == 0)) || printf '%s\n' "$@" >>"$PF_T/collector.yaml"
    chmod 600 "$PF_T/collector.yaml"
}
coll() { "$COLL_BIN" "$@" -f "$PF_T/collector.yaml"; }

# fleet_start_collector NS HOST:PORT NAME: starts it in NS (log $PF_T/NAME.log) and waits
# (10 s) until GET /api/v1/health on HOST:PORT answers.
fleet_start_collector() {
    local ns=$1 addr=$2 log="$PF_T/$3.log" i
    nsenter "--net=/run/netns/$ns" -- "$COLL_BIN" serve -f "$PF_T/collector.yaml" >"$log" 2>&1 &
    COLL_PID=$!
    for ((i = 0; i < 100; i++)); do
        nsenter "--net=/run/netns/$ns" -- curl -fsS "http://$addr/api/v1/health" >/dev/null 2>&1 && return 0
        kill -0 "$COLL_PID" 2>/dev/null || fail "collector '$3' exited: $(tail -n 20 "$log")"
        sleep 0.1
    done
    fail "collector '$3' not answering on $addr after 10 s: $(tail -n 20 "$log")"
}

# fleet_stop_collector SIGNAL: sets STOP_RC to its exit status (not in $(...): wait needs
# this shell).
# shellcheck disable=SC2034 # STOP_RC is read by the tests
fleet_stop_collector() {
    kill -s "$1" "$COLL_PID"
    STOP_RC=0
    timeout 20 tail --pid="$COLL_PID" -f /dev/null || fail "collector did not stop on SIG$1"
    wait "$COLL_PID" 2>/dev/null || STOP_RC=$?
    COLL_PID=""
}
