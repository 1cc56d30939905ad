#!/usr/bin/env bash
# shellcheck disable=SC2016  # bash -c bodies are literal
# Exercises packaging/sysvinit/peakflow-bpf (start, status, reload, restart, stop) against a
# stand-in daemon that logs the signals it gets, and packaging/openwrt/peakflow-bpf against
# stubbed procd helpers. Attaches nothing. Needs root (start-stop-daemon), cc,
# /lib/lsb/init-functions (lsb-base / sysvinit-utils).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../packaging
[[ -r /lib/lsb/init-functions ]] || { echo "SKIP: /lib/lsb/init-functions missing"; exit 77; }
command -v start-stop-daemon >/dev/null || { echo "SKIP: no start-stop-daemon"; exit 77; }

tmp=$(mktemp -d)
cleanup() {
    if [[ -f $tmp/run/pf.pid ]]; then kill "$(cat "$tmp/run/pf.pid")" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
check() { local what=$1; shift; if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi; }

cat >"$tmp/fake.c" <<'C'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static volatile sig_atomic_t hup, term;
static void on(int s) { if (s == SIGHUP) hup = 1; else term = 1; }
int main(int argc, char** argv) {
    signal(SIGHUP, on); signal(SIGTERM, on);
    /* What the daemon's files get: SQLite creates its database and WAL 0666 & ~umask. */
    FILE* db = fopen(getenv("PF_FAKE_DB"), "w");
    if (db) fclose(db);
    printf("start");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n"); fflush(stdout);
    for (;;) {
        pause();
        if (hup) { hup = 0; printf("HUP\n"); fflush(stdout); }
        if (term) { printf("TERM\n"); return 0; }
    }
}
C
cc -o "$tmp/peakflow-bpf" "$tmp/fake.c"
sed -e "s#^DAEMON=/usr/sbin/peakflow-bpf#DAEMON=$tmp/peakflow-bpf#" \
    -e "s#^PIDFILE=.*#PIDFILE=$tmp/run/pf.pid#" -e "s#^LOGFILE=.*#LOGFILE=$tmp/pf.log#" \
    -e "s#mkdir -p /run/peakflow /var/lib/peakflow#mkdir -p $tmp/run#" \
    -e "s#/etc/default/\$NAME#$tmp/default#g" \
    "$src/sysvinit/peakflow-bpf" >"$tmp/init"
echo 'DAEMON_ARGS="--config /etc/peakflow/config.yaml"' >"$tmp/default"
chmod 755 "$tmp/init"
init() { (umask 022 && PF_FAKE_DB=$tmp/fake.db "$tmp/init" "$@" >/dev/null 2>&1); }
rc_of() { local rc=0; init "$@" || rc=$?; echo "$rc"; }
wait_log() { for _ in $(seq 50); do grep -qx "$1" "$tmp/pf.log" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

check "sysv: LSB header" grep -q '^### BEGIN INIT INFO' "$src/sysvinit/peakflow-bpf"
check "sysv: status before start is 3" [ "$(rc_of status)" = 3 ]
check "sysv: start" [ "$(rc_of start)" = 0 ]
check "sysv: daemon started with attach and DAEMON_ARGS" wait_log "start attach --config /etc/peakflow/config.yaml"
# Started from a shell with umask 022, as init does: the files the daemon makes are 0600.
check "sysv: a file the daemon creates is 0600 (umask 077), not $(stat -c %a "$tmp/fake.db" 2>&1)" \
    [ "$(stat -c %a "$tmp/fake.db")" = 600 ]
check "sysv: the log file is 0600, not $(stat -c %a "$tmp/pf.log" 2>&1)" [ "$(stat -c %a "$tmp/pf.log")" = 600 ]
pid=$(cat "$tmp/run/pf.pid")
check "sysv: second start is a no-op" [ "$(rc_of start)" = 0 ]
check "sysv: same pid after second start" [ "$(cat "$tmp/run/pf.pid")" = "$pid" ]
check "sysv: status running is 0" [ "$(rc_of status)" = 0 ]
check "sysv: reload" [ "$(rc_of reload)" = 0 ]
check "sysv: reload sends SIGHUP" wait_log HUP
check "sysv: restart" [ "$(rc_of restart)" = 0 ]
check "sysv: restart sends SIGTERM" wait_log TERM
check "sysv: restart gives a new pid" bash -c '[ -f "$1" ] && [ "$(cat "$1")" != "$2" ]' _ "$tmp/run/pf.pid" "$pid"
check "sysv: stop" [ "$(rc_of stop)" = 0 ]
check "sysv: pid file removed" [ ! -e "$tmp/run/pf.pid" ]
check "sysv: stop when stopped" [ "$(rc_of stop)" = 0 ]
check "sysv: status after stop is 3" [ "$(rc_of status)" = 3 ]
check "sysv: unknown action is 3" [ "$(rc_of bogus)" = 3 ]

out=$(sh -c '
procd_open_instance() { echo "open"; }
procd_set_param() { echo "param $*"; }
procd_close_instance() { echo close; }
procd_send_signal() { echo "signal $*"; }
. "$1"
echo "USE_PROCD=$USE_PROCD"
start_service
reload_service' _ "$src/openwrt/peakflow-bpf")
for want in "USE_PROCD=1" "open" "param respawn 3600 5 0" "param reload_signal HUP" "close" \
            "signal peakflow-bpf * HUP"; do
    check "openwrt: '$want'" grep -qxF -- "$want" <<<"$out"
done
check "openwrt: command" grep -qE '^param command /usr/sbin/peakflow-bpf attach( --config /etc/peakflow/config.yaml)?$' <<<"$out"
check "openwrt: rc.common shebang" grep -qx '#!/bin/sh /etc/rc.common' <(head -1 "$src/openwrt/peakflow-bpf")

echo "initscripts: $passed passed, $failed failed"
((failed == 0))
