#pragma once
// The YAML config file, parsed into typed values. Every error names file, line, column
// and key; an unknown key is an error, so a typo never silently falls back to a default.
// This is the only header that sees the whole config: each subsystem owns and parses its
// own section (accounting_config.hpp, push_config.hpp, reports_config.hpp, ...), and the
// app hands each part only its section.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <optional>

#include <yaml-cpp/yaml.h>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/export/export_config.hpp"
#include "peakflow/fleet/uplink_config.hpp"
#include "peakflow/kernel/loader.hpp"
#include "peakflow/kernel/maps.hpp"
#include "peakflow/push/push_config.hpp"
#include "peakflow/push/reports_config.hpp"
#include "peakflow/watch/host_watch_config.hpp"

namespace pf {

inline constexpr const char* kDefaultConfigPath = "/etc/peakflow/config.yaml";

struct Config {
    std::vector<std::string> interfaces;  // empty: the default-route interface
    XdpMode xdp_mode = XdpMode::Auto;
    std::chrono::milliseconds drain_interval{10000};  // whole seconds in the file; --interval may be finer
    uint32_t mac_capacity = PF_DEFAULT_MAC_CAPACITY;
    uint32_t flow_capacity = PF_DEFAULT_FLOW_CAPACITY;
    bool flows = true;
    std::string log_level = "info";
    std::string log_dir;                            // empty: stderr only (the journal under systemd)
    std::string metrics_listen = "127.0.0.1:9977";  // Prometheus /metrics; empty: off
    uint32_t metrics_mac_series = 1000;             // per-MAC series cap per interface
    AccountingConfig accounting;                    // the history: where, which calendar, adjustments, retention
    // Process watch and host health (watch/host_watch_config.hpp).
    HostWatchConfig host_watch;
    ReportsConfig reports;                   // scheduled daily / monthly / startup reports (push)
    CustomerReportConfig customer_report;    // the customer's hourly 5-minute report (push, http sink)
    PushConfig push;                         // push: the durable outbox and its sinks (push/sinks.hpp)
    ExportConfig export_;                    // `export:` (flow export); export_.enabled when present
    UplinkConfig collector;                  // `collector:` (fleet uplink); adds the push sink "collector"
    std::vector<HeartbeatCheck> heartbeats;  // `heartbeats:` (sent through the collector link)
    std::string source;                      // the file it came from; empty for built-in defaults
};

Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name);
// The same from a loaded document (the central config is applied to the file's tree).
Result<Config> parse_config_node(const YAML::Node& root, const std::string& source_name);
Result<Config> load_config_file(const std::string& path);

// --config given: that file must exist. Not given: the default path if it exists, else
// the built-in defaults.
Result<Config> load_config(const std::string& explicit_path);

// What `attach` warns at start when another local user can read the config file (it holds
// the sinks' tokens and passwords): the file readable by "others", and every directory
// above it searchable by them. Empty when only its owner and group can read it, or when
// it cannot be checked.
std::string config_readable_warning(const std::string& path);

// The effective config as YAML (what `config check` prints).
std::string dump_config(const Config& c);

}  // namespace pf
