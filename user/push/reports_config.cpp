// The `reports:` and `customer_report:` sections of the config (reports_config.hpp); the
// services that act on them are push_reports.cpp and customer_report.cpp.
#include "peakflow/push/reports_config.hpp"

#include "peakflow/common/redact.hpp"
#include "peakflow/common/secret_file.hpp"

#include <cstdio>
#include <exception>
#include <set>

namespace pf {

// ---- reports: ----------------------------------------------------------------------------

Result<int> parse_time_of_day(const std::string& s) {
    int h = -1, m = -1;
    char tail = 0;
    if (s.size() != 5 || std::sscanf(s.c_str(), "%2d:%2d%c", &h, &m, &tail) != 2 || s[2] != ':' || h < 0 || h > 23 ||
        m < 0 || m > 59)
        return Error("'" + s + "' is not a time of day HH:MM (00:00-23:59)");
    return h * 60 + m;
}

std::string format_time_of_day(int minutes) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60 % 24, minutes % 60);
    return buf;
}

Status parse_reports_config(const Parser& p, const YAML::Node& n, const std::string& key, ReportsConfig& out) {
    if (auto st = check_keys(
            p, n, key, {"enabled", "daily_at", "daily", "monthly", "on_start", "top_macs", "catch_up_days", "sinks"});
        !st)
        return st;
    for (auto [name, field] : {std::pair{"enabled", &out.enabled}, std::pair{"daily", &out.daily},
                               std::pair{"monthly", &out.monthly}, std::pair{"on_start", &out.on_start}})
        if (auto st = p.read_child(n, key, name, "true or false", *field); !st) return st;
    if (n["daily_at"]) {
        std::string text;
        if (auto st = p.read(n["daily_at"], key + ".daily_at", "a time HH:MM", text); !st) return st;
        auto m = parse_time_of_day(text);
        if (!m) return p.error_at(n["daily_at"].Mark(), key + ".daily_at", m.error().message());
        out.daily_at_min = *m;
    }
    if (auto st = p.read_child_bounded(n, key, "top_macs", 0, 100, out.top_macs); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "catch_up_days", 0, 62, out.catch_up_days); !st) return st;
    if (n["sinks"])
        if (auto st = p.read_list(n["sinks"], key + ".sinks", "a list of push sink names", "a sink name", out.sinks);
            !st)
            return st;
    return Ok{};
}

void dump_reports_config(YAML::Emitter& e, const ReportsConfig& c) {
    e << YAML::BeginMap;
    e << YAML::Key << "enabled" << YAML::Value << c.enabled;
    e << YAML::Key << "daily_at" << YAML::Value << YAML::DoubleQuoted << format_time_of_day(c.daily_at_min);
    e << YAML::Key << "daily" << YAML::Value << c.daily;
    e << YAML::Key << "monthly" << YAML::Value << c.monthly;
    e << YAML::Key << "on_start" << YAML::Value << c.on_start;
    e << YAML::Key << "top_macs" << YAML::Value << c.top_macs;
    e << YAML::Key << "catch_up_days" << YAML::Value << c.catch_up_days;
    e << YAML::Key << "sinks" << YAML::Value << YAML::Flow << c.sinks;
    e << YAML::EndMap;
}

// ---- customer_report: --------------------------------------------------------------------

namespace {

Status parse_static(const Parser& p, const YAML::Node& n, const std::string& key, StaticField& f) {
    if (!n.IsScalar()) return p.error_at(n.Mark(), key, "expected a number or a string");
    f.value = n.Scalar();
    // A plain scalar that is an integer stays a number; quoted ("12") is a string.
    f.number = false;
    if (n.Tag() != "!" && !f.value.empty()) {
        try {
            size_t used = 0;
            (void)std::stoll(f.value, &used);
            f.number = used == f.value.size();
        } catch (const std::exception&) {
        }
    }
    return Ok{};
}

}  // namespace

