#!/usr/bin/env bash
# `export pipe`, as the pmacct processor ran: our agent's IPFIX goes to a real nfacctd
# (print plugin, CSV on stdout), whose output is piped into `peakflow-bpf export pipe
# --pmacct-conf pmacct.conf` (one pmacct.conf for both, with the processor_* keys), which
# uploads to a real vsftpd on 127.0.0.1 in the test's namespace. The rows on the server are
# exactly nfacctd's rows (each file starting with nfacctd's header); stopping nfacctd (end of
# input) finishes and uploads the last file, exit 0. Then: a bad row stops with its line
# number, exit 1, the rows before it on the server; SIGTERM finishes and uploads, exit 0; the
# FTP password is in no log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

command -v nfacctd >/dev/null || fail "nfacctd not installed (apt-get install pmacct)"
command -v vsftpd >/dev/null || fail "vsftpd not installed (apt-get install vsftpd)"

FTP_USER="pfpipe$PF_ID"
FTP_PASS="pw-$PF_ID-pipe"
PIPE_PID=""
nfacctd_pid() { # the running nfacctd's core process, from its pidfile
    local p
    p=$(cat "$PF_T/nfacctd.pid" 2>/dev/null) || return 1
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == nfacctd ]] && echo "$p"
}
pipe_cleanup() { # nfacctd stopped first: then the pipeline ends by itself
    local nf
    nf=$(nfacctd_pid) && kill -INT "$nf"
    if [[ -n $PIPE_PID ]]; then
        timeout 10 tail --pid="$PIPE_PID" -f /dev/null
        pf_kill_pid "$PIPE_PID"
    fi
    nf=$(nfacctd_pid) && kill -KILL "$nf"
    pf_temp_users_del
}
trap 'rc=$?; set +e; pipe_cleanup; (exit $rc); pf_cleanup' EXIT

FTP_ROOT="$PF_T/ftproot"
mkdir -p "$FTP_ROOT" "$PF_T/empty"
pf_temp_user_add "$FTP_USER" "$FTP_PASS" "$FTP_ROOT"
chown "$FTP_USER" "$FTP_ROOT"

pf_setup_pair
pf_start_servers
ip -n "$NS_A" link set lo up

FTP_PORT=2121 # the namespace is the test's own
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
CONF
nsenter "--net=/run/netns/$NS_A" -- vsftpd "$PF_T/vsftpd.conf" >"$PF_T/vsftpd.log" 2>&1 &
BG_PIDS+=($!)
pf_wait_for "vsftpd listening on 127.0.0.1:$FTP_PORT" 10 bash -c \
    "nsenter --net=/run/netns/$NS_A ss -Hltn 'sport = :$FTP_PORT' | grep -q ."

# One pmacct.conf: nfacctd's keys and the processor's (nfacctd warns about those and goes on).
IPFIX_PORT=4739
SPOOL="$PF_T/data"
pmacct_conf() { # FILE FTP_DIR
    cat >"$1" <<CONF
daemonize: false
pidfile: $PF_T/nfacctd.pid
nfacctd_ip: 127.0.0.1
nfacctd_port: $IPFIX_PORT
plugins: print[p]
aggregate[p]: src_mac, dst_mac, src_host, dst_host, src_port, dst_port, proto, timestamp_start, timestamp_end
print_output[p]: csv
print_refresh_time[p]: 1

! the processor's keys
processor_ftp_host: 127.0.0.1
processor_ftp_port: $FTP_PORT
processor_ftp_user: $FTP_USER
processor_ftp_pass: $FTP_PASS
processor_ftp_dir: $2
processor_rotate_interval_sec: 2
processor_rotate_size_mb: 100
processor_file_prefix: flows_
processor_upload_interval_sec: 1
processor_timezone: Asia/Shanghai
processor_status_report_enabled: true
processor_status_report_file_path: $PF_T/pipe-status.jsonl
processor_status_report_interval_sec: 1
CONF
}
pmacct_conf "$PF_T/pmacct.conf" /areaA

# The agent exports IPFIX only (no files of its own).
cat >>"$PF_CONFIG" <<CONF
export:
  scan_interval: 1
  idle_timeout: 1
  files:
    enabled: false
  ipfix:
    collectors: ["127.0.0.1:$IPFIX_PORT"]
