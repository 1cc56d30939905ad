#!/bin/busybox sh
# shellcheck shell=dash
# PID 1 of the test VM, /init in the initramfs that tests/vm/run_in_vm.sh builds. It loads
# the modules needed to reach the host's root (virtio, 9p, overlay: /modules.list), mounts
# that root read-only over 9p under a RAM overlay (so tests may write anywhere, and all
# they write is gone with the VM), mounts the kernel's own modules on /lib/modules and the
# job directory on /pf-job, and hands over to /pf-job/stage2 in the new root.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() {
    echo "vm: $*"
    echo "PF_VM_EXIT=125"
    poweroff -f
}
while read -r m; do
    insmod "/modules/$m" || fail "insmod $m failed"
done </modules.list
mkdir -p /lower /upper /newroot
p9="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$p9,ro,cache=loose" hostroot /lower || fail "cannot mount the host's root"
mount -t tmpfs -o size=60% tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
    fail "cannot mount the overlay"
mkdir -p /newroot/lib/modules /newroot/pf-job
mount -t 9p -o "$p9,ro" modules /newroot/lib/modules || fail "cannot mount the modules"
mount -t 9p -o "$p9" job /newroot/pf-job || fail "cannot mount the job directory"
# What a booted system has, mounted here (stage two's own mounts on the overlay's copies of
# the host's /proc and /sys directories fail).
mount -t proc proc /newroot/proc || fail "cannot mount /proc"
mount -t sysfs sys /newroot/sys || fail "cannot mount /sys"
mount -t devtmpfs dev /newroot/dev || fail "cannot mount /dev"
# A clean /run (the host's netns and pid files are not this system's). /tmp stays the
# overlay's: the tree under test may be there (CI clones into a temporary directory).
mount -t tmpfs tmpfs /newroot/run
exec switch_root /newroot /bin/bash /pf-job/stage2
