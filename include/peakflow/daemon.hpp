#pragma once
// `peakflow-bpf attach`: attach to the interfaces, then drain the maps on a timer,
// turning cumulative kernel counters into per-key deltas, until SIGINT/SIGTERM.

#include <chrono>
#include <string>
#include <vector>

#include "peakflow/deltas.hpp"
#include "peakflow/loader.hpp"
#include "peakflow/maps.hpp"
#include "peakflow/paths.hpp"

namespace pf {

struct DaemonOptions {
    std::vector<std::string> ifaces;  // empty: the default-route interface
    AttachOptions attach;
    std::chrono::milliseconds interval{10000};
    bool detach_on_exit = false;
    Paths paths;
};

struct MacDelta {
    MacAddr mac{};
    Counter dir[PF_DIR_COUNT];
};

// What one drain found on one interface since the previous drain.
struct DrainDelta {
    std::string ifname;
    Counter dir[PF_DIR_COUNT];
    std::vector<MacDelta> macs;  // only MACs that changed
    size_t mac_entries = 0;
    size_t flow_entries = 0;
    EventCounts events{};  // cumulative
};

// Reads one interface's maps and keeps the snapshots that deltas are computed against.
class Drainer {
  public:
    Drainer(std::string ifname, MapSet maps) : ifname_(std::move(ifname)), maps_(std::move(maps)) {}
    Result<DrainDelta> drain();
    const std::string& ifname() const { return ifname_; }
    DeltaTracker& tracker() { return tracker_; }

  private:
    std::string ifname_;
    MapSet maps_;
    DeltaTracker tracker_;
};

std::string summarize(const DrainDelta& d);

int run_daemon(const DaemonOptions& opts);

}  // namespace pf
