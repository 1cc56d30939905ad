#!/usr/bin/env bash
# Flow export to a real vsftpd on 127.0.0.1 (inside the test's namespace): finished files
# appear on the server under their final names and the local copies are removed; with the
# server stopped, files stay spooled and go up in name order once it is back; a wrong
# password is a clear error in the log; SIGTERM finishes the open file. The uploaded
# gzip CSV rows carry exactly the packets and bytes of the UDP traffic we sent. A password
# over plain ftp:// needs allow_plaintext_auth; FTP over TLS (AUTH TLS and ftps://) to
# vsftpd with a throwaway certificate: a CA that did not sign it is refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

command -v vsftpd >/dev/null || fail "vsftpd not installed (apt-get install vsftpd)"

# A local user for the FTP login, only for this test (removed on exit).
FTP_USER="pfftp$PF_ID"
FTP_PASS="pw-$PF_ID-ok"
ftp_cleanup() {
    [[ -n ${VSFTPD_PID:-} ]] && pf_kill_pid "$VSFTPD_PID"
    pf_temp_users_del
}
trap 'rc=$?; set +e; ftp_cleanup; (exit $rc); pf_cleanup' EXIT

FTP_ROOT="$PF_T/ftproot"
mkdir -p "$FTP_ROOT" "$PF_T/empty"
pf_temp_user_add "$FTP_USER" "$FTP_PASS" "$FTP_ROOT"
chown "$FTP_USER" "$FTP_ROOT"

FTP_PORT=2121 # the namespace is the test's own: nothing else listens there
cat >"$PF_T/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root=$FTP_ROOT
pasv_enable=YES
pasv_address=127.0.0.1
pam_service_name=vsftpd
secure_chroot_dir=$PF_T/empty
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=$PF_T/vsftpd.log
CONF

VSFTPD_PID=""
start_ftp() { # [CONFIG, default: plain FTP]
    nsenter "--net=/run/netns/$NS_A" -- vsftpd "${1:-$PF_T/vsftpd.conf}" >>"$PF_T/vsftpd-stderr.log" 2>&1 &
    VSFTPD_PID=$!
    pf_wait_for "vsftpd listening on 127.0.0.1:$FTP_PORT" 10 ftp_listening
}
ftp_listening() {
    nsenter "--net=/run/netns/$NS_A" -- "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $FTP_PORT), 1).close()" 2>/dev/null
}
stop_ftp() {
    pf_kill_pid "$VSFTPD_PID"
    VSFTPD_PID=""
}

pf_setup_pair
pf_start_servers
ip -n "$NS_A" link set lo up

# The status report receiver: records each POST (path, content type, body) as a JSON line.
STATUS_PORT=8089
nsenter "--net=/run/netns/$NS_A" -- "$PY" -c '
import http.server, json, sys
out = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        out.write(json.dumps({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)}) + "\n")
        out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
' "$PF_T/status-posts.jsonl" "$STATUS_PORT" >"$PF_T/status-server.log" 2>&1 &
BG_PIDS+=($!)

