#pragma once
// The YAML config file, parsed into typed values. Every error names file, line, column
// and key; an unknown key is an error, so a typo never silently falls back to a default.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "peakflow/error.hpp"
#include "peakflow/loader.hpp"

namespace pf {

inline constexpr const char* kDefaultConfigPath = "/etc/peakflow/config.yaml";

struct Config {
    std::vector<std::string> interfaces;  // empty: the default-route interface
    XdpMode xdp_mode = XdpMode::Auto;
    std::chrono::seconds drain_interval{10};
    uint32_t mac_capacity = PF_DEFAULT_MAC_CAPACITY;
    uint32_t flow_capacity = PF_DEFAULT_FLOW_CAPACITY;
    bool flows = true;
    std::string log_level = "info";
    std::string source;  // the file it came from; empty for built-in defaults
};

Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name);
Result<Config> load_config_file(const std::string& path);

// --config given: that file must exist. Not given: the default path if it exists, else
// the built-in defaults.
Result<Config> load_config(const std::string& explicit_path);

// The effective config as YAML (what `config check` prints).
std::string dump_config(const Config& c);

}  // namespace pf
