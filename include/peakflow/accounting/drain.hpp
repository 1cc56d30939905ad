#pragma once
// The drain: each interface's cumulative kernel counters read and turned into per-key
// deltas (Drainer), then classified into 5-minute buckets and committed to the history in
// one transaction with the snapshots they were computed against (Accountant), so a
// kill -9 at any point neither loses nor double counts.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/deltas.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

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
    // The maps are new (first attach, reboot, replaced): the next commit says so once.
    void mark_new_generation() { new_generation_ = true; }
    bool take_new_generation() { return std::exchange(new_generation_, false); }

  private:
    std::string ifname_;
    MapSet maps_;
    DeltaTracker tracker_;
    bool new_generation_ = false;
};

std::string summarize(const DrainDelta& d);

// The rows a drain adds to the store: the interface totals and each changed MAC, in the
// bucket of `now`, classified peak or off-peak by the local time of `now`.
void append_bucket_rows(const DrainDelta& d, const Calendar& cal, int64_t now, DrainRows& out);

// Drains every interface and commits the result in one transaction. Rows that could not
// be committed stay pending and go with the next drain: nothing counted is dropped.
class Accountant {
  public:
    Accountant(Store& store, Calendar cal, const Retention& retention, std::function<int64_t()> clock,
               const std::string& procfs);
    // After a reload: new buckets are classified with the new calendar.
    void reconfigure(Calendar cal, const Retention& retention);
    // The drain's time (UTC seconds) when its rows were committed; nullopt when they wait.
    std::optional<int64_t> drain(const std::vector<Drainer*>& drainers);
    // Rows kept for the next drain while the history cannot be written are bounded
    // (bound_pending_rows); what was dropped since start, for /metrics.
    static constexpr size_t kPendingRowsCap = 200000;  // about 20 MB
    DroppedRows dropped() const { return dropped_; }
    // Each interface's kernel event counts (cumulative) as the last drain read them.
    const std::map<std::string, EventCounts>& events() const { return events_; }

  private:
    void log_day_summary(const LocalDate& day);

    Store& store_;
    Calendar cal_;
    Retention retention_;
    std::function<int64_t()> clock_;
    std::string boot_id_;
    std::vector<DrainRows> pending_;
    DroppedRows dropped_;
    std::map<std::string, EventCounts> events_;
    bool rolled_up_ = false;
    LocalDate last_day_;
};

// Continue from the snapshots stored with the last committed drain, if they belong to
// the same kernel maps (same boot, same map id); otherwise the counters started again
// (and the drainer is marked so). Throws FatalError when the history cannot be read.
bool resume(Store& store, Drainer& drainer, const std::string& boot_id);

}  // namespace pf
