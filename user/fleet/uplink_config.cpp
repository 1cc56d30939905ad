// The agent's `collector:` section.
#include "peakflow/fleet/uplink_config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <optional>

#include "peakflow/common/secret_file.hpp"

namespace pf {
namespace {

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    return buf;
}

// The token file's first line without surrounding blanks; the error never quotes the
// content (it may be the token with a typo).
Status read_token_file(const Parser& p, const YAML::Node& at, const std::string& key, const std::string& path,
                       std::string& out) {
    // The token is the agent's whole identity at the collector: anyone who reads it can
    // report in its name (the file's owner and mode are checked as every secret file's).
    auto line = read_secret_line(path);
    if (!line) return p.error_at(at.Mark(), key, line.error().message());
    if (!is_collector_token(*line))
        return p.error_at(at.Mark(), key, path + " does not hold a collector token (pfc_ followed by 64 hex digits)");
    out = std::move(*line);
    return Ok{};
}

}  // namespace

bool is_collector_token(const std::string& t) {
    if (t.size() != 4 + 64 || t.compare(0, 4, "pfc_") != 0) return false;
    for (size_t i = 4; i < t.size(); i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    return true;
}

Status parse_uplink_config(const Parser& p, const YAML::Node& n, const std::string& key, UplinkConfig& c) {
    if (auto st = check_keys(
            p, n, key, {"url", "token", "token_file", "interval", "ca_file", "name", "node", "batch", "flow_pairs"});
        !st)
        return st;
    c = UplinkConfig{};
    c.configured = true;
    if (!n["url"]) return p.error_at(n.Mark(), key + ".url", "the collector needs a url");
    if (auto st = p.read_checked(n["url"], key + ".url", "a URL", c.url,
                                 [](const std::string& v) -> std::string {
                                     for (const char* scheme : {"http://", "https://"})
                                         if (v.rfind(scheme, 0) == 0 && v.size() > std::strlen(scheme)) return "";
                                     return "expected an http:// or https:// URL";
                                 });
        !st)
        return st;
    while (c.url.size() > 1 && c.url.back() == '/') c.url.pop_back();  // the API paths are appended
    if (n["token"] && n["token_file"])
        return p.error_at(n["token_file"].Mark(), key + ".token_file", "give token or token_file, not both");
    if (!n["token"] && !n["token_file"])
        return p.error_at(n.Mark(), key + ".token", "the collector needs a token or a token_file");
    if (n["token"]) {
        if (auto st = p.read_checked(n["token"], key + ".token", "a string", c.token,
                                     [](const std::string& v) -> std::string {
                                         return is_collector_token(v)
                                                    ? ""
                                                    : "expected pfc_ followed by 64 lowercase hex digits "
                                                      "(peakflow-collector token create NAME)";
                                     });
            !st)
            return st;
    } else {
        if (auto st = p.read_checked(n["token_file"], key + ".token_file", "a file path", c.token_file,
                                     [](const std::string& v) { return v.empty() ? "must not be empty" : ""; });
            !st)
            return st;
        if (auto st = read_token_file(p, n["token_file"], key + ".token_file", c.token_file, c.token); !st) return st;
    }
    if (auto st = p.read_child_bounded(n, key, "interval", 5, 3600, c.interval); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "batch", 100, 20000, c.batch); !st) return st;
    if (auto st = p.read_child_bounded(n, key, "flow_pairs", 0, 1000, c.flow_pairs); !st) return st;
    if (c.flow_pairs >= c.batch)
        return p.error_at(n["flow_pairs"] ? n["flow_pairs"].Mark() : n.Mark(), key + ".flow_pairs",
                          "must be below batch (" + std::to_string(c.batch) + "): a bucket's pairs go in one batch");
    if (auto st = p.read_child(n, key, "ca_file", "a file path", c.ca_file); !st) return st;
    if (auto st = p.read_child(n, key, "node", "a string", c.node); !st) return st;
    if (auto st = p.read_child_checked(n, key, "name", "a string", c.name,
                                       [](const std::string& v) -> std::string {
                                           // What the collector accepts as agent.name.
                                           bool ok = !v.empty() && v.size() <= 64;
                                           for (char ch : v)
                                               ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
                                                           ch == '_' || ch == '-');
                                           return ok ? "" : "must be 1 to 64 of A-Z a-z 0-9 . _ -";
                                       });
        !st)
        return st;
    if (c.name.empty()) c.name = host_name();
    return Ok{};
}

