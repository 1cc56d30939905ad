// The `export:` section of the config (export_config.hpp); flow_export.cpp and the export
// service act on it.
#include "peakflow/export/export_config.hpp"

#include "peakflow/common/redact.hpp"
#include "peakflow/common/secret_file.hpp"

#include "peakflow/accounting/calendar.hpp"

namespace pf {

namespace {

// A size in bytes, at least `lo`. Read as a signed integer so that a negative size is
// "must be at least", not "expected a size in bytes".
Status read_child_size(const Parser& p, const YAML::Node& n, const std::string& parent, const char* name, uint64_t lo,
                       uint64_t& out) {
    if (!n[name]) return Ok{};
    auto at_least = [lo](int64_t v) -> std::string {
        if (v >= static_cast<int64_t>(lo)) return "";
        return "must be at least " + std::to_string(lo) + ", got " + std::to_string(v);
    };
    int64_t v = 0;
    if (auto st = p.read_checked(n[name], parent + "." + name, "a size in bytes", v, at_least); !st) return st;
    out = static_cast<uint64_t>(v);
    return Ok{};
}

// Checks for Parser::read_checked: why the value is wrong, "" when it is fine.
std::string no_slash(const std::string& v) {
    return v.find('/') != std::string::npos ? "must not contain '/'" : "";
}

std::string absolute_path(const std::string& v) {
    return v.empty() || v[0] != '/' ? "must be an absolute path" : "";
}

std::string time_zone(const std::string& v) {
    auto cal = Calendar::create(v, {}, 1);
    return cal ? "" : cal.error().message();
}

std::string ftp_url(const std::string& v) {
    if (v.rfind("ftp://", 0) == 0 || v.rfind("ftps://", 0) == 0 || v.rfind("sftp://", 0) == 0) return "";
    return "expected an ftp://, ftps:// or sftp:// URL, got '" + v + "'";
}

std::string tls_mode(const std::string& v) {
    return v == "required" || v == "none" ? "" : "expected required or none, got '" + v + "'";
}

std::string pinned_key(const std::string& v) {
    return v.rfind("sha256//", 0) == 0 && v.size() > 8 ? "" : "expected sha256//BASE64 (curl's --pinnedpubkey form)";
}

// Empty is allowed: no status reports over HTTP.
std::string http_url(const std::string& v) {
    if (v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0) return "";
    return "expected an http:// or https:// URL, got '" + v + "'";
}

std::string host_port(const std::string& v) {
    auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
        return "expected \"host:port\", got '" + v + "'";
    return "";
}

Status parse_files(const Parser& p, const YAML::Node& n, const std::string& k, ExportFilesConfig& c) {
    if (auto st = check_keys(p, n, k, {"enabled", "prefix", "directory", "rotate_interval", "rotate_size", "timezone"});
        !st)
        return st;
    if (auto st = p.read_child(n, k, "enabled", "true or false", c.enabled); !st) return st;
    if (auto st = p.read_child_checked(n, k, "prefix", "a file name prefix", c.prefix, no_slash); !st) return st;
    if (auto st = p.read_child_checked(n, k, "directory", "a directory", c.directory, absolute_path); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "rotate_interval", 1, 86400, c.rotate_interval); !st) return st;
    if (auto st = read_child_size(p, n, k, "rotate_size", 1024, c.rotate_size); !st) return st;
    if (auto st = p.read_child_checked(n, k, "timezone", "an IANA time zone name", c.timezone, time_zone); !st)
        return st;
    return Ok{};
}

Status parse_upload(const Parser& p, const YAML::Node& n, const std::string& k, ExportUploadConfig& c) {
    if (auto st = check_keys(p, n, k,
                             {"url", "user", "password", "password_file", "interval", "timeout", "passive",
                              "spool_limit", "host_key_sha256", "known_hosts", "trust_first_host_key", "tls", "ca_file",
                              "pinned_public_key", "allow_plaintext_auth"});
        !st)
        return st;
    if (!n["url"])
        return p.error_at(n.Mark(), k + ".url", "missing (ftp://host/dir/, ftps://host/dir/ or sftp://host/dir/)");
    if (auto st = p.read_checked(n["url"], k + ".url", "an ftp://, ftps:// or sftp:// URL", c.url, ftp_url); !st)
        return st;
    if (c.url.back() != '/') c.url += '/';
    if (auto st = p.read_child(n, k, "user", "a user name", c.user); !st) return st;
    if (auto st = read_secret_child(p, n, k, "password", c.password, &c.password_file); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "interval", 1, 86400, c.interval); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "timeout", 1, 86400, c.timeout); !st) return st;
    if (auto st = p.read_child(n, k, "passive", "true or false", c.passive); !st) return st;
    if (auto st = read_child_size(p, n, k, "spool_limit", 0, c.spool_limit); !st) return st;
    const bool sftp = c.url.rfind("sftp://", 0) == 0;
    if (n["host_key_sha256"]) {
        // Read, then normalised (no "SHA256:", no padding) before it is checked.
        if (auto st =
                p.read(n["host_key_sha256"], k + ".host_key_sha256", "a SHA256 key fingerprint", c.host_key_sha256);
            !st)
            return st;
        if (c.host_key_sha256.rfind("SHA256:", 0) == 0) c.host_key_sha256.erase(0, 7);
        while (!c.host_key_sha256.empty() && c.host_key_sha256.back() == '=') c.host_key_sha256.pop_back();
        // 32 bytes in base64 without padding: 43 characters.
        if (c.host_key_sha256.size() != 43 ||
            c.host_key_sha256.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
                std::string::npos)
            return p.error_at(n["host_key_sha256"].Mark(), k + ".host_key_sha256",
                              "expected a fingerprint as ssh-keygen -l -E sha256 prints it (SHA256: and 43 base64 "
                              "characters)");
    }
    if (auto st = p.read_child(n, k, "known_hosts", "a file path", c.known_hosts); !st) return st;
    if (auto st = p.read_child(n, k, "trust_first_host_key", "true or false", c.trust_first_host_key); !st) return st;
    for (const char* key : {"host_key_sha256", "known_hosts", "trust_first_host_key"})
        if (!sftp && n[key])
            return p.error_at(n[key].Mark(), k,
                              "host_key_sha256, known_hosts and trust_first_host_key are for sftp:// URLs");
    std::string tls;
    if (auto st = p.read_child_checked(n, k, "tls", "required or none", tls, tls_mode); !st) return st;
    c.tls_required = tls == "required";
    if (auto st = p.read_child(n, k, "ca_file", "a file path", c.ca_file); !st) return st;
    if (auto st = p.read_child_checked(n, k, "pinned_public_key", "sha256//BASE64", c.pinned_public_key, pinned_key);
        !st)
        return st;
    if (auto st = p.read_child(n, k, "allow_plaintext_auth", "true or false", c.allow_plaintext_auth); !st) return st;
    for (const char* key : {"tls", "ca_file", "pinned_public_key", "allow_plaintext_auth"})
        if (sftp && n[key])
            return p.error_at(n[key].Mark(), k, "tls, ca_file, pinned_public_key and allow_plaintext_auth are for FTP");
    if (ftp_auth_in_clear(c)) {
        const char* where = n["password"] ? "password" : n["password_file"] ? "password_file" : "url";
        return p.error_at(n[where].Mark(), k + "." + where, kFtpPlaintextAuth);
    }
    if (c.trust_first_host_key && (n["host_key_sha256"] || n["known_hosts"]))
        return p.error_at(n["trust_first_host_key"].Mark(), k + ".trust_first_host_key",
                          "only without host_key_sha256 and known_hosts (they already name the key)");
    return Ok{};
}

