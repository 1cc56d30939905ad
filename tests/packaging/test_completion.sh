#!/usr/bin/env bash
# Checks packaging/bash-completion/peakflow-bpf with bash-completion's helpers.
# Needs the bash-completion package (exits 77, "skipped", without it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
comp=$here/../../packaging/bash-completion/peakflow-bpf
bc=/usr/share/bash-completion/bash_completion
[[ -r $bc ]] || { echo "SKIP: $bc missing (apt-get install bash-completion)"; exit 77; }
# shellcheck source=/dev/null
source "$bc"
# shellcheck source=/dev/null
source "$comp"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/site.yaml" "$tmp/other.txt"

passed=0 failed=0
complete_words() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    _peakflow_bpf
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() { # expected -- words...
    local want=$1; shift; shift
    local got; got=$(complete_words "$@")
    if [[ $got == "$want" ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); echo "FAIL: [$*] -> '$got', expected '$want'"
    fi
}
ifaces=$(for d in /sys/class/net/*; do [[ -e $d ]] && echo "${d##*/}"; done | sort | tr '\n' ' ' | sed 's/ $//')

expect "attach config detach dump export heartbeat history host import push report status" -- peakflow-bpf ""
expect "attach" -- peakflow-bpf at
expect "--help --log-level --version" -- peakflow-bpf --
expect "$ifaces" -- peakflow-bpf attach ""
expect "$ifaces" -- peakflow-bpf detach ""
expect "$ifaces" -- peakflow-bpf --log-level debug dump ""
expect "$ifaces" -- peakflow-bpf report --iface ""
expect "--xdp-mode" -- peakflow-bpf attach --x
expect "auto generic native off" -- peakflow-bpf attach --xdp-mode ""
expect "debug error info trace warn" -- peakflow-bpf --log-level ""
expect "$tmp/site.yaml" -- peakflow-bpf attach -f "$tmp/"
expect "$tmp/site.yaml" -- peakflow-bpf report --config "$tmp/"
expect "--flows" -- peakflow-bpf dump --fl
expect "--json" -- peakflow-bpf status --js
expect "--five-minutes" -- peakflow-bpf report --fi
expect "--hour --hours" -- peakflow-bpf report --hou
expect "--customer-hour" -- peakflow-bpf report --cu
expect "--verify" -- peakflow-bpf report --ver
expect "check" -- peakflow-bpf config ""
expect "cpu disk mem procs sys users" -- peakflow-bpf host ""
expect "--json" -- peakflow-bpf host mem --js
expect "$tmp/site.yaml" -- peakflow-bpf host -f "$tmp/"
expect "$tmp/site.yaml" -- peakflow-bpf config check "$tmp/"
expect "" -- peakflow-bpf attach --interval ""
expect "pipe status" -- peakflow-bpf export ""
expect "--pmacct-conf" -- peakflow-bpf export pipe --pm
expect "--data-dir" -- peakflow-bpf export pipe --pmacct-conf "$tmp/other.txt" --da
expect "$tmp/other.txt $tmp/site.yaml" -- peakflow-bpf export pipe --pmacct-conf "$tmp/"
expect "--config" -- peakflow-bpf export status --con
expect "send" -- peakflow-bpf heartbeat ""
expect "--token-file" -- peakflow-bpf heartbeat send --url http://198.18.0.2:8999 --tok
expect "peakflow-tracker" -- peakflow-bpf import ""
expect "--force" -- peakflow-bpf import peakflow-tracker --fo
expect "$ifaces" -- peakflow-bpf import peakflow-tracker --interface ""
expect "$tmp/site.yaml" -- peakflow-bpf export status -f "$tmp/"
expect "--failed" -- peakflow-bpf history --fa
expect "--test --title" -- peakflow-bpf push --t
printf 'push:\n  sinks:\n    - name: ding\n      type: dingtalk\n    - {name: mail, type: email}\n' >"$tmp/push.yaml"
expect "ding mail" -- peakflow-bpf push --test -f "$tmp/push.yaml" ""
expect "mail" -- peakflow-bpf push -f "$tmp/push.yaml" --message hi --sink m

echo "completion: $passed passed, $failed failed"
((failed == 0))
