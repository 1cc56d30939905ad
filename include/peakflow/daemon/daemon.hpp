#pragma once
// `peakflow-bpf attach`: attach to the interfaces, then drain the maps on a timer,
// turning cumulative kernel counters into per-key deltas, until SIGINT/SIGTERM.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/app/config.hpp"

#include "peakflow/accounting/deltas.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/kernel/loader.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

struct DaemonOptions {
    std::vector<std::string> ifaces;  // empty: the default-route interface
    AttachOptions attach;
    std::chrono::milliseconds interval{10000};
    bool detach_on_exit = false;
    Paths paths;
    std::string database = kDefaultDatabasePath;
    std::string timezone;  // empty: the system's
    std::vector<PeakWindow> peak_windows{PeakWindow{}};
    int billing_day = 1;
    Retention retention;
    std::function<int64_t()> clock;  // UTC seconds; default: the system clock
    std::string log_level;           // applied again on reload; empty: leave as is
    std::string log_dir;             // optional log files (set up once, at start)
    std::string metrics_listen;      // Prometheus /metrics on HOST:PORT; empty: off
    size_t mac_series_cap = 1000;
    // SIGHUP: builds the options again from the config file (and the command line). What
    // can change while running (interval, time zone, peak windows, billing day, retention,
    // log level) is applied; the rest needs a restart and is logged as such.
    std::function<Result<DaemonOptions>()> reload;
    // The whole config the options came from: the background services (push, reports,
    // watch, export) are built from their sections of it.
    Config config;
};

struct MacDelta {
    MacAddr mac{};
    Counter dir[PF_DIR_COUNT];
    Counter snap[PF_DIR_COUNT];  // the kernel counters the delta was computed up to
};

// What one drain found on one interface since the previous drain.
struct DrainDelta {
    std::string ifname;
    Counter dir[PF_DIR_COUNT];
    Counter total[PF_DIR_COUNT];  // the interface counters now
    std::vector<MacDelta> macs;   // only MACs that changed
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
    uint32_t generation() const { return maps_.mac_map_id(); }

  private:
    std::string ifname_;
    MapSet maps_;
    DeltaTracker tracker_;
};

std::string summarize(const DrainDelta& d);

// The rows a drain adds to the store: the interface totals and each changed MAC, in the
// bucket of `now`, classified peak or off-peak by the local time of `now`.
struct DrainRows;
void append_bucket_rows(const DrainDelta& d, const Calendar& cal, int64_t now, DrainRows& out);

int run_daemon(const DaemonOptions& opts);

}  // namespace pf