Status parse_status(const Parser& p, const YAML::Node& n, const std::string& k, ExportStatusConfig& c) {
    if (auto st = check_keys(p, n, k, {"url", "interval", "file", "file_max_size", "file_backups", "instance_id"}); !st)
        return st;
    if (auto st = p.read_child_checked(n, k, "url", "an http(s):// URL", c.url, http_url); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "interval", 1, 86400, c.interval); !st) return st;
    if (auto st = p.read_child(n, k, "file", "a file path", c.file); !st) return st;
    if (auto st = read_child_size(p, n, k, "file_max_size", 1024, c.file_max_size); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "file_backups", 0, 100, c.file_backups); !st) return st;
    if (auto st = p.read_child(n, k, "instance_id", "a string", c.instance_id); !st) return st;
    return Ok{};
}

Status parse_ipfix(const Parser& p, const YAML::Node& n, const std::string& k, ExportIpfixConfig& c) {
    if (auto st = check_keys(p, n, k, {"collectors", "template_refresh", "mtu", "observation_domain"}); !st) return st;
    if (n["collectors"])
        if (auto st = p.read_list(n["collectors"], k + ".collectors", "a list of \"host:port\"", "\"host:port\"",
                                  c.collectors, host_port);
            !st)
            return st;
    if (auto st = p.read_child_bounded(n, k, "template_refresh", 1, 86400, c.template_refresh); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "mtu", 576, 65535, c.mtu); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "observation_domain", 0, 0xffffffffull, c.observation_domain); !st)
        return st;
    return Ok{};
}

}  // namespace

bool ftp_auth_in_clear(const ExportUploadConfig& u) {
    if (u.url.rfind("ftp://", 0) != 0 || u.tls_required || u.allow_plaintext_auth) return false;
    // A password as a key, or as user info in the URL (ftp://user:pass@host/).
    const std::string rest = u.url.substr(6);
    const auto at = rest.find('@');
    const bool url_password =
        at != std::string::npos && at < rest.find('/') && rest.substr(0, at).find(':') != std::string::npos;
    return !u.password.empty() || !u.password_file.empty() || url_password;
}

ExportConfig with_flow_pairs(ExportConfig e, const std::string& database) {
    e.pairs_database = database;
    if (e.enabled) return e;
    e.enabled = true;
    e.pairs_only = true;
    e.files.enabled = false;
    e.active_timeout = std::chrono::seconds(60);
    e.idle_timeout = std::chrono::seconds(15);
    return e;
}

