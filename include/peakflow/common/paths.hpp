#pragma once
// Filesystem roots the program touches, injectable so tests can point them at a fake tree.

#include <string>

namespace pf {

struct Paths {
    std::string bpffs = "/sys/fs/bpf";      // pins go to <bpffs>/peakflow/<ifname>/
    std::string sysfs = "/sys";             // /sys/class/net/<ifname>/...
    std::string procfs = "/proc";           // /proc/net/route, /proc/net/ipv6_route
    std::string run_dir = "/run/peakflow";  // small state that must not outlive a boot
    std::string host_root = "/";            // what the host watch reads: proc/, sys/, etc/passwd

    std::string pin_root() const { return bpffs + "/peakflow"; }
    std::string pin_dir(const std::string& ifname) const { return pin_root() + "/" + ifname; }
};

}  // namespace pf
