#!/usr/bin/env bash
# Unpacks Debian's OpenSSH server (sshd and the sftp server) into DIR without installing
# the package: installing openssh-server would enable and start a system sshd. The SFTP
# export test (tests/integration/test_export_sftp.sh) runs this sshd on 127.0.0.1 inside
# its own network namespace, with its own config, and stops it. Needs apt (Debian 12).
#   scripts/fetch-sshd.sh DIR      -> DIR/usr/sbin/sshd, DIR/usr/lib/openssh/sftp-server
set -euo pipefail
dest=${1:?usage: fetch-sshd.sh DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root openssh-server openssh-sftp-server >/dev/null)
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
[[ -x $dest/usr/sbin/sshd ]] || { echo "fetch-sshd.sh: no usr/sbin/sshd in the packages" >&2; exit 1; }
echo "$dest/usr/sbin/sshd"
