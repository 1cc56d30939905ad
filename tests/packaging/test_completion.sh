#!/usr/bin/env bash
# Checks packaging/bash-completion/peakflow-bpf and peakflow-collector with bash-completion's
# helpers:
#   tests/packaging/test_completion.sh [build/user/peakflow-collector]
# With the collector binary, the names the collector's completion reads from its database
# (agents, nodes, users, heartbeat tokens) are checked against a real one in a temp dir.
# Needs the bash-completion package (exits 77, "skipped", without it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
collector=${1:+$(realpath "$1")}
bc=/usr/share/bash-completion/bash_completion
[[ -r $bc ]] || { echo "SKIP: $bc missing (apt-get install bash-completion)"; exit 77; }
# shellcheck source=/dev/null
source "$bc"
# shellcheck source=/dev/null
source "$here/../../packaging/bash-completion/peakflow-bpf"
# shellcheck source=/dev/null
source "$here/../../packaging/bash-completion/peakflow-collector"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/site.yaml" "$tmp/other.txt"

passed=0 failed=0
complete_fn=_peakflow_bpf # the completion function under test
complete_words() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    "$complete_fn"
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

# --- peakflow-collector ----------------------------------------------------------------------
complete_fn=_peakflow_collector
PC=peakflow-collector
mkdir "$tmp/c"
touch "$tmp/c/site.yaml" "$tmp/c/other.txt"
expect "agents alerts audit config heartbeat history report serve set show token unset user" -- $PC ""
expect "--help --log-level --version" -- $PC --
expect "debug error info trace warn" -- $PC --log-level ""
expect "serve" -- $PC --log-level info ser
expect "--config" -- $PC serve --c
expect "$tmp/c/site.yaml" -- $PC serve -f "$tmp/c/"
expect "check" -- $PC config ""
expect "$tmp/c/site.yaml" -- $PC config check "$tmp/c/"
expect "create list revoke" -- $PC token ""
expect "--json" -- $PC token list --j
expect "token" -- $PC heartbeat ""
expect "create list revoke" -- $PC heartbeat token ""
expect "--json" -- $PC heartbeat token list --j
expect "--agent --config --day --five-minutes --help --hours --json --log-level --month --node" -- $PC report --
expect "--five-minutes" -- $PC report --fi
expect "$(date +%F)" -- $PC report --day ""
expect "$(date +%Y-%m)" -- $PC report --month ""
expect "--failed --from" -- $PC history --f
expect "" -- $PC history --from ""
expect "add del list passwd token" -- $PC user ""
expect "--role" -- $PC user add alice --r
expect "admin viewer" -- $PC user add alice --role ""
expect "--password-file" -- $PC user passwd alice --pa
expect "$tmp/c/other.txt $tmp/c/site.yaml" -- $PC user add alice --password-file "$tmp/c/"
expect "--expires" -- $PC user token alice --e
expect "customer_report.device_type customer_report.enabled customer_report.fields customer_report.isp_id customer_report.provider_id customer_report.provider_uiid" -- $PC set customer_report.
expect "push.enabled push.sinks." -- $PC set push.
expect "push.sinks.ding.enabled push.sinks.ding.to push.sinks.ding.url" -- $PC set push.sinks.ding.
expect "false true" -- $PC set --agent nas-1 push.enabled ""
expect "false true" -- $PC set push.sinks.ding.enabled ""
expect "" -- $PC set adjustments ""
expect "interfaces" -- $PC unset in
expect "--agent" -- $PC unset --ag
expect "--agent --config --help --json --log-level" -- $PC show --
expect "--limit --log-level" -- $PC audit --l
expect "" -- $PC audit --limit ""

# Names from a real collector database, with the -f of the command line.
if [[ -n $collector ]]; then
    printf 'database: %s/collector.db\n' "$tmp" >"$tmp/collector.yaml"
    printf 'pw-completion-test\n' >"$tmp/pw"
    chmod 600 "$tmp/collector.yaml" "$tmp/pw"
    for a in nas-1 nas-2 web.1; do "$collector" token create "$a" -f "$tmp/collector.yaml" >/dev/null; done
    "$collector" heartbeat token create redis-main -f "$tmp/collector.yaml" >/dev/null
    "$collector" user add alice --role admin --password-file "$tmp/pw" -f "$tmp/collector.yaml" 2>/dev/null
    "$collector" user add bob --role viewer --password-file "$tmp/pw" -f "$tmp/collector.yaml" 2>/dev/null
    PC=$collector
    expect "nas-1 nas-2 web.1" -- "$PC" token revoke -f "$tmp/collector.yaml" ""
    expect "nas-1 nas-2" -- "$PC" -f "$tmp/collector.yaml" report --agent na
    expect "web.1" -- "$PC" set -f "$tmp/collector.yaml" --agent w
    expect "redis-main" -- "$PC" heartbeat token revoke --config "$tmp/collector.yaml" ""
    expect "alice bob" -- "$PC" user del -f "$tmp/collector.yaml" ""
    expect "bob" -- "$PC" user passwd -f "$tmp/collector.yaml" b
    expect "" -- "$PC" token revoke -f "$tmp/collector.yaml" nas-1 ""
    expect "" -- "$PC" token revoke -f "$tmp/none.yaml" ""
else
    echo "completion: no peakflow-collector given: names from its database not checked"
fi

echo "completion: $passed passed, $failed failed"
((failed == 0))