void dump_uplink_config(YAML::Emitter& out, const UplinkConfig& c) {
    out << YAML::BeginMap;
    out << YAML::Key << "url" << YAML::Value << c.url;
    if (c.token_file.empty())
        out << YAML::Key << "token" << YAML::Value << "********";
    else
        out << YAML::Key << "token_file" << YAML::Value << c.token_file;
    out << YAML::Key << "interval" << YAML::Value << c.interval;
    if (!c.ca_file.empty()) out << YAML::Key << "ca_file" << YAML::Value << c.ca_file;
    out << YAML::Key << "name" << YAML::Value << c.name;
    out << YAML::Key << "node" << YAML::Value << c.node;
    out << YAML::Key << "batch" << YAML::Value << c.batch;
    out << YAML::Key << "flow_pairs" << YAML::Value << c.flow_pairs;
    out << YAML::EndMap;
}

std::string parse_check_target(const std::string& text, HeartbeatCheck& out) {
    auto rest = [&](const char* prefix) -> std::optional<std::string> {
        const size_t n = std::strlen(prefix);
        if (text.compare(0, n, prefix) != 0) return std::nullopt;
        return text.substr(n);
    };
    if (auto t = rest("tcp://")) {
        std::string host, port;
        if (!t->empty() && (*t)[0] == '[') {
            auto close = t->find(']');
            if (close == std::string::npos || close + 1 >= t->size() || (*t)[close + 1] != ':')
                return "expected tcp://[IPv6]:PORT";
            host = t->substr(1, close - 1);
            port = t->substr(close + 2);
        } else {
            auto colon = t->rfind(':');
            if (colon == std::string::npos) return "expected tcp://HOST:PORT";
            host = t->substr(0, colon);
            port = t->substr(colon + 1);
        }
        if (host.empty()) return "expected tcp://HOST:PORT: the host is empty";
        int v = 0;
        bool digits = !port.empty() && port.size() <= 5;
        for (char c : port) digits = digits && c >= '0' && c <= '9';
        if (digits) v = std::stoi(port);
        if (!digits || v < 1 || v > 65535) return "the port of " + text + " must be 1 to 65535";
        out.kind = HeartbeatCheck::Kind::Tcp;
        out.target = host;
        out.port = v;
        return "";
    }
    if (auto t = rest("systemd:")) {
        // What systemd accepts in a unit name; nothing a D-Bus path or a shell would read.
        bool ok = !t->empty() && t->size() <= 255;
        for (char c : *t) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || std::strchr(":-_.\\@", c));
        if (!ok) return "expected systemd:UNIT with a unit name of A-Z a-z 0-9 : - _ . \\ @";
        out.kind = HeartbeatCheck::Kind::Systemd;
        out.target = t->find('.') == std::string::npos ? *t + ".service" : *t;
        return "";
    }
    if (auto t = rest("process:")) {
        if (t->empty() || t->size() > 255 || t->find('/') != std::string::npos)
            return "expected process:NAME (the name as ps shows it, without a path)";
        out.kind = HeartbeatCheck::Kind::Process;
        out.target = *t;
        return "";
    }
    return "expected tcp://HOST:PORT, systemd:UNIT or process:NAME, got '" + text + "'";
}

