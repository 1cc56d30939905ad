#pragma once
// `peakflow-bpf report`: the billing history read back from the store as day, billing
// month, hourly and 5-minute views, with peak and off-peak split, billing adjustments and
// the 95th percentile of a month. "up" is what the host sent on the interface (tx), "down"
// what it received (rx). Text for people, JSON with stable keys for scripts (README.md).

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/accounting/usage_source.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

struct ReportOptions {
    enum Kind { Summary, Day, Month, Hours, FiveMinutes } kind = Summary;
    std::optional<LocalDate> day;       // Day/Hours/FiveMinutes: default today (local)
    std::optional<BillingMonth> month;  // Month: default the current billing month
    std::optional<int> hour;            // FiveMinutes: local hour 0-23 of `day`; unset = whole day
    std::optional<std::string> iface;   // filter
    std::optional<MacAddr> mac;         // filter: that peer MAC's rows instead of interface totals
    bool json = false;
    int top_macs = 10;  // Day/Month/Summary: top MACs by total bytes under each interface; 0 none, < 0 all
};

// What one row reports, raw or adjusted. up/down are not always the sums of their peak and
// off-peak parts: an adjustment is applied to each figure on its own.
struct ReportFigures {
    uint64_t peak_up = 0, peak_down = 0, offpeak_up = 0, offpeak_down = 0;
    uint64_t up = 0, down = 0, total = 0;
};

// The adjustments that apply to one row: up is tx, down is rx.
struct RowAdjust {
    const Adjustment* up = nullptr;
    const Adjustment* down = nullptr;
    bool any() const { return up || down; }
};

struct ReportRow {
    std::string label;
    int64_t ts = 0;            // series rows: interval start
    ReportFigures raw, shown;  // shown: adjusted when an adjustment applies, else raw
    RowAdjust adj;
};

// One interface over a period: its main row (the interface totals, or one peer MAC's rows
// with mac_key set) and its top peer MACs by total bytes.
struct PeriodTotals {
    std::string name;
    ReportRow total;
    std::vector<ReportRow> macs;
    size_t mac_count = 0;  // MACs with rows in the period
};

// The figures of [from, to) for each interface in `names` (in that order), adjusted as
// the reports show them. mac_key: a peer MAC's rows instead of the interface totals (then
// no MAC list). top_macs < 0: all MACs. The adjustments must outlive the result.
Result<std::vector<PeriodTotals>> period_totals(UsageSource& store, const std::vector<Adjustment>& adjustments,
                                                const std::vector<std::string>& names, std::optional<int64_t> mac_key,
                                                int64_t from, int64_t to, int top_macs);

// "×1.05 +0 B (iface eth0)", or "up ...; down ..." when the two directions differ.
std::string describe_row_adjustment(const RowAdjust& a);

// Writes the report to `out`; returns an Error (no data, unknown interface, bad or
// nonexistent hour, an option that does not fit the kind) instead of throwing, and then
// writes nothing. Summary with no data at all is not an error: it says so.
Status run_report(UsageSource& store, const Calendar& cal, const std::vector<Adjustment>& adjustments,
                  const ReportOptions& o, int64_t now, std::ostream& out);

// The adjustment for one value: among the entries matching the interface, the MAC
// (nullopt: the interface's own totals, which only entries without a MAC match) and the
// direction (PF_DIR_RX or PF_DIR_TX), the most specific wins: interface and MAC, then MAC,
// then interface, then global; at equal rank one naming the direction beats "both", and
// then the first listed wins. nullptr: the value is reported raw.
const Adjustment* match_adjustment(const std::vector<Adjustment>& adjustments, const std::string& iface,
                                   std::optional<int64_t> mac, int dir);

// raw * factor + offset_bytes, rounded to the nearest byte, never below 0. nullptr: raw.
uint64_t apply_adjustment(const Adjustment* a, uint64_t raw);

// "×1.05 +0 B (iface eth0)", "×1 -1.00 GiB (iface eth0, mac 02:00:00:00:00:01, rx)".
std::string describe_adjustment(const Adjustment& a);

// '#' × round(width * value / max), at least one for a non-zero value; "" when max is 0.
std::string text_bar(uint64_t value, uint64_t max, int width = 30);

}  // namespace pf
