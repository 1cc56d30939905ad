#pragma once
// The accounting keys of the config file (top level: timezone, peak_windows, billing_day,
// database, retention, adjustments): where the history lives, which calendar turns UTC
// buckets into local days, peak hours and billing months, and how bills are adjusted.
// The daemon, `report` and the services that read the history all take this one struct.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

inline constexpr const char* kDefaultDatabasePath = "/var/lib/peakflow/peakflow.db";

// How long each resolution is kept; 0 keeps it forever.
struct Retention {
    int five_minute_days = 70;  // a full billing month (31 days) plus a generous margin
    int hourly_days = 400;
    int daily_days = 3650;
    int monthly_months = 0;
    bool operator==(const Retention&) const = default;
};

// Billing adjustment: reported = raw * factor + offset_bytes (never below 0). Raw data is
// never changed. The most specific match wins: a MAC, then an interface, then global.
struct Adjustment {
    std::string iface;               // empty: any interface
    std::optional<MacAddr> mac;      // unset: any MAC / the interface totals
    std::string direction = "both";  // rx, tx or both
    double factor = 1.0;
    int64_t offset_bytes = 0;
    bool operator==(const Adjustment&) const = default;
};

struct AccountingConfig {
    std::string timezone;  // IANA name; empty: the system's
    std::vector<PeakWindow> peak_windows{PeakWindow{}};
    int billing_day = 1;
    std::string database = kDefaultDatabasePath;
    Retention retention;
    std::vector<Adjustment> adjustments;
    bool operator==(const AccountingConfig&) const = default;

    // The calendar these settings describe (fails on an unknown time zone).
    Result<Calendar> calendar() const { return Calendar::create(timezone, peak_windows, billing_day); }
};

// Whether `key` is one of the accounting keys of the top level.
bool is_accounting_key(const std::string& key);
// Parses one top-level accounting key into `c`.
Status parse_accounting_key(const Parser& p, const YAML::Node& n, const std::string& key, AccountingConfig& c);
// Emits the accounting keys (as `config check` prints them) into an open map.
void dump_accounting_config(YAML::Emitter& out, const AccountingConfig& c);

}  // namespace pf
