#include "peakflow/app/config.hpp"

#include "peakflow/common/config_parser.hpp"
#include "peakflow/daemon/metrics.hpp"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace pf {
namespace {

using KeyHandler = std::function<Status(const Parser&, const YAML::Node&, const std::string&, Config&)>;

const std::map<std::string, KeyHandler>& handlers() {
    static const std::map<std::string, KeyHandler> h = {
        {"export",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_export_config(p, n, k, c.export_);
         }},
        {"interfaces",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read_list(n, k, "a list of interface names", "an interface name", c.interfaces,
                                [](const std::string& name) {
                                    // The kernel's rule (dev_valid_name), in printable ASCII: a name
                                    // `config check` prints is one it reads back the same.
                                    bool ok = !name.empty() && name.size() <= 15 && name != "." && name != "..";
                                    for (unsigned char ch : name)
                                        ok = ok && ch > 0x20 && ch < 0x7f && ch != '/' && ch != ':';
                                    if (!ok) return "'" + name + "' is not a valid interface name";
                                    return std::string();
                                });
         }},
        {"xdp_mode",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             std::string v;
             if (auto st = p.read(n, k, "auto, native, generic or off", v); !st) return st;
             auto m = parse_xdp_mode(v);
             if (!m) return p.error_at(n.Mark(), k, "expected auto, native, generic or off, got '" + v + "'");
             c.xdp_mode = *m;
             return Ok{};
         }},
        {"drain_interval",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             uint32_t v = 0;
             if (auto st = p.read_bounded(n, k, 1, 3600, v); !st) return st;
             c.drain_interval = std::chrono::seconds(v);
             return Ok{};
         }},
        {"mac_capacity",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read_bounded(n, k, 16, 1u << 20, c.mac_capacity);
         }},
        {"flow_capacity",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read_bounded(n, k, 16, 1u << 22, c.flow_capacity);
         }},
        {"flows",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read(n, k, "true or false", c.flows);
         }},
        {"metrics_listen",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read_checked(n, k, "HOST:PORT, or \"\" for off", c.metrics_listen, [](const std::string& v) {
                 if (v.empty()) return std::string();
                 auto a = parse_listen(v);
                 return a ? std::string() : a.error().message();
             });
         }},
        {"metrics_mac_series",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read_bounded(n, k, 0, 1000000, c.metrics_mac_series);
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
        {"collector",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_uplink_config(p, n, k, c.collector);
         }},
        {"heartbeats",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_heartbeat_checks(p, n, k, c.heartbeats);
         }},
        {"log_dir",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read(n, k, "a directory path", c.log_dir);
         }},
        {"host_watch",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return parse_host_watch(p, n, k, c.host_watch);
         }},
        {"log_level",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             return p.read_checked(n, k, "a log level", c.log_level, [](const std::string& v) {
                 for (const char* l : {"trace", "debug", "info", "warn", "error"})
                     if (v == l) return std::string();
                 return "expected trace, debug, info, warn or error, got '" + v + "'";
             });
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
    return parse_config_node(root, source);
}

Result<Config> parse_config_node(const YAML::Node& root, const std::string& source) {
    Parser p(source);
    Config c;
    c.source = source;
    if (root.IsNull()) return c;  // an empty file: defaults
    if (!root.IsMap()) return p.error_at(root.Mark(), "", "expected a mapping of keys at the top level");
    for (const auto& kv : root) {
        std::string key = kv.first.Scalar();
        auto h = handlers().find(key);
        if (h == handlers().end() && !is_accounting_key(key)) return p.error_at(kv.first.Mark(), key, "unknown key");
        // A key without a value would otherwise be reported at the next key's position.
        if (kv.second.IsNull()) return p.error_at(kv.first.Mark(), key, "missing value");
        Status st = h != handlers().end() ? h->second(p, kv.second, key, c)
                                          : parse_accounting_key(p, kv.second, key, c.accounting);
        if (!st) return st.error();
    }
    if (!c.heartbeats.empty() && !c.collector.configured)
        return p.error_at(root["heartbeats"].Mark(), "heartbeats",
                          "heartbeats are sent through the collector link: add a collector: section");
    c.collector.heartbeats = c.heartbeats;
    if (auto st = add_collector_sink(p, root["push"], c.collector, c.push); !st) return st.error();
    return c;
}

Result<Config> load_config_file(const std::string& path) {
    auto text = read_config_text(path);
    if (!text) return text.error();
    return parse_config(*text, path);
}

Result<Config> load_config(const std::string& explicit_path) {
    if (!explicit_path.empty()) return load_config_file(explicit_path);
    if (std::filesystem::exists(kDefaultConfigPath)) return load_config_file(kDefaultConfigPath);
    return Config{};
}

std::string config_readable_warning(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !(st.st_mode & S_IROTH)) return "";
    // A file in a directory others cannot enter (a 0700 home or temp directory) is safe.
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    if (ec) return "";
    for (auto dir = abs.parent_path(); !dir.empty(); dir = dir.parent_path()) {
        struct stat ds {};
        if (::stat(dir.c_str(), &ds) != 0 || !(ds.st_mode & S_IXOTH)) return "";
        if (dir == dir.root_path()) break;
    }
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "config " + path + " is readable by every local user (mode " + mode +
           ") and may hold tokens and passwords: chmod o-r " + path;
}

std::string dump_config(const Config& c) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "interfaces" << YAML::Value << YAML::Flow << c.interfaces;
    out << YAML::Key << "xdp_mode" << YAML::Value << to_string(c.xdp_mode);
    out << YAML::Key << "drain_interval" << YAML::Value
        << std::chrono::duration_cast<std::chrono::seconds>(c.drain_interval).count();
    out << YAML::Key << "mac_capacity" << YAML::Value << c.mac_capacity;
    out << YAML::Key << "flow_capacity" << YAML::Value << c.flow_capacity;
    out << YAML::Key << "flows" << YAML::Value << c.flows;
    out << YAML::Key << "log_level" << YAML::Value << c.log_level;
    out << YAML::Key << "log_dir" << YAML::Value << c.log_dir;
    out << YAML::Key << "metrics_listen" << YAML::Value << c.metrics_listen;
    out << YAML::Key << "metrics_mac_series" << YAML::Value << c.metrics_mac_series;
    dump_accounting_config(out, c.accounting);
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
    if (c.collector.configured) {
        out << YAML::Key << "collector" << YAML::Value;
        dump_uplink_config(out, c.collector);
    }
    if (!c.heartbeats.empty()) {
        out << YAML::Key << "heartbeats" << YAML::Value;
        dump_heartbeat_checks(out, c.heartbeats);
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace pf
