#include "peakflow/app/central.hpp"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "peakflow/common/redact.hpp"
#include "peakflow/fleet/central_config.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

namespace {

using Json = nlohmann::ordered_json;

// The parser's errors start with the source and a position; for a central value the key
// says where, so only the reason is kept.
constexpr const char* kCentralSource = "central";

std::string reason(const std::string& message) {
    const std::string prefix = kCentralSource;
    if (message.compare(0, prefix.size(), prefix) != 0) return message;
    const size_t colon = message.find(": ");
    return colon == std::string::npos ? message : message.substr(colon + 2);
}

YAML::Node map_child(YAML::Node parent, const std::string& key) {
    YAML::Node n = parent[key];
    if (!n.IsMap()) {
        parent[key] = YAML::Node(YAML::NodeType::Map);
        n = parent[key];
    }
    return n;
}

// Puts `value` at `key` in `root` (a map); "" or why it cannot go there.
std::string put(YAML::Node& root, const std::string& key, const YAML::Node& value) {
    if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
    const size_t dot = key.find('.');
    if (dot == std::string::npos) {
        root[key] = value;
        return "";
    }
    const std::string section = key.substr(0, dot);
    const std::string rest = key.substr(dot + 1);
    if (section == "push" && rest.compare(0, 6, "sinks.") == 0) {
        const size_t last = rest.rfind('.');
        const std::string name = rest.substr(6, last - 6), field = rest.substr(last + 1);
        YAML::Node sinks = root["push"] ? root["push"]["sinks"] : YAML::Node();
        if (sinks && sinks.IsSequence())
            for (YAML::Node s : sinks)
                if (s.IsMap() && s["name"] && s["name"].IsScalar() && s["name"].Scalar() == name) {
                    s[field] = value;
                    return "";
                }
        return "no push sink named '" + name + "' in the agent's config";
    }
    map_child(root, section)[rest] = value;
    return "";
}

Result<Config> parse_with(const YAML::Node& file, const std::vector<std::pair<std::string, YAML::Node>>& values,
                          const std::string& source, std::string& why) {
    YAML::Node root = YAML::Clone(file);
    for (const auto& [k, v] : values) {
        why = put(root, k, v);
        if (!why.empty()) return Error(why);
    }
    return parse_config_node(root, source);
}

Json adjustment_json(const Adjustment& a) {
    Json j = Json::object();
    if (!a.iface.empty()) j["iface"] = a.iface;
    if (a.mac) j["mac"] = format_mac(*a.mac);
    j["direction"] = a.direction;
    j["factor"] = a.factor;
    j["offset_bytes"] = a.offset_bytes;
    return j;
}

Json field_json(const StaticField& f) {
    if (f.number) {
        try {
            return Json(std::stoll(f.value));
        } catch (const std::exception&) {
        }
    }
    return Json(f.value);
}

}  // namespace

Result<CentralApplied> apply_central(const std::string& yaml_text, const std::string& source,
                                     const CentralConfig& central) {
    YAML::Node file;
    try {
        file = YAML::Load(yaml_text);
    } catch (const YAML::ParserException& e) {
        return Parser(source).error_at(e.mark, "", "YAML syntax error: " + e.msg);
    }
    auto base = parse_config_node(file, source);
    if (!base) return base.error();
    CentralApplied out;
    out.cfg = std::move(*base);
    // Each value on top of the ones that applied before it: what parses is kept.
    std::vector<std::pair<std::string, YAML::Node>> kept;
    for (const auto& [key, json] : central.values) {
        std::string why = central_value_problem(key, json);
        YAML::Node value;
        if (why.empty()) {
            try {
                value = YAML::Load(json);
            } catch (const YAML::Exception& e) {
                why = "the value is not valid: " + std::string(e.what());
            }
        }
        if (!why.empty()) {
            out.problems.push_back({key, why});
            continue;
        }
        kept.emplace_back(key, value);
        auto trial = parse_with(file, kept, kCentralSource, why);
        if (!trial) {
            out.problems.push_back({key, why.empty() ? reason(trial.error().message()) : why});
            kept.pop_back();
            continue;
        }
        out.cfg = std::move(*trial);
        out.applied.push_back(key);
    }
    out.cfg.source = source;
    return out;
}

std::string check_central_value(const std::string& key, const std::string& json) {
    if (std::string why = central_value_problem(key, json); !why.empty()) return why;
    if (key.rfind("push.sinks.", 0) == 0) {
        // The sink's type is the agent's: only what holds for every type is checked here.
        if (key.size() > 4 && key.compare(key.size() - 4, 4, ".url") == 0) {
            const std::string url = Json::parse(json).get<std::string>();
            for (const char* scheme : {"http://", "https://", "smtp://", "smtps://"})
                if (url.rfind(scheme, 0) == 0) return "";
            return key + ": expected an http://, https://, smtp:// or smtps:// URL";
        }
        return "";
    }
    // The other keys are checked by the agent's parser on a config where they can apply.
    const std::string base =
        "push:\n  sinks:\n    - {name: customer, type: http, url: \"http://198.18.0.1/\", alerts: false}\n"
        "customer_report:\n  sink: customer\n";
    CentralConfig c;
    c.values[key] = json;
    auto r = apply_central(base, kCentralSource, c);
    if (!r) return r.error().message();
    return r->problems.empty() ? "" : r->problems.front().message;
}

std::map<std::string, std::string> central_view(const Config& c) {
    std::map<std::string, Json> v;
    v["push.enabled"] = c.push.enabled;
    for (const auto& s : c.push.sinks) {
        if (s.type == "collector") continue;  // added from collector:, not a file sink
        const std::string k = "push.sinks." + s.name + ".";
        v[k + "enabled"] = s.enabled;
        v[k + "url"] = mask_url_secrets(s.url);  // shown and logged: no credentials
        if (s.type == "email") v[k + "to"] = s.to;
    }
    const CustomerReportConfig& cr = c.customer_report;
    v["customer_report.enabled"] = cr.enabled;
    for (const auto* f : {&cr.provider_id, &cr.provider_uiid, &cr.isp_id, &cr.device_type})
        v["customer_report." + f->key] = field_json(*f);
    Json fields = Json::object();
    for (const auto& f : cr.fields) fields[f.key] = field_json(f);
    v["customer_report.fields"] = std::move(fields);
    Json adj = Json::array();
    for (const auto& a : c.accounting.adjustments) adj.push_back(adjustment_json(a));
    v["adjustments"] = std::move(adj);
    v["interfaces"] = c.interfaces;
    std::map<std::string, std::string> out;
    for (auto& [k, j] : v) out[k] = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    return out;
}

}  // namespace pf
