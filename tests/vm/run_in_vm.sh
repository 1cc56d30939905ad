#!/usr/bin/env bash
# Runs a command on another Linux kernel: Debian's packaged kernel booted under qemu
# (software emulation; KVM with PF_VM_ACCEL=kvm), with this machine's root filesystem shared read-only over 9p
# under a RAM overlay, so the same binaries, libraries and test scripts run, in the same
# directory, and nothing they write reaches the host. The command runs as root as PID 1's
# only job; its output is the VM's console. Exit status: the command's; 124 when the VM
# did not finish in time; 125 when the VM could not be set up.
#
#   tests/vm/run_in_vm.sh [--kernel PACKAGE | --kernel-deb FILE] [--timeout SECONDS]
#                         [--memory MIB] -- COMMAND [ARG...]
#
# --kernel: a Debian kernel image package, fetched with apt-get download (default
#   linux-image-amd64: Debian 12's 6.1); --kernel-deb: a .deb already here (e.g. Debian
#   11's 5.10). Kernels are unpacked once into $PF_VM_CACHE (default build/vm). Needs
#   qemu-system-x86, busybox-static and cpio (scripts/install-deps.sh installs them).
# The variables CI and PF_* are passed to the command.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernel_pkg=linux-image-amd64
kernel_deb=""
timeout_s=600
memory=2048
while (($#)); do
    case $1 in
    --kernel) kernel_pkg=$2; shift 2 ;;
    --kernel-deb) kernel_deb=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_in_vm.sh: unknown option '$1' (--help)" >&2; exit 125 ;;
    esac
done
(($#)) || { echo "run_in_vm.sh: no command given (--help)" >&2; exit 125; }
die() { echo "run_in_vm.sh: $*" >&2; exit 125; }
for tool in qemu-system-x86_64 cpio depmod; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done
if ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
    die "/bin/busybox is missing or not static: install busybox-static"
fi

cache=$(mkdir -p "${PF_VM_CACHE:-build/vm}" && cd "${PF_VM_CACHE:-build/vm}" && pwd)
work=$(mktemp -d /tmp/pf-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The kernel: its image package, unpacked once, with depmod's tables for modprobe.
if [[ -z $kernel_deb ]]; then
    # A metapackage (linux-image-amd64) names the image package it depends on.
    real=$(apt-cache depends "$kernel_pkg" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
    kernel_pkg=${real:-$kernel_pkg}
    if ! compgen -G "$cache/${kernel_pkg}_*.deb" >/dev/null; then
        (cd "$work" && apt-get download "$kernel_pkg" >/dev/null 2>&1) || die "cannot download $kernel_pkg"
        mv "$work"/"${kernel_pkg}"_*.deb "$cache/"
    fi
    kernel_deb=$(compgen -G "$cache/${kernel_pkg}_*.deb" | head -1)
fi
[[ -f $kernel_deb ]] || die "no such file: $kernel_deb"
tree=$cache/$(basename "$kernel_deb" .deb)
if [[ ! -f $tree/.done ]]; then
    rm -rf "$tree"
    dpkg-deb -x "$kernel_deb" "$tree" || die "cannot unpack $kernel_deb"
    kver=$(ls "$tree/lib/modules")
    depmod -b "$tree" "$kver" || die "depmod failed for $kver"
    touch "$tree/.done"
fi
kver=$(ls "$tree/lib/modules")
vmlinuz=$(compgen -G "$tree/boot/vmlinuz-*" | head -1)

# The initramfs: static busybox, /init, the modules that reach the root, in load order.
ird=$work/initramfs
mkdir -p "$ird"/{bin,proc,sys,dev,modules}
cp /bin/busybox "$ird/bin/busybox"
cp "$here/vm_init.sh" "$ird/init"
chmod 755 "$ird/init"
: >"$ird/modules.list"
for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe -d "$tree" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$ird/modules/"
    basename "$ko" >>"$ird/modules.list"
done
[[ -s $ird/modules.list ]] || die "$kver has none of the modules for a 9p root (built in?)"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# The job: stage two, and the command in this directory with CI and PF_* passed on.
job=$work/job
mkdir -p "$job"
cp "$here/vm_stage2.sh" "$job/stage2"
{
    echo "cd $(printf %q "$PWD") || exit 125"
    echo "export PATH=$(printf %q "$PATH") HOME=/root"
    while IFS= read -r v; do echo "export $(printf %q "$v")"; done < <(env | grep -E '^(CI|PF_[A-Z0-9_]*)=' || true)
    printf '%q ' "$@"
    echo
} >"$job/run"

# Software emulation by default: on the 2-CPU VMs this suite runs on, /dev/kvm is there but
# a nested guest hangs right after the kernel's decompressor (seen with -cpu host, kvm64,
# q35, no kvmclock, no x2apic). PF_VM_ACCEL=kvm uses KVM where nesting works.
accel=(-accel "tcg,thread=multi" -cpu max)
if [[ ${PF_VM_ACCEL:-tcg} == kvm ]]; then accel=(-accel kvm -cpu host); fi
echo "== run_in_vm: kernel $kver, ${accel[1]%%,*}, $memory MiB, timeout ${timeout_s} s: $*"
log=$work/console.log
timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 "${accel[@]}" -smp 2 -m "$memory" \
    -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 ${PF_VM_KERNEL_ARGS:-quiet loglevel=3}" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$tree/lib/modules,mount_tag=modules,security_model=none,readonly=on" \
    -virtfs "local,path=$job,mount_tag=job,security_model=none" \
    </dev/null 2>&1 | tee "$log" | tr -d '\r' || true
rc=$(tr -d '\r' <"$log" | sed -n 's/^PF_VM_EXIT=\([0-9]*\)$/\1/p' | tail -1)
if [[ -z $rc ]]; then
    echo "== run_in_vm: the VM ended without the command's status (timeout ${timeout_s} s or a crash)"
    exit 124
fi
echo "== run_in_vm: exit $rc (kernel $kver)"
exit "$rc"
