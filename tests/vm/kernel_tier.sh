#!/usr/bin/env bash
# The kernel tier: what depends most on the kernel, run on a kernel other than the build
# machine's (in the VM of tests/vm/run_in_vm.sh; scripts/test.sh runs it on Debian 12's
# 6.1). The BPF programs are verified, attached and counted there:
# - a part of the bpf tier: each hook's program loaded by this kernel's verifier and run on
#   crafted packets (TCP, QinQ, truncated IPv6/UDP, one flow's packets accumulating), a full
#   flow table, the flow slots' generation protocol read by userspace, a flow taken while
#   packets race;
# - the counting integration test in the default mode (native XDP on veth and TC egress):
#   bytes and packets per interface and MAC equal the kernel's own counters, flows exact.
# Under software emulation each program load takes seconds, so the tier is a chosen part
# (about two minutes on the CI VM), not the whole bpf tier; PF_KERNEL_TIER_FILTER widens it
# (e.g. '*' for all of it).
#
#   tests/vm/kernel_tier.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: kernel_tier.sh BUILD_DIR}
cd "$(dirname "$0")/../.."
filter=${PF_KERNEL_TIER_FILTER:-$(
    printf '%s:' \
        'Hooks/ProgramTest.Ipv4Tcp/*' \
        'Hooks/ProgramTest.QinQOuter8021adInner8021Q/*' \
        'Hooks/ProgramTest.TruncatedUdpHeaderIpv6KeepsL3Flow/*' \
        'Hooks/ProgramTest.PacketsOfOneFlowAccumulate/*' \
        'Hooks/LoadOptionsTest.FlowMapFullCountsEveryDroppedInsert/*' \
        'FlowTable.ATakenFlowSeenAgainHoldsOnlyTheNewPackets' \
        'FlowTable.ASlotIsReusedOnlyOnceItsFlowWasTaken' \
        'FlowTable.AKeyCountedOnTwoCpusIsOneRow' \
        'FlowExportTake.PacketsBetweenReadAndDeleteAreInTheFinalRecord'
)}
echo "== kernel tier on $(uname -r): bpf tests (${filter%:})"
"$build/tests/pf_bpf_tests" --gtest_filter="${filter%:}" --gtest_brief=1 --gtest_color=no
echo "== kernel tier on $(uname -r): counting (test_counts.sh, native XDP and TC egress)"
PF_COUNTS_MODES=auto bash tests/integration/test_counts.sh "$build/user/peakflow-bpf"
