#!/usr/bin/env bash
# shellcheck disable=SC2016  # dpkg-query formats are literal
# Install test for the peakflow-bpf .deb in a clean Debian 12 root.
#
#   sudo tests/packaging/test_install.sh build/peakflow-bpf_0.1.0_amd64.deb
#
# Builds nothing: the .deb is made with `cpack -G DEB` in the build directory. Needs root,
# debootstrap and a reachable Debian mirror (PEAKFLOW_TEST_MIRROR, default deb.debian.org);
# the deploy part also ssh, ssh-keygen, openssl, strace, curl and an sshd (install-deps.sh).
# Steps: debootstrap --variant=minbase bookworm; apt-get install ./pkg.deb (dependencies
# come from the mirror); check the files, the conffiles and the init links; run
# `peakflow-bpf --version` and `peakflow-bpf config check`; edit the config and reinstall
# (the edit must survive); remove (conffiles stay), purge (conffiles go); then
# scripts/deploy-agent.sh deploys the package into the same root over ssh
# (tests/packaging/test_deploy.sh: the dependencies are there by now, so the root needs no
# mirror inside its network namespace). Everything is unmounted and deleted on exit,
# whatever happened.
#
# PEAKFLOW_TEST_TARBALL=FILE caches the debootstrap download: made on the first run,
# unpacked on later ones.
# A policy-rc.d that refuses every start is installed first, as in any build chroot: the
# package's postinst would otherwise start the daemon, which would attach XDP programs to
# the host's interfaces (a chroot shares the host's network).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

DEB=${1:-}
MIRROR=${PEAKFLOW_TEST_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
TARBALL=${PEAKFLOW_TEST_TARBALL:-}

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '== [%3ds] %s\n' "$SECONDS" "$*"; }

[[ -n $DEB ]] || { echo "usage: $0 PATH/TO/peakflow-bpf_VERSION_ARCH.deb" >&2; exit 2; }
[[ -f $DEB ]] || fail "no such file: $DEB"
[[ $(id -u) == 0 ]] || fail "must run as root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
DEB=$(realpath "$DEB")
PKG=$(dpkg-deb -f "$DEB" Package)
VERSION=$(dpkg-deb -f "$DEB" Version)
[[ $PKG == peakflow-bpf ]] || fail "$DEB is package '$PKG', not peakflow-bpf"