Status parse_heartbeat_checks(const Parser& p, const YAML::Node& n, const std::string& key,
                              std::vector<HeartbeatCheck>& out) {
    if (!n.IsSequence()) return p.error_at(n.Mark(), key, "expected a list of {service_name, check} entries");
    out.clear();
    for (size_t i = 0; i < n.size(); i++) {
        const YAML::Node e = n[i];
        const std::string k = key + "[" + std::to_string(i) + "]";
        if (!e.IsMap()) return p.error_at(e.Mark(), k, "expected a mapping with service_name and check");
        if (auto st = check_keys(p, e, k, {"service_name", "check", "interval", "timeout", "ip"}); !st) return st;
        HeartbeatCheck c;
        if (!e["service_name"])
            return p.error_at(e.Mark(), k + ".service_name", "missing (the name the service reports as)");
        if (!e["check"])
            return p.error_at(e.Mark(), k + ".check", "missing (tcp://HOST:PORT, systemd:UNIT or process:NAME)");
        if (auto st = p.read_checked(
                e["service_name"], k + ".service_name", "a string", c.service_name,
                [](const std::string& v) { return v.empty() || v.size() > 256 ? "must be 1 to 256 bytes" : ""; });
            !st)
            return st;
        for (const auto& other : out)
            if (other.service_name == c.service_name)
                return p.error_at(e["service_name"].Mark(), k + ".service_name",
                                  "'" + c.service_name + "' is checked twice");
        if (auto st = p.read(e["check"], k + ".check", "a string", c.check); !st) return st;
        if (std::string why = parse_check_target(c.check, c); !why.empty())
            return p.error_at(e["check"].Mark(), k + ".check", why);
        if (auto st = p.read_child_bounded(e, k, "interval", 5, 3600, c.interval); !st) return st;
        if (auto st = p.read_child_seconds(e, k, "timeout", 0.1, 60, c.timeout); !st) return st;
        if (auto st = p.read_child_checked(e, k, "ip", "an IP address", c.ip,
                                           [](const std::string& v) -> std::string {
                                               unsigned char b[16];
                                               return inet_pton(AF_INET, v.c_str(), b) == 1 ||
                                                              inet_pton(AF_INET6, v.c_str(), b) == 1
                                                          ? ""
                                                          : "expected an IPv4 or IPv6 address";
                                           });
            !st)
            return st;
        out.push_back(std::move(c));
    }
    return Ok{};
}

void dump_heartbeat_checks(YAML::Emitter& out, const std::vector<HeartbeatCheck>& checks) {
    out << YAML::BeginSeq;
    for (const auto& c : checks) {
        out << YAML::BeginMap;
        out << YAML::Key << "service_name" << YAML::Value << c.service_name;
        out << YAML::Key << "check" << YAML::Value << c.check;
        out << YAML::Key << "interval" << YAML::Value << c.interval;
        out << YAML::Key << "timeout" << YAML::Value << c.timeout;
        if (!c.ip.empty()) out << YAML::Key << "ip" << YAML::Value << c.ip;
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
}

Status add_collector_sink(const Parser& p, const YAML::Node& push_node, const UplinkConfig& c, PushConfig& push) {
    if (!c.configured) return Ok{};
    for (size_t i = 0; i < push.sinks.size(); i++) {
        if (push.sinks[i].name != kCollectorSinkName) continue;
        YAML::Node at;
        if (push_node && push_node["sinks"] && push_node["sinks"][i]) at = push_node["sinks"][i]["name"];
        return p.error_at(at ? at.Mark() : YAML::Mark::null_mark(), "push.sinks[" + std::to_string(i) + "].name",
                          "the sink name 'collector' is taken by the collector: section's alert sink");
    }
    // Push was off: turning it on adds only this sink, so reports (enabled by default) still
    // have nowhere to go; the collector sink takes none of them.
    if (!push.configured) {
        push = PushConfig{};
        push.configured = true;
    }
    // One name for the host's group everywhere, unless push names it itself.
    if (push.node_name.empty()) push.node_name = c.node;
    SinkConfig s;
    s.name = kCollectorSinkName;
    s.type = "collector";
    s.url = c.url;
    s.token = c.token;
    s.ca_file = c.ca_file;
    s.alerts = true;
    s.reports.clear();
    push.sinks.push_back(std::move(s));
    return Ok{};
}

}  // namespace pf
