#include "peakflow/kernel/ifaces.hpp"

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace fs = std::filesystem;

namespace pf {
namespace {

constexpr unsigned kRtfUp = 0x1;

struct DefaultRoute {
    std::string ifname;
    unsigned long metric;
};

std::vector<DefaultRoute> ipv4_default_routes(const Paths& p) {
    std::vector<DefaultRoute> out;
    std::ifstream in(p.procfs + "/net/route");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string ifname, dest, gw, flags, refcnt, use, metric, mask;
        if (!(ss >> ifname >> dest >> gw >> flags >> refcnt >> use >> metric >> mask)) continue;
        if (dest != "00000000" || mask != "00000000") continue;
        if (!(std::stoul(flags, nullptr, 16) & kRtfUp)) continue;
        out.push_back({ifname, std::stoul(metric)});
    }
    return out;
}

std::vector<DefaultRoute> ipv6_default_routes(const Paths& p) {
    std::vector<DefaultRoute> out;
    std::ifstream in(p.procfs + "/net/ipv6_route");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string dest, plen, src, splen, nexthop, metric, refcnt, use, flags, ifname;
        if (!(ss >> dest >> plen >> src >> splen >> nexthop >> metric >> refcnt >> use >> flags >> ifname)) continue;
        if (dest != std::string(32, '0') || plen != "00" || ifname == "lo") continue;
        if (!(std::stoul(flags, nullptr, 16) & kRtfUp)) continue;
        out.push_back({ifname, std::stoul(metric, nullptr, 16)});
    }
    return out;
}

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

}  // namespace

std::string why_not_physical(const Paths& p, const std::string& ifname) {
    std::string dir = p.sysfs + "/class/net/" + ifname;
    if (!fs::exists(dir)) return "not present";
    if (ifname == "lo") return "the loopback interface";
    if (fs::exists(dir + "/bridge")) return "a bridge";
    if (fs::exists(dir + "/bonding")) return "a bond";
    if (fs::exists(dir + "/tun_flags")) return "a tun/tap device";
    if (starts_with(ifname, "docker") || starts_with(ifname, "br-")) return "a docker network";
    if (starts_with(ifname, "veth")) return "a veth";
    if (!fs::exists(dir + "/device")) return "a virtual interface";
    return {};
}

Result<std::string> detect_default_interface(const Paths& p) {
    std::string best, rejected;
    unsigned long best_metric = ULONG_MAX;
    for (const auto& routes : {ipv4_default_routes(p), ipv6_default_routes(p)}) {
        for (const auto& r : routes) {
            if (std::string why = why_not_physical(p, r.ifname); !why.empty()) {
                if (rejected.empty()) rejected = r.ifname + " (" + why + ")";
                continue;
            }
            if (r.metric < best_metric) {
                best = r.ifname;
                best_metric = r.metric;
            }
        }
        if (!best.empty()) return best;  // IPv4 routes first; IPv6 only when there is none
    }
    if (!rejected.empty())
        return Error("no physical interface carries the default route: it goes via " + rejected, "", 0,
                     "name the interface: peakflow-bpf attach IFACE");
    return Error("no default route found", "", 0, "name the interface: peakflow-bpf attach IFACE");
}

}  // namespace pf
