#include "peakflow/kernel/dump.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "peakflow/common/privileges.hpp"
#include "peakflow/common/units.hpp"

namespace fs = std::filesystem;

namespace pf {
namespace {

uint64_t mono_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string fmt(const char* f, auto... args) {
    char buf[256];
    std::snprintf(buf, sizeof buf, f, args...);
    return buf;
}

const InterfaceSnapshot* find_prev(const std::vector<InterfaceSnapshot>& prev, const std::string& name) {
    for (const auto& p : prev)
        if (p.name == name) return &p;
    return nullptr;
}

// bit/s between two snapshots of one direction; negative if unknown.
double rate_bps(const InterfaceSnapshot& now, const InterfaceSnapshot* prev, int dir) {
    if (!prev || now.taken_ns <= prev->taken_ns) return -1;
    uint64_t a = now.totals.dir[dir].bytes, b = prev->totals.dir[dir].bytes;
    if (a < b) return -1;
    return static_cast<double>(a - b) * 8.0 * 1e9 / static_cast<double>(now.taken_ns - prev->taken_ns);
}

std::vector<MacRow> sorted_macs(std::vector<MacRow> macs, int top) {
    std::sort(macs.begin(), macs.end(), [](const MacRow& a, const MacRow& b) {
        uint64_t ta = a.dir[0].bytes + a.dir[1].bytes, tb = b.dir[0].bytes + b.dir[1].bytes;
        return ta != tb ? ta > tb : a.mac < b.mac;
    });
    if (top > 0 && macs.size() > static_cast<size_t>(top)) macs.resize(static_cast<size_t>(top));
    return macs;
}

std::vector<FlowRow> top_flows(std::vector<FlowRow> flows, int top) {
    std::sort(flows.begin(), flows.end(), [](const FlowRow& a, const FlowRow& b) { return a.bytes > b.bytes; });
    size_t n = top > 0 ? static_cast<size_t>(top) : 10;
    if (flows.size() > n) flows.resize(n);
    return flows;
}

std::string endpoint(const pf_flow_key& k, bool src) {
    std::string addr = format_flow_addr(k, src);
    bool has_ports = k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP;
    if (!has_ports) return addr;
    uint16_t port = src ? k.src_port : k.dst_port;
    return (k.family == 6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
}

}  // namespace

const char* proto_name(uint8_t proto) {
    switch (proto) {
        case IPPROTO_TCP: return "tcp";
        case IPPROTO_UDP: return "udp";
        case IPPROTO_ICMP: return "icmp";
        case IPPROTO_ICMPV6: return "icmpv6";
        case 0: return "-";
    }
    return "other";
}

std::string format_flow_addr(const pf_flow_key& k, bool src) {
    const uint8_t* a = src ? k.src_addr : k.dst_addr;
    char buf[INET6_ADDRSTRLEN] = {};
    if (k.family == 4)
        inet_ntop(AF_INET, a + 12, buf, sizeof buf);
    else
        inet_ntop(AF_INET6, a, buf, sizeof buf);
    return buf;
}

std::vector<std::string> pinned_interfaces(const Paths& paths) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(paths.pin_root(), ec))
        if (e.is_directory() && fs::exists(e.path() / PF_MAP_IFACE)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

Result<InterfaceSnapshot> snapshot_interface(const std::string& ifname, bool with_flows, const Paths& paths) {
    std::string dir = paths.pin_dir(ifname);
    if (!fs::exists(dir + "/" PF_MAP_IFACE))
        return Error("peakflow is not attached to " + ifname, "", 0,
                     "no pinned maps in " + dir + "; start 'peakflow-bpf attach " + ifname + "'");
    auto maps = MapSet::open_pinned(dir);
    if (!maps) return maps.error();
    InterfaceSnapshot s;
    s.name = ifname;
    s.ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    AttachState st = query_attach_state(ifname, paths);
    s.xdp_mode = st.xdp_mode != XdpMode::Off ? to_string(st.xdp_mode) : st.tc_ingress ? "off" : "none";
    s.taken_ns = mono_ns();
    auto totals = maps->read_iface();
    if (!totals) return totals.error();
    s.totals = *totals;
    auto macs = maps->read_macs();
    if (!macs) return macs.error();
    s.macs = std::move(*macs);
    auto ev = maps->read_events();
    if (!ev) return ev.error();
    s.events = *ev;
    if (with_flows) {
        auto flows = maps->read_flows();
        if (!flows) return flows.error();
        s.flows = std::move(*flows);
    }
    return s;
}

std::string render_text(const std::vector<InterfaceSnapshot>& now, const std::vector<InterfaceSnapshot>& prev,
                        const DumpOptions& o) {
    std::string out;
    for (const auto& s : now) {
        const InterfaceSnapshot* p = find_prev(prev, s.name);
        out += fmt("%s  ifindex %d  xdp %s\n", s.name.c_str(), s.ifindex, s.xdp_mode.c_str());
        out += fmt("  %-4s %14s %14s %14s\n", "", "bytes", "packets", p ? "rate" : "");
        for (int d = 0; d < PF_DIR_COUNT; d++) {
            double r = rate_bps(s, p, d);
            out += fmt("  %-4s %14s %14llu %14s\n", d == PF_DIR_RX ? "rx" : "tx",
                       human_bytes(s.totals.dir[d].bytes).c_str(),
                       static_cast<unsigned long long>(s.totals.dir[d].packets), r >= 0 ? human_rate(r).c_str() : "");
        }
        auto macs = sorted_macs(s.macs, o.top);
        out += fmt("  %-17s %14s %12s %14s %12s\n", "peer MAC", "rx bytes", "rx packets", "tx bytes", "tx packets");
        for (const auto& m : macs)
            out += fmt("  %-17s %14s %12llu %14s %12llu\n", format_mac(m.mac).c_str(),
                       human_bytes(m.dir[0].bytes).c_str(), static_cast<unsigned long long>(m.dir[0].packets),
                       human_bytes(m.dir[1].bytes).c_str(), static_cast<unsigned long long>(m.dir[1].packets));
        if (macs.size() < s.macs.size()) out += fmt("  (%zu more MACs)\n", s.macs.size() - macs.size());
        out += "  events";
        for (int e = 0; e < PF_EV_COUNT; e++)
            out += fmt(" %s=%llu", event_name(e), static_cast<unsigned long long>(s.events[static_cast<size_t>(e)]));
        out += "\n";
        if (o.flows) {
            auto flows = top_flows(s.flows, o.top);
            out += fmt("  flows: %zu in map, top %zu by bytes\n", s.flows.size(), flows.size());
            out += fmt("  %-3s %-6s %-9s %-47s %-47s %12s %10s\n", "dir", "proto", "vlan", "source", "destination",
                       "bytes", "packets");
            for (const auto& f : flows) {
                std::string vlan = f.key.vlan[0] ? std::to_string(f.key.vlan[0]) : "-";
                if (f.key.vlan[1]) vlan += "." + std::to_string(f.key.vlan[1]);
                out += fmt("  %-3s %-6s %-9s %-47s %-47s %12s %10llu\n", f.key.dir == PF_DIR_RX ? "rx" : "tx",
                           proto_name(f.key.proto), vlan.c_str(), endpoint(f.key, true).c_str(),
                           endpoint(f.key, false).c_str(), human_bytes(f.bytes).c_str(),
                           static_cast<unsigned long long>(f.packets));
            }
        }
        out += "\n";
    }
    return out;
}

std::string render_json(const std::vector<InterfaceSnapshot>& now, const std::vector<InterfaceSnapshot>& prev,
                        const DumpOptions& o) {
    using nlohmann::json;
    json ifs = json::array();
    for (const auto& s : now) {
        const InterfaceSnapshot* p = find_prev(prev, s.name);
        json j = {{"name", s.name},
                  {"ifindex", s.ifindex},
                  {"xdp_mode", s.xdp_mode},
                  {"rx_bytes", s.totals.dir[PF_DIR_RX].bytes},
                  {"rx_packets", s.totals.dir[PF_DIR_RX].packets},
                  {"tx_bytes", s.totals.dir[PF_DIR_TX].bytes},
                  {"tx_packets", s.totals.dir[PF_DIR_TX].packets}};
        if (p) {
            // null, not -1, when counters went down between readings (maps re-created).
            auto rate = [](double bps) { return bps >= 0 ? json(bps) : json(nullptr); };
            j["rx_bps"] = rate(rate_bps(s, p, PF_DIR_RX));
            j["tx_bps"] = rate(rate_bps(s, p, PF_DIR_TX));
        }
        json macs = json::array();
        for (const auto& m : sorted_macs(s.macs, o.top))
            macs.push_back({{"mac", format_mac(m.mac)},
                            {"rx_bytes", m.dir[PF_DIR_RX].bytes},
                            {"rx_packets", m.dir[PF_DIR_RX].packets},
                            {"tx_bytes", m.dir[PF_DIR_TX].bytes},
                            {"tx_packets", m.dir[PF_DIR_TX].packets}});
        j["macs"] = macs;
        if (o.flows) {
            json flows = json::array();
            for (const auto& f : top_flows(s.flows, o.top)) {
                MacAddr sm, dm;
                std::memcpy(sm.data(), f.key.src_mac, 6);
                std::memcpy(dm.data(), f.key.dst_mac, 6);
                flows.push_back({{"dir", f.key.dir == PF_DIR_RX ? "rx" : "tx"},
                                 {"family", f.key.family},
                                 {"proto", f.key.proto},
                                 {"src", format_flow_addr(f.key, true)},
                                 {"dst", format_flow_addr(f.key, false)},
                                 {"src_port", f.key.src_port},
                                 {"dst_port", f.key.dst_port},
                                 {"vlan", {f.key.vlan[0], f.key.vlan[1]}},
                                 {"src_mac", format_mac(sm)},
                                 {"dst_mac", format_mac(dm)},
                                 {"bytes", f.bytes},
                                 {"packets", f.packets},
                                 {"first_seen_ns", f.first_seen_ns},
                                 {"last_seen_ns", f.last_seen_ns},
                                 {"tcp_flags", f.tcp_flags}});
            }
            j["flows"] = flows;
            j["flow_entries"] = s.flows.size();
        }
        json ev = json::object();
        for (int e = 0; e < PF_EV_COUNT; e++) ev[event_name(e)] = s.events[static_cast<size_t>(e)];
        j["events"] = ev;
        ifs.push_back(j);
    }
    return json{{"interfaces", ifs}}.dump() + "\n";
}

int run_dump(const DumpOptions& o, const Paths& paths, std::ostream& out) {
    if (auto st = check_map_read_privileges(); !st) throw FatalError(st.error());
    std::vector<std::string> names = o.ifaces.empty() ? pinned_interfaces(paths) : o.ifaces;
    if (names.empty())
        throw FatalError("nothing to dump: no interface has pinned maps under " + paths.pin_root() +
                         " (start 'peakflow-bpf attach' first)");
    std::vector<InterfaceSnapshot> prev;
    bool tty = isatty(STDOUT_FILENO) != 0;
    for (;;) {
        std::vector<InterfaceSnapshot> now;
        for (const auto& n : names) now.push_back(snapshot_interface(n, o.flows, paths).take());
        if (o.json) {
            out << render_json(now, prev, o);
        } else {
            if (o.watch_seconds > 0 && tty) out << "\033[H\033[2J";
            out << render_text(now, prev, o);
        }
        out.flush();
        if (o.watch_seconds <= 0) return 0;
        prev = std::move(now);
        std::this_thread::sleep_for(std::chrono::duration<double>(o.watch_seconds));
    }
}

}  // namespace pf
