#!/usr/bin/env bash
# The systemd unit: `systemd-analyze verify` finds nothing wrong (ExecStart pointed at the
# binary under test, since nothing is installed here), and `systemd-analyze security`
# rates its exposure at most 3.0 — the README records the figure.
#   tests/packaging/test_unit.sh build/user/peakflow-bpf
set -euo pipefail
bin=$(realpath "${1:?usage: test_unit.sh PATH-TO-peakflow-bpf}")
unit="$(dirname "${BASH_SOURCE[0]}")/../../packaging/systemd/peakflow-bpf.service"
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze not found"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/sbin/peakflow-bpf|$bin|" "$unit" >"$tmp/peakflow-bpf.service"

# man: pages are not installed here, so that one check is left to lintian on the package.
out=$(systemd-analyze verify --man=no "$tmp/peakflow-bpf.service" 2>&1 || true)
if [[ -n $out ]]; then
    echo "FAIL: systemd-analyze verify:"
    echo "$out"
    exit 1
fi

score=$(systemd-analyze security --offline=true "$tmp/peakflow-bpf.service" 2>/dev/null |
    sed -nE 's/.*Overall exposure level for [^:]+: ([0-9.]+).*/\1/p')
[[ -n $score ]] || { echo "FAIL: no exposure score from systemd-analyze security"; exit 1; }
if ! awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'; then
    echo "FAIL: exposure $score, above 3.0"
    exit 1
fi
echo "unit: verify clean, exposure $score"
