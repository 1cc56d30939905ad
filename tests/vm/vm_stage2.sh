#!/bin/bash
# Second stage of the test VM (tests/vm/run_in_vm.sh copies it to the job directory): PID 1
# in the host's root (read-only, under a RAM overlay) on the VM's kernel. Mounts the rest
# of what a booted system has, runs /pf-job/run, prints PF_VM_EXIT=<status> on the console and
# powers the VM off.
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo /sbin/modprobe >/proc/sys/kernel/modprobe
ip link set lo up
hostname pf-vm
echo "vm: $(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB"
rc=0
bash /pf-job/run </dev/null || rc=$?
echo "PF_VM_EXIT=$rc"
sync
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
sleep 10
