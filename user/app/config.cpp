#include "peakflow/app/config.hpp"

#include "peakflow/common/config_parser.hpp"
#include "peakflow/daemon/metrics.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace pf {
namespace {

Status parse_adjustment(const Parser& p, const YAML::Node& n, const std::string& key, Adjustment& a) {
    if (auto st = check_keys(p, n, key, {"iface", "mac", "direction", "factor", "offset_bytes"}); !st) return st;
    if (n["iface"]) {
        auto v = p.scalar<std::string>(n["iface"], key + ".iface", "an interface name");
        if (!v) return v.error();
        a.iface = *v;
    }
    if (n["mac"]) {
        auto v = p.scalar<std::string>(n["mac"], key + ".mac", "a MAC address");
        if (!v) return v.error();
        a.mac = parse_mac(*v);
        if (!a.mac) return p.error_at(n["mac"].Mark(), key + ".mac", "'" + *v + "' is not a MAC address");
    }
    if (n["direction"]) {
        auto v = p.scalar<std::string>(n["direction"], key + ".direction", "rx, tx or both");
        if (!v) return v.error();
        if (*v != "rx" && *v != "tx" && *v != "both")
            return p.error_at(n["direction"].Mark(), key + ".direction", "expected rx, tx or both, got '" + *v + "'");
        a.direction = *v;
    }
    if (n["factor"]) {
        auto v = p.scalar<double>(n["factor"], key + ".factor", "a number");
        if (!v) return v.error();
        if (!(*v >= 0.0 && *v <= 1000.0))
            return p.error_at(n["factor"].Mark(), key + ".factor", "must be between 0 and 1000");
        a.factor = *v;
    }
    if (n["offset_bytes"]) {
        auto v = p.scalar<int64_t>(n["offset_bytes"], key + ".offset_bytes", "an integer");
        if (!v) return v.error();
        a.offset_bytes = *v;
    }
    if (!n["factor"] && !n["offset_bytes"])
        return p.error_at(n.Mark(), key, "an adjustment needs a factor or an offset_bytes");
    return Ok{};
}

using KeyHandler = std::function<Status(const Parser&, const YAML::Node&, const std::string&, Config&)>;

const std::map<std::string, KeyHandler>& handlers() {
    static const std::map<std::string, KeyHandler> h = {
        {"export",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_export_config(p, n, k, c.export_);
         }},
        {"interfaces",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             if (!n.IsSequence()) return p.error_at(n.Mark(), k, "expected a list of interface names");
             c.interfaces.clear();
             for (const auto& item : n) {
                 auto name = p.scalar<std::string>(item, k, "an interface name");
                 if (!name) return name.error();
                 if (name->empty() || name->size() > 15 || name->find('/') != std::string::npos)
                     return p.error_at(item.Mark(), k, "'" + *name + "' is not a valid interface name");
                 c.interfaces.push_back(*name);
             }
             return Ok{};
         }},
        {"xdp_mode",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto s = p.scalar<std::string>(n, k, "auto, native, generic or off");
             if (!s) return s.error();
             auto m = parse_xdp_mode(*s);
             if (!m) return p.error_at(n.Mark(), k, "expected auto, native, generic or off, got '" + *s + "'");
             c.xdp_mode = *m;
             return Ok{};
         }},
        {"drain_interval",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 1, 3600);
             if (!v) return v.error();
             c.drain_interval = std::chrono::seconds(*v);
             return Ok{};
         }},
        {"mac_capacity",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 16, 1u << 20);
             if (!v) return v.error();
             c.mac_capacity = *v;
             return Ok{};
         }},
        {"flow_capacity",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 16, 1u << 22);
             if (!v) return v.error();
             c.flow_capacity = *v;
             return Ok{};
         }},
        {"flows",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<bool>(n, k, "true or false");
             if (!v) return v.error();
             c.flows = *v;
             return Ok{};
         }},
        {"timezone",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<std::string>(n, k, "an IANA time zone name");
             if (!v) return v.error();
             if (auto cal = Calendar::create(*v, {}, 1); !cal) return p.error_at(n.Mark(), k, cal.error().message());
             c.timezone = *v;
             return Ok{};
         }},
        {"peak_windows",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             if (!n.IsSequence()) return p.error_at(n.Mark(), k, "expected a list such as [\"18:00-24:00\"]");
             c.peak_windows.clear();
             for (const auto& item : n) {
                 auto s = p.scalar<std::string>(item, k, "a window such as 18:00-24:00");
                 if (!s) return s.error();
                 auto w = parse_peak_window(*s);
                 if (!w) return p.error_at(item.Mark(), k, w.error().message());
                 c.peak_windows.push_back(*w);
             }
             return Ok{};
         }},
        {"billing_day",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 1, 28);
             if (!v) return v.error();
             c.billing_day = static_cast<int>(*v);
             return Ok{};
         }},
        {"database",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<std::string>(n, k, "a file path");
             if (!v) return v.error();
             if (v->empty()) return p.error_at(n.Mark(), k, "must not be empty");
             c.database = *v;
             return Ok{};
         }},
        {"retention",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             if (auto st = check_keys(p, n, k, {"five_minute_days", "hourly_days", "daily_days", "monthly_months"});
                 !st)
                 return st;
             struct Item {
                 const char* name;
                 int* field;
                 uint64_t min;
             } items[] = {{"five_minute_days", &c.retention.five_minute_days, 32},
                          {"hourly_days", &c.retention.hourly_days, 1},
                          {"daily_days", &c.retention.daily_days, 1},
                          {"monthly_months", &c.retention.monthly_months, 1}};
             for (const auto& it : items) {
                 if (!n[it.name]) continue;
                 // 0 keeps forever; otherwise at least the minimum (five-minute points must
                 // cover a whole billing month for the 95th percentile).
                 auto v = p.bounded(n[it.name], k + "." + it.name, 0, 100000);
                 if (!v) return v.error();
                 if (*v != 0 && *v < it.min)
                     return p.error_at(n[it.name].Mark(), k + "." + it.name,
                                       "must be 0 (forever) or at least " + std::to_string(it.min));
                 *it.field = static_cast<int>(*v);
             }
             return Ok{};
         }},
        {"adjustments",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             if (!n.IsSequence()) return p.error_at(n.Mark(), k, "expected a list of adjustments");
             c.adjustments.clear();
             for (const auto& item : n) {
                 Adjustment a;
                 if (auto st = parse_adjustment(p, item, k, a); !st) return st;
                 c.adjustments.push_back(a);
             }
             return Ok{};
         }},
        {"metrics_listen",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<std::string>(n, k, "HOST:PORT, or \"\" for off");
             if (!v) return v.error();
             if (!v->empty())
                 if (auto a = parse_listen(*v); !a) return p.error_at(n.Mark(), k, a.error().message());
             c.metrics_listen = *v;
             return Ok{};
         }},
        {"metrics_mac_series",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 0, 1000000);
             if (!v) return v.error();
             c.metrics_mac_series = *v;
             return Ok{};
         }},
        {"reports",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_reports_config(p, n, k, c.reports);
         }},
        {"customer_report",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_customer_report_config(p, n, k, c.customer_report);
         }},
        {"push",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_push_config(p, n, k, c.push);
         }},
        {"log_dir",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<std::string>(n, k, "a directory path");
             if (!v) return v.error();
             c.log_dir = *v;
             return Ok{};
         }},
        {"host_watch",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_host_watch(p, n, k, c.host_watch);
         }},
        {"log_level",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<std::string>(n, k, "a log level");
             if (!v) return v.error();
             static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
             for (const char* l : levels)
                 if (*v == l) {
                     c.log_level = *v;
                     return Ok{};
                 }
             return p.error_at(n.Mark(), k, "expected trace, debug, info, warn or error, got '" + *v + "'");
         }},
    };
    return h;
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source) {
    Parser p(source);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return p.error_at(e.mark, "", "YAML syntax error: " + e.msg);
    }
    Config c;
    c.source = source;
    if (root.IsNull()) return c;  // an empty file: defaults
    if (!root.IsMap()) return p.error_at(root.Mark(), "", "expected a mapping of keys at the top level");
    for (const auto& kv : root) {
        std::string key = kv.first.Scalar();
        auto h = handlers().find(key);
        if (h == handlers().end()) return p.error_at(kv.first.Mark(), key, "unknown key");
        // A key without a value would otherwise be reported at the next key's position.
        if (kv.second.IsNull()) return p.error_at(kv.first.Mark(), key, "missing value");
        if (auto st = h->second(p, kv.second, key, c); !st) return st.error();
    }
    return c;
}

