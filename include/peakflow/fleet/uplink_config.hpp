#pragma once
// The agent's `collector:` section (docs/fleet.md, "The agent side"): where the fleet
// collector is, the token the agent reports with, and how often and how much it sends.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/push/push_config.hpp"

namespace pf {

inline constexpr const char* kCollectorSinkName = "collector";

// One entry of the agent's `heartbeats:` section (docs/fleet.md, "Heartbeats from agents"):
// the agent checks the service every `interval` seconds and, when the check passes, sends
// a heartbeat for it through the collector link.
struct HeartbeatCheck {
    enum class Kind { Tcp, Systemd, Process };
    std::string service_name;
    std::string check;  // as written: tcp://HOST:PORT, systemd:UNIT, process:NAME
    Kind kind = Kind::Tcp;
    std::string target;  // tcp: the host; systemd: the unit; process: the name
    int port = 0;        // tcp
    int interval = 30;   // seconds
    double timeout = 5;  // seconds a check may take
    std::string ip;      // the service's address in its heartbeats; "": see heartbeat_ip()
    bool operator==(const HeartbeatCheck&) const = default;
};

struct UplinkConfig {
    bool configured = false;  // a collector: section exists
    std::string url;          // http(s)://host[:port], without the API path
    std::string token;        // pfc_ + 64 hex: given inline, or read from token_file
    std::string token_file;   // where the token came from ("" when inline)
    int interval = 60;        // seconds between reports
    std::string ca_file;      // trust this CA file instead of the system's
    std::string name;         // the agent's name at the collector (default: the host name)
    std::string node;         // the group the host belongs to
    int batch = 5000;         // records per stream per report
    // Address pairs per 5-minute bucket in the flows stream (the top ones by bytes, the
    // rest summed in one `other` row); 0: no flows stream.
    int flow_pairs = 50;
    std::vector<HeartbeatCheck> heartbeats;  // the top-level `heartbeats:` section
    bool operator==(const UplinkConfig&) const = default;
};

// True for "pfc_" followed by 64 lowercase hex digits.
bool is_collector_token(const std::string& t);

// Reads the token file now (its first line, trimmed); warns when group or others may read it.
Status parse_uplink_config(const Parser& p, const YAML::Node& n, const std::string& key, UplinkConfig& out);
void dump_uplink_config(YAML::Emitter& out, const UplinkConfig& c);  // token masked

// The top-level `heartbeats:` section: a list of {service_name, check, interval, timeout,
// ip}. Needs a collector: section (the caller checks, once both are read).
Status parse_heartbeat_checks(const Parser& p, const YAML::Node& n, const std::string& key,
                              std::vector<HeartbeatCheck>& out);
void dump_heartbeat_checks(YAML::Emitter& out, const std::vector<HeartbeatCheck>& checks);
// "tcp://HOST:PORT" ([v6]:PORT too), "systemd:UNIT" (".service" added when the name has no
// type), "process:NAME" into `out`; the reason when the text is none of them.
std::string parse_check_target(const std::string& text, HeartbeatCheck& out);

// With a collector: section, the push sinks get one named "collector" (type collector,
// alerts only) and push counts as configured. A sink the user already named "collector"
// is an error at its name (`push_node` is the push: section, null when there is none).
Status add_collector_sink(const Parser& p, const YAML::Node& push_node, const UplinkConfig& c, PushConfig& push);

}  // namespace pf