CONF

# 1. nfacctd -f pmacct.conf | tee (nfacctd's own output, to compare) | export pipe
# shellcheck disable=SC2016 # expanded by the inner bash
nsenter "--net=/run/netns/$NS_A" -- bash -c \
    'nfacctd -f "$1" 2>"$2/nfacctd.log" | tee "$2/nfacctd.csv" | "$3" export pipe -f "$4" --pmacct-conf "$1" --data-dir "$5" 2>"$2/pipe.log"' \
    pipeline "$PF_T/pmacct.conf" "$PF_T" "$PF_BIN" "$PF_CONFIG" "$SPOOL" &
PIPE_PID=$!
pf_wait_for "nfacctd listening on 127.0.0.1:$IPFIX_PORT" 10 bash -c \
    "nsenter --net=/run/netns/$NS_A ss -Hlun 'sport = :$IPFIX_PORT' | grep -q ."
pf_wait_for "export pipe started" 10 grep -q 'export pipe: nfacctd CSV from stdin' "$PF_T/pipe.log"

pf_start_daemon export-pipe-agent --interval 3600
udp_from_b() { # SPORT COUNT SIZE
    nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" udp --to "$IP_A" --port "$PORT_A" \
        --count "$2" --sizes "$3" --src "$IP_B" --sport "$1" >/dev/null
}
udp_from_b 41001 25 100
remote_rows() { # DIR: the rows of every file on the server under DIR (headers checked, then dropped)
    local f
    for f in $(find "$FTP_ROOT/$1" -maxdepth 1 -name 'flows_*.csv.gz' 2>/dev/null | sort); do
        [[ $(zcat "$f" | head -n 1) == "$(head -n 1 "$PF_T/nfacctd.csv")" ]] || fail "$f does not start with nfacctd's header"
        zcat "$f" | tail -n +2
    done
}
flow_on_server() { # SPORT PACKETS: that flow's rows on the server add up to PACKETS
    [[ $(remote_rows areaA | awk -F, -v sp="$1" '$5 == sp { p += $10 } END { print p + 0 }') == "$2" ]]
}
pf_wait_for "flow 41001 through nfacctd and export pipe on the FTP server" 20 flow_on_server 41001 25
udp_from_b 41002 9 300 # after the first file went up: a second file
pf_wait_for "flow 41002 on the FTP server" 10 flow_on_server 41002 9
pf_stop_daemon TERM

# End of input: nfacctd stops (SIGINT: its last purge, then its stdout closes).
kill -INT "$(nfacctd_pid)"
pf_wait_for "the pipeline to end" 15 bash -c "! kill -0 $PIPE_PID 2>/dev/null"
rc=0
wait "$PIPE_PID" || rc=$?
PIPE_PID=""
assert_eq "pipeline exit status (export pipe's) after nfacctd stopped" 0 "$rc"
grep -q 'export pipe: end of input after' "$PF_T/pipe.log" || fail "no end-of-input line: $(tail -n 5 "$PF_T/pipe.log")"
[[ -z $(find "$SPOOL" -name '*.part' -o -name '*.csv.gz') ]] || fail "files left in the spool: $(ls "$SPOOL")"

# Exactly nfacctd's rows, in its order: no row lost, none twice, none changed.
grep -v '^SRC_MAC,' "$PF_T/nfacctd.csv" >"$PF_T/nfacctd.rows"
remote_rows areaA >"$PF_T/server.rows"
n=$(wc -l <"$PF_T/nfacctd.rows")
((n >= 4)) || fail "expected at least 4 rows from nfacctd (2 UDP flows, both ways), got $n"
cmp -s "$PF_T/nfacctd.rows" "$PF_T/server.rows" || fail "rows on the server differ from nfacctd's: $(diff "$PF_T/nfacctd.rows" "$PF_T/server.rows" | head -n 10)"
# And they carry what we sent (frames: 14 + 20 + 8 + payload).
assert_eq "flow 41001 'packets bytes' on the server" "25 $((25 * 142))" \
    "$(awk -F, '$5 == 41001 { p += $10; b += $11 } END { print p, b }' "$PF_T/server.rows")"
