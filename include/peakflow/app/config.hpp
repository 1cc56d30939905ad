#pragma once
// The YAML config file, parsed into typed values. Every error names file, line, column
// and key; an unknown key is an error, so a typo never silently falls back to a default.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <optional>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/export/flow_export.hpp"
#include "peakflow/kernel/loader.hpp"
#include "peakflow/kernel/maps.hpp"
#include "peakflow/push/reports_config.hpp"
#include "peakflow/push/sinks.hpp"
#include "peakflow/watch/host_watch_config.hpp"

namespace pf {

inline constexpr const char* kDefaultConfigPath = "/etc/peakflow/config.yaml";

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

struct Config {
    std::vector<std::string> interfaces;  // empty: the default-route interface
    XdpMode xdp_mode = XdpMode::Auto;
    std::chrono::seconds drain_interval{10};
    uint32_t mac_capacity = PF_DEFAULT_MAC_CAPACITY;
    uint32_t flow_capacity = PF_DEFAULT_FLOW_CAPACITY;
    bool flows = true;
    std::string log_level = "info";
    std::string log_dir;                            // empty: stderr only (the journal under systemd)
    std::string metrics_listen = "127.0.0.1:9977";  // Prometheus /metrics; empty: off
    uint32_t metrics_mac_series = 1000;             // per-MAC series cap per interface
    std::string timezone;                           // IANA name; empty: the system's
    std::vector<PeakWindow> peak_windows{PeakWindow{}};
    int billing_day = 1;
    std::string database = kDefaultDatabasePath;
    Retention retention;
    std::vector<Adjustment> adjustments;
    // Process watch and host health (hostwatch.hpp).
    HostWatchConfig host_watch;
    ReportsConfig reports;                 // scheduled daily / monthly / startup reports (push)
    CustomerReportConfig customer_report;  // the customer's hourly 5-minute report (push, http sink)
    PushConfig push;                       // push: the durable outbox and its sinks (push/sinks.hpp)
    ExportConfig export_;                  // `export:` (flow export); export_.enabled when present
    std::string source;                    // the file it came from; empty for built-in defaults
};

Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name);
Result<Config> load_config_file(const std::string& path);

// --config given: that file must exist. Not given: the default path if it exists, else
// the built-in defaults.
Result<Config> load_config(const std::string& explicit_path);

// The effective config as YAML (what `config check` prints).
std::string dump_config(const Config& c);

}  // namespace pf
