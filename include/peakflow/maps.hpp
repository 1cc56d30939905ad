#pragma once
// Reading the per-CPU maps from userspace: each value is summed over the possible CPUs.
// Hash maps are read with batch lookups, falling back to key iteration on kernels
// without batch support.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/error.hpp"
#include "peakflow/fd.hpp"
#include "peakflow/maps_kern_user.h"

namespace pf {

struct Counter {
    uint64_t bytes = 0;
    uint64_t packets = 0;
    bool operator==(const Counter&) const = default;
};

using MacAddr = std::array<uint8_t, 6>;
std::string format_mac(const MacAddr& mac);
// "aa:bb:cc:dd:ee:ff" (or with '-'), any case; nullopt if malformed.
std::optional<MacAddr> parse_mac(const std::string& s);
// MACs as 48-bit integers, the form the store keys them by.
int64_t mac_to_int(const MacAddr& mac);
MacAddr mac_from_int(int64_t v);

struct IfaceTotals {
    Counter dir[PF_DIR_COUNT];
};

struct MacRow {
    MacAddr mac{};
    Counter dir[PF_DIR_COUNT];
};

struct FlowRow {
    pf_flow_key key{};
    uint64_t bytes = 0;
    uint64_t packets = 0;
    uint64_t first_seen_ns = 0;  // CLOCK_MONOTONIC
    uint64_t last_seen_ns = 0;
    uint8_t tcp_flags = 0;
};

// What take_flows removed: the final value of each entry, exactly what left the map.
struct FlowTake {
    std::vector<FlowRow> rows;
    std::vector<pf_flow_key> refused;  // not taken (the kernel refused: error), still in the map
    int error = 0;                     // errno of the first refusal, 0 if none
};

using EventCounts = std::array<uint64_t, PF_EV_COUNT>;
const char* event_name(int ev);  // "mac_map_full", ...

// The four maps of one interface, by fd. Map ids tell a re-created map from the old one.
class MapSet {
  public:
    static Result<MapSet> open_pinned(const std::string& pin_dir);
    // Duplicates the fds of an already-loaded object's maps.
    static Result<MapSet> from_fds(int iface_fd, int mac_fd, int flow_fd, int events_fd);

    Result<IfaceTotals> read_iface() const;
    Result<std::vector<MacRow>> read_macs() const;
    Result<std::vector<FlowRow>> read_flows() const;
    Result<EventCounts> read_events() const;
    // Deletes flow entries (after export). Returns how many were removed.
    Result<size_t> delete_flows(const std::vector<pf_flow_key>& keys) const;
    // Removes flow entries with BPF_MAP_LOOKUP_AND_DELETE_ELEM (hash maps: kernel 5.14+):
    // each value returned is exactly what was removed, so packets counted up to the delete
    // are in it. Keys already gone are skipped; after a refusal (older kernel) the
    // remaining keys are returned in `refused`, untouched.
    FlowTake take_flows(const std::vector<pf_flow_key>& keys) const;

    uint32_t iface_map_id() const { return iface_id_; }
    uint32_t mac_map_id() const { return mac_id_; }
    uint32_t flow_map_id() const { return flow_id_; }
    int flow_fd() const { return flow_.get(); }

  private:
    Fd iface_, mac_, flow_, events_;
    uint32_t iface_id_ = 0, mac_id_ = 0, flow_id_ = 0;
};

}  // namespace pf
