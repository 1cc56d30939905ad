#pragma once
// The `host_watch:` section of the config: the runaway process watch and host health.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"

namespace pf {

// Alarm levels: normal below note, note from note to warning, warning above warning.
struct HealthLevels {
    double temp_note = 50, temp_warning = 70;  // CPU temperature, degrees C (the requirements' levels)
    double mem_note = 70, mem_warning = 90;    // memory used, percent
    double disk_note = 80, disk_warning = 90;  // disk or partition used, percent
    bool operator==(const HealthLevels&) const = default;
};

struct HostWatchConfig {
    bool enabled = true;
    double proc_interval = 5;   // seconds between process samples
    double cpu_threshold = 50;  // percent of one CPU (of all CPUs with cpu_all_cpus)
    double mem_threshold = 50;  // percent of RAM
    bool cpu_all_cpus = false;
    std::vector<std::string> allow_names, allow_users, allow_cgroups;
    double health_interval = 5;  // CPU and memory
    double slow_interval = 60;   // disk, system, users
    HealthLevels levels;
    int retention_days = 30;  // health samples and episodes; 0 keeps them forever
    bool operator==(const HostWatchConfig&) const = default;
};

Status parse_host_watch(const Parser& p, const YAML::Node& n, const std::string& key, HostWatchConfig& c);
void dump_host_watch(YAML::Emitter& out, const HostWatchConfig& c);

}  // namespace pf
