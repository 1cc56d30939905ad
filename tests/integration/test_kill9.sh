#!/usr/bin/env bash
# Counting survives the daemon: kill -9 it in the middle of traffic, keep sending, attach
# again (also in the middle of traffic) - the totals still equal the kernel's counters
# since the first attach: nothing lost, nothing counted twice. A clean SIGTERM exits 0,
# counting goes on without a daemon, and a later attach continues the same counters.
# Runs with XDP (auto = native on veth: the XDP program is swapped in place) and with
# --xdp-mode off (the TC ingress filter is swapped in place).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

pf_setup_pair
pf_start_servers

for mode in auto off; do
    expect_mode=$mode
    [[ $mode == auto ]] && expect_mode=native

    base=$(pf_quiesce "$NS_A" "$IF_A")
    pf_start_daemon "first-$mode" --xdp-mode "$mode" --interval 1

    pf_streams 4
    sleep 1.2
    victim=$DAEMON_PID
    pf_stop_daemon KILL
    assert_eq "$mode: exit status of the kill -9'd daemon" 137 "$DAEMON_RC"
    kill -0 "$victim" 2>/dev/null && fail "$mode: daemon $victim still alive after kill -9"
    pf_log "$mode: daemon $victim killed with SIGKILL mid-traffic"
    # Programs and pins outlive the process.
    pf_assert_ours_attached "$mode: after kill -9" "$expect_mode"

    sleep 1 # traffic goes on with no daemon at all
    pf_start_daemon "second-$mode" --xdp-mode "$mode" --interval 1 # re-attach mid-traffic
    pf_wait_streams
    pf_known_traffic # and more after it
    pf_check_exact "$mode: after kill -9 and re-attach" "$base"

    pf_stop_daemon TERM
    assert_eq "$mode: exit status after SIGTERM" 0 "$DAEMON_RC"
    pf_assert_ours_attached "$mode: after SIGTERM" "$expect_mode"
    pf_known_traffic # counted with no daemon running
    pf_check_exact "$mode: traffic after a clean stop" "$base"

    pf_start_daemon "third-$mode" --xdp-mode "$mode" --interval 1 # reuses the pins again
    pf_known_traffic
    pf_check_exact "$mode: attach after a clean stop" "$base"
    pf_stop_daemon INT
    assert_eq "$mode: exit status after SIGINT" 0 "$DAEMON_RC"

    pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
    assert_eq "$mode: detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
    pf_assert_nothing_attached "$mode: after detach" "$NS_A" "$IF_A"
done