assert_eq "flow 41002 'packets bytes' on the server" "9 $((9 * 342))" \
    "$(awk -F, '$5 == 41002 { p += $10; b += $11 } END { print p, b }' "$PF_T/server.rows")"
nfiles=$(find "$FTP_ROOT/areaA" -name 'flows_*.csv.gz' | wc -l)
((nfiles >= 2)) || fail "expected the rows in at least 2 files (rotation every 2 s), got $nfiles"
for f in "$FTP_ROOT"/areaA/*; do
    [[ $(basename "$f") =~ ^flows_[0-9]{8}_[0-9]{6}_[0-9]{3}\.csv\.gz$ ]] || fail "unexpected name on the server: $f"
done
last=$(tail -n 1 "$PF_T/pipe-status.jsonl")
assert_eq "last status line: records_exported" "$n" "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["records_exported"])' "$last")"
assert_eq "last status line: files written = uploaded" "$nfiles $nfiles" \
    "$("$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["files_written"], j["files_uploaded"])' "$last")"
pf_log "step 1: $n rows from nfacctd = the $n rows in $nfiles file(s) on the FTP server; exit 0 at end of input"

# 2. A row it cannot parse: exit 1, the line number, the rows before it uploaded.
pmacct_conf "$PF_T/pmacct-b.conf" /areaB
hdr=$(head -n 1 "$PF_T/nfacctd.csv")
row1=$(sed -n 1p "$PF_T/nfacctd.rows")
row2=$(sed -n 2p "$PF_T/nfacctd.rows")
rc=0
bad=$(awk -F, -v OFS=, '{ $10 = "x" $10; print }' <<<"$row1")
printf '%s\n%s\n%s\n%s\n%s\n' "$hdr" "$row1" "$row2" "$bad" "$row2" |
    nsenter "--net=/run/netns/$NS_A" -- "$PF_BIN" export pipe -f "$PF_CONFIG" --pmacct-conf "$PF_T/pmacct-b.conf" \
        --data-dir "$SPOOL" 2>"$PF_T/pipe-bad.log" || rc=$?
assert_eq "exit status at a bad row" 1 "$rc"
grep -qx 'peakflow-bpf: error: export pipe: stdin line 4: column 10 (PACKETS): expected a count (0-18446744073709551615), got .*' "$PF_T/pipe-bad.log" ||
    fail "no line-numbered error: $(tail -n 3 "$PF_T/pipe-bad.log")"
assert_eq "rows on the server before the bad one" "$row1
$row2" "$(remote_rows areaB)"
pf_log "step 2: $(tail -n 1 "$PF_T/pipe-bad.log")"

# 3. SIGTERM while stdin is still open: the rows read so far are finished and uploaded, exit 0.
pmacct_conf "$PF_T/pmacct-c.conf" /areaC
mkfifo "$PF_T/fifo"
nsenter "--net=/run/netns/$NS_A" -- "$PF_BIN" export pipe -f "$PF_CONFIG" --pmacct-conf "$PF_T/pmacct-c.conf" \
    --data-dir "$SPOOL" <"$PF_T/fifo" 2>"$PF_T/pipe-term.log" &
PIPE_PID=$!
exec 7>"$PF_T/fifo"
printf '%s\n%s\n' "$hdr" "$row1" >&7
pf_wait_for "the open .part file" 10 bash -c "ls '$SPOOL'/*.part >/dev/null 2>&1"
kill -TERM "$PIPE_PID"
pf_wait_for "export pipe to stop on SIGTERM" 10 bash -c "! kill -0 $PIPE_PID 2>/dev/null"
rc=0
wait "$PIPE_PID" || rc=$?
PIPE_PID=""
exec 7>&-
assert_eq "exit status after SIGTERM" 0 "$rc"
assert_eq "rows on the server after SIGTERM" "$row1" "$(remote_rows areaC)"
pf_log "step 3: SIGTERM: the open file finished and uploaded, exit 0"

for f in "$PF_T"/pipe*.log; do
    ! grep -qF "$FTP_PASS" "$f" || fail "the FTP password is in $f"
done
pf_log "the FTP password is in none of the logs"
