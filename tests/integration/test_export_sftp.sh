#!/usr/bin/env bash
# Flow export over SFTP to a real OpenSSH sshd on 127.0.0.1 inside the test's namespace
# (Debian's binaries unpacked by scripts/fetch-sshd.sh, not installed: no system sshd is
# started), with its own config and host key, password login for a temporary user and
# `Subsystem sftp internal-sftp`. Finished files arrive under their final names through
# the rename (never left as .tmp), missing directories are created, the local copies are
# removed, the uploaded rows carry exactly the UDP packets and bytes sent; a wrong password
# is a clear error in the log and the files stay spooled. The host key: none configured is
# refused without connecting, a wrong one before the password; trust_first_host_key stores
# the first key (0600) and refuses the server's next key.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

SSHD=${PF_SSHD:-/usr/local/lib/peakflow-test/openssh/usr/sbin/sshd}
if [[ ! -x $SSHD ]]; then
    pf_log "no sshd at $SSHD (scripts/install-deps.sh puts one there): unpacking Debian's into the temp dir"
    SSHD=$("$PF_IT_DIR/../../scripts/fetch-sshd.sh" "$PF_T/openssh") || fail "could not fetch openssh-server (apt-get download)"
fi
command -v ssh-keygen >/dev/null || fail "ssh-keygen not installed (openssh-client)"
command -v strace >/dev/null || fail "strace not installed (apt-get install strace)"

# sshd needs its privilege separation user and directory; made here only if missing, and
# then removed again.
SFTP_USER="pfsftp$PF_ID"
SFTP_PASS="pw-$PF_ID-sftp"
MADE_SSHD_USER=0
MADE_RUN_SSHD=0
SSHD_PID=""
sftp_cleanup() {
    # sshd is strace's child, not ours: TERM it by pid, then strace (ours) ends with it.
    [[ -n $SSHD_PID ]] && kill -TERM "$SSHD_PID" 2>/dev/null
    [[ -n ${STRACE_PID:-} ]] && pf_kill_pid "$STRACE_PID"
    pf_temp_users_del
    ((MADE_SSHD_USER)) && userdel sshd 2>/dev/null
    ((MADE_RUN_SSHD)) && rmdir /run/sshd 2>/dev/null
    return 0
}
trap 'rc=$?; set +e; sftp_cleanup; (exit $rc); pf_cleanup' EXIT
if ! id sshd >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
    MADE_SSHD_USER=1
fi
if [[ ! -d /run/sshd ]]; then
    mkdir -m 755 /run/sshd
    MADE_RUN_SSHD=1
fi

SFTP_ROOT="$PF_T/sftproot"
mkdir -p "$SFTP_ROOT"
pf_temp_user_add "$SFTP_USER" "$SFTP_PASS" "$SFTP_ROOT"
chown "$SFTP_USER" "$SFTP_ROOT"

pf_setup_pair
pf_start_servers
ip -n "$NS_A" link set lo up

mkdir -m 700 "$PF_T/ssh"
ssh-keygen -q -t ed25519 -N '' -C "peakflow test $PF_ID" -f "$PF_T/ssh/host_ed25519"
SFTP_PORT=$(pf_free_port "$NS_A")
cat >"$PF_T/ssh/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SFTP_PORT
HostKey $PF_T/ssh/host_ed25519
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
PermitRootLogin no
AllowUsers $SFTP_USER
Subsystem sftp internal-sftp -l INFO
LogLevel VERBOSE
CONF
"$SSHD" -t -f "$PF_T/ssh/sshd_config" || fail "sshd rejects the test config"
# Under strace, to see what the server did with the files (internal-sftp logs only to
# syslog, and there is none here): the upload goes to NAME.tmp, then the rename.
nsenter "--net=/run/netns/$NS_A" -- strace -f -qq -o "$PF_T/sshd.strace" \
    -e trace=openat,link,linkat,rename,renameat,renameat2,unlink,unlinkat \
    "$SSHD" -D -e -f "$PF_T/ssh/sshd_config" >>"$PF_T/sshd.log" 2>&1 &
