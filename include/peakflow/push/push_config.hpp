#pragma once
// The `push:` section of the config: the outbox's retry and timeout settings and the sinks
// (sinks.hpp sends through them).

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"

namespace pf {

struct SinkConfig {
    std::string name;
    std::string type;  // dingtalk | serverchan | wecom | feishu | webhook | http | email | collector
    bool enabled = true;
    std::string url;      // service base URL (chat sinks: default the real service), or smtp://host:port
    std::string token;    // dingtalk access_token, feishu hook token, collector bearer token
    std::string sendkey;  // serverchan
    std::string key;      // wecom robot key
    std::string secret;   // dingtalk / feishu signing secret (optional)
    std::string keyword;  // dingtalk keyword rule: added to messages that lack it
    std::string ca_file;  // trust this CA file instead of the system's (a private collector)
    std::string msgtype;  // dingtalk: markdown (default) or text
    std::vector<std::pair<std::string, std::string>> headers;  // webhook, http
    std::string tmpl;                                          // webhook: the body template
    // email
    std::string from;
    std::vector<std::string> to;
    std::string username;
    std::string password;
    bool starttls = false;
    // smtp:// without starttls sends the password in clear: refused unless this is set.
    bool allow_plaintext_auth = false;
    // routing
    bool alerts = true;
    std::vector<std::string> reports{"daily", "monthly", "startup"};
    int rate_per_minute = -1;  // -1: the service's limit (20 for dingtalk and wecom), 0: none
    bool operator==(const SinkConfig&) const = default;

    bool takes(const std::string& kind) const;  // alert/recovery: alerts; test/message: all
    int effective_rate() const;
};

// An email sink that would send its SMTP credentials unencrypted: smtp:// without
// starttls, a username or password (keys or the URL's user info), and no
// allow_plaintext_auth. A config error at load; the sink refuses to send as well.
bool smtp_auth_in_clear(const SinkConfig& s);
inline constexpr const char* kPlaintextAuth =
    "smtp:// without starttls would send the SMTP password in clear: set starttls: true, use smtps://, or set "
    "allow_plaintext_auth: true";

// The language of every report, alert and recovery notice the agent sends (push.language).
enum class Language { En, Zh };
Result<Language> parse_language(const std::string& v);  // "en" | "zh"
const char* language_name(Language l);

struct PushConfig {
    bool configured = false;  // a push: section exists
    bool enabled = true;
    std::string node_name;
    Language language = Language::En;
    double initial_backoff = 5.0;  // seconds, doubles per failed attempt, with jitter
    double max_backoff = 600.0;
    double timeout = 15.0;  // seconds per request
    int alert_after = 3;    // consecutive failed deliveries to a sink before an alert
    std::vector<SinkConfig> sinks;
    bool operator==(const PushConfig&) const = default;
    const SinkConfig* find(const std::string& name) const;
};

Status parse_push_config(const Parser& p, const YAML::Node& n, const std::string& key, PushConfig& out);
void dump_push_config(YAML::Emitter& out, const PushConfig& c);  // secrets masked

}  // namespace pf
