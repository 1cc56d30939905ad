#pragma once
// Reading the per-CPU maps from userspace: each value is summed over the possible CPUs.
// The MAC and flow tables (per-CPU arrays of slots, see maps_kern_user.h) are read with
// batch lookups and summed per key; flows that userspace took are acknowledged in the
// ack map, never deleted under the programs' feet.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/fd.hpp"
#include "peakflow/kernel/jiffies.hpp"
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
    uint64_t first_seen_ns = 0;  // CLOCK_MONOTONIC, to within a tick
    uint64_t last_seen_ns = 0;
    uint64_t entry_id = 0;  // the first packet's jiffies as stamped: tells a restarted entry from the old one
    uint8_t tcp_flags = 0;
};

// Hashing and comparing flow keys in userspace containers (the shared word hash with
// seed 0; the struct has explicit padding, zeroed by the programs).
struct FlowKeyHash {
    size_t operator()(const pf_flow_key& k) const noexcept;
};
struct FlowKeyEq {
    bool operator()(const pf_flow_key& a, const pf_flow_key& b) const noexcept;
};

// What take_flows took: the final value of each flow, exactly what was acknowledged.
// Packets that race the acknowledgement stay in the table and are read as a new flow.
struct FlowTake {
    std::vector<FlowRow> rows;
};

// The fds of one loaded object's maps (loader.hpp: map_fds()).
struct MapFds {
    int iface = -1, mac = -1, flow = -1, flow_ack = -1, conf = -1, events = -1;
};

// Every map pinned under /sys/fs/bpf/peakflow/<ifname>/.
inline constexpr const char* kPinnedMaps[] = {PF_MAP_IFACE, PF_MAP_MAC,  PF_MAP_FLOW,  PF_MAP_FLOW_ACK,
                                              PF_MAP_USED,  PF_MAP_CONF, PF_MAP_EVENTS};

// Refuses pins in pin_dir that are not laid out as this build's maps (type, key and value
// size, flags, entries; absent pins are skipped): reading one would let the kernel write
// past our buffers. Without `conf` the MAC and flow tables' entries (sized by the loader)
// are not checked; with it they must be what it says.
Status check_pinned_maps(const std::string& pin_dir, const pf_conf* conf = nullptr);

using EventCounts = std::array<uint64_t, PF_EV_COUNT>;
const char* event_name(int ev);  // "mac_map_full", ...

// A shared mapping of an mmapable BPF array.
class MapMemory {
  public:
    MapMemory() = default;
    MapMemory(void* p, size_t len) : p_(p), len_(len) {}
    MapMemory(MapMemory&& o) noexcept : p_(std::exchange(o.p_, nullptr)), len_(std::exchange(o.len_, 0)) {}
    MapMemory& operator=(MapMemory&& o) noexcept;
    MapMemory(const MapMemory&) = delete;
    MapMemory& operator=(const MapMemory&) = delete;
    ~MapMemory();
    uint8_t* data() const { return static_cast<uint8_t*>(p_); }

  private:
    void* p_ = nullptr;
    size_t len_ = 0;
};

// The maps of one interface, by fd. Map ids tell a re-created map from the old one.
class MapSet {
  public:
    static Result<MapSet> open_pinned(const std::string& pin_dir);
    // Id of the flow map pinned there; 0 if none.
    static uint32_t pinned_flow_map_id(const std::string& pin_dir);
    // Duplicates the fds of an already-loaded object's maps.
    static Result<MapSet> from_fds(const MapFds& fds);

    Result<IfaceTotals> read_iface() const;
    Result<std::vector<MacRow>> read_macs() const;
    Result<std::vector<FlowRow>> read_flows() const;
    Result<EventCounts> read_events() const;
    // Takes flows out of the table (after export): each flow's slots are read afresh and
    // acknowledged, and the values returned are exactly what was acknowledged. The
    // programs reuse a slot only while it still holds exactly that, so a packet counted
    // after the read stays in the table and is read later as a new flow. Keys not in the
    // table are skipped.
    FlowTake take_flows(const std::vector<pf_flow_key>& keys) const;
    // The flow tables are mapped into memory by the first read_flows and stay mapped until
    // this: mapped, all of their pages count in the process's RSS (19.5 MB at the default
    // flow_capacity on 2 CPUs), so a reader that scans every few seconds gives them back in
    // between, and a daemon that never reads flows never maps them.
    void unmap_flows() const;

    const pf_conf& conf() const { return conf_; }

    uint32_t iface_map_id() const { return iface_id_; }
    uint32_t mac_map_id() const { return mac_id_; }
    uint32_t flow_map_id() const { return flow_id_; }

  private:
    Status load_conf(const std::string& pin_dir);  // pin_dir empty: not pinned
    Status map_flows() const;
    Status to_ns(std::vector<FlowRow>& rows) const;
    pf_flow_slot* flow_slots() const { return reinterpret_cast<pf_flow_slot*>(flow_mem_.data()); }
    pf_flow_ack* flow_acks() const { return reinterpret_cast<pf_flow_ack*>(flow_ack_mem_.data()); }

    Fd iface_, mac_, flow_, flow_ack_, conf_map_, events_;
    uint32_t iface_id_ = 0, mac_id_ = 0, flow_id_ = 0;
    pf_conf conf_{};
    mutable MapMemory flow_mem_, flow_ack_mem_;  // mapped by map_flows
    mutable std::optional<JiffyClock> clock_;    // the last good one, should a new sample fail
};

}  // namespace pf