SPOOL="$PF_T/spool"
REMOTE="$FTP_ROOT/up/sub" # created by the upload (missing directories)
printf '%s\n' "$FTP_PASS" >"$PF_T/ftp-password"
chmod 600 "$PF_T/ftp-password" # a secret file: refused when others may read it
write_config() { # PASSWORD_FILE [UPLOAD LINES, default: allow_plaintext_auth] [URL]
    local extra=${2-allow_plaintext_auth: true}
    extra=${extra:+    ${extra//$'\n'/$'\n'    }} # indented under upload:
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
    url: ${3:-ftp://127.0.0.1:$FTP_PORT/up/sub/}
    user: $FTP_USER
    password_file: $1
    interval: 2
$extra
  status:
    file: $PF_T/export-status.jsonl
    url: http://127.0.0.1:$STATUS_PORT/api/uploadStatus
    interval: 1
CONF
}
BASE_CONFIG=$(cat "$PF_CONFIG")
# 0. A password over plain ftp:// without the opt-in: refused at load, file:line and key.
write_config "$PF_T/ftp-password" ""
set +e
"$PF_BIN" config check "$PF_CONFIG" >"$PF_T/check.out" 2>"$PF_T/check.err"
check_rc=$?
set -e
assert_eq "config check exit status (plain FTP password)" 1 "$check_rc"
pw_line=$(grep -n '^    password_file:' "$PF_CONFIG" | cut -d: -f1)
assert_eq "config check error (plain FTP password)" \
    "peakflow-bpf: error: $PF_CONFIG:$pw_line:20: key 'export.upload.password_file': ftp:// without tls: required would send the FTP password in clear: set tls: required, use ftps://, or set allow_plaintext_auth: true" \
    "$(cat "$PF_T/check.err")"
printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
write_config "$PF_T/ftp-password"

udp_from_b() { # SPORT COUNT SIZE
    nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" udp --to "$IP_A" --port "$PORT_A" \
        --count "$2" --sizes "$3" --src "$IP_B" --sport "$1" >/dev/null
}
remote_files() { find "$REMOTE" -maxdepth 1 -name '*.csv.gz' 2>/dev/null | sort; }
local_files() { find "$SPOOL" -maxdepth 1 -name '*.csv.gz' 2>/dev/null | sort; }
has_flow() { # SPORT PACKETS: the flow's rx rows on the server add up to PACKETS
    local files
    mapfile -t files < <(remote_files)
    ((${#files[@]} > 0)) || return 1
    [[ $(pf_export_rows "${files[@]}" | pf_export_sum rx "$IP_B" "$1" "$IP_A" "$PORT_A" | cut -d' ' -f1) == "$2" ]]
}
check_flow() { # SPORT COUNT SIZE: exact packets and bytes, both directions
    local files frame=$((ETH_HLEN + 20 + 8 + $3))
    mapfile -t files < <(remote_files)
    assert_eq "rx flow from port $1: packets bytes on the FTP server" "$2 $(($2 * frame))" \
        "$(pf_export_rows "${files[@]}" | pf_export_sum rx "$IP_B" "$1" "$IP_A" "$PORT_A")"
    assert_eq "tx flow to port $1: packets bytes on the FTP server" "$2 $(($2 * frame))" \
        "$(pf_export_rows "${files[@]}" | pf_export_sum tx "$IP_A" "$PORT_A" "$IP_B" "$1")"
}

# 1. Server up: files go up under their final names and leave the spool.
start_ftp
umask 022 # as under SysV and OpenWrt: the daemon's files are its own all the same
pf_start_daemon export-ftp --interval 3600
udp_from_b 40001 20 100
pf_wait_for "flow 40001 on the FTP server" 20 has_flow 40001 20
check_flow 40001 20 100
pf_wait_for "the spool emptied" 10 bash -c "! ls '$SPOOL'/*.csv.gz >/dev/null 2>&1"
[[ -z $(find "$REMOTE" -name '*.tmp') ]] || fail "temporary upload names left on the server: $(ls "$REMOTE")"
for f in $(remote_files); do
    [[ $(basename "$f") =~ ^flows_[0-9]{8}_[0-9]{6}_[0-9]{3}\.csv\.gz$ ]] || fail "unexpected remote name $f"
    gzip -t "$f" || fail "$f is not a valid gzip file"
done
posted_uploads() { # the last status POST says exactly what the FTP server holds, nothing queued or failed
    "$PY" -c '
import json, os, sys
last = None
for line in open(sys.argv[1]):
    p = json.loads(line)
    assert p["path"] == "/api/uploadStatus" and p["type"] == "application/json", p
    assert p["body"]["instance_id"] == sys.argv[2], p
    last = p["body"]
names = [n for n in os.listdir(sys.argv[3]) if n.endswith(".csv.gz")]
want = {"files_uploaded": len(names), "bytes_uploaded": sum(os.path.getsize(os.path.join(sys.argv[3], n)) for n in names),
        "upload_failures": 0, "queue_files": 0, "queue_bytes": 0, "last_error": ""}
got = {k: last.get(k) for k in want} if last else None
if got != want:
    sys.exit("last status POST %s, the server holds %s" % (got, want))' "$PF_T/status-posts.jsonl" "$(cat /etc/machine-id)" "$REMOTE" \
        2>"$PF_T/posted.why"
}
for ((i = 0; i < 50; i++)); do posted_uploads && break; sleep 0.2; done
posted_uploads || fail "no status POST says what the FTP server holds: $(cat "$PF_T/posted.why")"
for f in "$PF_T/history.db" "$PF_T/history.db-wal" "$PF_T/history.db-shm" "$SPOOL/.peakflow-export-state" \
    "$PF_T/export-status.jsonl"; do
    assert_eq "mode of $f under umask 022" 600 "$(stat -c %a "$f")"
done
pf_log "step 1: $(remote_files | wc -l) file(s) uploaded, spool empty, status POSTed"

# 2. Server away: files stay spooled, the failure is logged, then they go up in name order.
stop_ftp
n_before=$(remote_files | wc -l)
udp_from_b 40002 10 200
pf_wait_for "a first spooled file" 15 bash -c "[[ \$(find '$SPOOL' -name '*.csv.gz' | wc -l) -ge 1 ]]"
sleep 2.5 # the next file gets a later name
udp_from_b 40003 7 300
pf_wait_for "a second spooled file" 15 bash -c "[[ \$(find '$SPOOL' -name '*.csv.gz' | wc -l) -ge 2 ]]"
pf_wait_for "an upload failure in the log" 10 grep -q "export: upload flows_.*Couldn't connect to server" "$DAEMON_LOG"
mapfile -t spooled < <(local_files)
spooled_names=$(printf '%s\n' "${spooled[@]}" | xargs -n1 basename)
assert_eq "files on the server while it was stopped" "$n_before" "$(remote_files | wc -l)"
start_ftp
pf_wait_for "the spool emptied after the server came back" 20 bash -c "! ls '$SPOOL'/*.csv.gz >/dev/null 2>&1"
for n in $spooled_names; do [[ -f $REMOTE/$n ]] || fail "$n was spooled but is not on the server"; done
# vsftpd logs each STOR; the spooled files went up in name order.
uploaded_order=$(grep -o 'STOR flows_[0-9_]*\.csv\.gz\.tmp' "$PF_T/vsftpd.log" | sed 's/^STOR //; s/\.tmp$//' | grep -Fx -f <(printf '%s\n' "$spooled_names"))
assert_eq "upload order of the spooled files" "$(printf '%s\n' "$spooled_names" | sort)" "$uploaded_order"
check_flow 40002 10 200
check_flow 40003 7 300
pf_log "step 2: ${#spooled[@]} spooled file(s) uploaded in name order after the server came back"

# 3. SIGTERM finishes the open file (no .part left).
udp_from_b 40004 3 50
pf_wait_for "a .part file for flow 40004" 10 bash -c "ls '$SPOOL'/*.part >/dev/null 2>&1"
assert_eq "mode of the open export file under umask 022" 600 "$(stat -c %a "$SPOOL"/*.part)"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
[[ -z $(find "$SPOOL" -name '*.part') ]] || fail ".part file left after SIGTERM: $(ls "$SPOOL")"
# The status file's last line (written as the daemon stopped) says what the spool and the
# FTP server hold: the files waiting and their bytes, and every uploaded file; its
# last_error is the last upload error the log has (step 2's, kept after the recovery).
last_upload_error=$(grep ' error export: upload ' "$DAEMON_LOG" | tail -n 1 | sed 's/^.* error export: //')
"$PY" - "$PF_T/export-status.jsonl" "$SPOOL" "$REMOTE" "$last_upload_error" <<'EOF' || fail "the status file's last line is not what the spool and the server hold"
import json, os, sys
last = json.loads(open(sys.argv[1]).read().splitlines()[-1])
def files(d):
    return [os.path.join(d, n) for n in os.listdir(d) if n.endswith(".csv.gz")]
spool, remote = files(sys.argv[2]), files(sys.argv[3])
want = {"queue_files": len(spool), "queue_bytes": sum(map(os.path.getsize, spool)), "files_uploaded": len(remote),
        "files_written": len(spool) + len(remote), "last_error": sys.argv[4]}
got = {k: last.get(k) for k in want}
assert got == want, (got, want)
EOF
pf_log "step 3: SIGTERM finished the open file"

# 4. A wrong password: a clear error, the files stay.
printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
printf 'wrong-password\n' >"$PF_T/ftp-bad-password"
chmod 600 "$PF_T/ftp-bad-password"
write_config "$PF_T/ftp-bad-password"
pf_start_daemon export-ftp-badpw --interval 3600
pf_wait_for "the login error in the log" 15 \
    grep -q "export: upload flows_.* to ftp://127.0.0.1:$FTP_PORT/up/sub/: .*530.*(login denied: check export.upload.user and the password)" "$DAEMON_LOG"
pf_stop_daemon TERM
[[ -n $(local_files) ]] || fail "the spooled file was removed although the login failed"
pf_log "step 4: wrong password: $(grep -o 'export: upload.*' "$DAEMON_LOG" | head -n 1)"

# 5. Spool limit: with finished files waiting and the server away, new records are dropped
#    (counted) and one alert is raised; once uploads empty the spool, a recovery, and
#    records are written again.
printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
write_config "$PF_T/ftp-password"
sed -i "s|^    interval: 2$|    interval: 2\n    spool_limit: 1|" "$PF_CONFIG" # under export.upload
grep -q '^    spool_limit: 1$' "$PF_CONFIG" || fail "test bug: spool_limit not in the config"
stop_ftp
[[ -n $(local_files) ]] || fail "test bug: step 5 needs a spooled file"
: >"$PF_T/export-status.jsonl"
pf_start_daemon export-ftp-spool --interval 3600
pf_wait_for "the spool-full alert" 10 grep -q 'alert \[export\] spool: flow export spool full' "$DAEMON_LOG"
udp_from_b 40005 6 80
dropped() { [[ $(tail -n 1 "$PF_T/export-status.jsonl" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["records_dropped"])') == 2 ]]; }
pf_wait_for "2 records (flow 40005 both ways) counted as dropped" 10 dropped
start_ftp
pf_wait_for "the recovery" 15 grep -q 'recovered \[export\] spool' "$DAEMON_LOG"
udp_from_b 40006 4 80
pf_wait_for "flow 40006 on the FTP server" 20 has_flow 40006 4
check_flow 40006 4 80
has_flow 40005 0 || fail "flow 40005 was dropped but is on the server"
# One alert per episode: a single one before the recovery (with a 1-byte limit, the next
# finished file starts a new episode until the upload takes it).
assert_eq "spool-full alerts before the recovery" 1 "$(sed '/recovered \[export\] spool/q' "$DAEMON_LOG" | grep -c 'alert \[export\] spool')"
pf_stop_daemon TERM
pf_log "step 5: spool limit: alert, 2 records dropped, recovery, writing resumed"

# 6. FTP over TLS to vsftpd with a throwaway self-signed certificate (vsftpd refuses logins
#    and data without TLS, so what arrives went encrypted). Explicit AUTH TLS (tls:
#    required) with a CA file that did not sign it: refused, a clear error, files spooled.
for n in ftps other; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$PF_T/$n.key" -out "$PF_T/$n.pem" 2>/dev/null || fail "openssl could not make a certificate"
done
tls_conf() { # FILE [EXTRA LINE]
    {
        cat "$PF_T/vsftpd.conf"
        printf '%s\n' ssl_enable=YES "rsa_cert_file=$PF_T/ftps.pem" "rsa_private_key_file=$PF_T/ftps.key" \
            force_local_logins_ssl=YES force_local_data_ssl=YES require_ssl_reuse=NO ssl_ciphers=HIGH ${2:+"$2"}
    } >"$1"
}
tls_conf "$PF_T/vsftpd-tls.conf"
tls_conf "$PF_T/vsftpd-implicit.conf" implicit_ssl=YES
stop_ftp
start_ftp "$PF_T/vsftpd-tls.conf"
logins=$(grep -c 'OK LOGIN' "$PF_T/vsftpd.log" || true)
printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
write_config "$PF_T/ftp-password" "$(printf 'tls: required\n%s' "ca_file: $PF_T/other.pem")"
pf_start_daemon export-ftps-wrongca --interval 3600
udp_from_b 40007 5 90
pf_wait_for "the certificate error in the log" 20 grep -q \
    "export: upload flows_[0-9_]*\.csv\.gz to ftp://127\.0\.0\.1:$FTP_PORT/up/sub/: SSL certificate problem: .* (the FTP server's TLS certificate is not trusted: check export\.upload\.ca_file)$" "$DAEMON_LOG"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
[[ -n $(local_files) ]] || fail "the spooled file was removed although the certificate was not trusted"
has_flow 40007 5 && fail "flow 40007 went up to a server whose certificate was not trusted"
assert_eq "logins with an untrusted certificate" "$logins" "$(grep -c 'OK LOGIN' "$PF_T/vsftpd.log" || true)"
pf_log "step 6: wrong CA: $(grep -o 'export: upload flows.*' "$DAEMON_LOG" | head -n 1)"

# 7. The right CA file: the spooled and new files arrive, exactly, over AUTH TLS.
printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
write_config "$PF_T/ftp-password" "$(printf 'tls: required\n%s' "ca_file: $PF_T/ftps.pem")"
auth_tls=$(grep -Ec '"AUTH (SSL|TLS)"' "$PF_T/vsftpd.log" || true)
pf_start_daemon export-ftps --interval 3600
udp_from_b 40008 8 110
pf_wait_for "flow 40008 on the FTP server" 20 has_flow 40008 8
pf_wait_for "the spool emptied" 10 bash -c "! ls '$SPOOL'/*.csv.gz >/dev/null 2>&1"
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
check_flow 40007 5 90
check_flow 40008 8 110
(($(grep -Ec '"AUTH (SSL|TLS)"' "$PF_T/vsftpd.log") > auth_tls)) || fail "no AUTH in vsftpd's log"
pf_log "step 7: AUTH TLS with the right CA: flows 40007 and 40008 on the server"

# 8. ftps:// (TLS from the first byte, vsftpd implicit_ssl) with the right CA.
stop_ftp
start_ftp "$PF_T/vsftpd-implicit.conf"
printf '%s\n' "$BASE_CONFIG" >"$PF_CONFIG"
write_config "$PF_T/ftp-password" "ca_file: $PF_T/ftps.pem" "ftps://127.0.0.1:$FTP_PORT/up/sub/"
pf_start_daemon export-ftps-implicit --interval 3600
udp_from_b 40009 6 120
pf_wait_for "flow 40009 on the FTP server" 20 has_flow 40009 6
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
check_flow 40009 6 120
pf_log "step 8: ftps:// (implicit TLS): flow 40009 on the server"
