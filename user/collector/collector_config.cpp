#include "peakflow/collector/collector_config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/daemon/metrics.hpp"

namespace pf {

namespace {

Status parse_key(const Parser& p, const YAML::Node& n, const std::string& k, CollectorConfig& c) {
    if (k == "listen")
        return p.read_checked(n, k, "HOST:PORT", c.listen, [](const std::string& v) {
            auto a = parse_listen(v);
            return a ? std::string() : a.error().message();
        });
    if (k == "database")
        return p.read_checked(n, k, "a file path", c.database,
                              [](const std::string& v) { return v.empty() ? "must not be empty" : ""; });
    if (k == "offline_after") return p.read_bounded(n, k, 1, 100, c.offline_after);
    if (k == "push_failure_alert_after") return p.read_bounded(n, k, 0, 1000, c.push_failure_alert_after);
    if (k == "tls") {
        if (auto st = check_keys(p, n, k, {"cert", "key"}); !st) return st;
        if (auto st = p.read_child(n, k, "cert", "a file path", c.tls_cert); !st) return st;
        if (auto st = p.read_child(n, k, "key", "a file path", c.tls_key); !st) return st;
        if (c.tls_cert.empty() != c.tls_key.empty())
            return p.error_at(n.Mark(), k, "give both cert and key (PEM files)");
        return Ok{};
    }
    if (k == "allow_plain_http") return p.read(n, k, "true or false", c.allow_plain_http);
    if (k == "alert_file") return p.read(n, k, "a file path", c.alert_file);
    if (k == "forward_alerts") return p.read(n, k, "true or false", c.forward_alerts);
    if (k == "log_dir") return p.read(n, k, "a directory path", c.log_dir);
    if (k == "log_level")
        return p.read_checked(n, k, "a log level", c.log_level, [](const std::string& v) {
            for (const char* l : {"trace", "debug", "info", "warn", "error"})
                if (v == l) return std::string();
            return "expected trace, debug, info, warn or error, got '" + v + "'";
        });
    if (k == "timezone")
        return p.read_checked(n, k, "a time zone name", c.timezone, [](const std::string& v) {
            auto cal = Calendar::create(v, {PeakWindow{}}, 1);
            return cal ? std::string() : cal.error().message();
        });
    if (k == "push") return parse_push_config(p, n, k, c.push);
    return p.error_at(n.Mark(), k, "unknown key");
}

}  // namespace

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

bool CollectorConfig::plain_non_loopback() const {
    return !tls() && !is_loopback_host(listen_host);
}

CollectorOptions CollectorConfig::server_options() const {
    CollectorOptions o;
    o.host = listen_host;
    o.port = listen_port;
    o.tls_cert = tls_cert;
    o.tls_key = tls_key;
    o.database = database;
    o.offline_after = offline_after;
    o.push_failure_alert_after = push_failure_alert_after;
    o.alert_file = alert_file;
    o.forward_alerts = forward_alerts;
    o.push = push;
    o.timezone = timezone;
    return o;
}

Result<CollectorConfig> parse_collector_config(const std::string& text, const std::string& source) {
    Parser p(source);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return p.error_at(e.mark, "", "YAML syntax error: " + e.msg);
    }
    CollectorConfig c;
    c.source = source;
    if (root.IsNull()) return c;
    if (!root.IsMap()) return p.error_at(root.Mark(), "", "expected a mapping of keys at the top level");
    static const char* const kKeys[] = {"listen",           "database",   "offline_after",  "tls",
                                        "allow_plain_http", "alert_file", "forward_alerts", "log_dir",
                                        "log_level",        "timezone",   "push",           "push_failure_alert_after"};
    YAML::Mark listen_mark = root.Mark();
    for (const auto& kv : root) {
        const std::string key = kv.first.Scalar();
        bool known = false;
        for (const char* k : kKeys) known = known || key == k;
        if (!known) return p.error_at(kv.first.Mark(), key, "unknown key");
        if (kv.second.IsNull()) return p.error_at(kv.first.Mark(), key, "missing value");
        if (key == "listen") listen_mark = kv.second.Mark();
        if (auto st = parse_key(p, kv.second, key, c); !st) return st.error();
    }
    auto addr = parse_listen(c.listen);
    if (!addr) return p.error_at(listen_mark, "listen", addr.error().message());
    c.listen_host = addr->host;
    c.listen_port = addr->port;
    if (c.plain_non_loopback() && !c.allow_plain_http)
        return p.error_at(listen_mark, "listen",
                          "'" + c.listen +
                              "' is not a loopback address: agent tokens and traffic would cross the network in "
                              "plain HTTP; set tls: {cert, key}, or allow_plain_http: true");
    return c;
}

Result<CollectorConfig> load_collector_config_file(const std::string& path) {
    auto text = read_config_text(path);
    if (!text) return text.error();
    return parse_collector_config(*text, path);
}

Result<CollectorConfig> load_collector_config(const std::string& explicit_path) {
    if (!explicit_path.empty()) return load_collector_config_file(explicit_path);
    std::error_code ec;
    if (std::filesystem::exists(kDefaultCollectorConfigPath, ec))
        return load_collector_config_file(kDefaultCollectorConfigPath);
    return CollectorConfig{};
}

std::string dump_collector_config(const CollectorConfig& c) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "listen" << YAML::Value << c.listen;
    out << YAML::Key << "database" << YAML::Value << c.database;
    out << YAML::Key << "offline_after" << YAML::Value << c.offline_after;
    out << YAML::Key << "push_failure_alert_after" << YAML::Value << c.push_failure_alert_after;
    if (c.tls()) {
        out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "cert" << YAML::Value << c.tls_cert;
        out << YAML::Key << "key" << YAML::Value << c.tls_key;  // a path, not the key itself
        out << YAML::EndMap;
    }
    out << YAML::Key << "allow_plain_http" << YAML::Value << c.allow_plain_http;
    out << YAML::Key << "alert_file" << YAML::Value << c.alert_file;
    out << YAML::Key << "forward_alerts" << YAML::Value << c.forward_alerts;
    out << YAML::Key << "log_dir" << YAML::Value << c.log_dir;
    out << YAML::Key << "log_level" << YAML::Value << c.log_level;
    out << YAML::Key << "timezone" << YAML::Value << c.timezone;
    if (c.push.configured) {
        out << YAML::Key << "push" << YAML::Value;
        dump_push_config(out, c.push);
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace pf
