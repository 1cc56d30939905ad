#pragma once
// /etc/peakflow/collector.yaml: where the collector listens, where it stores, when an agent
// counts as offline, where alerts go. Unknown keys are errors at file:line:col, as in the
// agent's config.

#include <string>

#include "peakflow/common/error.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/push/push_config.hpp"

namespace pf {

inline constexpr const char* kDefaultCollectorConfigPath = "/etc/peakflow/collector.yaml";
inline constexpr const char* kDefaultCollectorDatabase = "/var/lib/peakflow-collector/collector.db";

struct CollectorConfig {
    std::string source;  // the file read, "" for built-in defaults
    std::string listen = "127.0.0.1:8999";
    std::string listen_host = "127.0.0.1";
    int listen_port = 8999;
    std::string database = kDefaultCollectorDatabase;
    int offline_after = 3;  // report intervals, 1..100
    // Failed delivery attempts in a row of an agent's sink before the collector raises its
    // push-failed alert, 0..1000 (0: never).
    int push_failure_alert_after = 3;
    std::string tls_cert, tls_key;
    bool allow_plain_http = false;
    std::string alert_file;
    bool forward_alerts = false;
    std::string log_dir;
    std::string log_level = "info";
    std::string timezone;    // "" the system's
    std::string fleet_name;  // the dashboard's title, "" none
    PushConfig push;
    HeartbeatConfig heartbeat;  // `heartbeat:` (docs/fleet.md, "Heartbeat service")

    bool tls() const { return !tls_cert.empty(); }
    // Plain HTTP on an address other hosts reach: allowed only with allow_plain_http.
    bool plain_non_loopback() const;
    // What the server runs with (clock and queue left to the caller).
    CollectorOptions server_options() const;
};

// 127.0.0.0/8, ::1, localhost.
bool is_loopback_host(const std::string& host);

Result<CollectorConfig> parse_collector_config(const std::string& text, const std::string& source);
Result<CollectorConfig> load_collector_config_file(const std::string& path);
// explicit_path "" : the default file if it exists, else built-in defaults.
Result<CollectorConfig> load_collector_config(const std::string& explicit_path);
// The effective config as YAML, secrets masked.
std::string dump_collector_config(const CollectorConfig& c);

}  // namespace pf
