#pragma once
// Which interface to count on when none is named: the physical NIC that carries the
// default route, or the only physical member of the bridge or bond that carries it.
// Routes come from <procfs>/net/route and <procfs>/net/ipv6_route, the links from a
// netlink dump: both follow the caller's network namespace (see read_links for why not
// /sys/class/net).

#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"

namespace pf {

// A network interface as the kernel describes it in an RTM_GETLINK dump.
struct LinkDesc {
    std::string name;
    int index = 0;
    std::string kind;  // IFLA_INFO_KIND: "bridge", "bond", "veth", "tun", ...; empty for NIC drivers
    int master = 0;    // ifindex of the bridge or bond it is a member of; 0: none
    bool loopback = false;
    bool device = false;  // backed by a device (/sys/class/net/NAME/device): what "physical" means here
};

// The interfaces of the caller's network namespace, by netlink.
Result<std::vector<LinkDesc>> read_links();

// Whether a link counts as backed by a device. Kernels from 5.16 name the parent device in
// the dump (IFLA_PARENT_DEV_NAME, the netlink side of /sys/class/net/NAME/device); older
// ones do not, and there a link without a kind that is not the loopback counts: every
// interface `ip link add` can make has a kind, NIC drivers register none.
bool backed_by_device(bool parent_dev_named, const std::string& kind, bool loopback, bool kernel_names_parents);

// Empty when the interface is a physical NIC; otherwise why not ("a bridge", "a veth", ...).
std::string why_not_physical(const std::vector<LinkDesc>& links, const std::string& ifname);

struct DefaultInterface {
    std::string ifname;  // the physical interface to count on
    std::string via;     // the bridge or bond that carries the route, when ifname is its only physical member
    std::string reason;  // for the log, after the name: "which carries the default route", ...
};

// Among the up default routes (IPv4 first; IPv6 only when no IPv4 one gives an interface)
// the lowest metric whose interface is physical, or a bridge or bond with exactly one
// physical interface under it. Otherwise an error listing each interface the default
// routes go via and why it was skipped.
Result<DefaultInterface> detect_default_interface(const Paths& paths, const std::vector<LinkDesc>& links);
Result<DefaultInterface> detect_default_interface(const Paths& paths);  // links from read_links()

// The error for an interface name that does not exist in this network namespace.
Error unknown_interface(const std::string& ifname);

}  // namespace pf
