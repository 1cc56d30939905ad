#!/usr/bin/env bash
# shellcheck disable=SC2016  # formats and bash -c bodies are literal
# Static checks of the packages `cpack -G "DEB;RPM"` made (builds nothing):
#   tests/packaging/check_packages.sh build/peakflow-bpf_0.1.0_amd64.deb [build/peakflow-bpf-0.1.0-1.x86_64.rpm]
# .deb: contents, permissions, conffiles, control fields, lintian without errors.
# .rpm (optional): rpm -qpl contents, %config files, rpm -qpR requirements.
# Needs dpkg-deb, lintian, and rpm for the .rpm; mandoc, if installed, lints the man page.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deb=${1:?usage: $0 DEB [RPM]}
rpm=${2:-}
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

files=(
    /usr/sbin/peakflow-bpf
    /usr/sbin/peakflow-collector
    /lib/systemd/system/peakflow-bpf.service
    /lib/systemd/system/peakflow-collector.service
    /etc/peakflow/collector.yaml
    /etc/init.d/peakflow-bpf
    /etc/peakflow/config.yaml
    /usr/share/peakflow-bpf/openwrt/peakflow-bpf
    /usr/share/man/man1/peakflow-bpf.1.gz
    /usr/share/man/man1/peakflow-collector.1.gz
    /usr/share/bash-completion/completions/peakflow-bpf
    /usr/share/bash-completion/completions/peakflow-collector
    /usr/share/doc/peakflow-bpf/copyright
    /usr/share/doc/peakflow-bpf/changelog.gz
)
modes=(
    "-rwxr-xr-x /usr/sbin/peakflow-bpf"
    "-rwxr-xr-x /usr/sbin/peakflow-collector"
    "-rw------- /etc/peakflow/collector.yaml"
    "-rw-r--r-- /lib/systemd/system/peakflow-collector.service"
    "-rwxr-xr-x /etc/init.d/peakflow-bpf"
    "-rw-r----- /etc/peakflow/config.yaml"
    "-rw-r--r-- /lib/systemd/system/peakflow-bpf.service"
    "-rw-r--r-- /usr/share/man/man1/peakflow-bpf.1.gz"
    "-rw-r--r-- /usr/share/bash-completion/completions/peakflow-collector"
    "drwxr-xr-x /var/lib/peakflow/"
)

# --- .deb ---------------------------------------------------------------------------------
listing=$(dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print $1, $2, $6 }')
for f in "${files[@]}"; do
    check "$f not in $deb" grep -q " $f\$" <<<"$listing"
done
for m in "${modes[@]}"; do
    check "deb: expected '${m% *} root/root ${m#* }'" grep -qxF -- "${m% *} root/root ${m#* }" <<<"$listing"
done
check "deb: files outside the expected trees" \
    bash -c '! awk "{print \$3}" <<<"$1" | grep -vE "^/((etc|lib|usr|usr/share|var|var/lib)/\$|(etc/(init\.d|peakflow)|lib/systemd|usr/(sbin|share/(man|doc|bash-completion|peakflow-bpf))|var/lib/peakflow)(/|\$))"' _ "$listing"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
check "deb: conffiles" [ "$conffiles" = $'/etc/init.d/peakflow-bpf\n/etc/peakflow/config.yaml\n/etc/peakflow/collector.yaml' ]
for field in Section:net Priority:optional Maintainer: Pre-Depends:init-system-helpers; do
    check "deb: control field $field" grep -q "^${field%%:*}: ${field#*:}" <(dpkg-deb -f "$deb")
done
for dep in libbpf1 libsqlite3-0 libyaml-cpp0.7 libargon2-1 libpq5 tzdata libc6; do
    check "deb: Depends lacks $dep" grep -q "\b$dep\b" <(dpkg-deb -f "$deb" Depends)
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
check "deb: binary not stripped" bash -c '! file "$1" | grep -q "not stripped"' _ "$tmp/usr/sbin/peakflow-bpf"
check "deb: man page not gzip -9n" bash -c \
    'gzip -dc "$1" | gzip -9n | cmp -s - "$1"' _ "$tmp/usr/share/man/man1/peakflow-bpf.1.gz"
check "deb: man page differs from packaging/peakflow-bpf.1" bash -c \
    'gzip -dc "$1" | cmp -s - "$2"' _ "$tmp/usr/share/man/man1/peakflow-bpf.1.gz" "$here/../../packaging/peakflow-bpf.1"
# The man pages' lint: mandoc is installed by scripts/install-deps.sh; without it the check
# fails (as lintian's below) instead of passing unseen.
if command -v mandoc >/dev/null; then
    check "mandoc -Tlint packaging/peakflow-bpf.1" mandoc -Tlint -Wwarning "$here/../../packaging/peakflow-bpf.1"
    check "mandoc -Tlint packaging/peakflow-collector.1" mandoc -Tlint -Wwarning "$here/../../packaging/peakflow-collector.1"
else
    bad "mandoc is not installed (the man pages' lint): run scripts/install-deps.sh"
fi
if command -v lintian >/dev/null; then
    lintian --allow-root -I -E --pedantic "$deb" >"$tmp/lintian.txt" 2>&1 || true
    sed 's/^/  lintian: /' "$tmp/lintian.txt"
    check "lintian reports errors" bash -c '! grep -q "^E: " "$1"' _ "$tmp/lintian.txt"
else
    bad "lintian is not installed"
fi

# --- .rpm ---------------------------------------------------------------------------------
if [[ -n $rpm ]]; then
    rlist=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm")
    for f in "${files[@]}"; do
        check "rpm: $f missing" grep -q " $f\$" <<<"$rlist"
    done
    check "rpm: config.yaml not 0640 %config(noreplace)" grep -qxF -- "-rw-r----- cn /etc/peakflow/config.yaml" <<<"$rlist"
    check "rpm: unit must not be %config" grep -qxF -- "-rw-r--r--  /lib/systemd/system/peakflow-bpf.service" <<<"$rlist"
    check "rpm: collector unit must not be %config" \
        grep -qxF -- "-rw-r--r--  /lib/systemd/system/peakflow-collector.service" <<<"$rlist"
    check "rpm: collector.yaml not 0600 %config(noreplace)" \
        grep -qxF -- "-rw------- cn /etc/peakflow/collector.yaml" <<<"$rlist"
    check "rpm: /var/lib/peakflow missing" grep -q " /var/lib/peakflow$" <<<"$rlist"
    for d in /lib /lib/systemd /usr /usr/sbin /var /var/lib /etc /etc/init.d /usr/share/man; do
        check "rpm: owns system directory $d" bash -c '! grep -q " $1\$" <<<"$2"' _ "$d" "$rlist"
    done
    reqs=$(rpm -qpR "$rpm")
    for r in 'libbpf.so.1()(64bit)' 'libsqlite3.so.0()(64bit)' 'libyaml-cpp.so.0.7()(64bit)' 'libargon2.so.1()(64bit)' 'libpq.so.5()(64bit)' \
            tzdata; do
        check "rpm: requires lacks $r" grep -qxF "$r" <<<"$reqs"
    done
fi

echo "packages: $passed passed, $failed failed"
((failed == 0))
