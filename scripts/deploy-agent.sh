#!/usr/bin/env bash
# Deploys the peakflow-bpf agent to hosts over ssh and enrols them at the fleet collector:
# package, token, the config's collector: section, the service. Idempotent. See usage()
# and docs/operations.md, "Deploying agents".
set -euo pipefail

PROG=${0##*/}
TOKEN_FILE=/etc/peakflow/collector.token
CA_DEST=/etc/peakflow/collector-ca.pem

usage() {
    cat <<EOF
Usage: $PROG [OPTIONS] --collector URL HOST...

Installs the peakflow-bpf agent on each HOST over ssh, enrols it at the fleet collector
and starts it; prints one line per host: "HOST: ok ..." or "HOST: failed at STEP: why".
Run it again at any time: a host that is already deployed is left as it is ("HOST: ok,
already deployed (nothing changed)"), a host that is missing a part gets that part.

HOST is [USER@]HOST or ssh://[USER@]HOST[:PORT], as ssh takes it. A USER other than root
needs passwordless sudo on the host (sudo -n).

Steps per host:
  connect  ssh to the host (BatchMode: keys only, no prompts; the host key must be known)
  package  with --package: install it unless that version is installed already (apt-get
           install ./FILE.deb on apt hosts, dnf or yum install ./FILE.rpm on the others);
           without --package, peakflow-bpf must be installed already
  enrol    the agent's name is the name its config already has, else the host's name
           (uname -n). Its token is kept when the collector accepts it; else
           'peakflow-collector token create NAME' makes one, which goes into
           $TOKEN_FILE (0600, root) on the host
  config   the collector: section of /etc/peakflow/config.yaml: url, token_file, name,
           and node and ca_file when given (other keys and sections stay as they are);
           checked with 'peakflow-bpf config check' before it replaces the file
  service  systemctl enable and start peakflow-bpf (restart when something changed and it
           was running). Without a running systemd the line says so: enabled, not started

Where the collector commands run: 'peakflow-collector token create NAME' (and 'token
revoke NAME' with --renew-token) run on this machine, which is then the collector host, or
with --collector-ssh on that host over ssh (as root or with passwordless sudo). Whether
a host's token works is asked from this machine: an authenticated GET of
URL/api/v1/config?agent=NAME with curl, so URL must be reachable from here.

Tokens never appear on a command line (here or on the hosts), in the output or in a log:
they travel on ssh's standard input and output and go to curl as a config on its stdin.

Options:
  --collector URL        the collector as the agents reach it (http:// or https://);
                         written as collector.url (required)
  --package FILE         the .deb or .rpm to install; give one of each for a mixed fleet
  -k, --key FILE         ssh identity file (ssh -i FILE -o IdentitiesOnly=yes)
  -o OPTION              an ssh option, as ssh -o takes it; repeatable, e.g.
                         -o Port=2222 -o StrictHostKeyChecking=accept-new
  -F FILE                ssh config file (ssh -F FILE)
  --connect-timeout S    seconds for each ssh connection to come up (default 10)
  --collector-ssh HOST   run peakflow-collector on HOST over ssh instead of here
  --collector-config FILE
                         the collector's config where peakflow-collector runs (its -f);
                         default: its own default
  --node NODE            the group the hosts belong to (collector.node)
  --ca-file FILE         the CA that signed the collector's TLS certificate: copied to
                         each host as $CA_DEST (collector.ca_file) and used
                         for the token check
  --renew-token          when the collector has a token for the host's name that the host
                         does not hold (reinstalled host, lost file), revoke that token and
                         make a new one; without it that host fails at enrol, since
                         another host may be using the name
  -h, --help             this help

Exit status: 0 when every host is ok, 1 when any failed, 2 for a usage error.

Example, on the collector host:
  $PROG -k ~/.ssh/fleet --package peakflow-bpf_0.1.0_amd64.deb \\
      --collector https://collector.example:8999 --ca-file /etc/peakflow/ca.pem \\
      --node beijing-1 root@nas-1 root@nas-2
EOF
}

die_usage() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    printf "Try '%s --help'.\n" "$PROG" >&2
    exit 2
}
need_arg() { (($# >= 2)) || die_usage "option $1 needs a value"; }

URL="" KEY="" SSH_CONFIG="" CONNECT_TIMEOUT=10 COLLECTOR_SSH="" COLLECTOR_CONFIG="" NODE="" NODE_SET=0
CA_FILE="" RENEW=0
PACKAGES=() SSH_OPTS=() HOSTS=()
while (($#)); do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --collector) need_arg "$@"; URL=$2; shift ;;
        --package) need_arg "$@"; PACKAGES+=("$2"); shift ;;
        -k | --key) need_arg "$@"; KEY=$2; shift ;;
        -o) need_arg "$@"; SSH_OPTS+=(-o "$2"); shift ;;
        -F) need_arg "$@"; SSH_CONFIG=$2; shift ;;
        --connect-timeout) need_arg "$@"; CONNECT_TIMEOUT=$2; shift ;;
        --collector-ssh) need_arg "$@"; COLLECTOR_SSH=$2; shift ;;
        --collector-config) need_arg "$@"; COLLECTOR_CONFIG=$2; shift ;;
        --node) need_arg "$@"; NODE=$2; NODE_SET=1; shift ;;
        --ca-file) need_arg "$@"; CA_FILE=$2; shift ;;
        --renew-token) RENEW=1 ;;
        --) shift; HOSTS+=("$@"); break ;;
        -*) die_usage "unknown option $1" ;;
        *) HOSTS+=("$1") ;;
    esac
    shift
