#include "peakflow/collector/collector_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/daemon/metrics.hpp"

namespace pf {

namespace {

// "90", "90s", "2m", "1h", "7d" as seconds; nullopt for anything else.
std::optional<int64_t> parse_duration(const std::string& v) {
    size_t digits = 0;
    while (digits < v.size() && digits < 12 && std::isdigit(static_cast<unsigned char>(v[digits]))) digits++;
    if (digits == 0 || v.size() > digits + 1) return std::nullopt;
    const int64_t n = std::stoll(v.substr(0, digits));
    const char unit = digits < v.size() ? v[digits] : 's';
    if (unit == 's') return n;
    if (unit == 'm') return n * 60;
    if (unit == 'h') return n * 3600;
    if (unit == 'd') return n * 86400;
    return std::nullopt;
}

Status read_duration(const Parser& p, const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi,
                     int64_t& out) {
    std::string v;
    if (auto st = p.read(n, key, "a duration", v); !st) return st;
    auto d = parse_duration(v);
    if (!d)
        return p.error_at(n.Mark(), key, "expected seconds, or a number with s, m, h or d (2m, 7d), got '" + v + "'");
    if (*d < lo || *d > hi)
        return p.error_at(
            n.Mark(), key,
            "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " seconds, got " + v);
    out = *d;
    return Ok{};
}

// Why `t` cannot name a type ("" when it can): it becomes a key of service_status.
std::string type_key_problem(const std::string& t) {
    const bool ok = !t.empty() && t.size() <= 64 && t != "other" && t != "database" &&
                    std::all_of(t.begin(), t.end(),
                                [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
    return ok ? "" : "'" + t + "': use 1 to 64 of a-z 0-9 _, not 'other' or 'database'";
}

Status parse_heartbeat_types(const Parser& p, const YAML::Node& n, const std::string& key, HeartbeatConfig& h) {
    if (!n.IsSequence()) return p.error_at(n.Mark(), key, "expected a list of {prefix, type, timeout}");
    h.types.clear();
    for (const auto& item : n) {
        if (auto st = check_keys(p, item, key, {"prefix", "type", "timeout"}); !st) return st;
        for (const char* req : {"prefix", "type", "timeout"})
            if (!item[req] || item[req].IsNull()) return p.error_at(item.Mark(), key + "." + req, "missing");
        HeartbeatType t;
        if (auto st = p.read_child_checked(item, key, "prefix", "a string", t.prefix,
                                           [&](const std::string& v) -> std::string {
                                               if (v.empty()) return "must not be empty";
                                               for (const auto& o : h.types)
                                                   if (o.prefix == v) return "'" + v + "' is listed twice";
                                               return "";
                                           });
            !st)
            return st;
        if (auto st = p.read_child_checked(item, key, "type", "a string", t.type, type_key_problem); !st) return st;
        if (auto st = read_duration(p, item["timeout"], key + ".timeout", 1, 86400, t.timeout); !st) return st;
        h.types.push_back(std::move(t));
    }
    return Ok{};
}

// heartbeat.traffic_tables: per edge, the keys given replace the requirements' default.
Status parse_traffic_tables(const Parser& p, const YAML::Node& n, const std::string& key, HeartbeatConfig& h) {
    if (!n.IsMap()) return p.error_at(n.Mark(), key, "expected a map of edge: {table, time, source, target}");
    for (const auto& kv : n) {
        const std::string edge = kv.first.as<std::string>();
        const std::string at = key + "." + edge;
        auto t = std::find_if(h.traffic_tables.begin(), h.traffic_tables.end(),
                              [&](const TrafficTable& x) { return x.edge == edge; });
        if (t == h.traffic_tables.end())
            return p.error_at(kv.first.Mark(), at,
                              "not an edge of traffic_status: use data_collection_to_kafka, kafka_to_database, "
                              "database_to_backend, redis_to_backend or backend_to_frontend");
        const YAML::Node& e = kv.second;
        if (!e.IsMap()) return p.error_at(e.Mark(), at, "expected a map {table, time, time_type, source, target}");
        if (auto st = check_keys(p, e, at,
                                 {"table", "time", "time_type", "source", "target", "source_label", "target_label"});
            !st)
            return st;
        auto name = [](bool with_schema, bool optional) {
            return [=](const std::string& v) { return optional && v.empty() ? "" : sql_name_problem(v, with_schema); };
        };
        if (auto st = p.read_child_checked(e, at, "table", "a table name", t->table, name(true, false)); !st) return st;
        if (auto st = p.read_child_checked(e, at, "time", "a column name", t->time, name(false, false)); !st) return st;
        if (auto st = p.read_child_checked(e, at, "time_type", "timestamp, unix or unix_ms", t->time_type,
                                           [](const std::string& v) {
                                               return v == "timestamp" || v == "unix" || v == "unix_ms"
                                                          ? ""
                                                          : "expected timestamp, unix or unix_ms, got '" + v + "'";
                                           });
            !st)
            return st;
        if (auto st = p.read_child_checked(e, at, "source", "a column name", t->source, name(false, true)); !st)
            return st;
        if (auto st = p.read_child_checked(e, at, "target", "a column name", t->target, name(false, true)); !st)
            return st;
        if (auto st = p.read_child(e, at, "source_label", "a string", t->source_label); !st) return st;
        if (auto st = p.read_child(e, at, "target_label", "a string", t->target_label); !st) return st;
    }
    return Ok{};
}

Status parse_heartbeat(const Parser& p, const YAML::Node& n, const std::string& k, HeartbeatConfig& h) {
    if (auto st =
            check_keys(p, n, k,
                       {"types", "other_timeout", "retention", "allow_from", "databases", "probe_interval",
                        "probe_timeout", "traffic_source", "traffic_database", "traffic_tables", "traffic_timeout"});
        !st)
        return st;
    if (n["types"])
        if (auto st = parse_heartbeat_types(p, n["types"], k + ".types", h); !st) return st;
    if (n["other_timeout"])
        if (auto st = read_duration(p, n["other_timeout"], k + ".other_timeout", 1, 86400, h.other_timeout); !st)
            return st;
    if (n["retention"])
        if (auto st = read_duration(p, n["retention"], k + ".retention", 3600, 3650 * 86400LL, h.retention); !st)
            return st;
    if (n["allow_from"])
        if (auto st = p.read_list(n["allow_from"], k + ".allow_from", "a list of address blocks (10.0.0.0/8)",
                                  "an address block", h.allow_from,
                                  [](const std::string& v) {
                                      auto c = Cidr::parse(v);
                                      return c ? std::string() : c.error().message();
                                  });
            !st)
            return st;
    // The error never quotes the entry: it may hold a password.
    if (n["databases"])
        if (auto st = p.read_list(n["databases"], k + ".databases", "a list of PostgreSQL connection strings",
                                  "a connection string", h.databases, conninfo_problem);
            !st)
            return st;
    if (auto st = p.read_child_seconds(n, k, "probe_interval", 1, 3600, h.probe_interval); !st) return st;
    if (auto st = p.read_child_seconds(n, k, "probe_timeout", 0.1, 60, h.probe_timeout); !st) return st;
    if (auto st = p.read_child_checked(n, k, "traffic_source", "flows or tables", h.traffic_source,
                                       [](const std::string& v) {
                                           return v == "flows" || v == "tables"
                                                      ? ""
                                                      : "expected flows or tables, got '" + v + "'";
                                       });
        !st)
        return st;
    if (auto st = p.read_child_checked(n, k, "traffic_database", "a connection string", h.traffic_database,
                                       [](const std::string& v) { return v.empty() ? "" : conninfo_problem(v); });
        !st)
        return st;
    if (n["traffic_tables"])
        if (auto st = parse_traffic_tables(p, n["traffic_tables"], k + ".traffic_tables", h); !st) return st;
    if (auto st = p.read_child_seconds(n, k, "traffic_timeout", 0.1, 60, h.traffic_timeout); !st) return st;
    if (h.traffic_source == "tables" && h.traffic_database.empty()) {
        if (h.databases.empty())
            return p.error_at(n["traffic_source"].Mark(), k + ".traffic_source",
                              "tables needs heartbeat.traffic_database (or a heartbeat.databases entry): the "
                              "PostgreSQL database that holds the tables");
        h.traffic_database = h.databases.front();
    }
    return Ok{};
}

Status parse_key(const Parser& p, const YAML::Node& n, const std::string& k, CollectorConfig& c) {
    if (k == "listen")
        return p.read_checked(n, k, "HOST:PORT", c.listen, [](const std::string& v) {
            auto a = parse_listen(v);
            return a ? std::string() : a.error().message();
        });
    if (k == "database")
        return p.read_checked(n, k, "a file path or a PostgreSQL connection string", c.database,
                              [](const std::string& v) -> std::string {
                                  if (v.empty()) return "must not be empty";
                                  return is_postgres_target(v) ? conninfo_problem(v) : "";
                              });
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
    if (k == "fleet_name")
        return p.read_checked(n, k, "a name", c.fleet_name, [](const std::string& v) {
            if (v.size() > 128) return std::string("at most 128 bytes");
            for (unsigned char ch : v)
                if (ch < 0x20 || ch == 0x7f) return std::string("no control characters");
            return std::string();
        });
    if (k == "push") return parse_push_config(p, n, k, c.push);
    if (k == "heartbeat") return parse_heartbeat(p, n, k, c.heartbeat);
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
    o.fleet_name = fleet_name;
    o.heartbeat = heartbeat;
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
    static const char* const kKeys[] = {
        "listen",  "database",  "offline_after", "tls",  "allow_plain_http",         "alert_file", "forward_alerts",
        "log_dir", "log_level", "timezone",      "push", "push_failure_alert_after", "heartbeat",  "fleet_name"};
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
    out << YAML::Key << "database" << YAML::Value << redact_database(c.database);  // never the password
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
    out << YAML::Key << "fleet_name" << YAML::Value << c.fleet_name;
    if (c.push.configured) {
        out << YAML::Key << "push" << YAML::Value;
        dump_push_config(out, c.push);
    }
    const HeartbeatConfig& h = c.heartbeat;
    out << YAML::Key << "heartbeat" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "types" << YAML::Value << YAML::BeginSeq;
    for (const auto& t : h.types)
        out << YAML::Flow << YAML::BeginMap << YAML::Key << "prefix" << YAML::Value << t.prefix << YAML::Key << "type"
            << YAML::Value << t.type << YAML::Key << "timeout" << YAML::Value << t.timeout << YAML::EndMap;
    out << YAML::EndSeq;
    out << YAML::Key << "other_timeout" << YAML::Value << h.other_timeout;
    out << YAML::Key << "retention" << YAML::Value << h.retention;
    out << YAML::Key << "allow_from" << YAML::Value << YAML::Flow << h.allow_from;
    out << YAML::Key << "databases" << YAML::Value << YAML::BeginSeq;
    for (const auto& d : h.databases) out << mask_conninfo(d);  // never the password
    out << YAML::EndSeq;
    out << YAML::Key << "probe_interval" << YAML::Value << h.probe_interval;
    out << YAML::Key << "probe_timeout" << YAML::Value << h.probe_timeout;
    out << YAML::Key << "traffic_source" << YAML::Value << h.traffic_source;
    out << YAML::Key << "traffic_database" << YAML::Value
        << (h.traffic_database.empty() ? std::string() : mask_conninfo(h.traffic_database));
    out << YAML::Key << "traffic_timeout" << YAML::Value << h.traffic_timeout;
    out << YAML::Key << "traffic_tables" << YAML::Value << YAML::BeginMap;
    for (const auto& t : h.traffic_tables) {
        out << YAML::Key << t.edge << YAML::Value << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "table" << YAML::Value << t.table << YAML::Key << "time" << YAML::Value << t.time;
        out << YAML::Key << "time_type" << YAML::Value << t.time_type;
        if (t.source.empty())
            out << YAML::Key << "source_label" << YAML::Value << t.source_label;
        else
            out << YAML::Key << "source" << YAML::Value << t.source;
        if (t.target.empty())
            out << YAML::Key << "target_label" << YAML::Value << t.target_label;
        else
            out << YAML::Key << "target" << YAML::Value << t.target;
        out << YAML::EndMap;
    }
    out << YAML::EndMap;
    out << YAML::EndMap;
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace pf
