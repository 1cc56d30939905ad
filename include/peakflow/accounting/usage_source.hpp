#pragma once
// What `report` reads: 5-minute rows, hours and sums per (interface, MAC, peak). The agent's
// Store is one source; the collector's fleet store is another (one agent, a node or the
// whole fleet), so both ends render their views with the same report code.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

inline constexpr int64_t kIfaceTotal = -1;  // the "MAC" of an interface's own totals

struct UsageRow {
    std::string iface;
    int64_t mac = kIfaceTotal;
    int64_t ts = 0;  // bucket / hour start; 0 for sums over a range
    bool peak = false;
    Counter dir[PF_DIR_COUNT];
};

struct Filter {
    std::optional<std::string> iface;
    std::optional<int64_t> mac;  // kIfaceTotal for interface totals only
};

class UsageSource {
  public:
    virtual ~UsageSource() = default;

    // Interface names with history, sorted.
    virtual Result<std::vector<std::string>> interfaces() = 0;
    // Raw 5-minute rows with ts in [from, to).
    virtual Result<std::vector<UsageRow>> buckets(const Filter& f, int64_t from, int64_t to) = 0;
    // Hourly rows (local hours of `cal`) in [from, to).
    virtual Result<std::vector<UsageRow>> hours(const Filter& f, const Calendar& cal, int64_t from, int64_t to) = 0;
    // Sums per (iface, mac, peak) over [from, to).
    virtual Result<std::vector<UsageRow>> totals(const Filter& f, int64_t from, int64_t to) = 0;

    // Where the rows come from, for messages: "no traffic recorded yet in <describe()>".
    virtual std::string describe() const = 0;
    // What fills an empty source, said after that message.
    virtual std::string no_data_hint() const {
        return "the daemon ('peakflow-bpf attach') writes the history with its first drain";
    }
};

}  // namespace pf