Status parse_customer_report_config(const Parser& p, const YAML::Node& n, const std::string& key,
                                    CustomerReportConfig& out) {
    if (auto st = check_keys(p, n, key,
                             {"enabled", "sink", "iface", "macs", "direction", "provider_id", "provider_uiid", "isp_id",
                              "device_type", "fields", "query_url", "query_headers", "verify_hours", "catch_up_hours",
                              "query_url_file", "query_headers_file"});
        !st)
        return st;
    if (auto st = p.read_child(n, key, "enabled", "true or false", out.enabled); !st) return st;
    for (auto [name, field] : {std::pair{"sink", &out.sink}, std::pair{"iface", &out.iface}})
        if (auto st = p.read_child(n, key, name, "a string", *field); !st) return st;
    if (auto st = read_secret_child(p, n, key, "query_url", out.query_url); !st) return st;
    if (!out.query_url.empty() && out.query_url.rfind("http://", 0) != 0 && out.query_url.rfind("https://", 0) != 0)
        return p.error_at(n["query_url"].Mark(), key + ".query_url", "expected an http:// or https:// URL");
    if (auto st = p.read_child_checked(n, key, "direction", "tx, rx or both", out.direction,
                                       [](const std::string& v) {
                                           return v == "tx" || v == "rx" || v == "both"
                                                      ? std::string()
                                                      : "expected tx, rx or both, got '" + v + "'";
                                       });
        !st)
        return st;
    if (n["macs"]) {
        const auto& m = n["macs"];
        if (!m.IsSequence()) return p.error_at(m.Mark(), key + ".macs", "expected a list of MAC addresses");
        out.macs.clear();
        for (const auto& item : m) {
            std::string text;
            if (auto st = p.read(item, key + ".macs", "a MAC address", text); !st) return st;
            auto mac = parse_mac(text);
            if (!mac) return p.error_at(item.Mark(), key + ".macs", "'" + text + "' is not a MAC address");
            out.macs.push_back(*mac);
        }
    }
    for (auto* f : {&out.provider_id, &out.provider_uiid, &out.isp_id, &out.device_type}) {
        if (!n[f->key]) continue;
        if (auto st = parse_static(p, n[f->key], key + "." + f->key, *f); !st) return st;
    }
    static const std::set<std::string> reserved = {"flux_dat", "flux_hour", "provider_id", "provider_uiid",
                                                   "isp_id",   "mac",       "version",     "device_type",
                                                   "v0",       "v1",        "v2",          "v3",
                                                   "v4",       "v5",        "v6",          "v7",
                                                   "v8",       "v9",        "v10",         "v11"};
    if (n["fields"]) {
        const auto& m = n["fields"];
        if (!m.IsMap()) return p.error_at(m.Mark(), key + ".fields", "expected a mapping of field: value");
        out.fields.clear();
        for (const auto& kv : m) {
            StaticField f;
            f.key = kv.first.Scalar();
            if (reserved.count(f.key))
                return p.error_at(kv.first.Mark(), key + ".fields." + f.key, "is a field the report sets itself");
            if (auto st = parse_static(p, kv.second, key + ".fields." + f.key, f); !st) return st;
            out.fields.push_back(f);
        }
    }
    if (auto st = read_secret_headers(p, n, key, "query_headers", out.query_headers); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "verify_hours", 1, 24 * 31, out.verify_hours); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "catch_up_hours", 1, 24 * 31, out.catch_up_hours); !st) return st;
    if (out.enabled && out.sink.empty())
        return p.error_at(n.Mark(), key + ".sink",
                          "an enabled customer report needs the name of a push sink of type http");
    return Ok{};
}

void dump_customer_report_config(YAML::Emitter& e, const CustomerReportConfig& c) {
    auto scalar = [&](const StaticField& f) {
        if (f.number)
            e << YAML::Key << f.key << YAML::Value << f.value;
        else
            e << YAML::Key << f.key << YAML::Value << YAML::DoubleQuoted << f.value;
    };
    e << YAML::BeginMap;
    e << YAML::Key << "enabled" << YAML::Value << c.enabled;
    e << YAML::Key << "sink" << YAML::Value << c.sink;
    e << YAML::Key << "iface" << YAML::Value << c.iface;
    e << YAML::Key << "macs" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& m : c.macs) e << format_mac(m);
    e << YAML::EndSeq;
    e << YAML::Key << "direction" << YAML::Value << c.direction;
    for (const auto* f : {&c.provider_id, &c.provider_uiid, &c.isp_id, &c.device_type}) scalar(*f);
    e << YAML::Key << "fields" << YAML::Value << YAML::BeginMap;
    for (const auto& f : c.fields) scalar(f);
    e << YAML::EndMap;
    // The customer's API credentials: in the URL (user info, query) or in a header.
    e << YAML::Key << "query_url" << YAML::Value << mask_url_secrets(c.query_url);
    e << YAML::Key << "query_headers" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : c.query_headers) e << YAML::Key << k << YAML::Value << (v.empty() ? "" : "********");
    e << YAML::EndMap;
    e << YAML::Key << "verify_hours" << YAML::Value << c.verify_hours;
    e << YAML::Key << "catch_up_hours" << YAML::Value << c.catch_up_hours;
    e << YAML::EndMap;
}

}  // namespace pf
