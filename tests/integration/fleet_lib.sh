# shellcheck shell=bash
# The collector of the fleet tests (test_fleet.sh, test_control.sh): `peakflow-collector
# serve -f $PF_T/collector.yaml` in a namespace, waited for and stopped. Source after
# lib.sh; needs COLL_BIN; the test's cleanup kills $COLL_PID if it is still set.

COLL_PID=""
COLL_BIN=${COLL_BIN:?the test sets COLL_BIN before sourcing fleet_lib.sh}

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
