#pragma once
// `peakflow-bpf import peakflow-tracker [DIR]`: what a PeakFlow_Tracker user had (DIR,
// default /etc/Traffic: config.yaml and the SQLite history peakflow.db) carried over: the
// config turned into peakflow's, the history's daily totals into finalized daily rows
// marked as imported (Store::import_days). See docs/migration.md for the keys and the
// assumed shape of the old database.

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/common/error.hpp"

namespace pf {

inline constexpr const char* kTrackerDefaultDir = "/etc/Traffic";

// The old config.yaml as peakflow config YAML, and each key it could not carry over.
struct TrackerConfig {
    std::string yaml;                   // a valid peakflow config (parse_config accepts it)
    std::string interface;              // the old `interface`, "" when none
    std::string database;               // the old history, DIR/peakflow.db unless the config names one
    std::vector<std::string> unmapped;  // "key 'x': why"
};
Result<TrackerConfig> translate_tracker_config(const std::string& yaml_text, const std::string& dir);

// The old history's rows summed per local day, peak and off-peak.
struct TrackerHistory {
    std::string table;                  // the table read
    std::vector<ImportedDay> days;      // in date order
    std::vector<std::string> unmapped;  // rows or columns left out, and why
};
Result<TrackerHistory> read_tracker_history(const std::string& db_path, const Calendar& cal);

struct ImportTrackerOptions {
    std::string dir = kTrackerDefaultDir;
    std::string write;  // --write FILE; "" prints the config on stdout
    bool force = false;
    std::string interface;  // --interface, else the old config's
    std::string database;   // peakflow's history
    Calendar* calendar = nullptr;
    std::function<int64_t()> clock;
};
// The config on `out` (unless written), what was done and what was not on `err`; 0 when
// everything that exists was carried over or explained, 1 on an error.
int run_import_tracker(const ImportTrackerOptions& o, std::ostream& out, std::ostream& err);

}  // namespace pf
