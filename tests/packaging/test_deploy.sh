#!/usr/bin/env bash
# shellcheck disable=SC2016 # dpkg-query formats are literal
# scripts/deploy-agent.sh against a real OpenSSH sshd, with a Debian 12 root as the host and
# a real peakflow-collector (TLS) as the fleet's collector, each in a network namespace:
#
#   netns $NS_C  198.18.71.1  <--- veth --->  198.18.71.2  netns $NS_H
#   peakflow-collector serve (https)          sshd; each session chroots into ROOT (host name
#   deploy-agent.sh, curl                     pf-deploy-host): the agent's host
#
#   sudo tests/packaging/test_deploy.sh ROOT DEB
#
# ROOT is a Debian 12 root with the package's dependencies installed and the package not
# installed; tests/packaging/test_install.sh calls this after its purge, so the root it made
# (its apt lists and dependencies included) is reused and nothing needs the mirror here: the
# root has no network but the veth. A policy-rc.d that refuses starts must be in the root.
# The collector is the one in DEB, unpacked into the temp dir; sshd is Debian's unpacked one
# (scripts/install-deps.sh puts it in /usr/local/lib/peakflow-test/openssh), not the root's.
#
# 1. First run: ok; the package is installed, the token file is 0600 root, the config's
#    collector: section is right (`peakflow-bpf config check` in the root), the unit is
#    enabled, and the collector takes the token (an authenticated request: 200).
# 2. Second run, as a user with passwordless sudo (ssh://USER@HOST:2222), with an
#    unreachable host beside it: "already deployed (nothing changed)", apt-get and dpkg
#    never ran, no token made (the collector's is the same), the files unchanged; the other
#    host fails at connect in one line; exit 1. A config the agent refuses fails at config,
#    also when the run changes nothing in it.
# 3. The token file lost: refused at enrol (the collector's token may be another host's);
#    with --renew-token (as the sudo user) a new token, the old one refused (401), other
#    collector keys kept.
# 4. A newer package whose shipped config changed: upgraded without a prompt, the host's
#    config (a conffile we edited) kept.
# No run puts a token on a command line (every execve under strace, here and on the host),
# in the output or in the logs of sshd and of the collector. Namespaces, sshd, the
# collector, the mount, the users and the temp dir go on exit, whatever happened.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DEPLOY=$here/../../scripts/deploy-agent.sh
PY=/usr/bin/python3

fail() { echo "FAIL [test_deploy]: $*" >&2; exit 1; }
step() { printf '== [%3ds] deploy: %s\n' "$SECONDS" "$*"; }