Result<Config> load_config_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return Error("cannot read config file", path, EISDIR);
    std::ifstream in(path);
    if (!in) return Error("cannot read config file", path, errno);
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

Result<Config> load_config(const std::string& explicit_path) {
    if (!explicit_path.empty()) return load_config_file(explicit_path);
    if (std::filesystem::exists(kDefaultConfigPath)) return load_config_file(kDefaultConfigPath);
    return Config{};
}

std::string dump_config(const Config& c) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "interfaces" << YAML::Value << YAML::Flow << c.interfaces;
    out << YAML::Key << "xdp_mode" << YAML::Value << to_string(c.xdp_mode);
    out << YAML::Key << "drain_interval" << YAML::Value << c.drain_interval.count();
    out << YAML::Key << "mac_capacity" << YAML::Value << c.mac_capacity;
    out << YAML::Key << "flow_capacity" << YAML::Value << c.flow_capacity;
    out << YAML::Key << "flows" << YAML::Value << c.flows;
    out << YAML::Key << "log_level" << YAML::Value << c.log_level;
    out << YAML::Key << "log_dir" << YAML::Value << c.log_dir;
    out << YAML::Key << "metrics_listen" << YAML::Value << c.metrics_listen;
    out << YAML::Key << "metrics_mac_series" << YAML::Value << c.metrics_mac_series;
    out << YAML::Key << "timezone" << YAML::Value << c.timezone;
    out << YAML::Key << "peak_windows" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& w : c.peak_windows) out << format_peak_window(w);
    out << YAML::EndSeq;
    out << YAML::Key << "billing_day" << YAML::Value << c.billing_day;
    out << YAML::Key << "database" << YAML::Value << c.database;
    out << YAML::Key << "retention" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "five_minute_days" << YAML::Value << c.retention.five_minute_days;
    out << YAML::Key << "hourly_days" << YAML::Value << c.retention.hourly_days;
    out << YAML::Key << "daily_days" << YAML::Value << c.retention.daily_days;
    out << YAML::Key << "monthly_months" << YAML::Value << c.retention.monthly_months;
    out << YAML::EndMap;
    out << YAML::Key << "adjustments" << YAML::Value << YAML::BeginSeq;
    for (const auto& a : c.adjustments) {
        out << YAML::BeginMap;
        if (!a.iface.empty()) out << YAML::Key << "iface" << YAML::Value << a.iface;
        if (a.mac) out << YAML::Key << "mac" << YAML::Value << format_mac(*a.mac);
        out << YAML::Key << "direction" << YAML::Value << a.direction;
        out << YAML::Key << "factor" << YAML::Value << a.factor;
        out << YAML::Key << "offset_bytes" << YAML::Value << a.offset_bytes;
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::Key << "host_watch" << YAML::Value;
    dump_host_watch(out, c.host_watch);
    out << YAML::Key << "reports" << YAML::Value;
    dump_reports_config(out, c.reports);
    out << YAML::Key << "customer_report" << YAML::Value;
    dump_customer_report_config(out, c.customer_report);
    if (c.push.configured) {
        out << YAML::Key << "push" << YAML::Value;
        dump_push_config(out, c.push);
    }
    if (c.export_.enabled) dump_export_config(out, c.export_);
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace pf