ROOT=$(mktemp -d /tmp/peakflow-install-test.XXXXXX)
cleanup() {
    local rc=$? m
    for m in dev/pts proc sys; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then
            umount "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m" || true
        fi
    done
    # Never follow a mount that is still there into the host.
    if [[ $ROOT == /tmp/peakflow-install-test.* ]]; then
        rm -rf --one-file-system "$ROOT"
    fi
    if ((rc == 0)); then
        echo "PASS: install test of $PKG $VERSION in ${SECONDS}s"
    else
        echo "FAIL: install test of $PKG $VERSION (exit $rc after ${SECONDS}s)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_root() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive "$@"
}
APT=(apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

exists() { [[ -e $ROOT$1 || -L $ROOT$1 ]]; }
expect_file() { exists "$1" || fail "missing after install: $1"; }
expect_gone() { ! exists "$1" || fail "still there: $1"; }
pkg_status() { in_root dpkg-query -W -f '${db:Status-Abbrev}' "$PKG" 2>/dev/null || true; }

# --- a clean Debian 12 root ------------------------------------------------------------
step "debootstrap --variant=minbase $SUITE into $ROOT ($MIRROR)"
DBS=(debootstrap --variant=minbase)
if [[ -n $TARBALL && ! -f $TARBALL ]]; then
    "${DBS[@]}" --make-tarball="$TARBALL" "$SUITE" "$ROOT/mk" "$MIRROR" >"$ROOT.log" 2>&1 ||
        { tail -n 20 "$ROOT.log" >&2; rm -f "$ROOT.log" "$TARBALL"
          fail "debootstrap could not fetch $SUITE from $MIRROR: is the mirror reachable?"; }
    rm -rf "$ROOT/mk"
fi
if [[ -n $TARBALL ]]; then
    DBS+=(--unpack-tarball="$(realpath "$TARBALL")")
fi
if ! "${DBS[@]}" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1; then
    tail -n 20 "$ROOT.log" >&2
    rm -f "$ROOT.log"
    fail "debootstrap could not build a $SUITE root from $MIRROR: is the mirror reachable?"
fi
rm -f "$ROOT.log"

mount -t proc proc "$ROOT/proc"
mkdir -p "$ROOT/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts" 2>/dev/null || true
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/tmp/pkg.deb"

# --- install -----------------------------------------------------------------------------
step "apt-get update"
in_root apt-get -q update >/dev/null || fail "apt-get update in the root failed (mirror unreachable?)"
step "apt-get install ./pkg.deb ($PKG $VERSION)"
in_root "${APT[@]}" install /tmp/pkg.deb || fail "apt-get install of $DEB failed"
[[ $(pkg_status) == ii* ]] || fail "package state after install: $(pkg_status)"

for f in /usr/sbin/peakflow-bpf /lib/systemd/system/peakflow-bpf.service /etc/init.d/peakflow-bpf \
         /etc/peakflow/config.yaml /usr/share/man/man1/peakflow-bpf.1.gz \
         /usr/sbin/peakflow-collector /lib/systemd/system/peakflow-collector.service \
         /etc/peakflow/collector.yaml \
         /usr/share/bash-completion/completions/peakflow-bpf \
         /usr/share/bash-completion/completions/peakflow-collector \
         /usr/share/peakflow-bpf/openwrt/peakflow-bpf \
         /usr/share/doc/peakflow-bpf/copyright /usr/share/doc/peakflow-bpf/changelog.gz; do
    expect_file "$f"
done
[[ -d $ROOT/var/lib/peakflow ]] || fail "missing after install: /var/lib/peakflow/"
[[ -x $ROOT/etc/init.d/peakflow-bpf ]] || fail "/etc/init.d/peakflow-bpf is not executable"
conffiles=$(in_root dpkg-query -W -f '${Conffiles}' "$PKG")
for f in /etc/peakflow/config.yaml /etc/init.d/peakflow-bpf /etc/peakflow/collector.yaml; do
    grep -q "^ $f " <<<"$conffiles" || fail "$f is not a conffile"
done
# The agent's config holds sink tokens and passwords: not readable by other users.
[[ $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/config.yaml") == "640 root:root" ]] ||
    fail "/etc/peakflow/config.yaml is $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/config.yaml"), expected 640 root:root"
# The collector's config may hold push secrets: root's alone.
[[ $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/collector.yaml") == "600 root:root" ]] ||
    fail "/etc/peakflow/collector.yaml is $(stat -c '%a %U:%G' "$ROOT/etc/peakflow/collector.yaml"), expected 600 root:root"
# The collector runs on one host of a fleet: installed, not enabled.
expect_gone /etc/systemd/system/multi-user.target.wants/peakflow-collector.service
# postinst: enabled for systemd and for SysV init, but not started (policy-rc.d said no).
expect_file /etc/systemd/system/multi-user.target.wants/peakflow-bpf.service
compgen -G "$ROOT/etc/rc2.d/S*peakflow-bpf" >/dev/null || fail "no /etc/rc2.d start link"
compgen -G "$ROOT/etc/rc0.d/K*peakflow-bpf" >/dev/null || fail "no /etc/rc0.d stop link"
expect_gone /run/peakflow/peakflow-bpf.pid

step "peakflow-bpf --version; config check"
out=$(in_root peakflow-bpf --version) || fail "peakflow-bpf --version failed"
echo "   $out"
[[ $out == "peakflow-bpf ${VERSION%%-*} "* ]] || fail "--version says '$out', package is $VERSION"
in_root peakflow-bpf config check >"$ROOT/tmp/check.out" ||
    { cat "$ROOT/tmp/check.out" >&2; fail "peakflow-bpf config check of the shipped config failed"; }
in_root gzip -t /usr/share/man/man1/peakflow-bpf.1.gz || fail "man page is not valid gzip"
out=$(in_root peakflow-collector --version) || fail "peakflow-collector --version failed"
[[ $out == "peakflow-collector ${VERSION%%-*} "* ]] || fail "collector --version says '$out', package is $VERSION"
in_root peakflow-collector config check /etc/peakflow/collector.yaml >"$ROOT/tmp/check.out" ||
    { cat "$ROOT/tmp/check.out" >&2; fail "peakflow-collector config check of the shipped config failed"; }
in_root sh -n /etc/init.d/peakflow-bpf || fail "init script has a syntax error"
rc=0; in_root /etc/init.d/peakflow-bpf status >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "init script status: expected 3 (not running), got $rc"

# --- reinstall keeps a local edit of the conffile -----------------------------------------
step "edit /etc/peakflow/config.yaml, reinstall"
sed -i 's/^drain_interval: 10$/drain_interval: 30/' "$ROOT/etc/peakflow/config.yaml"
echo "# local edit kept across upgrades" >>"$ROOT/etc/peakflow/config.yaml"
edited=$(sha256sum <"$ROOT/etc/peakflow/config.yaml")
in_root "${APT[@]}" install --reinstall /tmp/pkg.deb || fail "reinstall failed"
[[ $(pkg_status) == ii* ]] || fail "package state after reinstall: $(pkg_status)"
[[ $(sha256sum <"$ROOT/etc/peakflow/config.yaml") == "$edited" ]] ||
    fail "the edited /etc/peakflow/config.yaml was overwritten by the reinstall"
expect_gone /etc/peakflow/config.yaml.dpkg-new
in_root peakflow-bpf config check >"$ROOT/tmp/check.out" ||
    { cat "$ROOT/tmp/check.out" >&2; fail "config check of the edited config failed"; }
grep -Eq 'drain_interval:? *30' "$ROOT/tmp/check.out" ||
    { cat "$ROOT/tmp/check.out" >&2; fail "config check does not show the edited drain_interval"; }

# --- remove, then purge ---------------------------------------------------------------------
step "apt-get remove"
in_root "${APT[@]}" remove "$PKG" || fail "apt-get remove failed"
[[ $(pkg_status) == rc* ]] || fail "package state after remove: $(pkg_status) (expected rc)"
expect_gone /usr/sbin/peakflow-bpf
expect_gone /lib/systemd/system/peakflow-bpf.service
expect_file /etc/peakflow/config.yaml
[[ $(sha256sum <"$ROOT/etc/peakflow/config.yaml") == "$edited" ]] || fail "remove changed the config"

step "apt-get purge"
in_root "${APT[@]}" purge "$PKG" || fail "apt-get purge failed"
st=$(pkg_status)
[[ -z $st || $st == un* || $st == pn* ]] || fail "package state after purge: $st"
expect_gone /etc/peakflow/config.yaml
expect_gone /etc/peakflow
expect_gone /etc/init.d/peakflow-bpf
expect_gone /etc/systemd/system/multi-user.target.wants/peakflow-bpf.service
! compgen -G "$ROOT/etc/rc[0-6S].d/[SK]*peakflow-bpf" >/dev/null || fail "init links left after purge"
expect_gone /usr/share/doc/peakflow-bpf

# --- deploy over ssh into the same root -----------------------------------------------------
# sudo, for the deploy test's login as a user with passwordless sudo (from the mirror, now:
# the root has no network in the deploy test's namespace).
step "apt-get install sudo"
in_root "${APT[@]}" install --no-install-recommends sudo >/dev/null || fail "apt-get install sudo failed"
step "scripts/deploy-agent.sh into the root (tests/packaging/test_deploy.sh)"
"$here/test_deploy.sh" "$ROOT" "$DEB" || fail "the deploy test failed"
step "done"