Status parse_export_config(const Parser& p, const YAML::Node& n, const std::string& k, ExportConfig& c) {
    if (auto st = check_keys(p, n, k,
                             {"active_timeout", "idle_timeout", "scan_interval", "files", "upload", "status", "ipfix"});
        !st)
        return st;
    c = ExportConfig{};
    c.enabled = true;
    if (auto st = p.read_child_bounded(n, k, "active_timeout", 1, 86400, c.active_timeout); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "idle_timeout", 1, 86400, c.idle_timeout); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "scan_interval", 1, 3600, c.scan_interval); !st) return st;
    if (n["files"])
        if (auto st = parse_files(p, n["files"], k + ".files", c.files); !st) return st;
    if (n["upload"])
        if (auto st = parse_upload(p, n["upload"], k + ".upload", c.upload); !st) return st;
    if (n["status"])
        if (auto st = parse_status(p, n["status"], k + ".status", c.status); !st) return st;
    if (n["ipfix"])
        if (auto st = parse_ipfix(p, n["ipfix"], k + ".ipfix", c.ipfix); !st) return st;
    if (!c.upload.url.empty() && !c.files.enabled)
        return p.error_at(n["upload"].Mark(), k + ".upload", "needs export.files enabled");
    return Ok{};
}

void dump_export_config(YAML::Emitter& out, const ExportConfig& c) {
    out << YAML::Key << "export" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "active_timeout" << YAML::Value << c.active_timeout.count();
    out << YAML::Key << "idle_timeout" << YAML::Value << c.idle_timeout.count();
    out << YAML::Key << "scan_interval" << YAML::Value << c.scan_interval.count();
    out << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "enabled" << YAML::Value << c.files.enabled;
    out << YAML::Key << "prefix" << YAML::Value << c.files.prefix;
    out << YAML::Key << "directory" << YAML::Value << c.files.directory;
    out << YAML::Key << "rotate_interval" << YAML::Value << c.files.rotate_interval.count();
    out << YAML::Key << "rotate_size" << YAML::Value << c.files.rotate_size;
    out << YAML::Key << "timezone" << YAML::Value << c.files.timezone;
    out << YAML::EndMap;
    if (!c.upload.url.empty()) {
        out << YAML::Key << "upload" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "url" << YAML::Value << mask_url_secrets(c.upload.url);
        out << YAML::Key << "user" << YAML::Value << c.upload.user;
        if (!c.upload.password.empty() && c.upload.password_file.empty())
            out << YAML::Key << "password" << YAML::Value << "(set)";
        if (!c.upload.password_file.empty())
            out << YAML::Key << "password_file" << YAML::Value << c.upload.password_file;
        out << YAML::Key << "interval" << YAML::Value << c.upload.interval.count();
        out << YAML::Key << "timeout" << YAML::Value << c.upload.timeout.count();
        out << YAML::Key << "passive" << YAML::Value << c.upload.passive;
        out << YAML::Key << "spool_limit" << YAML::Value << c.upload.spool_limit;
        if (!c.upload.host_key_sha256.empty())
            out << YAML::Key << "host_key_sha256" << YAML::Value << "SHA256:" + c.upload.host_key_sha256;
        if (!c.upload.known_hosts.empty()) out << YAML::Key << "known_hosts" << YAML::Value << c.upload.known_hosts;
        if (c.upload.trust_first_host_key) out << YAML::Key << "trust_first_host_key" << YAML::Value << true;
        if (c.upload.tls_required) out << YAML::Key << "tls" << YAML::Value << "required";
        if (!c.upload.ca_file.empty()) out << YAML::Key << "ca_file" << YAML::Value << c.upload.ca_file;
        if (!c.upload.pinned_public_key.empty())
            out << YAML::Key << "pinned_public_key" << YAML::Value << c.upload.pinned_public_key;
        if (c.upload.allow_plaintext_auth) out << YAML::Key << "allow_plaintext_auth" << YAML::Value << true;
        out << YAML::EndMap;
    }
    if (!c.status.url.empty() || !c.status.file.empty()) {
        out << YAML::Key << "status" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "url" << YAML::Value << mask_url_secrets(c.status.url);
        out << YAML::Key << "interval" << YAML::Value << c.status.interval.count();
        out << YAML::Key << "file" << YAML::Value << c.status.file;
        out << YAML::Key << "file_max_size" << YAML::Value << c.status.file_max_size;
        out << YAML::Key << "file_backups" << YAML::Value << c.status.file_backups;
        out << YAML::Key << "instance_id" << YAML::Value << c.status.instance_id;
        out << YAML::EndMap;
    }
    if (!c.ipfix.collectors.empty()) {
        out << YAML::Key << "ipfix" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "collectors" << YAML::Value << YAML::Flow << c.ipfix.collectors;
        out << YAML::Key << "template_refresh" << YAML::Value << c.ipfix.template_refresh.count();
        out << YAML::Key << "mtu" << YAML::Value << c.ipfix.mtu;
        out << YAML::Key << "observation_domain" << YAML::Value << c.ipfix.observation_domain;
        out << YAML::EndMap;
    }
    out << YAML::EndMap;
}

}  // namespace pf
