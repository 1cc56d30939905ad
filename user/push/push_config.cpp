// The `push:` section of the config file.
#include <set>

#include "peakflow/push/push_config.hpp"

#include "peakflow/common/redact.hpp"
#include "peakflow/common/secret_file.hpp"

namespace pf {

bool smtp_auth_in_clear(const SinkConfig& s) {
    if (s.type != "email" || s.starttls || s.allow_plaintext_auth || s.url.rfind("smtp://", 0) != 0) return false;
    // Credentials as keys, or as user info in the URL (smtp://user:pass@host).
    const std::string rest = s.url.substr(7);
    const bool user_info = rest.find('@') != std::string::npos && rest.find('@') < rest.find('/');
    return !s.username.empty() || !s.password.empty() || user_info;
}

namespace {

Status parse_sink(const Parser& p, const YAML::Node& n, const std::string& key, SinkConfig& s) {
    if (auto st = check_keys(p, n, key, {"name",         "type",
                                         "enabled",      "url",
                                         "token",        "sendkey",
                                         "key",          "secret",
                                         "keyword",      "msgtype",
                                         "headers",      "template",
                                         "from",         "to",
                                         "username",     "password",
                                         "starttls",     "alerts",
                                         "reports",      "rate_per_minute",
                                         "ca_file",      "allow_plaintext_auth",
                                         "url_file",     "token_file",
                                         "sendkey_file", "key_file",
                                         "secret_file",  "password_file",
                                         "headers_file"});
        !st)
        return st;
    if (!n["name"]) return p.error_at(n.Mark(), key + ".name", "every sink needs a name");
    if (!n["type"]) return p.error_at(n.Mark(), key + ".type", "every sink needs a type");
    auto word = [](const std::string& v) -> std::string {
        return v.empty() || v.find_first_of(" \t/") != std::string::npos ? "must be a non-empty word" : "";
    };
    if (auto st = p.read_checked(n["name"], key + ".name", "a string", s.name, word); !st) return st;
    static const std::set<std::string> types = {"dingtalk", "serverchan", "wecom", "feishu",
                                                "webhook",  "http",       "email", "collector"};
    auto known_type = [](const std::string& v) -> std::string {
        if (types.count(v)) return "";
        return "expected dingtalk, serverchan, wecom, feishu, webhook, http, email or collector, got '" + v + "'";
    };
    if (auto st = p.read_checked(n["type"], key + ".type", "a string", s.type, known_type); !st) return st;
    struct Field {
        const char* name;
        std::string* out;
    } fields[] = {{"keyword", &s.keyword}, {"msgtype", &s.msgtype},   {"template", &s.tmpl},
                  {"from", &s.from},       {"username", &s.username}, {"ca_file", &s.ca_file}},
      secrets[] = {{"url", &s.url}, {"token", &s.token},   {"sendkey", &s.sendkey},
                   {"key", &s.key}, {"secret", &s.secret}, {"password", &s.password}};
    for (const auto& f : fields)
        if (auto st = p.read_child(n, key, f.name, "a string", *f.out); !st) return st;
    // A webhook's URL may hold its token: every secret also as NAME_file (secret_file.hpp).
    for (const auto& f : secrets)
        if (auto st = read_secret_child(p, n, key, f.name, *f.out); !st) return st;
    for (auto [name, field] :
         {std::pair{"enabled", &s.enabled}, std::pair{"alerts", &s.alerts}, std::pair{"starttls", &s.starttls},
          std::pair{"allow_plaintext_auth", &s.allow_plaintext_auth}})
        if (auto st = p.read_child(n, key, name, "true or false", *field); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "rate_per_minute", 0, 100000, s.rate_per_minute); !st) return st;
    if (auto st = read_secret_headers(p, n, key, "headers", s.headers); !st) return st;
    // A single address or report kind may be given without the brackets.
    auto list = [&](const char* name, std::vector<std::string>& out) -> Status {
        const auto& l = n[name];
        if (!l) return Ok{};
        if (l.IsScalar()) {
            out = {l.Scalar()};
            return Ok{};
        }
        return p.read_list(l, key + "." + name, "a list", "a string", out);
    };
    if (auto st = list("to", s.to); !st) return st;
    if (auto st = list("reports", s.reports); !st) return st;
    // An http sink posts a raw body (the customer report names it itself): it takes no
    // chat reports and no alerts unless asked to (a customer's API is no place for them).
    if (s.type == "http" && !n["reports"]) s.reports.clear();
    if (s.type == "http" && !n["alerts"]) s.alerts = false;
    // A collector stores alerts; reports reach it through the uplink, not as messages.
    if (s.type == "collector" && !n["reports"]) s.reports.clear();
    static const std::set<std::string> kinds = {"daily", "monthly", "startup", "hourly", "verify"};
    for (const auto& k : s.reports)
        if (!kinds.count(k))
            return p.error_at(n["reports"].Mark(), key + ".reports",
                              "unknown report kind '" + k + "' (daily, monthly, startup, hourly, verify)");
    auto need = [&](const char* field, const std::string& v) -> Status {
        if (!v.empty()) return Ok{};
        return p.error_at(n.Mark(), key + "." + field, "a " + s.type + " sink needs " + field);
    };
    Status st = Ok{};
    if (s.type == "dingtalk") {
        st = need("token", s.token);
        if (st && s.msgtype.empty()) s.msgtype = "markdown";
        if (st && s.msgtype != "markdown" && s.msgtype != "text")
            return p.error_at(n["msgtype"].Mark(), key + ".msgtype", "expected markdown or text");
    } else if (s.type == "serverchan") {
        st = need("sendkey", s.sendkey);
    } else if (s.type == "wecom") {
        st = need("key", s.key);
    } else if (s.type == "feishu") {
        st = need("token", s.token);
    } else if (s.type == "webhook" || s.type == "http") {
        st = need("url", s.url);
    } else if (s.type == "collector") {
        st = need("url", s.url);
        if (st) st = need("token", s.token);
    } else if (s.type == "email") {
        st = need("url", s.url);
        if (st) st = need("from", s.from);
        if (st && s.to.empty()) st = need("to", "");
        if (st && s.url.rfind("smtp://", 0) != 0 && s.url.rfind("smtps://", 0) != 0)
            return p.error_at(n["url"].Mark(), key + ".url", "expected smtp://HOST[:PORT] or smtps://HOST[:PORT]");
        if (st && smtp_auth_in_clear(s)) {
            const char* where = n["password"]        ? "password"
                                : n["password_file"] ? "password_file"
                                : n["username"]      ? "username"
                                : n["url"]           ? "url"
                                                     : "url_file";
            return p.error_at(n[where].Mark(), key + "." + where, kPlaintextAuth);
        }
    }
    if (!st) return st;
    if (!s.msgtype.empty() && s.type != "dingtalk")
        return p.error_at(n["msgtype"].Mark(), key + ".msgtype", "only dingtalk sinks have a msgtype");
    if (!s.url.empty() && s.type != "email" && s.url.rfind("http://", 0) != 0 && s.url.rfind("https://", 0) != 0)
        return p.error_at(n["url"].Mark(), key + ".url", "expected an http:// or https:// URL");
    return Ok{};
}

}  // namespace