done

[[ -n $URL ]] || die_usage "--collector URL is required"
[[ $URL =~ ^https?://[^[:space:]\"\'\\]+$ ]] || die_usage "--collector $URL: expected an http:// or https:// URL"
while [[ $URL == */ ]]; do URL=${URL%/}; done # the agent appends its API paths
((${#HOSTS[@]})) || die_usage "no HOST given"
[[ $CONNECT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die_usage "--connect-timeout $CONNECT_TIMEOUT: expected seconds"
[[ $NODE != *[$'\n\r']* ]] || die_usage "--node must be one line"

DEB="" RPM="" DEB_VERSION="" RPM_VERSION=""
for p in "${PACKAGES[@]}"; do
    [[ -f $p && -r $p ]] || die_usage "--package $p: no such file"
    case $p in
        *.deb) [[ -z $DEB ]] || die_usage "two .deb packages given"; DEB=$(realpath "$p") ;;
        *.rpm) [[ -z $RPM ]] || die_usage "two .rpm packages given"; RPM=$(realpath "$p") ;;
        *) die_usage "--package $p: expected a .deb or an .rpm file" ;;
    esac
done
# The versions, to leave a host alone that has it already; where dpkg-deb or rpm is missing
# here, the host reads the file itself after the copy.
if [[ -n $DEB ]] && command -v dpkg-deb >/dev/null; then
    [[ $(dpkg-deb -f "$DEB" Package) == peakflow-bpf ]] || die_usage "$DEB is not the peakflow-bpf package"
    DEB_VERSION=$(dpkg-deb -f "$DEB" Version)
fi
if [[ -n $RPM ]] && command -v rpm >/dev/null; then
    [[ $(rpm -qp --qf '%{NAME}' "$RPM" 2>/dev/null) == peakflow-bpf ]] || die_usage "$RPM is not the peakflow-bpf package"
    RPM_VERSION=$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$RPM" 2>/dev/null)
fi
CA_PEM=""
if [[ -n $CA_FILE ]]; then
    [[ -f $CA_FILE && -r $CA_FILE ]] || die_usage "--ca-file $CA_FILE: no such file"
    CA_FILE=$(realpath "$CA_FILE")
    [[ $CA_FILE != *[\"\\]* ]] || die_usage "--ca-file: a path without quotes or backslashes, please"
    CA_PEM=$(<"$CA_FILE")
    [[ $CA_PEM == *"-----BEGIN CERTIFICATE-----"* ]] || die_usage "--ca-file $CA_FILE holds no PEM certificate"
fi
[[ -z $KEY || -r $KEY ]] || die_usage "--key $KEY: cannot read it"
command -v ssh >/dev/null || die_usage "ssh is not installed here"
command -v curl >/dev/null || die_usage "curl is not installed here (it checks the hosts' tokens at the collector)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/peakflow-deploy.XXXXXX")
CONTACTED=() # ssh destinations with a control master to close
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local h
    for h in "${CONTACTED[@]}"; do
        "${SSH[@]}" -O exit "$h" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One connection per host for all its steps (ControlMaster), closed at exit.
SSH=(ssh -o BatchMode=yes -o "ConnectTimeout=$CONNECT_TIMEOUT" -o ServerAliveInterval=15
    -o ServerAliveCountMax=4 -o ControlMaster=auto -o "ControlPath=$TMP/%C" -o ControlPersist=60)
[[ -z $SSH_CONFIG ]] || SSH+=(-F "$SSH_CONFIG")
[[ -z $KEY ]] || SSH+=(-i "$KEY" -o IdentitiesOnly=yes)
SSH+=("${SSH_OPTS[@]}")

# The remote command: a root shell reading its script from stdin. Tokens are in that script,
# so they are in no process's arguments on the host.
# shellcheck disable=SC2016 # expanded on the host
REMOTE_SH='if [ "$(id -u)" = 0 ]; then exec bash -s; fi
command -v sudo >/dev/null 2>&1 || { echo "not root, and the host has no sudo: log in as root" >&2; exit 1; }
exec sudo -n bash -s'

# What runs on the hosts, as root. Functions only: each call appends its variables and the
# one function to run, last, with stdin from /dev/null (the rest of stdin is the script).
read -r -d '' REMOTE_LIB <<'REMOTE' || true
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CONF=/etc/peakflow/config.yaml
UNIT=peakflow-bpf.service
WANTS=/etc/systemd/system/multi-user.target.wants/$UNIT
fail() { printf '%s\n' "$*" >&2; exit 1; }
valid_token() { [ ${#1} -eq 68 ] && case $1 in pfc_*[!0-9a-f]*) false ;; pfc_*) true ;; *) false ;; esac; }
installed_version() { # PM: the installed version of peakflow-bpf, or nothing
    local st
    case $1 in
        apt)
            st=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' peakflow-bpf 2>/dev/null || true)
            case $st in ii*) printf '%s\n' "${st#*|}" ;; esac
            ;;
        dnf | yum) # rpm -q says "package … is not installed" on stdout
            st=$(rpm -q --qf '%{VERSION}-%{RELEASE}' peakflow-bpf 2>/dev/null) && printf '%s\n' "$st"
            ;;
    esac
    return 0
}

# KEY of the top-level collector: section (block style), its quotes removed.
conf_get() {
    [ -r "$CONF" ] || return 0
    awk -v want="$1" '
        function unquote(s,   out, i, c) {  # YAML double quotes: \" and \\ (all we write)
            for (i = 1; i <= length(s); i++) {
                c = substr(s, i, 1)
                if (c == "\\" && i < length(s)) c = substr(s, ++i, 1)
                out = out c
            }
            return out
        }
        BEGIN { sq = sprintf("%c", 39) }
        /^collector:[ \t]*(#.*)?$/ { inside = 1; next }
        inside && /^[^ \t#]/ { exit }
        inside && $0 ~ "^[ \t]+" want ":" {
            v = $0
            sub("^[ \t]+" want ":[ \t]*", "", v)
            sub(/[ \t]+#.*$/, "", v)
            sub(/[ \t]+$/, "", v)
            if (v ~ /^".*"$/) v = unquote(substr(v, 2, length(v) - 2))
            else if (length(v) > 1 && substr(v, 1, 1) == sq && substr(v, length(v), 1) == sq) v = substr(v, 2, length(v) - 2)
            print v
            exit
        }' "$CONF"
}

probe() {
    local pm="" tf tok="" src=default
    echo "uid=$(id -u)"
    echo "hostname=$(uname -n)"
    if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then pm=apt
    elif command -v dnf >/dev/null 2>&1; then pm=dnf
    elif command -v yum >/dev/null 2>&1; then pm=yum
    fi
    echo "pm=$pm"
    echo "installed=$(installed_version "$pm")"
    [ -d /run/systemd/system ] && echo "systemd=1"
    [ -f "$CONF" ] && grep -Eq '^collector:[ \t]*[^ \t#]' "$CONF" && echo "conf_flow=1"
    echo "conf_name=$(conf_get name)"
    tf=$(conf_get token_file)
    [ -n "$tf" ] || tf=$TOKEN_FILE
    if [ -f "$tf" ] && [ -r "$tf" ]; then
        IFS=$' \t\r' read -r tok <"$tf" || true
    fi
    valid_token "$tok" || tok=""
    [ "$tf" = "$TOKEN_FILE" ] || src=other
    if [ -z "$tok" ]; then
        tok=$(conf_get token)
        src=inline
        valid_token "$tok" || tok=""
    fi
    if [ -n "$tok" ]; then
        echo "token=$tok"
        echo "token_src=$src"
        [ "$src" != default ] || echo "token_mode=$(stat -c '%a %U:%G' "$TOKEN_FILE")"
    fi
}

# install_package FILE PM: installs FILE (copied into a directory of its own, removed here)
# unless its version is installed; prints installed=VERSION, or nothing.
install_package() {
    local f=$1 pm=$2 want log
    d=${f%/*} # global: the EXIT trap reads it
    case $d in /tmp/peakflow-deploy.*) ;; *) fail "package: unexpected path $f" ;; esac
    trap 'rm -rf "$d"' EXIT
    log=$d/install.log
    case $pm in
        apt)
            want=$(dpkg-deb -f "$f" Version 2>"$log") || fail "package: dpkg-deb cannot read the copy: $(tail -n 1 "$log")"
            [ "$(installed_version apt)" != "$want" ] || return 0
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$f" >"$log" 2>&1 ||
                fail "package: apt-get install failed: $(grep '^E:' "$log" | tail -n 1 | grep . || tail -n 1 "$log")"
            ;;
        dnf | yum)
            want=$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$f" 2>"$log") || fail "package: rpm cannot read the copy: $(tail -n 1 "$log")"
            [ "$(installed_version "$pm")" != "$want" ] || return 0
            "$pm" install -y "$f" >"$log" 2>&1 ||
                fail "package: $pm install failed: $(grep -i 'error' "$log" | tail -n 1 | grep . || tail -n 1 "$log")"
            ;;
        *) fail "package: no apt-get, dnf or yum on this host" ;;
    esac
    [ "$(installed_version "$pm")" = "$want" ] ||
        fail "package: installed, but the host has '$(installed_version "$pm")', not $want"
    echo "installed=$want"
}

# The config with the collector: section holding the managed keys (url, token_file, name,
# node and ca_file when given; an inline token goes), every other line as it was. A key the
# section has is replaced where it stands, the others go at its top with its indentation
# (two spaces for a new section at the end of the file).
render_config() {
    # From the environment: awk -v would read backslashes as escapes.
    PF_URL=$url PF_NAME=$name PF_NODE=$node PF_TOKEN_FILE=$TOKEN_FILE PF_CA_FILE=$CA_DEST \
        awk -v node_set="$node_set" -v ca="$ca_set" '
        function q(s,   out, i, c) {  # a YAML double-quoted scalar
            for (i = 1; i <= length(s); i++) {
                c = substr(s, i, 1)
                out = out (c == "\\" || c == "\"" ? "\\" c : c)
            }
            return "\"" out "\""
        }
        function key_of(line,   k) { k = line; sub(/^[ \t]+/, "", k); sub(/[ \t]*:.*/, "", k); return k }
        function managed(k) {
            return k == "url" || k == "token" || k == "token_file" || k == "name" ||
                   (k == "node" && node_set == 1) || (k == "ca_file" && ca == 1)
        }
        function value(k) {
            if (k == "url") return q(ENVIRON["PF_URL"])
            if (k == "token_file") return q(ENVIRON["PF_TOKEN_FILE"])
            if (k == "name") return q(ENVIRON["PF_NAME"])
            if (k == "node") return q(ENVIRON["PF_NODE"])
            return q(ENVIRON["PF_CA_FILE"])
        }
        function indent_of(line) { return match(line, /^[ \t]+/) ? substr(line, 1, RLENGTH) : "" }
        function section_key(line) { return inside && line ~ "^" ind "[^ \t#]" }
        BEGIN { n = split("url token_file name node ca_file", order, " ") }
        # pass 1: the section indentation and the managed keys it has
        NR == FNR {
            if ($0 ~ /^collector:[ \t]*(#.*)?$/) { inside = 1; next }
            if (inside && /^[^ \t#]/) inside = 0
            if (inside && ind == "" && /^[ \t]+[^ \t#]/) ind = indent_of($0)
            if (section_key($0)) present[key_of($0)] = 1
            next
        }
        FNR == 1 { inside = 0; if (ind == "") ind = "  " }
        # pass 2
        $0 ~ /^collector:[ \t]*(#.*)?$/ {
            print
            for (i = 1; i <= n; i++) if (managed(order[i]) && !present[order[i]]) print ind order[i] ": " value(order[i])
            inside = 1; had = 1; next
        }
        inside && /^[^ \t#]/ { inside = 0 }
        inside && skip {
            if ($0 !~ /^[ \t]*$/ && length(indent_of($0)) > length(ind)) next  # the old value goes on
            skip = 0
        }
        section_key($0) && managed(key_of($0)) {
            k = key_of($0)
            if (k != "token") print ind k ": " value(k)
            skip = 1
            next
        }
        { print }
        END {
            if (!had) {
                if (NR > 0) print ""
                print "collector:"
                for (i = 1; i <= n; i++) if (managed(order[i])) print "  " order[i] ": " value(order[i])
            }
        }
        ' "$CONF" "$CONF"
}

# write_file DEST MODE: stdin to DEST, owned by root, through a temporary file beside it.
write_file() {
    local tmp
    tmp=$(mktemp "${1%/*}/.${1##*/}.XXXXXX") || return 1
    if cat >"$tmp" && chown root:root "$tmp" && chmod "$2" "$tmp" && mv -f "$tmp" "$1"; then return 0; fi
    rm -f "$tmp"
    return 1
}

last_log_line() { journalctl -u "$UNIT" -n 1 -o cat --no-pager 2>/dev/null; }

# apply: the token file, the CA file, the config, the service; prints change=WHAT for each
# change and token_written=1 once the token file holds the token.
apply() {
    local changed=$pkg_changed why
    umask 077
    [ -d /etc/peakflow ] || mkdir -m 755 /etc/peakflow
    # global: the EXIT trap reads them
    err=$(mktemp) && new=$(mktemp /etc/peakflow/.config.yaml.XXXXXX) || fail "config: cannot make a temporary file"
    trap 'rm -f "$err" "$new"' EXIT
    if [ -n "$token" ]; then
        printf '%s\n' "$token" | write_file "$TOKEN_FILE" 600 || fail "enrol: cannot write $TOKEN_FILE"
        echo "token_written=1"
        changed=1
    elif [ "$fix_mode" = 1 ]; then
        { chown root:root "$TOKEN_FILE" && chmod 600 "$TOKEN_FILE"; } || fail "enrol: cannot chmod $TOKEN_FILE"
        echo "change=token file made 0600 root"
        changed=1
    fi
    if [ "$ca_set" = 1 ] && { [ ! -f "$CA_DEST" ] || [ "$(cat "$CA_DEST")" != "$ca_pem" ]; }; then
        printf '%s\n' "$ca_pem" | write_file "$CA_DEST" 644 || fail "config: cannot write $CA_DEST"
        echo "change=CA file written"
        changed=1
    fi
    [ -f "$CONF" ] || { : >"$CONF" && chmod 640 "$CONF"; } || fail "config: cannot create $CONF"
    render_config >"$new" || fail "config: cannot write the new config"
    if ! cmp -s "$new" "$CONF"; then
        { chown --reference="$CONF" "$new" && chmod --reference="$CONF" "$new"; } ||
            fail "config: cannot give the new config the mode of $CONF"
        if ! peakflow-bpf config check "$new" >/dev/null 2>"$err"; then
            why=$(grep . "$err" | head -n 1)
            why=${why#peakflow-bpf: error: }
            fail "config: the new config fails peakflow-bpf config check, $CONF stays as it was: ${why//"$new"/$CONF}"
        fi
        mv -f "$new" "$CONF" || fail "config: cannot replace $CONF"
        echo "change=collector section written"
        changed=1
    else
        # Unchanged, but "ok" also means the agent can start with it.
        if ! peakflow-bpf config check >/dev/null 2>"$err"; then
            why=$(grep . "$err" | head -n 1)
            fail "config: $CONF fails peakflow-bpf config check: ${why#peakflow-bpf: error: }"
        fi
    fi
    if [ -d /run/systemd/system ]; then
        if [ "$(systemctl is-enabled "$UNIT" 2>/dev/null)" != enabled ]; then
            systemctl enable "$UNIT" >/dev/null 2>"$err" || fail "service: systemctl enable $UNIT: $(grep . "$err" | tail -n 1)"
            echo "change=service enabled"
        fi
        if systemctl is-active --quiet "$UNIT"; then
            if [ "$changed" = 1 ]; then
                systemctl restart "$UNIT" 2>"$err" || fail "service: systemctl restart $UNIT failed: $(last_log_line)"
                echo "change=service restarted"
            fi
        else
            systemctl start "$UNIT" 2>"$err" || fail "service: systemctl start $UNIT failed: $(last_log_line)"
            echo "change=service started"
        fi
        systemctl is-active --quiet "$UNIT" ||
            fail "service: $UNIT is $(systemctl is-active "$UNIT") after its start: $(last_log_line)"
    else
        if command -v systemctl >/dev/null 2>&1 && [ "$(systemctl is-enabled "$UNIT" 2>/dev/null)" != enabled ]; then
            systemctl enable "$UNIT" >/dev/null 2>"$err" || fail "service: systemctl enable $UNIT: $(grep . "$err" | tail -n 1)"
            echo "change=service enabled"
        fi
        if [ -e "$WANTS" ]; then
            echo "note=systemd is not running on this host: the service is enabled, not started"
        else
            echo "note=systemd is not running on this host and the service is not enabled: start peakflow-bpf with its init"
        fi
    fi
}
REMOTE
REMOTE_LIB=$(printf 'TOKEN_FILE=%q\nCA_DEST=%q\n%s' "$TOKEN_FILE" "$CA_DEST" "$REMOTE_LIB")

# remote DEST STEP SCRIPT: runs SCRIPT (REMOTE_LIB first) as root on DEST; stdout on stdout,
# the last line of stderr in $TMP/err. A failure without a "step: why" line of ours is
# prefixed with STEP.
remote() {
    local dest=$1 step=$2 script=$3 rc=0
    printf '%s\n%s\n' "$REMOTE_LIB" "$script" | "${SSH[@]}" -- "$dest" "$REMOTE_SH" 2>"$TMP/err.all" || rc=$?
    grep -v '^Warning: Permanently added' "$TMP/err.all" | grep . | tail -n 1 >"$TMP/err" || true
    if ((rc != 0)); then
        if ! grep -Eq '^(connect|package|enrol|config|service): ' "$TMP/err"; then
            local why
            why=$(<"$TMP/err")
            [[ -n $why ]] || why="exit status $rc"
            ((rc != 255)) || [[ $step != connect ]] || why="ssh: ${why#ssh: }"
            [[ $why != sudo:* ]] || why+=" (log in as root, or give the user passwordless sudo)"
            printf '%s: %s\n' "$step" "$why" >"$TMP/err"
        fi
    fi
    return "$rc"
}

# collector ARGS...: peakflow-collector ARGS here or on --collector-ssh; stdout on stdout,
# the last line of stderr in $TMP/cerr.
collector() {
    local args=("$@") rc=0
    [[ -z $COLLECTOR_CONFIG ]] || args+=(-f "$COLLECTOR_CONFIG")
    if [[ -z $COLLECTOR_SSH ]]; then
        peakflow-collector "${args[@]}" 2>"$TMP/cerr.all" || rc=$?
    else
        printf 'exec </dev/null; peakflow-collector%s\n' "$(printf ' %q' "${args[@]}")" |
            "${SSH[@]}" -- "$COLLECTOR_SSH" "$REMOTE_SH" 2>"$TMP/cerr.all" || rc=$?
    fi
    grep . "$TMP/cerr.all" | tail -n 1 >"$TMP/cerr" || true
    return "$rc"
}

# token_status NAME TOKEN: the HTTP status of an authenticated read of the agent's own
# central config (200: the collector takes the token; 401, 403: it does not), "000" with
# curl's error in $TMP/curl.err when there is no answer.
token_status() {
    {
        printf 'url = "%s/api/v1/config?agent=%s"\n' "$URL" "$1"
        printf 'header = "Authorization: Bearer %s"\n' "$2"
        [[ -z $CA_FILE ]] || printf 'cacert = "%s"\n' "$CA_FILE"
    } | curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -K - 2>"$TMP/curl.err" || true
}

# Facts from probe(), KEY=VALUE lines.
declare -A F
read_facts() {
    local k v
    F=()
    while IFS='=' read -r k v; do [[ -n $k ]] && F[$k]=$v; done <<<"$1"
}

# The result of one host: RESULT is the line after "HOST: ".
deploy_host() {
    local dest=$1 out pkg="" pkg_version="" pm copy name token="" new_token="" kept=0 fix_mode=0 created=0
    local code pkg_changed=0 changes=() note="" line k v
    RESULT=""

    # --- connect ---------------------------------------------------------------------------
    CONTACTED+=("$dest")
    if ! out=$(remote "$dest" connect 'probe </dev/null'); then
        RESULT="failed at $(<"$TMP/err")"
        return 1
    fi
    read_facts "$out"
    [[ ${F[uid]:-} == 0 ]] || { RESULT="failed at connect: not root on the host after sudo"; return 1; }

    # --- package ---------------------------------------------------------------------------
    pm=${F[pm]:-}
    case $pm in
        apt) pkg=$DEB; pkg_version=$DEB_VERSION ;;
        dnf | yum) pkg=$RPM; pkg_version=$RPM_VERSION ;;
        *) [[ -z $DEB && -z $RPM ]] || { RESULT="failed at package: the host has no apt-get, dnf or yum"; return 1; } ;;
    esac
    if [[ -z $pkg ]]; then
        if [[ -z ${F[installed]:-} ]]; then
            case $pm in
                apt) RESULT="failed at package: peakflow-bpf is not installed and no --package FILE.deb was given" ;;
                dnf | yum) RESULT="failed at package: peakflow-bpf is not installed and no --package FILE.rpm was given" ;;
                *) RESULT="failed at package: peakflow-bpf is not installed" ;;
            esac
            return 1
        fi
    elif [[ -z $pkg_version || ${F[installed]:-} != "$pkg_version" ]]; then
        # shellcheck disable=SC2016 # expanded on the host
        if ! copy=$("${SSH[@]}" -- "$dest" 'd=$(mktemp -d /tmp/peakflow-deploy.XXXXXX) && chmod 755 "$d" &&
                    cat >"$d/peakflow-bpf.'"${pkg##*.}"'" && chmod 644 "$d/peakflow-bpf.'"${pkg##*.}"'" &&
                    echo "$d/peakflow-bpf.'"${pkg##*.}"'"' <"$pkg" 2>"$TMP/err.all"); then
            RESULT="failed at package: cannot copy ${pkg##*/} to the host: $(grep . "$TMP/err.all" | tail -n 1)"
            return 1
        fi
        if ! out=$(remote "$dest" package "install_package $(printf '%q' "$copy") $pm </dev/null"); then
            RESULT="failed at $(<"$TMP/err")"
            return 1
        fi
        if [[ $out =~ (^|$'\n')installed=([^$'\n']+) ]]; then
            pkg_changed=1
            if [[ -n ${F[installed]:-} ]]; then
                changes+=("upgraded peakflow-bpf ${F[installed]} -> ${BASH_REMATCH[2]}")
            else
                changes+=("installed peakflow-bpf ${BASH_REMATCH[2]}")
            fi
        fi
    fi
    if [[ -n ${F[conf_flow]:-} ]]; then
        RESULT="failed at config: the collector: section of /etc/peakflow/config.yaml is written in flow style ({...}); write it one key per line, or remove it"
        return 1
    fi

    # --- enrol -----------------------------------------------------------------------------
    name=${F[conf_name]:-}
    [[ -n $name ]] || name=${F[hostname]:-}
    if [[ ! $name =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
        RESULT="failed at enrol: '$name' cannot be an agent name (1 to 64 of A-Z a-z 0-9 . _ -): set collector.name in the host's config"
        return 1
    fi
    token=${F[token]:-}
    if [[ -n $token ]]; then
        code=$(token_status "$name" "$token")
        case $code in
            200) kept=1 ;;
            401 | 403) token="" ;;
            000)
                RESULT="failed at enrol: cannot check the host's token at $URL: $(grep . "$TMP/curl.err" | tail -n 1)"
                return 1
                ;;
            *)
                RESULT="failed at enrol: checking the host's token at $URL: HTTP $code"
                return 1
                ;;
        esac
    fi
    if ((kept)); then
        # The working token stays; it moves to the token file when it was elsewhere.
        if [[ ${F[token_src]} == default ]]; then
            token=""
            [[ ${F[token_mode]:-} == "600 root:root" ]] || fix_mode=1
        else
            changes+=("token moved to $TOKEN_FILE")
        fi
    else
        if ! new_token=$(collector token create "$name"); then
            if ! grep -q 'already has a token' "$TMP/cerr"; then
                RESULT="failed at enrol: peakflow-collector token create $name: $(<"$TMP/cerr")"
                return 1
            fi
            if ((!RENEW)); then
                RESULT="failed at enrol: the collector has a token for '$name' that this host does not hold or that it refuses; if no other host reports as '$name', run again with --renew-token to revoke it and make a new one"
                return 1
            fi
            if ! collector token revoke "$name" >/dev/null || ! new_token=$(collector token create "$name"); then
                RESULT="failed at enrol: renewing the token of '$name': $(<"$TMP/cerr")"
                return 1
            fi
            changes+=("enrolled as $name (new token; the old one revoked)")
        else
            changes+=("enrolled as $name (new token)")
        fi
        created=1
        [[ $new_token =~ ^pfc_[0-9a-f]{64}$ ]] || { RESULT="failed at enrol: peakflow-collector token create printed no token"; return 1; }
        token=$new_token
    fi

    # --- config, service -------------------------------------------------------------------
    local script
    script=$(printf 'token=%q url=%q name=%q node=%q node_set=%q ca_set=%q ca_pem=%q fix_mode=%q pkg_changed=%q\napply </dev/null\n' \
        "$token" "$URL" "$name" "$NODE" "$NODE_SET" "$([[ -n $CA_PEM ]] && echo 1 || echo 0)" "$CA_PEM" "$fix_mode" "$pkg_changed")
    if ! out=$(remote "$dest" config "$script"); then
        RESULT="failed at $(<"$TMP/err")"
        if ((created)) && ! grep -q '^token_written=1$' <<<"$out"; then
            # The host never got the new token: take it back, so that a new run can make one.
            if collector token revoke "$name" >/dev/null; then
                RESULT+=" (the new token was revoked again)"
            else
                RESULT+=" (the new token could not be revoked: $(<"$TMP/cerr"))"
            fi
        fi
        return 1
    fi
    while IFS='=' read -r k v; do
        case $k in
            change) changes+=("$v") ;;
            note) note=$v ;;
        esac
    done <<<"$out"

    if ((${#changes[@]} == 0)); then
        line="ok, already deployed (nothing changed)"
    else
        line="ok: $(printf '%s, ' "${changes[@]}")"
        line=${line%, }
    fi
    [[ -z $note ]] || line+="; $note"
    RESULT=$line
}

# --- the collector side, once: its binary and config ----------------------------------------
[[ -z $COLLECTOR_SSH ]] || CONTACTED+=("$COLLECTOR_SSH")
if [[ -z $COLLECTOR_SSH ]] && ! command -v peakflow-collector >/dev/null; then
    printf '%s: peakflow-collector is not installed here: run this on the collector host, or give --collector-ssh HOST\n' "$PROG" >&2
    exit 1
fi
# Without --collector-config the commands take the default config if it exists, else the
# built-in defaults: then only the binary is checked.
check=(--version)
[[ -z $COLLECTOR_CONFIG ]] || check=(config check)
if ! collector "${check[@]}" >/dev/null; then
    where="here"
    [[ -z $COLLECTOR_SSH ]] || where="on $COLLECTOR_SSH"
    printf '%s: peakflow-collector %s fails %s: %s\n' "$PROG" "${check[*]}" "$where" "$(<"$TMP/cerr")" >&2
    exit 1
fi

failed=0
for host in "${HOSTS[@]}"; do
    deploy_host "$host" || failed=1
    printf '%s: %s\n' "$host" "$RESULT"
done
exit "$failed"
