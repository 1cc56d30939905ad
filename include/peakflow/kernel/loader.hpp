#pragma once
// Loading the BPF object, attaching it to interfaces and taking it away again.
// Steps are kept visible: open -> configure (capacities, knobs) -> load (maps reused from
// pins when present) -> attach (XDP ingress or TC ingress, TC egress) -> pin.

#include <cstdint>
#include <memory>
#include <string>

#include "peakflow/common/error.hpp"
#include "peakflow/common/fd.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/kernel/maps.hpp"
#include "peakflow/maps_kern_user.h"

struct peakflow_bpf;  // generated skeleton (peakflow.skel.h)

namespace pf {

enum class XdpMode { Auto, Native, Generic, Off };

const char* to_string(XdpMode m);
// "auto", "native", "generic", "off"; anything else is an error.
Result<XdpMode> parse_xdp_mode(const std::string& s);

struct SkeletonDeleter {
    void operator()(peakflow_bpf* s) const;
};
using SkeletonPtr = std::unique_ptr<peakflow_bpf, SkeletonDeleter>;

struct LoadOptions {
    uint32_t mac_capacity = PF_DEFAULT_MAC_CAPACITY;
    uint32_t flow_capacity = PF_DEFAULT_FLOW_CAPACITY;
    bool flows = true;
    std::string pin_dir;  // empty: maps are not pinned (tests, benchmarks)
};

// The fds of a loaded object's maps, for MapSet::from_fds.
MapFds map_fds(const peakflow_bpf& skel);

// Opens, configures and loads the object. A verifier rejection carries the tail of the
// verifier log in Error::hint.
Result<SkeletonPtr> open_and_load(const LoadOptions& opts);

struct AttachOptions {
    XdpMode xdp_mode = XdpMode::Auto;
    LoadOptions load;
};

// One interface with our programs attached. Holds the interface lock for its lifetime;
// destroying it leaves programs and pinned maps in place (counting goes on).
struct AttachedInterface {
    std::string ifname;
    int ifindex = 0;
    XdpMode xdp_mode = XdpMode::Off;  // the mode actually in use: Native, Generic or Off
    bool reused_pins = false;         // maps came from existing pins (counters continue)
    SkeletonPtr skel;
    Fd lock;
};

Result<AttachedInterface> attach_interface(const std::string& ifname, const AttachOptions& opts,
                                           const Paths& paths = {});

// Removes our XDP program, our TC filters, the clsact qdisc if we created it, and the pins.
Status detach_interface(const std::string& ifname, const Paths& paths = {});

// What is attached right now, read from the kernel (no daemon needed).
struct AttachState {
    bool pinned = false;  // pin directory with our maps exists
    XdpMode xdp_mode = XdpMode::Off;
    bool tc_ingress = false;
    bool tc_egress = false;
};
AttachState query_attach_state(const std::string& ifname, const Paths& paths = {});

// Program id -> name, as the kernel reports it; empty if unknown.
std::string prog_name_by_id(uint32_t id);

// Makes sure a bpffs is mounted at paths.bpffs (mounts one if not).
Status ensure_bpffs(const Paths& paths);

// Routes libbpf's messages into our log and keeps the last lines for error reports.
void install_libbpf_logger();

}  // namespace pf