Result<Language> parse_language(const std::string& v) {
    if (v == "en") return Language::En;
    if (v == "zh") return Language::Zh;
    return Error("expected zh or en, got '" + v + "'");
}

const char* language_name(Language l) {
    return l == Language::Zh ? "zh" : "en";
}

Status parse_push_config(const Parser& p, const YAML::Node& n, const std::string& key, PushConfig& c) {
    if (auto st =
            check_keys(p, n, key, {"enabled", "node_name", "language", "sinks", "retry", "timeout", "alert_after"});
        !st)
        return st;
    c = PushConfig{};
    c.configured = true;
    if (auto st = p.read_child(n, key, "enabled", "true or false", c.enabled); !st) return st;
    if (auto st = p.read_child(n, key, "node_name", "a string", c.node_name); !st) return st;
    if (n["language"]) {
        std::string lang;
        auto known = [](const std::string& v) -> std::string {
            auto l = parse_language(v);
            return l ? "" : l.error().message();
        };
        if (auto st = p.read_checked(n["language"], key + ".language", "a string", lang, known); !st) return st;
        c.language = parse_language(lang).take();
    }
    if (auto st = p.read_child_seconds(n, key, "timeout", 0.1, 300, c.timeout); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "alert_after", 1, 1000, c.alert_after); !st) return st;
    if (const auto& r = n["retry"]) {
        const std::string rk = key + ".retry";
        if (auto st = check_keys(p, r, rk, {"initial_backoff", "max_backoff"}); !st) return st;
        if (auto st = p.read_child_seconds(r, rk, "initial_backoff", 0.01, 86400, c.initial_backoff); !st) return st;
        if (auto st = p.read_child_seconds(r, rk, "max_backoff", 0.01, 86400, c.max_backoff); !st) return st;
        if (c.max_backoff < c.initial_backoff)
            return p.error_at(r.Mark(), key + ".retry.max_backoff", "must not be below initial_backoff");
    }
    if (const auto& l = n["sinks"]) {
        if (!l.IsSequence()) return p.error_at(l.Mark(), key + ".sinks", "expected a list of sinks");
        std::set<std::string> names;
        for (size_t i = 0; i < l.size(); ++i) {
            SinkConfig s;
            std::string k = key + ".sinks[" + std::to_string(i) + "]";
            if (auto st = parse_sink(p, l[i], k, s); !st) return st;
            if (!names.insert(s.name).second)
                return p.error_at(l[i]["name"].Mark(), k + ".name", "sink name '" + s.name + "' is used twice");
            c.sinks.push_back(std::move(s));
        }
    }
    return Ok{};
}

