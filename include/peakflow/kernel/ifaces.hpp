#pragma once
// Which interface to count on when none is named: the physical NIC that carries the
// default route. Reads <procfs>/net/route, <procfs>/net/ipv6_route and <sysfs>/class/net.

#include <string>

#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"

namespace pf {

// Empty when the interface is a physical NIC; otherwise why not ("a bridge", "veth", ...).
std::string why_not_physical(const Paths& paths, const std::string& ifname);

Result<std::string> detect_default_interface(const Paths& paths);

}  // namespace pf
