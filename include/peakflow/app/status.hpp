#pragma once
// `peakflow-bpf status`: is every interface counting? Per interface the programs attached
// and in which mode, the pinned maps and their fill levels, the kernel's event counters and
// the daemon that holds the interface; then the history database (its newest 5-minute
// bucket, the push outbox). Exit 0 when every interface counts, 1 otherwise, so that it can
// serve as a health check (as `xdp-loader status` and `systemctl status` are used).

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "peakflow/common/paths.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

struct IfaceStatus {
    std::string name;
    bool exists = false;
    std::string xdp;  // "native", "generic", "none"
    bool tc_ingress = false, tc_egress = false;
    bool pinned = false;
    std::optional<long> daemon_pid;  // a live peakflow-bpf holding the interface
    // From the pinned maps (when pinned):
    uint32_t mac_capacity = 0;       // MACs per CPU
    std::vector<uint64_t> mac_used;  // slots taken, per CPU
    uint32_t flow_slots = 0;         // per CPU
    uint64_t flows = 0;              // distinct flows in the table
    uint64_t rx_bytes = 0, rx_packets = 0, tx_bytes = 0, tx_packets = 0;
    EventCounts events{};
    std::string problem;  // why it is not counting ("" when it is)
};

struct StoreStatus {
    std::string path;
    bool readable = false;
    std::string error;
    std::optional<int64_t> newest_bucket;  // unix seconds of the newest 5-minute bucket
    std::optional<int64_t> outbox;         // messages waiting to be delivered
    // The collector link (fleet/uplink.cpp notes it after each report): unset without one.
    std::optional<int64_t> uplink_attempt, uplink_ack, uplink_backlog;
    std::string uplink_error;
};

struct StatusReport {
    std::vector<IfaceStatus> ifaces;
    StoreStatus store;
    bool ok() const;
};

// ifaces empty: every interface with pins, else the configured ones.
StatusReport collect_status(std::vector<std::string> ifaces, const std::vector<std::string>& configured,
                            const std::string& database, const Paths& paths);
class Calendar;
std::string render_status_text(const StatusReport& r, const Calendar& cal, int64_t now);
std::string render_status_json(const StatusReport& r);

}  // namespace pf