namespace {

std::string mask(const std::string& v) {
    return v.empty() ? "" : "********";
}

}  // namespace

void dump_push_config(YAML::Emitter& out, const PushConfig& c) {
    out << YAML::BeginMap;
    out << YAML::Key << "enabled" << YAML::Value << c.enabled;
    out << YAML::Key << "node_name" << YAML::Value << c.node_name;
    out << YAML::Key << "language" << YAML::Value << language_name(c.language);
    out << YAML::Key << "timeout" << YAML::Value << c.timeout;
    out << YAML::Key << "alert_after" << YAML::Value << c.alert_after;
    out << YAML::Key << "retry" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "initial_backoff" << YAML::Value << c.initial_backoff;
    out << YAML::Key << "max_backoff" << YAML::Value << c.max_backoff;
    out << YAML::EndMap;
    out << YAML::Key << "sinks" << YAML::Value << YAML::BeginSeq;
    for (const auto& s : c.sinks) {
        out << YAML::BeginMap;
        out << YAML::Key << "name" << YAML::Value << s.name;
        out << YAML::Key << "type" << YAML::Value << s.type;
        out << YAML::Key << "enabled" << YAML::Value << s.enabled;
        // A webhook's URL can carry its credential in the path: only scheme and host shown.
        // Any URL (an email sink's smtp://user:pass@host) can carry one in its user info.
        std::string url = mask_url_secrets(s.url);
        if (auto p = url.find("://"); p != std::string::npos && (s.type == "webhook" || s.type == "http"))
            if (auto slash = url.find('/', p + 3); slash != std::string::npos && slash + 1 < url.size())
                url = url.substr(0, slash) + "/********";
        if (!url.empty()) out << YAML::Key << "url" << YAML::Value << url;
        const std::pair<const char*, const std::string*> secret_fields[] = {{"token", &s.token},
                                                                            {"sendkey", &s.sendkey},
                                                                            {"key", &s.key},
                                                                            {"secret", &s.secret},
                                                                            {"password", &s.password}};
        for (const auto& [k, v] : secret_fields)
            if (!v->empty()) out << YAML::Key << k << YAML::Value << mask(*v);
        if (!s.keyword.empty()) out << YAML::Key << "keyword" << YAML::Value << s.keyword;
        if (!s.ca_file.empty()) out << YAML::Key << "ca_file" << YAML::Value << s.ca_file;
        if (!s.msgtype.empty()) out << YAML::Key << "msgtype" << YAML::Value << s.msgtype;
        if (!s.headers.empty()) {
            out << YAML::Key << "headers" << YAML::Value << YAML::BeginMap;
            for (const auto& [k, v] : s.headers) out << YAML::Key << k << YAML::Value << mask(v);
            out << YAML::EndMap;
        }
        if (!s.tmpl.empty()) out << YAML::Key << "template" << YAML::Value << s.tmpl;
        if (!s.from.empty()) out << YAML::Key << "from" << YAML::Value << s.from;
        if (!s.to.empty()) out << YAML::Key << "to" << YAML::Value << YAML::Flow << s.to;
        if (!s.username.empty()) out << YAML::Key << "username" << YAML::Value << s.username;
        if (s.type == "email") out << YAML::Key << "starttls" << YAML::Value << s.starttls;
        if (s.allow_plaintext_auth) out << YAML::Key << "allow_plaintext_auth" << YAML::Value << true;
        out << YAML::Key << "alerts" << YAML::Value << s.alerts;
        out << YAML::Key << "reports" << YAML::Value << YAML::Flow << s.reports;
        out << YAML::Key << "rate_per_minute" << YAML::Value << s.effective_rate();
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::EndMap;
}

bool SinkConfig::takes(const std::string& kind) const {
    if (kind == "alert" || kind == "recovery") return alerts;
    if (kind == "test" || kind == "message") return true;
    for (const auto& r : reports)
        if (r == kind) return true;
    return false;
}

int SinkConfig::effective_rate() const {
    if (rate_per_minute >= 0) return rate_per_minute;
    return type == "dingtalk" || type == "wecom" ? 20 : 0;
}

const SinkConfig* PushConfig::find(const std::string& name) const {
    for (const auto& s : sinks)
        if (s.name == name) return &s;
    return nullptr;
}

}  // namespace pf
