#!/usr/bin/env bash
# IPFIX to a real pmacct nfacctd on 127.0.0.1 (inside the test's namespace, print plugin
# writing CSV): for every flow of known UDP and TCP traffic, nfacctd's packet and byte
# counts (and MACs) equal ours, and equal the rows of our gzip CSV files; the UDP flows
# also equal what we sent, exactly.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR source=export_lib.sh
source "$PF_IT_DIR/export_lib.sh"

command -v nfacctd >/dev/null || fail "nfacctd not installed (apt-get install pmacct)"

pf_setup_pair
pf_start_servers
ip -n "$NS_A" link set lo up

IPFIX_PORT=4739 # the namespace is the test's own
NF_OUT="$PF_T/nfacctd.csv"
cat >"$PF_T/nfacctd.conf" <<CONF
daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: $IPFIX_PORT
plugins: print[p]
aggregate[p]: src_mac, dst_mac, src_host, dst_host, src_port, dst_port
print_output[p]: csv
print_output_file[p]: $NF_OUT
print_output_file_append[p]: true
print_refresh_time[p]: 1
CONF
nsenter "--net=/run/netns/$NS_A" -- nfacctd -f "$PF_T/nfacctd.conf" >"$PF_T/nfacctd.log" 2>&1 &
BG_PIDS+=($!)
pf_wait_for "nfacctd listening on 127.0.0.1:$IPFIX_PORT" 10 bash -c \
    "nsenter --net=/run/netns/$NS_A ss -Hlun 'sport = :$IPFIX_PORT' | grep -q ."

SPOOL="$PF_T/spool"
cat >>"$PF_CONFIG" <<CONF
export:
  scan_interval: 1
  idle_timeout: 1
  files:
    directory: $SPOOL
    rotate_interval: 3600
  ipfix:
    collectors: ["127.0.0.1:$IPFIX_PORT"]
    template_refresh: 5
    observation_domain: 7
CONF

pf_start_daemon export-ipfix --interval 3600
nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" udp --to "$IP_A" --port "$PORT_A" --count 25 \
    --sizes 100 --src "$IP_B" --sport 41001 >/dev/null
nsenter "--net=/run/netns/$NS_B" -- "$PY" "$PF_IT_DIR/traffic.py" udp --to "$IP_A" --port "$PORT_A" --count 9 \
    --sizes 1,500,1400 --src "$IP_B" --sport 41002 >/dev/null
nsenter "--net=/run/netns/$NS_A" -- "$PY" "$PF_IT_DIR/traffic.py" tcp --to "$IP_B" --port "$PORT_B" --bytes 200000 >/dev/null
# Idle timeout 1 s, scans every second: the records leave within a few seconds; then SIGTERM
# flushes whatever is pending and finishes the CSV file.
sleep 4
pf_stop_daemon TERM
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
sleep 2.5 # nfacctd's print plugin writes every second

mapfile -t files < <(find "$SPOOL" -name '*.csv.gz' | sort)
((${#files[@]} >= 1)) || fail "no CSV file in the spool"
pf_export_rows "${files[@]}" >"$PF_T/ours.csv"
[[ -s $NF_OUT ]] || fail "nfacctd wrote nothing: $(tail -n 5 "$PF_T/nfacctd.log")"

# The UDP flows are exactly what we sent (frames: 14 + 20 + 8 + payload).
assert_eq "UDP 41001 rx (ours)" "25 $((25 * 142))" "$(pf_export_sum rx "$IP_B" 41001 "$IP_A" "$PORT_A" <"$PF_T/ours.csv")"
assert_eq "UDP 41002 rx (ours)" "9 $((3 * (43 + 542 + 1442)))" "$(pf_export_sum rx "$IP_B" 41002 "$IP_A" "$PORT_A" <"$PF_T/ours.csv")"

# Per flow (MACs, addresses, ports): nfacctd's sums equal ours.
"$PY" - "$PF_T/ours.csv" "$NF_OUT" <<'PY' || fail "nfacctd and our CSV disagree (see above)"
import csv, sys
from collections import defaultdict
ours = defaultdict(lambda: [0, 0])
for r in csv.reader(open(sys.argv[1])):
    k = (r[4], r[5], r[6], r[7], int(r[9]), int(r[10]))
    ours[k][0] += int(r[13]); ours[k][1] += int(r[14])
theirs = defaultdict(lambda: [0, 0])
rows = list(csv.reader(open(sys.argv[2])))
hdr = None
for r in rows:
    if r and r[0] == "SRC_MAC":
        hdr = r
        continue
    if not r or hdr is None:
        continue
    d = dict(zip(hdr, r))
    k = (d["SRC_MAC"], d["DST_MAC"], d["SRC_IP"], d["DST_IP"], int(d["SRC_PORT"]), int(d["DST_PORT"]))
    theirs[k][0] += int(d["PACKETS"]); theirs[k][1] += int(d["BYTES"])
bad = 0
for k in sorted(set(ours) | set(theirs)):
    o, t = ours.get(k, [0, 0]), theirs.get(k, [0, 0])
    print(("ok  " if o == t else "DIFF"), k, "ours", o, "nfacctd", t)
    bad += o != t
tcp = [k for k in ours if 5002 in (k[4], k[5])]
if len(ours) < 6 or not tcp:
    print("expected at least 6 flows including the TCP ones, got", len(ours)); bad += 1
sys.exit(1 if bad else 0)
PY
pf_log "nfacctd per-flow counts equal ours ($(wc -l <"$PF_T/ours.csv") CSV rows)"
