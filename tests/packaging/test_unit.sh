#!/usr/bin/env bash
# The systemd units: `systemd-analyze verify` finds nothing wrong (ExecStart pointed at the
# binaries under test, since nothing is installed here), and `systemd-analyze security`
# rates the agent's exposure at most 3.0 and the collector's (no capabilities, a dynamic
# user) at most 2.0 — docs/operations.md records the figures.
#   tests/packaging/test_unit.sh build/user/peakflow-bpf   (peakflow-collector beside it)
set -euo pipefail
bin=$(realpath "${1:?usage: test_unit.sh PATH-TO-peakflow-bpf}")
units="$(dirname "${BASH_SOURCE[0]}")/../../packaging/systemd"
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze not found"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check_unit() {  # NAME BINARY MAX-EXPOSURE
    local name=$1 exe=$2 max=$3 out score
    sed "s|/usr/sbin/$name|$exe|" "$units/$name.service" >"$tmp/$name.service"
    # man: pages are not installed here, so that one check is left to lintian on the package.
    out=$(systemd-analyze verify --man=no "$tmp/$name.service" 2>&1 || true)
    if [[ -n $out ]]; then
        echo "FAIL: systemd-analyze verify $name.service:"
        echo "$out"
        exit 1
    fi
    score=$(systemd-analyze security --offline=true "$tmp/$name.service" 2>/dev/null |
        sed -nE 's/.*Overall exposure level for [^:]+: ([0-9.]+).*/\1/p')
    [[ -n $score ]] || { echo "FAIL: no exposure score for $name.service from systemd-analyze security"; exit 1; }
    if ! awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
        echo "FAIL: $name.service exposure $score, above $max"
        exit 1
    fi
    echo "unit $name.service: verify clean, exposure $score"
}
check_unit peakflow-bpf "$bin" 3.0
check_unit peakflow-collector "$(dirname "$bin")/peakflow-collector" 2.0
