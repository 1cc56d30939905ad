#!/usr/bin/env bash
# Known UDP and TCP traffic both ways through a veth pair; our per-interface and per-MAC
# bytes and packets must equal the kernel's statistics over the same window, exactly, in
# each XDP mode (auto = native on veth, generic, off = TC ingress). The fixed-port UDP
# flows must also carry exactly the frames we sent, byte for byte.
# PF_COUNTS_MODES: the modes to run (default "auto generic off"; the kernel tier under
# qemu runs "auto" alone, tests/vm/kernel_tier.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

pf_setup_pair
pf_start_servers

for mode in ${PF_COUNTS_MODES:-auto generic off}; do
    expect_mode=$mode
    [[ $mode == auto ]] && expect_mode=native # veth has a native XDP driver hook

    base=$(pf_quiesce "$NS_A" "$IF_A")
    # A long interval: nothing is exported (and taken out of the flow map) mid-test.
    pf_start_daemon "attach-$mode" --xdp-mode "$mode" --interval 3600
    pf_assert_ours_attached "$mode" "$expect_mode"

    pf_known_traffic
    pf_check_exact "xdp-mode $mode" "$base" flows

    dump="$PF_T/mode-$mode.json"
    pf_dump "$dump"
    read -r _ _ _ _ got_mode <<<"$(pfjson "$dump" iface "$IF_A")"
    [[ $got_mode == "$expect_mode"* ]] || fail "xdp-mode $mode: dump reports xdp_mode '$got_mode', expected '$expect_mode'"

    pf_stop_daemon TERM
    assert_eq "xdp-mode $mode: exit status after SIGTERM" 0 "$DAEMON_RC"

    # Counting does not depend on the daemon: after it stopped, the numbers still match.
    pf_check_exact "xdp-mode $mode, daemon stopped" "$base"

    pf_run "$PF_T/detach" "$NS_A" detach "$IF_A"
    assert_eq "xdp-mode $mode: detach exit status ($(cat "$PF_T/detach.err"))" 0 "$PF_RC"
    pf_assert_nothing_attached "xdp-mode $mode, after detach" "$NS_A" "$IF_A"
done
