#include "peakflow/kernel/ifaces.hpp"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "peakflow/common/fd.hpp"

namespace pf {
namespace {

constexpr unsigned kRtfUp = 0x1;
constexpr const char* kNameIt =
    "name the interface to count on: peakflow-bpf attach IFACE, or interfaces: in the config";

struct DefaultRoute {
    std::string ifname;
    unsigned long metric;
};

// /proc/net is /proc/self/net: the routes of the reading thread's network namespace,
// whatever the mounts (unlike /sys, see read_links).
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

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}

// IFLA_PARENT_DEV_NAME came with Linux 5.16.
bool kernel_names_parents() {
    utsname u{};
    int major = 0, minor = 0;
    if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return true;
    return major > 5 || (major == 5 && minor >= 16);
}

// Calls f(type, data, size) for each netlink attribute in [p, p + len). By hand rather than
// with RTA_OK/RTA_NEXT, whose int/unsigned comparisons -Wsign-compare rejects.
template <typename F>
void for_each_attr(const char* p, size_t len, F&& f) {
    while (len >= sizeof(rtattr)) {
        const auto* a = reinterpret_cast<const rtattr*>(p);
        if (a->rta_len < sizeof(rtattr) || a->rta_len > len) return;
        f(static_cast<unsigned>(a->rta_type & NLA_TYPE_MASK), p + RTA_LENGTH(0), a->rta_len - RTA_LENGTH(0));
        const size_t step = RTA_ALIGN(a->rta_len);
        if (step >= len) return;
        p += step;
        len -= step;
    }
}

std::string attr_string(const char* data, size_t size) {
    return std::string(data, strnlen(data, size));
}

LinkDesc parse_link(const nlmsghdr* nh, bool names_parents) {
    const char* msg = reinterpret_cast<const char*>(nh) + NLMSG_HDRLEN;
    const size_t msg_len = nh->nlmsg_len - NLMSG_HDRLEN;
    LinkDesc l;
    if (msg_len < sizeof(ifinfomsg)) return l;
    const auto* ifi = reinterpret_cast<const ifinfomsg*>(msg);
    l.index = ifi->ifi_index;
    l.loopback = (ifi->ifi_flags & IFF_LOOPBACK) != 0;
    bool parent = false;
    const size_t skip = NLMSG_ALIGN(sizeof(ifinfomsg));
    for_each_attr(msg + skip, msg_len - skip, [&](unsigned type, const char* data, size_t size) {
        if (type == IFLA_IFNAME) l.name = attr_string(data, size);
        if (type == IFLA_MASTER && size >= sizeof(uint32_t)) {
            uint32_t m;
            std::memcpy(&m, data, sizeof m);
            l.master = static_cast<int>(m);
        }
        if (type == IFLA_PARENT_DEV_NAME) parent = true;
        if (type == IFLA_LINKINFO)
            for_each_attr(data, size, [&](unsigned t, const char* d, size_t s) {
                if (t == IFLA_INFO_KIND) l.kind = attr_string(d, s);
            });
    });
    l.device = backed_by_device(parent, l.kind, l.loopback, names_parents);
    return l;
}

const LinkDesc* find_link(const std::vector<LinkDesc>& links, const std::string& name) {
    for (const auto& l : links)
        if (l.name == name) return &l;
    return nullptr;
}

bool physical(const LinkDesc& l) {
    return l.device && !l.loopback;
}

bool aggregate(const LinkDesc& l) {
    return l.kind == "bridge" || l.kind == "bond";
}

// What a link that is not physical is, for the messages.
std::string what_it_is(const LinkDesc& l) {
    if (l.loopback) return "the loopback interface";
    if (l.kind == "bridge") return "a bridge";
    if (l.kind == "bond") return "a bond";
    if (l.kind == "tun") return "a tun/tap device";
    if (starts_with(l.name, "docker") || starts_with(l.name, "br-")) return "a docker network";
    if (l.kind == "veth") return "a veth";
    if (!l.kind.empty()) return "a virtual " + l.kind + " interface";
    return "a virtual interface";
}

struct Under {
    std::string ifname;
    std::string through;  // the bridges or bonds in between ("bond0"); empty for a direct member
};

// The physical interfaces under a bridge or bond: its physical members, and those under
// members that are bridges or bonds themselves (a bond in a bridge, usual on KVM hosts).
void physical_under(const std::vector<LinkDesc>& links, const LinkDesc& master, const std::string& through, int depth,
                    std::vector<Under>& out) {
    if (depth > 4) return;  // the kernel refuses loops; a bound costs nothing all the same
    for (const auto& m : links) {
        if (m.master != master.index || m.index == master.index) continue;
        if (physical(m))
            out.push_back({m.name, through});
        else if (aggregate(m))
            physical_under(links, m, through.empty() ? m.name : through + ", " + m.name, depth + 1, out);
    }
}

struct Candidate {
    std::optional<DefaultInterface> use;
    std::string why;          // when it cannot be used
    bool is_virtual = false;  // skipped for being virtual, which the error says once
};

// The interface to count on for a default route via `name`, or why there is none.
Candidate evaluate(const std::vector<LinkDesc>& links, const std::string& name) {
    const LinkDesc* l = find_link(links, name);
    if (!l) return {std::nullopt, "not present", false};
    if (physical(*l)) return {DefaultInterface{name, "", "which carries the default route"}, "", false};
    const std::string what = what_it_is(*l);
    if (!aggregate(*l)) return {std::nullopt, what, true};
    // A bridge or bond: the requirements count on the physical interface of the management
    // address, which is the member when there is exactly one.
    std::vector<Under> under;
    physical_under(links, *l, "", 0, under);
    if (under.size() == 1) {
        const std::string through = under[0].through.empty() ? "" : ", through " + under[0].through;
        return {DefaultInterface{under[0].ifname, name,
                                 "the only physical member of " + name + " (" + what + through +
                                     "), which carries the default route"},
                "", false};
    }
    if (under.size() > 1) {
        std::vector<std::string> names;
        for (const auto& u : under) names.push_back(u.ifname);
        return {std::nullopt, what + " over several physical interfaces: " + join(names, ", "), false};
    }
    std::vector<std::string> members;
    for (const auto& m : links)
        if (m.master == l->index && m.index != l->index) members.push_back(m.name + " is " + what_it_is(m));
    if (members.empty()) return {std::nullopt, what + " without members", true};
    return {std::nullopt, what + " with no physical member: " + join(members, ", "), true};
}

}  // namespace