(($# == 2)) || { echo "usage: $0 ROOT DEB" >&2; exit 2; }
ROOT=$(realpath "$1")
DEB=$(realpath "$2")
[[ $(id -u) == 0 ]] || fail "must run as root (namespaces, chroot, mount)"
[[ -x $ROOT/bin/bash && -x $ROOT/usr/bin/apt-get ]] || fail "$ROOT is not a Debian root"
SSHD=${PF_SSHD:-/usr/local/lib/peakflow-test/openssh/usr/sbin/sshd}
for t in ip nsenter unshare ssh ssh-keygen openssl strace curl dpkg-deb "$PY"; do
    command -v "$t" >/dev/null || fail "required tool '$t' not found"
done
VERSION=$(dpkg-deb -f "$DEB" Version)

ID=$$
NS_C=pf-deploy-$ID-c
NS_H=pf-deploy-$ID-h
IF_C=pfdc$ID
IF_H=pfdh$ID
IP_C=198.18.71.1
IP_H=198.18.71.2
UNREACHABLE=198.19.255.1 # in 198.18.0.0/15, no route to it from $NS_C
AGENT=pf-deploy-host
HOST=root@$IP_H
URL=https://$IP_C:8999
MNT=/run/pf-deploy-$ID # ROOT seen from sshd's mount namespace: ChrootDirectory wants
                       # root-owned directories that others cannot write, all the way up
T=$(mktemp -d /tmp/pf-deploy.XXXXXX)
chmod 755 "$T" # sshd reads authorized_keys as the user logging in
SUDO_USER_NAME=pfdeploy$ID # a user with passwordless sudo, on this machine (for sshd) and in the root
COLLECTOR_PID="" STRACE_PIDS=() SSHD_PIDS=() MADE_SSHD_USER=0 MADE_RUN_SSHD=0 MADE_MNT=0 MADE_USER=0 ROOT_MODE=""

netns_exists() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }
kill_pid() { # PID: TERM, then KILL after 5 s
    local i
    kill -TERM "$1" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local rc=$? f pid
    set +e
    if ((rc != 0)); then
        for f in "$T"/run*.out "$T"/run*.err "$T/sshd.log" "$T/collector.log"; do
            [[ -s $f ]] || continue
            printf -- '--- %s (last 20 lines) ---\n' "${f##*/}" >&2
            tail -n 20 "$f" >&2
        done
    fi
    # sshd is strace's child, not ours: TERM it by pid, then strace (ours) ends with it.
    for pid in "${SSHD_PIDS[@]}"; do kill_pid "$pid"; done
    for pid in "${STRACE_PIDS[@]}"; do kill_pid "$pid"; wait "$pid" 2>/dev/null; done
    [[ -n $COLLECTOR_PID ]] && { kill_pid "$COLLECTOR_PID"; wait "$COLLECTOR_PID" 2>/dev/null; }
    for ns in "$NS_C" "$NS_H"; do netns_exists "$ns" && ip netns del "$ns"; done
    # The bind mount lived in sshd's mount namespace only; the directory is ours.
    ((MADE_MNT)) && rmdir "$MNT"
    ((MADE_SSHD_USER)) && userdel sshd
    if ((MADE_USER)); then
        userdel "$SUDO_USER_NAME"
        chroot "$ROOT" userdel "$SUDO_USER_NAME"
        rm -f "$ROOT/etc/sudoers.d/$SUDO_USER_NAME"
    fi
    [[ -n $ROOT_MODE ]] && chmod "$ROOT_MODE" "$ROOT"
    ((MADE_RUN_SSHD)) && rmdir /run/sshd
    rm -rf "$T"
    if ((rc == 0)); then
        echo "PASS: deploy test in ${SECONDS}s"
    else
        echo "FAIL: deploy test (exit $rc after ${SECONDS}s)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_ns() { local ns=$1; shift; nsenter "--net=/run/netns/$ns" -- "$@"; }
token_of_host() { head -n 1 "$ROOT/etc/peakflow/collector.token"; }
# The HTTP status of an authenticated read at the collector with TOKEN (curl config on stdin).
status_with() { # TOKEN
    printf 'url = "%s/api/v1/config?agent=%s"\nheader = "Authorization: Bearer %s"\n' "$URL" "$AGENT" "$1" |
        in_ns "$NS_C" curl -sS --max-time 10 --cacert "$T/tls/cert.pem" -o /dev/null -w '%{http_code}' -K -
}
tokens_at_collector() { # "NAME REVOKED CREATED" per token
    "$T/pkg/usr/sbin/peakflow-collector" token list --json -f "$T/collector.yaml" |
        "$PY" -c 'import json, sys
for t in json.load(sys.stdin)["tokens"]: print(t["name"], t["revoked"], t["created_epoch"])'
}
sums() { (cd "$ROOT/etc/peakflow" && sha256sum config.yaml collector.token collector-ca.pem); }

# deploy N ARGS...: run N of deploy-agent.sh in $NS_C under strace (execve only); its
# output in $T/runN.out and .err, its exit status in RC.
deploy() {
    local n=$1
    shift
    RC=0
    in_ns "$NS_C" env PATH="$T/pkg/usr/sbin:$PATH" \
        strace -f -qq --seccomp-bpf -e trace=execve -s 4096 -o "$T/local$n.strace" \
        "$DEPLOY" -F /dev/null -k "$T/ssh/id_ed25519" -o "UserKnownHostsFile=$T/ssh/known_hosts" \
        -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes --connect-timeout 5 \
        --collector "$URL" --collector-config "$T/collector.yaml" --ca-file "$T/tls/cert.pem" "$@" \
        >"$T/run$n.out" 2>"$T/run$n.err" </dev/null || RC=$?
    sed "s/^/   run $n: /" "$T/run$n.out"
}
expect_line() { # N LINE_NUMBER PATTERN: line of run N's output matches the glob PATTERN
    local got
    got=$(sed -n "$2p" "$T/run$1.out")
    # shellcheck disable=SC2053 # a glob on purpose
    [[ $got == $3 ]] || fail "run $1, line $2: expected '$3', got '$got'"
}
# No token anywhere but where it belongs: the argv of every program run here and on the
# host, the script's output, the logs of sshd and of the collector.
no_token_leaks() { # TOKEN...
    local t f
    for t in "$@"; do
        for f in "$T"/local*.strace "$T"/remote*.strace "$T"/run*.out "$T"/run*.err "$T/sshd.log" "$T/collector.log"; do
            ! grep -qF "$t" "$f" || fail "a token is in ${f##*/}"
        done
    done
}

# --- the collector, the namespaces, sshd -----------------------------------------------------
step "collector (from $(basename "$DEB")), namespaces, sshd chrooting into the root"
dpkg-deb -x "$DEB" "$T/pkg"
mkdir -m 700 "$T/tls" "$T/ssh"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=peakflow-deploy-test -addext "subjectAltName=IP:$IP_C" \
    -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" 2>/dev/null || fail "openssl could not make the test certificate"
cat >"$T/collector.yaml" <<CONF
listen: "$IP_C:8999"
tls:
  cert: $T/tls/cert.pem
  key: $T/tls/key.pem
database: $T/collector.db
alert_file: $T/alerts.log
CONF
chmod 600 "$T/collector.yaml"

ip netns add "$NS_C"
ip netns add "$NS_H"
ip link add "$IF_C" netns "$NS_C" type veth peer name "$IF_H" netns "$NS_H"
ip -n "$NS_C" addr add "$IP_C/24" dev "$IF_C"
ip -n "$NS_H" addr add "$IP_H/24" dev "$IF_H"
for ns in "$NS_C" "$NS_H"; do
    ip -n "$ns" link set lo up
done
ip -n "$NS_C" link set "$IF_C" up
ip -n "$NS_H" link set "$IF_H" up

# Not through in_ns, a function: its background subshell would have the pid in $!.
nsenter "--net=/run/netns/$NS_C" -- "$T/pkg/usr/sbin/peakflow-collector" serve -f "$T/collector.yaml" >"$T/collector.log" 2>&1 &
COLLECTOR_PID=$!

if [[ ! -x $SSHD ]]; then
    echo "   no sshd at $SSHD (scripts/install-deps.sh puts one there): unpacking Debian's"
    SSHD=$("$here/../../scripts/fetch-sshd.sh" "$T/openssh") || fail "could not fetch openssh-server (apt-get download)"
fi
if ! id sshd >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
    MADE_SSHD_USER=1
fi
if [[ ! -d /run/sshd ]]; then
    mkdir -m 755 /run/sshd
    MADE_RUN_SSHD=1
fi
mkdir -m 755 "$MNT"
MADE_MNT=1
ssh-keygen -q -t ed25519 -N '' -C "peakflow deploy test host" -f "$T/ssh/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C "peakflow deploy test" -f "$T/ssh/id_ed25519"
mkdir -m 755 "$T/pub"
install -m 644 "$T/ssh/id_ed25519.pub" "$T/pub/authorized_keys"
# A second login: a user with passwordless sudo, where the root has sudo (test_install.sh
# puts it there); without it, root logs in for that run too.
SUDO_HOST=$HOST
if [[ -x $ROOT/usr/bin/sudo ]]; then
    # A host's / is 0755; a root made in a mktemp directory is 0700, which only root can enter.
    ROOT_MODE=$(stat -c %a "$ROOT")
    chmod 755 "$ROOT"
    ! id "$SUDO_USER_NAME" >/dev/null 2>&1 || fail "user $SUDO_USER_NAME exists already"
    MADE_USER=1
    useradd --no-create-home --home-dir /nonexistent --shell /bin/bash --password '*' "$SUDO_USER_NAME"
    # The same ids in the root: the session runs with this machine's, sudo looks them up there.
    chroot "$ROOT" groupadd --gid "$(id -g "$SUDO_USER_NAME")" "$SUDO_USER_NAME" ||
        fail "cannot add group $SUDO_USER_NAME with gid $(id -g "$SUDO_USER_NAME") in the root"
    chroot "$ROOT" useradd --uid "$(id -u "$SUDO_USER_NAME")" --gid "$(id -g "$SUDO_USER_NAME")" \
        --no-create-home --home-dir /nonexistent --shell /bin/bash --password '*' "$SUDO_USER_NAME" ||
        fail "cannot add user $SUDO_USER_NAME with uid $(id -u "$SUDO_USER_NAME") in the root"
    echo "$SUDO_USER_NAME ALL=(ALL) NOPASSWD: ALL" >"$ROOT/etc/sudoers.d/$SUDO_USER_NAME"
    chmod 440 "$ROOT/etc/sudoers.d/$SUDO_USER_NAME"
    SUDO_HOST=ssh://$SUDO_USER_NAME@$IP_H:2222
else
    echo "   no sudo in the root: root logs in for the runs meant for a sudo user"
fi
# Two sshd: root logs in on port 22, the sudo user on 2222. Each under strace, so that every
# program run on the host is seen with its arguments: for root with --seccomp-bpf (only
# execve stops: a fraction of the time of apt-get and dpkg), for the sudo user without, since
# --seccomp-bpf sets no_new_privs and sudo would refuse.
hostkey=$(cut -d' ' -f1,2 "$T/ssh/host_ed25519.pub")
printf '%s %s\n[%s]:2222 %s\n' "$IP_H" "$hostkey" "$IP_H" "$hostkey" >"$T/ssh/known_hosts"
start_sshd() { # NAME PORT USER STRACE_OPTION...
    local name=$1 port=$2 user=$3 pid i
    shift 3
    cat >"$T/ssh/$name.conf" <<CONF
ListenAddress $IP_H
Port $port
HostKey $T/ssh/host_ed25519
PidFile none
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
AuthorizedKeysFile $T/pub/authorized_keys
# The keys live under /tmp (world-writable): not what StrictModes wants.
StrictModes no
ChrootDirectory $MNT
LogLevel INFO
CONF
    "$SSHD" -t -f "$T/ssh/$name.conf" || fail "sshd rejects the test config $name.conf"
    # Its own mount and UTS namespaces: ROOT bound (with its /proc) at $MNT, and the host's
    # name. nsenter, unshare and sh exec the next one, so $! is strace.
    # shellcheck disable=SC2016 # expanded by the inner sh
    nsenter "--net=/run/netns/$NS_H" -- unshare --mount --uts --propagation private -- sh -c \
        'mount --rbind "$1" "$2" && hostname "$3" && shift 3 && exec "$@"' sh "$ROOT" "$MNT" "$AGENT" \
        strace -f -qq "$@" -e trace=execve -s 4096 -o "$T/$name.strace" \
        "$SSHD" -D -e -f "$T/ssh/$name.conf" >>"$T/sshd.log" 2>&1 &
    STRACE_PIDS+=("$!")
    for ((i = 0; i < 100; i++)); do
        pid=$(pgrep -P "${STRACE_PIDS[-1]}" -x sshd || true)
        [[ -n $pid ]] && break
        sleep 0.05
    done
    [[ -n $pid ]] || fail "sshd $name did not start: $(cat "$T/sshd.log")"
    SSHD_PIDS+=("$pid")
}
start_sshd remote 22 root --seccomp-bpf
[[ $SUDO_HOST == "$HOST" ]] || start_sshd remote-sudo 2222 "$SUDO_USER_NAME"
for ((i = 0; i < 100; i++)); do
    (($(grep -c "Server listening on $IP_H port" "$T/sshd.log") == ${#SSHD_PIDS[@]})) &&
        in_ns "$NS_C" curl -s --max-time 2 --cacert "$T/tls/cert.pem" "$URL/api/v1/health" 2>/dev/null | grep -q ok &&
        break
    sleep 0.1
done
((i < 100)) || fail "sshd or the collector did not come up"

# --- 1. first run ---------------------------------------------------------------------------
step "run 1: install, enrol, config, service"
deploy 1 --package "$DEB" --node test-node "$HOST"
((RC == 0)) || fail "run 1 exited $RC"
[[ $(wc -l <"$T/run1.out") == 1 ]] || fail "run 1 printed $(wc -l <"$T/run1.out") lines, expected 1"
expect_line 1 1 "$HOST: ok: installed peakflow-bpf $VERSION, enrolled as $AGENT (new token), CA file written, collector section written; systemd is not running on this host: the service is enabled, not started"
[[ $(chroot "$ROOT" dpkg-query -W -f '${db:Status-Abbrev}${Version}' peakflow-bpf) == "ii $VERSION" ]] ||
    fail "peakflow-bpf $VERSION is not installed in the root"
[[ $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/collector.token") == "600 root:root" ]] ||
    fail "the token file is $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/collector.token"), expected 600 root:root"
TOKEN1=$(token_of_host)
[[ $TOKEN1 =~ ^pfc_[0-9a-f]{64}$ ]] || fail "the token file holds no token"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin peakflow-bpf config check >"$T/check.out" 2>&1 ||
    fail "config check in the root: $(cat "$T/check.out")"
section=$(sed -n '/^collector:/,/^[^ ]/p' "$T/check.out")
for kv in "url: $URL" "token_file: /etc/peakflow/collector.token" "name: $AGENT" "node: test-node" \
          "ca_file: /etc/peakflow/collector-ca.pem"; do
    grep -qxF "  $kv" <<<"$section" || fail "the agent's effective config lacks '$kv' under collector: $section"
done
cmp -s "$ROOT/etc/peakflow/collector-ca.pem" "$T/tls/cert.pem" || fail "the CA file on the host is not the collector's certificate"
[[ -L $ROOT/etc/systemd/system/multi-user.target.wants/peakflow-bpf.service ]] || fail "the unit is not enabled"
[[ $(tokens_at_collector | cut -d' ' -f1,2) == "$AGENT False" ]] || fail "tokens at the collector: $(tokens_at_collector)"
[[ $(status_with "$TOKEN1") == 200 ]] || fail "the collector does not take the host's token"
CREATED1=$(tokens_at_collector | cut -d' ' -f3)
SUMS1=$(sums)
no_token_leaks "$TOKEN1"
echo "   the host has $VERSION, a 0600 token the collector takes (200), the collector: section, the unit enabled"

# --- 2. again, with an unreachable host ------------------------------------------------------
step "run 2: nothing to change; an unreachable host"
declare -A lines_before
for f in "$T"/remote*.strace; do lines_before[$f]=$(wc -l <"$f"); done
deploy 2 --package "$DEB" --node test-node "$SUDO_HOST" "root@$UNREACHABLE"
((RC == 1)) || fail "run 2 exited $RC, expected 1 (a host failed)"
[[ $(wc -l <"$T/run2.out") == 2 ]] || fail "run 2 printed $(wc -l <"$T/run2.out") lines, expected 2"
expect_line 2 1 "$SUDO_HOST: ok, already deployed (nothing changed); systemd is not running on this host: the service is enabled, not started"
expect_line 2 2 "root@$UNREACHABLE: failed at connect: ssh: connect to host $UNREACHABLE port 22: *"
[[ $(sums) == "$SUMS1" ]] || fail "run 2 changed files on the host"
[[ $(tokens_at_collector) == "$AGENT False $CREATED1" ]] || fail "run 2 changed the tokens: $(tokens_at_collector)"
for f in "$T"/remote*.strace; do
    ! tail -n +"$((lines_before[$f] + 1))" "$f" | grep -Eq 'execve\("[^"]*/(apt-get|dpkg)"' ||
        fail "run 2 ran apt-get or dpkg on the host"
done
! grep -q 'token", "create' "$T/local2.strace" || fail "run 2 ran peakflow-collector token create"

# A config the agent would refuse is no "ok", also when the deployment changes nothing in it.
cp -p "$ROOT/etc/peakflow/config.yaml" "$T/config.good"
sed -i 's/^drain_interval: .*/drain_interval: abc/' "$ROOT/etc/peakflow/config.yaml"
deploy 3 --node test-node "$HOST"
((RC == 1)) || fail "run 3 exited $RC, expected 1"
expect_line 3 1 "$HOST: failed at config: /etc/peakflow/config.yaml fails peakflow-bpf config check: *drain_interval*"
cp -p "$T/config.good" "$ROOT/etc/peakflow/config.yaml"
[[ $(sums) == "$SUMS1" ]] || fail "run 3 changed files on the host"

# --- 3. the token file lost ------------------------------------------------------------------
step "runs 4, 5: the token file lost; refused, then --renew-token"
rm "$ROOT/etc/peakflow/collector.token"
sed -i 's/^collector:$/collector:\n  interval: 30/' "$ROOT/etc/peakflow/config.yaml"
config3=$(sha256sum <"$ROOT/etc/peakflow/config.yaml")
deploy 4 --node test-node "$HOST"
((RC == 1)) || fail "run 4 exited $RC, expected 1"
expect_line 4 1 "$HOST: failed at enrol: the collector has a token for '$AGENT' that this host does not hold or that it refuses; *--renew-token*"
[[ $(tokens_at_collector) == "$AGENT False $CREATED1" ]] || fail "run 4 changed the tokens: $(tokens_at_collector)"
[[ ! -e $ROOT/etc/peakflow/collector.token ]] || fail "run 4 wrote a token file"
deploy 5 --node test-node --renew-token "$SUDO_HOST"
((RC == 0)) || fail "run 5 (--renew-token) exited $RC"
expect_line 5 1 "$SUDO_HOST: ok: enrolled as $AGENT (new token; the old one revoked); systemd is not running*"
TOKEN2=$(token_of_host)
[[ $TOKEN2 =~ ^pfc_[0-9a-f]{64}$ && $TOKEN2 != "$TOKEN1" ]] || fail "no new token on the host"
[[ $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/collector.token") == "600 root:root" ]] || fail "the new token file is not 0600 root"
[[ $(status_with "$TOKEN2") == 200 ]] || fail "the collector does not take the new token"
[[ $(status_with "$TOKEN1") == 401 ]] || fail "the collector still takes the old token"
[[ $(tokens_at_collector | cut -d' ' -f1,2) == "$AGENT False" ]] || fail "tokens at the collector: $(tokens_at_collector)"
[[ $(sha256sum <"$ROOT/etc/peakflow/config.yaml") == "$config3" ]] || fail "run 5 changed the config (interval: 30 must stay)"
echo "   refused without --renew-token; with it a new token (200), the old one 401, interval: 30 kept"

# --- 6. an upgrade whose shipped config changed: the host's config (a conffile) stays -------
step "run 6: upgrade to a newer package whose shipped config changed"
VERSION2=$VERSION+deploytest
dpkg-deb -R "$DEB" "$T/repack"
sed -i "s/^Version: .*/Version: $VERSION2/" "$T/repack/DEBIAN/control"
echo "# changed in $VERSION2" >>"$T/repack/etc/peakflow/config.yaml"
dpkg-deb -Zgzip -z1 -b "$T/repack" "$T/newer.deb" >/dev/null
SUMS2=$(sums)
deploy 6 --package "$T/newer.deb" --node test-node "$HOST"
((RC == 0)) || fail "run 6 exited $RC"
expect_line 6 1 "$HOST: ok: upgraded peakflow-bpf $VERSION -> $VERSION2; systemd is not running*"
[[ $(chroot "$ROOT" dpkg-query -W -f '${db:Status-Abbrev}${Version}' peakflow-bpf) == "ii $VERSION2" ]] ||
    fail "peakflow-bpf $VERSION2 is not installed in the root"
[[ $(sums) == "$SUMS2" ]] || fail "the upgrade changed the config, the token or the CA file"
[[ -f $ROOT/etc/peakflow/config.yaml.dpkg-dist ]] || fail "no config.yaml.dpkg-dist: was the new shipped config seen?"
no_token_leaks "$TOKEN1" "$TOKEN2"
echo "   $VERSION2 installed; config.yaml, token and CA file unchanged; the shipped one as config.yaml.dpkg-dist"
step "done"
