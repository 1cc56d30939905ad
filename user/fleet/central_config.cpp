#include "peakflow/fleet/central_config.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

namespace pf {

namespace {

using Json = nlohmann::json;

constexpr const char* kCentralKey = "uplink.central";
constexpr const char* kStatusKey = "uplink.central_status";

// The part between "push.sinks." and the last dot: a sink's name as the config allows it.
bool sink_key(const std::string& key, std::string& field) {
    const std::string prefix = "push.sinks.";
    if (key.compare(0, prefix.size(), prefix) != 0) return false;
    const size_t dot = key.rfind('.');
    if (dot <= prefix.size()) return false;
    field = key.substr(dot + 1);
    return true;
}

bool all_strings(const Json& j) {
    for (const auto& e : j)
        if (!e.is_string()) return false;
    return true;
}

// A customer report field: a string, or an integer (sent as a number).
bool field_value(const Json& j) {
    return (j.is_string() && j.get_ref<const std::string&>().size() <= kWireMaxString) || j.is_number_integer();
}

}  // namespace

const std::vector<std::string>& central_key_patterns() {
    static const std::vector<std::string> k = {"push.enabled",
                                               "push.sinks.NAME.enabled",
                                               "push.sinks.NAME.url",
                                               "push.sinks.NAME.to",
                                               "customer_report.enabled",
                                               "customer_report.provider_id",
                                               "customer_report.provider_uiid",
                                               "customer_report.isp_id",
                                               "customer_report.device_type",
                                               "customer_report.fields",
                                               "adjustments",
                                               "interfaces"};
    return k;
}

std::optional<CentralKind> central_kind(const std::string& key) {
    if (key == "push.enabled" || key == "customer_report.enabled") return CentralKind::Bool;
    if (key == "customer_report.provider_id" || key == "customer_report.provider_uiid" ||
        key == "customer_report.isp_id" || key == "customer_report.device_type")
        return CentralKind::Scalar;
    if (key == "customer_report.fields") return CentralKind::ScalarMap;
    if (key == "adjustments") return CentralKind::Adjustments;
    if (key == "interfaces") return CentralKind::StringList;
    std::string field;
    if (sink_key(key, field)) {
        if (field == "enabled") return CentralKind::Bool;
        if (field == "url") return CentralKind::String;
        if (field == "to") return CentralKind::StringList;
    }
    return std::nullopt;
}

std::string central_key_problem(const std::string& key) {
    if (central_kind(key)) return "";
    std::string list;
    for (const auto& k : central_key_patterns()) list += (list.empty() ? "" : ", ") + k;
    return "'" + key + "' cannot be set centrally; the keys are: " + list;
}

std::string central_value_problem(const std::string& key, const std::string& json) {
    auto kind = central_kind(key);
    if (!kind) return central_key_problem(key);
    if (json.size() > kCentralMaxValue) return "the value is over " + std::to_string(kCentralMaxValue) + " bytes";
    Json j = Json::parse(json, nullptr, false);
    if (j.is_discarded()) return "the value is not JSON";
    switch (*kind) {
        case CentralKind::Bool: return j.is_boolean() ? "" : key + " takes true or false";
        case CentralKind::String:
            if (!j.is_string()) return key + " takes a string";
            return j.get_ref<const std::string&>().size() > kWireMaxString
                       ? key + ": over " + std::to_string(kWireMaxString) + " bytes"
                       : "";
        case CentralKind::StringList: return j.is_array() && all_strings(j) ? "" : key + " takes a list of strings";
        case CentralKind::Scalar: return field_value(j) ? "" : key + " takes a string or an integer";
        case CentralKind::ScalarMap:
            if (!j.is_object()) return key + " takes a map of field names to strings or integers";
            for (const auto& e : j)
                if (!field_value(e)) return key + " takes a map of field names to strings or integers";
            return "";
        case CentralKind::Adjustments:
            if (!j.is_array()) return key + " takes a list of adjustments";
            for (const auto& e : j)
                if (!e.is_object())
                    return key + ": each adjustment is a map (iface, mac, direction, factor, offset_bytes)";
            return "";
    }
    return "";
}

Result<std::optional<CentralConfig>> load_central(const std::string& database) {
    struct stat st {};
    if (::stat(database.c_str(), &st) != 0) return std::optional<CentralConfig>();
    SqliteOptions so;
    so.mode = SqliteMode::ReadOnly;
    auto db = SqliteDb::open(database, so);
    if (!db) return db.error();
    auto q = db->prepare("SELECT value FROM meta WHERE key = ?");
    if (!q) {
        // No meta table yet: a history that never ran.
        return std::optional<CentralConfig>();
    }
    q->bind(1, std::string(kCentralKey));
    const int rc = q->step();
    if (rc == SQLITE_DONE) return std::optional<CentralConfig>();
    if (rc != SQLITE_ROW) return db->error(rc, "read the central config");
    auto c = parse_central(q->text(0));
    if (!c) return Error("central config stored in " + database + ": " + c.error().message());
    return std::optional<CentralConfig>(std::move(*c));
}

Status save_central(SqliteDb& db, const CentralConfig& c) {
    auto q = db.prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
    if (!q) return q.error();
    q->bind(1, std::string(kCentralKey)).bind(2, render_central(c));
    return db.check(q->step(), "store the central config");
}

Result<CentralStatus> load_central_status(SqliteDb& db) {
    CentralStatus s;
    auto q = db.prepare("SELECT value FROM meta WHERE key = ?");
    if (!q) return q.error();
    q->bind(1, std::string(kStatusKey));
    const int rc = q->step();
    if (rc == SQLITE_DONE) return s;
    if (rc != SQLITE_ROW) return db.error(rc, "read the central config status");
    Json j = Json::parse(q->text(0), nullptr, false);
    if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer()) return s;
    s.version = j["version"].get<int64_t>();
    if (j.contains("problems") && j["problems"].is_array())
        for (const auto& p : j["problems"])
            if (p.is_object() && p.contains("key") && p["key"].is_string() && p.contains("message") &&
                p["message"].is_string())
                s.problems.push_back({p["key"].get<std::string>(), p["message"].get<std::string>()});
    return s;
}

Status save_central_status(const std::string& database, const CentralStatus& s) {
    SqliteOptions so;
    so.mode = SqliteMode::ReadWrite;
    so.busy_timeout_ms = 5000;
    auto db = SqliteDb::open(database, so);
    if (!db) return db.error();
    Json j;
    j["version"] = s.version;
    j["problems"] = Json::array();
    for (const auto& p : s.problems) j["problems"].push_back({{"key", p.key}, {"message", p.message}});
    auto q = db->prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
    if (!q) return q.error();
    q->bind(1, std::string(kStatusKey)).bind(2, j.dump(-1, ' ', false, Json::error_handler_t::replace));
    return db->check(q->step(), "store the central config status");
}

}  // namespace pf
