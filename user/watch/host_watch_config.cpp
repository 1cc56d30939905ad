// The `host_watch:` section of the config (host_watch_config.hpp); the service that acts on
// it is host_watch.cpp (host_watch.hpp).
#include "peakflow/watch/host_watch_config.hpp"

#include <fmt/format.h>

namespace pf {

namespace {

// The check for a number in [lo, hi], for Parser::read_checked.
auto in_range(double lo, double hi) {
    return [lo, hi](double v) {
        return v >= lo && v <= hi ? std::string() : fmt::format("must be between {} and {}, got {}", lo, hi, v);
    };
}

std::string not_empty(const std::string& v) {
    return v.empty() ? "must not be empty" : "";
}

}  // namespace

Status parse_host_watch(const Parser& p, const YAML::Node& n, const std::string& k, HostWatchConfig& c) {
    if (auto st = check_keys(p, n, k,
                             {"enabled", "proc_interval", "cpu_threshold", "mem_threshold", "cpu_all_cpus", "allow",
                              "health_interval", "slow_interval", "levels", "retention_days"});
        !st)
        return st;
    if (auto st = p.read_child(n, k, "enabled", "true or false", c.enabled); !st) return st;
    if (auto st = p.read_child(n, k, "cpu_all_cpus", "true or false", c.cpu_all_cpus); !st) return st;
    struct Num {
        const char* name;
        double* field;
        double lo, hi;
    } nums[] = {{"proc_interval", &c.proc_interval, 0.2, 3600},
                {"cpu_threshold", &c.cpu_threshold, 1, 100000},  // one-CPU percent: up to 100 x CPUs
                {"mem_threshold", &c.mem_threshold, 1, 100},
                {"health_interval", &c.health_interval, 1, 3600},
                {"slow_interval", &c.slow_interval, 1, 86400}};
    for (const auto& x : nums)
        if (auto st = p.read_child_checked(n, k, x.name, "a number", *x.field, in_range(x.lo, x.hi)); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "retention_days", 0, 100000, c.retention_days); !st) return st;
    if (const auto& a = n["allow"]) {
        std::string ak = k + ".allow";
        if (auto st = check_keys(p, a, ak, {"names", "users", "cgroups"}); !st) return st;
        for (auto [name, list] : {std::pair{"names", &c.allow_names}, std::pair{"users", &c.allow_users},
                                  std::pair{"cgroups", &c.allow_cgroups}}) {
            if (!a[name]) continue;
            if (auto st = p.read_list(a[name], ak + "." + name, "a list of strings", "a string", *list, not_empty); !st)
                return st;
        }
    }
    if (const auto& l = n["levels"]) {
        std::string lk = k + ".levels";
        if (auto st = check_keys(p, l, lk,
                                 {"temp_note", "temp_warning", "mem_note", "mem_warning", "disk_note", "disk_warning"});
            !st)
            return st;
        HealthLevels& h = c.levels;
        struct Lv {
            const char* name;
            double* field;
            double hi;
        } lv[] = {{"temp_note", &h.temp_note, 200}, {"temp_warning", &h.temp_warning, 200},
                  {"mem_note", &h.mem_note, 100},   {"mem_warning", &h.mem_warning, 100},
                  {"disk_note", &h.disk_note, 100}, {"disk_warning", &h.disk_warning, 100}};
        for (const auto& x : lv)
            if (auto st = p.read_child_checked(l, lk, x.name, "a number", *x.field, in_range(0, x.hi)); !st) return st;
        if (h.temp_note > h.temp_warning || h.mem_note > h.mem_warning || h.disk_note > h.disk_warning)
            return p.error_at(l.Mark(), lk, "each *_note must not be above its *_warning");
    }
    return Ok{};
}

void dump_host_watch(YAML::Emitter& out, const HostWatchConfig& c) {
    out << YAML::BeginMap;
    out << YAML::Key << "enabled" << YAML::Value << c.enabled;
    out << YAML::Key << "proc_interval" << YAML::Value << c.proc_interval;
    out << YAML::Key << "cpu_threshold" << YAML::Value << c.cpu_threshold;
    out << YAML::Key << "mem_threshold" << YAML::Value << c.mem_threshold;
    out << YAML::Key << "cpu_all_cpus" << YAML::Value << c.cpu_all_cpus;
    out << YAML::Key << "allow" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "names" << YAML::Value << YAML::Flow << c.allow_names;
    out << YAML::Key << "users" << YAML::Value << YAML::Flow << c.allow_users;
    out << YAML::Key << "cgroups" << YAML::Value << YAML::Flow << c.allow_cgroups;
    out << YAML::EndMap;
    out << YAML::Key << "health_interval" << YAML::Value << c.health_interval;
    out << YAML::Key << "slow_interval" << YAML::Value << c.slow_interval;
    out << YAML::Key << "levels" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "temp_note" << YAML::Value << c.levels.temp_note;
    out << YAML::Key << "temp_warning" << YAML::Value << c.levels.temp_warning;
    out << YAML::Key << "mem_note" << YAML::Value << c.levels.mem_note;
    out << YAML::Key << "mem_warning" << YAML::Value << c.levels.mem_warning;
    out << YAML::Key << "disk_note" << YAML::Value << c.levels.disk_note;
    out << YAML::Key << "disk_warning" << YAML::Value << c.levels.disk_warning;
    out << YAML::EndMap;
    out << YAML::Key << "retention_days" << YAML::Value << c.retention_days;
    out << YAML::EndMap;
}

}  // namespace pf