bool backed_by_device(bool parent_dev_named, const std::string& kind, bool loopback, bool kernel_names_parents) {
    if (kernel_names_parents) return parent_dev_named;
    return parent_dev_named || (kind.empty() && !loopback);
}

// Netlink, not /sys/class/net: sysfs shows the network namespace of the process that
// mounted it, and `nsenter --net` changes the namespace but keeps the mounts, so /sys
// described the host's interfaces (the veth of a default route in the namespace was "not
// present"). A netlink socket answers for the namespace of the thread that opened it, and
// says what sysfs said: the kind, the bridge or bond a link belongs to, its parent device.
Result<std::vector<LinkDesc>> read_links() {
    Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd.valid()) return Error("list the network interfaces: netlink socket", "", errno);
    struct {
        nlmsghdr nh;
        ifinfomsg ifm;
    } req{};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
    req.nh.nlmsg_type = RTM_GETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = 1;
    req.ifm.ifi_family = AF_UNSPEC;
    if (::send(fd.get(), &req, req.nh.nlmsg_len, 0) < 0)
        return Error("list the network interfaces: netlink request", "", errno);

    const bool names_parents = kernel_names_parents();
    std::vector<LinkDesc> links;
    std::vector<uint32_t> buf(8192);  // 32 KiB, aligned for nlmsghdr; grown for a larger message
    for (;;) {
        ssize_t need = ::recv(fd.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
        if (need < 0 && errno == EINTR) continue;
        if (need < 0) return Error("list the network interfaces: netlink reply", "", errno);
        if (static_cast<size_t>(need) > buf.size() * sizeof(uint32_t)) buf.resize(need / sizeof(uint32_t) + 1);
        ssize_t got = ::recv(fd.get(), buf.data(), buf.size() * sizeof(uint32_t), 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return Error("list the network interfaces: netlink reply", "", errno);
        if (got == 0) return Error("list the network interfaces: netlink reply ended early");
        const char* p = reinterpret_cast<const char*>(buf.data());
        size_t left = static_cast<size_t>(got);
        while (left >= sizeof(nlmsghdr)) {
            const auto* nh = reinterpret_cast<const nlmsghdr*>(p);
            if (nh->nlmsg_len < sizeof(nlmsghdr) || nh->nlmsg_len > left) break;
            if (nh->nlmsg_type == NLMSG_DONE) return links;
            if (nh->nlmsg_type == NLMSG_ERROR) {
                nlmsgerr e{};
                std::memcpy(&e, p + NLMSG_HDRLEN, std::min<size_t>(sizeof e, nh->nlmsg_len - NLMSG_HDRLEN));
                return Error("list the network interfaces: netlink", "", -e.error);
            }
            if (nh->nlmsg_type == RTM_NEWLINK) {
                LinkDesc l = parse_link(nh, names_parents);
                if (!l.name.empty()) links.push_back(std::move(l));
            }
            const size_t step = NLMSG_ALIGN(nh->nlmsg_len);
            if (step >= left) break;
            p += step;
            left -= step;
        }
    }
}

std::string why_not_physical(const std::vector<LinkDesc>& links, const std::string& ifname) {
    const LinkDesc* l = find_link(links, ifname);
    if (!l) return "not present";
    return physical(*l) ? std::string() : what_it_is(*l);
}

Result<DefaultInterface> detect_default_interface(const Paths& p, const std::vector<LinkDesc>& links) {
    std::vector<std::string> seen, skipped;
    bool any_virtual = false;
    for (const auto& routes : {ipv4_default_routes(p), ipv6_default_routes(p)}) {
        std::optional<DefaultInterface> best;
        unsigned long best_metric = ULONG_MAX;
        for (const auto& r : routes) {
            Candidate c = evaluate(links, r.ifname);
            if (c.use) {
                if (r.metric < best_metric) {
                    best = std::move(c.use);
                    best_metric = r.metric;
                }
                continue;
            }
            if (std::find(seen.begin(), seen.end(), r.ifname) != seen.end()) continue;
            seen.push_back(r.ifname);
            skipped.push_back(r.ifname + " (" + c.why + ")");
            any_virtual = any_virtual || c.is_virtual;
        }
        if (best) return *best;  // IPv4 routes first; IPv6 only when they give no interface
    }
    if (skipped.empty()) return Error("no default route found", "", 0, kNameIt);
    std::string msg = std::string("no interface to count on: the default route") +
                      (skipped.size() > 1 ? "s go" : " goes") + " via " + join(skipped, ", ");
    if (any_virtual) msg += "; virtual interfaces are never picked automatically";
    return Error(msg, "", 0, kNameIt);
}

Result<DefaultInterface> detect_default_interface(const Paths& p) {
    auto links = read_links();
    if (!links) return links.error();
    return detect_default_interface(p, *links);
}

Error unknown_interface(const std::string& ifname) {
    return Error{"unknown interface '" + ifname + "'", "", 0, "see 'ip link' for the names"};
}

}  // namespace pf
