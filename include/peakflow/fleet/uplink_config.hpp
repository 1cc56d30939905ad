#pragma once
// The agent's `collector:` section (docs/fleet.md, "The agent side"): where the fleet
// collector is, the token the agent reports with, and how often and how much it sends.

#include <yaml-cpp/yaml.h>

#include <string>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/push/push_config.hpp"

namespace pf {

inline constexpr const char* kCollectorSinkName = "collector";

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
    bool operator==(const UplinkConfig&) const = default;
};

// True for "pfc_" followed by 64 lowercase hex digits.
bool is_collector_token(const std::string& t);

// Reads the token file now (its first line, trimmed); warns when group or others may read it.
Status parse_uplink_config(const Parser& p, const YAML::Node& n, const std::string& key, UplinkConfig& out);
void dump_uplink_config(YAML::Emitter& out, const UplinkConfig& c);  // token masked

// With a collector: section, the push sinks get one named "collector" (type collector,
// alerts only) and push counts as configured. A sink the user already named "collector"
// is an error at its name (`push_node` is the push: section, null when there is none).
Status add_collector_sink(const Parser& p, const YAML::Node& push_node, const UplinkConfig& c, PushConfig& push);

}  // namespace pf
