#!/usr/bin/env bash
# Installs everything the build and the test suite need on Debian 12. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  build-essential cmake pkg-config git ca-certificates \
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev \
  libgtest-dev libgmock-dev libsqlite3-dev sqlite3 libsystemd-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev libargon2-dev libpq-dev python3-aiosmtpd prometheus libhowardhinnant-date-dev tzdata faketime libclang-rt-14-dev curl \
  clang-format \
  iproute2 util-linux libcap2-bin procps python3 kmod vsftpd pmacct strace openssh-client openssl \
  dpkg-dev file lintian rpm debootstrap mandoc bash-completion lsb-base systemd
# Tests only: a real PostgreSQL (initdb, pg_ctl) for the collector's heartbeat database probe.
apt-get install -y --no-install-recommends postgresql
# Tests only: the collector's dashboard driven in a real headless browser (tests/browser/).
# /usr/bin/python3 is the interpreter Debian's selenium is installed for.
apt-get install -y --no-install-recommends chromium chromium-driver python3-selenium
# Tests only: the kernel tier boots Debian's own kernel under qemu with a busybox initramfs
# (tests/vm/run_in_vm.sh); the kernel package itself is fetched there with apt-get download.
apt-get install -y --no-install-recommends qemu-system-x86 busybox-static cpio
# sshd for the SFTP export test, unpacked (not installed: that would start a system sshd).
"$(dirname "$0")/fetch-sshd.sh" /usr/local/lib/peakflow-test/openssh
