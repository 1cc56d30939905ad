#pragma once
// The daemon's own figures for /metrics: filled by the daemon and by each service's
// stats() hook, read per scrape.

#include <cstdint>
#include <mutex>
#include <optional>

namespace pf {

// What the daemon knows about itself; filled by the daemon, read per scrape.
// The host watch's latest figures (host_watch section).
struct HostFigures {
    double cpu_percent = 0;          // busy share over the last CPU sample
    double memory_percent = 0;       // used share of MemTotal
    std::optional<double> temp_c;    // hottest thermal zone; none without /sys/class/thermal
    uint64_t runaway_processes = 0;  // runaway episodes going on now
};

// The fleet uplink's link to its collector (collector section).
struct CollectorFigures {
    uint64_t backlog = 0;  // records waiting to be acknowledged, all streams
    int64_t last_ack = 0;  // UTC seconds of the last acknowledged report; 0: none yet
    uint64_t errors = 0;   // reports that failed (no connection, refused, bad answer)
};

struct DaemonStats {
    double last_drain_seconds = 0;              // duration of the last drain
    uint64_t drains = 0;                        // drains done since start
    uint64_t history_rows_dropped = 0;          // rows given up while the database failed (bound_pending_rows)
    uint64_t history_bytes_dropped = 0;         // their bytes
    uint64_t outbox_depth = 0;                  // rows waiting for the store (0 until the outbox exists)
    uint64_t export_queue = 0;                  // flow records waiting for export (0 until export exists)
    std::optional<HostFigures> host;            // once the host watch has sampled
    std::optional<CollectorFigures> collector;  // when a collector is configured
};

// DaemonStats behind a mutex: the daemon thread sets it, the HTTP thread reads a copy.
class DaemonStatsBox {
  public:
    void set(const DaemonStats& s) {
        std::lock_guard<std::mutex> l(mu_);
        s_ = s;
    }
    template <typename F>
    void update(F&& f) {  // f(DaemonStats&) under the lock
        std::lock_guard<std::mutex> l(mu_);
        f(s_);
    }
    DaemonStats get() const {
        std::lock_guard<std::mutex> l(mu_);
        return s_;
    }

  private:
    mutable std::mutex mu_;
    DaemonStats s_;
};

}  // namespace pf
