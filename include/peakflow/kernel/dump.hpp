#pragma once
// `peakflow-bpf dump`: live counters read straight from the pinned maps.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/kernel/loader.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

struct InterfaceSnapshot {
    std::string name;
    int ifindex = 0;
    std::string xdp_mode;  // "native", "generic", "off (tc ingress)", "none"
    IfaceTotals totals;
    std::vector<MacRow> macs;
    std::vector<FlowRow> flows;  // only read when asked for
    EventCounts events{};
    uint64_t taken_ns = 0;  // CLOCK_MONOTONIC when read
};

struct DumpOptions {
    std::vector<std::string> ifaces;  // empty: every pinned interface
    bool json = false;
    bool flows = false;
    int top = 0;               // 0: all MAC rows, 10 flows
    double watch_seconds = 0;  // 0: print once
};

// Interfaces with pins under the bpffs, sorted by name.
std::vector<std::string> pinned_interfaces(const Paths& paths);

Result<InterfaceSnapshot> snapshot_interface(const std::string& ifname, bool with_flows, const Paths& paths);

// prev: the previous snapshot of the same interfaces for rates (watch mode), may be empty.
std::string render_text(const std::vector<InterfaceSnapshot>& now, const std::vector<InterfaceSnapshot>& prev,
                        const DumpOptions& o);
std::string render_json(const std::vector<InterfaceSnapshot>& now, const std::vector<InterfaceSnapshot>& prev,
                        const DumpOptions& o);

std::string format_flow_addr(const pf_flow_key& k, bool src);
const char* proto_name(uint8_t proto);

// Runs the dump command; returns the exit code.
int run_dump(const DumpOptions& o, const Paths& paths, std::ostream& out);

}  // namespace pf