STRACE_PID=$!
BG_PIDS+=("$STRACE_PID")
for ((i = 0; i < 50; i++)); do
    SSHD_PID=$(pgrep -P "$STRACE_PID" -x sshd || true)
    [[ -n $SSHD_PID ]] && break
    sleep 0.1
done
[[ -n $SSHD_PID ]] || fail "sshd did not start under strace: $(cat "$PF_T/sshd.log")"
sshd_listening() {
    nsenter "--net=/run/netns/$NS_A" -- "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $SFTP_PORT), 1).close()" 2>/dev/null
}
pf_wait_for "sshd listening on 127.0.0.1:$SFTP_PORT" 10 sshd_listening
# sshd logs that probe's connection from its own child, maybe later: wait for its last line,
# so the connections counted below are the daemon's alone.
pf_wait_for "sshd's log of the probe" 10 grep -q "^Connection closed by 127.0.0.1 port" "$PF_T/sshd.log"

SPOOL="$PF_T/spool"
REMOTE="$SFTP_ROOT/up/sub" # created by the upload (missing directories)
printf '%s\n' "$SFTP_PASS" >"$PF_T/sftp-password"
printf 'wrong-password\n' >"$PF_T/sftp-bad-password"
chmod 600 "$PF_T/sftp-password" "$PF_T/sftp-bad-password" # secret files: refused when others may read them
# The server's real host key, and another one it does not have.
HOST_KEY=$(ssh-keygen -l -E sha256 -f "$PF_T/ssh/host_ed25519.pub" | awk '{print $2}')
ssh-keygen -q -t ed25519 -N '' -f "$PF_T/ssh/other_ed25519"
OTHER_KEY=$(ssh-keygen -l -E sha256 -f "$PF_T/ssh/other_ed25519.pub" | awk '{print $2}')
BASE_CONFIG=$(cat "$PF_CONFIG")
write_config() { # PASSWORD_FILE [HOST KEY LINE, default: host_key_sha256 = the server's]
    local key=${2-host_key_sha256: \"$HOST_KEY\"}
    printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
    cat >>"$PF_CONFIG" <<CONF
export:
  scan_interval: 1
  idle_timeout: 1
  files:
    directory: $SPOOL
    prefix: flows_
    rotate_interval: 2
    timezone: UTC
  upload:
    url: sftp://127.0.0.1:$SFTP_PORT$REMOTE/
    user: $SFTP_USER
    password_file: $1
    interval: 2
${key:+    $key}
CONF
}

udp_from_b() { # SPORT COUNT SIZE
    nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" udp --to "$IP_A" --port "$PORT_A" \
        --count "$2" --sizes "$3" --src "$IP_B" --sport "$1" >/dev/null
}
remote_files() { find "$REMOTE" -maxdepth 1 -name '*.csv.gz' 2>/dev/null | sort; }
local_files() { find "$SPOOL" -maxdepth 1 -name '*.csv.gz' 2>/dev/null | sort; }
has_flow() { # SPORT PACKETS
    local files
    mapfile -t files < <(remote_files)
    ((${#files[@]} > 0)) || return 1
    [[ $(pf_export_rows "${files[@]}" | pf_export_sum rx "$IP_B" "$1" "$IP_A" "$PORT_A" | cut -d' ' -f1) == "$2" ]]
}
check_flow() { # SPORT COUNT SIZE
    local files frame=$((ETH_HLEN + 20 + 8 + $3))
    mapfile -t files < <(remote_files)
    assert_eq "rx flow from port $1 on the SFTP server (packets bytes)" "$2 $(($2 * frame))" \
        "$(pf_export_rows "${files[@]}" | pf_export_sum rx "$IP_B" "$1" "$IP_A" "$PORT_A")"
    assert_eq "tx flow to port $1 on the SFTP server (packets bytes)" "$2 $(($2 * frame))" \
        "$(pf_export_rows "${files[@]}" | pf_export_sum tx "$IP_A" "$PORT_A" "$IP_B" "$1")"
}

# 00. No host key configured: refused without connecting, the exact error, the file stays
#     spooled (it goes up in step 2, once the key is set).
write_config "$PF_T/sftp-password" ""
connections=$(grep -c "Connection from" "$PF_T/sshd.log" || true)
pf_start_daemon export-sftp-nokey --interval 3600
udp_from_b 41999 4 60
NOKEY_ERR="export: upload flows_[0-9_]*\.csv\.gz to sftp://127\.0\.0\.1:$SFTP_PORT$REMOTE/: refused: the SFTP server's host key is not configured (set export\.upload\.host_key_sha256 or known_hosts, or trust_first_host_key: true; the files stay spooled)$"
pf_wait_for "the refusal in the log" 20 grep -q "$NOKEY_ERR" "$DAEMON_LOG"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
assert_eq "the start-up error" 1 "$(grep -c "export: uploads to sftp://127.0.0.1:$SFTP_PORT$REMOTE/ refused: the SFTP server's host key is not configured" "$DAEMON_LOG")"
[[ -n $(local_files) ]] || fail "the spooled file was removed although no host key was configured"
[[ -z $(remote_files) ]] || fail "files on the server without a host key: $(remote_files)"
assert_eq "connections to sshd without a host key configured" "$connections" "$(grep -c "Connection from" "$PF_T/sshd.log" || true)"
pf_log "step 00: no host key: $(grep -o 'export: upload flows.*' "$DAEMON_LOG" | head -n 1)"

# 0. A host key that is not the server's: refused before logging in, a clear error, the
#    file stays spooled.
write_config "$PF_T/sftp-password" "host_key_sha256: \"$OTHER_KEY\""
pf_start_daemon export-sftp-hostkey --interval 3600
udp_from_b 42000 5 80
pf_wait_for "the host key error in the log" 20 \
    grep -q "export: upload flows_.* to sftp://127.0.0.1:$SFTP_PORT$REMOTE/: .*(the server's host key does not match export.upload.host_key_sha256 or known_hosts)" "$DAEMON_LOG"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
[[ -n $(local_files) ]] || fail "the spooled file was removed although the host key was wrong"
[[ -z $(remote_files) ]] || fail "files on the server with a wrong host key: $(remote_files)"
if grep -q "Accepted password\|Failed password" "$PF_T/sshd.log"; then fail "a password was sent to a server with the wrong host key"; fi
pf_log "step 0: wrong host key: $(grep -o 'export: upload.*' "$DAEMON_LOG" | head -n 1)"

# 1. A wrong password: a clear error, the file stays spooled, nothing on the server.
write_config "$PF_T/sftp-bad-password"
pf_start_daemon export-sftp-badpw --interval 3600
udp_from_b 42001 9 120
pf_wait_for "the login error in the log" 20 \
    grep -q "export: upload flows_.* to sftp://127.0.0.1:$SFTP_PORT$REMOTE/: .*(login denied: check export.upload.user and the password)" "$DAEMON_LOG"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
[[ -n $(local_files) ]] || fail "the spooled file was removed although the login failed"
[[ -z $(remote_files) ]] || fail "files on the server after a failed login: $(remote_files)"
grep -q "Failed password for $SFTP_USER" "$PF_T/sshd.log" || fail "sshd logged no failed password"
pf_log "step 1: wrong password: $(grep -o 'export: upload.*' "$DAEMON_LOG" | head -n 1)"

# 2. The right password: the spooled file and new ones go up under their final names.
mapfile -t spooled < <(local_files)
write_config "$PF_T/sftp-password"
pf_start_daemon export-sftp --interval 3600
udp_from_b 42002 20 100
pf_wait_for "flow 42002 on the SFTP server" 20 has_flow 42002 20
pf_wait_for "the spool emptied" 10 bash -c "! ls '$SPOOL'/*.csv.gz >/dev/null 2>&1"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
for f in "${spooled[@]}"; do [[ -f $REMOTE/$(basename "$f") ]] || fail "$(basename "$f") was spooled but is not on the server"; done
[[ -z $(find "$SFTP_ROOT" -name '*.tmp') ]] || fail "temporary upload names left on the server: $(find "$SFTP_ROOT" -name '*.tmp')"
for f in $(remote_files); do
    n=$(basename "$f")
    [[ $n =~ ^flows_[0-9]{8}_[0-9]{6}_[0-9]{3}\.csv\.gz$ ]] || fail "unexpected remote name $n"
    gzip -t "$f" || fail "$n is not a valid gzip file"
    assert_eq "owner of $n" "$SFTP_USER" "$(stat -c %U "$f")"
    # Written as NAME.tmp, then renamed (sftp-server renames by link + unlink, or rename).
    grep -Eq "openat\(AT_FDCWD, \"$REMOTE/$n\.tmp\", O_WRONLY\|O_CREAT" "$PF_T/sshd.strace" ||
        fail "the server did not create $n.tmp"
    grep -Eq "(link|linkat|rename|renameat|renameat2)\(.*\"$REMOTE/$n\.tmp\", .*\"$REMOTE/$n\".*\) = 0" "$PF_T/sshd.strace" ||
        fail "the server did not move $n.tmp to $n"
    grep -Eq "openat\(AT_FDCWD, \"$REMOTE/$n\", O_WRONLY" "$PF_T/sshd.strace" &&
        fail "$n was written under its final name"
done
check_flow 41999 4 60
check_flow 42000 5 80
check_flow 42001 9 120
check_flow 42002 20 100
pf_log "step 2: $(remote_files | wc -l) file(s) uploaded over SFTP, renamed, spool empty"

# 3. Trust on first use: the first upload stores the server's key (0600, beside the
#    history database) and goes up.
STORE="$PF_T/sftp_host_keys"
write_config "$PF_T/sftp-password" "trust_first_host_key: true"
pf_start_daemon export-sftp-tofu --interval 3600
udp_from_b 42003 7 90
pf_wait_for "flow 42003 on the SFTP server" 20 has_flow 42003 7
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
check_flow 42003 7 90
assert_eq "the trusted key store" "127.0.0.1:$SFTP_PORT $HOST_KEY" "$(cat "$STORE")"
assert_eq "the store's mode" 600 "$(stat -c %a "$STORE")"
grep -q "export: trusting the SFTP server 127.0.0.1:$SFTP_PORT's host key $HOST_KEY from now on (first use; stored in $STORE)" "$DAEMON_LOG" ||
    fail "no log line for the key trusted on first use"

# 4. The server's key changes (sshd re-reads its config on SIGHUP): refused before the
#    password, the exact error, the file stays spooled, the store unchanged.
sed -i "s|^HostKey .*|HostKey $PF_T/ssh/other_ed25519|" "$PF_T/ssh/sshd_config"
kill -HUP "$SSHD_PID"
sshd_new_key() {
    sshd_listening && [[ $(nsenter "--net=/run/netns/$NS_A" -- ssh-keyscan -p "$SFTP_PORT" -t ed25519 127.0.0.1 2>/dev/null |
        ssh-keygen -l -E sha256 -f - | awk '{print $2}') == "$OTHER_KEY" ]]
}
pf_wait_for "sshd showing its new host key" 10 sshd_new_key
logins=$(grep -c "password for $SFTP_USER" "$PF_T/sshd.log" || true)
pf_start_daemon export-sftp-tofu-changed --interval 3600
udp_from_b 42004 3 70
CHANGED_ERR="export: upload flows_[0-9_]*\.csv\.gz to sftp://127\.0\.0\.1:$SFTP_PORT$REMOTE/: the SFTP server's host key changed: it is $OTHER_KEY, $HOST_KEY was trusted on first use (if the server's key was replaced, delete the 127\.0\.0\.1:$SFTP_PORT line from $STORE)$"
pf_wait_for "the changed key error in the log" 20 grep -q "$CHANGED_ERR" "$DAEMON_LOG"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
[[ -n $(local_files) ]] || fail "the spooled file was removed although the host key changed"
has_flow 42004 3 && fail "flow 42004 went up to a server whose key changed"
assert_eq "password logins after the key changed" "$logins" "$(grep -c "password for $SFTP_USER" "$PF_T/sshd.log" || true)"
assert_eq "the trusted key store after the change" "127.0.0.1:$SFTP_PORT $HOST_KEY" "$(cat "$STORE")"
pf_log "step 4: changed host key: $(grep -o 'export: upload.*' "$DAEMON_LOG" | head -n 1)"
