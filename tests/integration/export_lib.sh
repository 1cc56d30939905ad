# shellcheck shell=bash
# Flow export helpers for the integration tests (sourced after lib.sh).

# pf_export_rows DIR|FILES...: the CSV rows (no header) of every .csv.gz given, via zcat;
# fails if a file's first line is not the documented header.
PF_EXPORT_HEADER='start_time,end_time,interface,direction,src_mac,dst_mac,src_ip,dst_ip,protocol,src_port,dst_port,vlan,inner_vlan,packets,bytes,tcp_flags'
pf_export_rows() {
    local f
    for f in "$@"; do
        [[ $(zcat "$f" | head -n 1) == "$PF_EXPORT_HEADER" ]] || fail "$f: first line is not the CSV header: $(zcat "$f" | head -n 1)"
        zcat "$f" | tail -n +2
    done
}

# pf_export_sum DIRECTION SRC_IP SPORT DST_IP DPORT < rows: "packets bytes" summed over the
# rows of that flow (UDP).
pf_export_sum() {
    awk -F, -v d="$1" -v s="$2" -v sp="$3" -v t="$4" -v dp="$5" \
        '$4 == d && $7 == s && $10 == sp && $8 == t && $11 == dp && $9 == 17 { p += $14; b += $15 } END { printf "%d %d\n", p, b }'
}

# pf_wait_for DESCRIPTION SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
pf_wait_for() {
    local what=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    fail "timed out after ${secs} s waiting for: $what"
}

# A local user that exists only for this test (FTP/SFTP logins). pf_temp_user_add NAME
# PASSWORD HOME: creates it (HOME is not created) and records it; pf_temp_users_del (call
# it from the EXIT trap) removes the users this test created, and only those.
PF_TEMP_USERS=()
pf_temp_user_add() {
    id "$1" >/dev/null 2>&1 && fail "test bug: user $1 exists already"
    useradd --no-create-home --home-dir "$3" --shell /bin/sh "$1"
    PF_TEMP_USERS+=("$1")
    echo "$1:$2" | chpasswd
}
pf_temp_users_del() {
    local u
    for u in "${PF_TEMP_USERS[@]}"; do
        id "$u" >/dev/null 2>&1 && userdel "$u" 2>/dev/null
    done
    PF_TEMP_USERS=()
    return 0
}

# pf_free_port NS: a TCP port nothing listens on in netns NS (bound to 127.0.0.1 port 0).
pf_free_port() {
    nsenter "--net=/run/netns/$1" -- "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
