// The processor_* keys of a pmacct.conf (pmacct_conf.hpp).

#include "peakflow/export/pmacct_conf.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>

#include <spdlog/fmt/fmt.h>

#include "peakflow/accounting/calendar.hpp"

namespace pf {

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// A whole decimal number in [lo, hi], or nothing.
bool number_in(const std::string& v, uint64_t lo, uint64_t hi, uint64_t& out) {
    if (v.empty() || v.size() > 19 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    out = std::stoull(v);
    return out >= lo && out <= hi;
}

// The path of an ftp:// URL: '/'-separated, everything but unreserved characters encoded.
std::string url_path(const std::string& dir) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : dir) {
        if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
    if (out.back() != '/') out += '/';
    return out;
}

struct Entry {
    std::string value;
    int line = 0;
};

class Reader {
  public:
    Reader(std::map<std::string, Entry> keys, std::string source)
        : keys_(std::move(keys)), source_(std::move(source)) {}

    const Entry* get(const std::string& k) const {
        auto it = keys_.find(k);
        return it == keys_.end() || it->second.value.empty() ? nullptr : &it->second;
    }
    Error bad(const std::string& k, const std::string& what) const {
        auto it = keys_.find(k);
        return Error(source_ + ":" + std::to_string(it->second.line) + ": " + k + ": " + what);
    }
    // A number in [lo, hi] times `unit`, into out.
    template <typename T>
    Status number(const std::string& k, uint64_t lo, uint64_t hi, uint64_t unit, const char* what, T& out) const {
        const Entry* e = get(k);
        if (!e) return Ok{};
        uint64_t v = 0;
        if (!number_in(e->value, lo, hi, v))
            return bad(k, fmt::format("expected {} ({}-{}), got '{}'", what, lo, hi, e->value));
        out = static_cast<T>(v * unit);
        return Ok{};
    }
    Status seconds(const std::string& k, std::chrono::seconds& out) const {
        int64_t v = out.count();
        if (auto st = number(k, 1, 86400, 1, "seconds", v); !st) return st;
        out = std::chrono::seconds(v);
        return Ok{};
    }

  private:
    std::map<std::string, Entry> keys_;
    std::string source_;
};

const char* const kKeys[] = {
    "processor_ftp_host",
    "processor_ftp_port",
    "processor_ftp_user",
    "processor_ftp_pass",
    "processor_ftp_dir",
    "processor_rotate_interval_sec",
    "processor_rotate_size_mb",
    "processor_file_prefix",
    "processor_upload_interval_sec",
    "processor_timezone",
    "processor_status_report_enabled",
    "processor_status_report_url",
    "processor_status_report_interval_sec",
    "processor_status_report_uuid",
    "processor_status_report_file_path",
    "processor_status_report_file_max_mb",
    "processor_status_report_file_backups",
};

Status apply(const Reader& r, ExportConfig& cfg) {
    // Files.
    if (auto st = r.seconds("processor_rotate_interval_sec", cfg.files.rotate_interval); !st) return st;
    if (auto st = r.number("processor_rotate_size_mb", 1, 1024 * 1024, kPmacctMegabyte, "a size in MB",
                           cfg.files.rotate_size);
        !st)
        return st;
    if (const Entry* e = r.get("processor_file_prefix")) {
        if (e->value.find('/') != std::string::npos)
            return r.bad("processor_file_prefix", "must not contain '/', got '" + e->value + "'");
        cfg.files.prefix = e->value;
    }
    if (const Entry* e = r.get("processor_timezone")) {
        if (auto cal = Calendar::create(e->value, {}, 1); !cal)
            return r.bad("processor_timezone", cal.error().message());
        cfg.files.timezone = e->value;
    }
    // Upload: ftp://HOST:PORT/DIR/ with the user and password apart (never in the URL).
    if (const Entry* host = r.get("processor_ftp_host")) {
        const std::string& h = host->value;
        if (h.find_first_of("/@ ") != std::string::npos || h.find("://") != std::string::npos)
            return r.bad("processor_ftp_host", "expected a host name or address, got '" + h + "'");
        uint32_t port = 21;
        if (auto st = r.number("processor_ftp_port", 1, 65535, 1, "a port", port); !st) return st;
        const Entry* dir = r.get("processor_ftp_dir");
        const bool v6 = h.find(':') != std::string::npos && h.front() != '[';
        cfg.upload.url = "ftp://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(port) +
                         url_path(dir ? dir->value : std::string("/"));
        cfg.upload.user = r.get("processor_ftp_user") ? r.get("processor_ftp_user")->value : "";
        cfg.upload.password = r.get("processor_ftp_pass") ? r.get("processor_ftp_pass")->value : "";
        cfg.upload.password_file.clear();
        cfg.upload.host_key_sha256.clear();
        cfg.upload.known_hosts.clear();
        cfg.upload.trust_first_host_key = false;
        // The processor's plain FTP, as it was (export pipe warns at start): its keys have
        // no TLS. The peakflow config's export.upload.tls/ca_file still apply when set.
        cfg.upload.allow_plaintext_auth = true;
    } else {
        for (const char* k : {"processor_ftp_port", "processor_ftp_user", "processor_ftp_pass", "processor_ftp_dir"})
            if (r.get(k)) return r.bad(k, "needs processor_ftp_host");
    }
    if (auto st = r.seconds("processor_upload_interval_sec", cfg.upload.interval); !st) return st;
    // Status reports: the processor's are off unless enabled is true.
    if (const Entry* e = r.get("processor_status_report_enabled")) {
        const std::string v = lower(e->value);
        if (v == "false" || v == "0" || v == "no" || v == "off") {
            cfg.status.url.clear();
            cfg.status.file.clear();
            return Ok{};
        }
        if (v != "true" && v != "1" && v != "yes" && v != "on")
            return r.bad("processor_status_report_enabled", "expected true or false, got '" + e->value + "'");
        if (const Entry* u = r.get("processor_status_report_url")) {
            if (u->value.rfind("http://", 0) != 0 && u->value.rfind("https://", 0) != 0)
                return r.bad("processor_status_report_url", "expected an http:// or https:// URL");
            cfg.status.url = u->value;
        }
        if (const Entry* f = r.get("processor_status_report_file_path")) cfg.status.file = f->value;
        if (const Entry* u = r.get("processor_status_report_uuid")) cfg.status.instance_id = u->value;
        if (auto st = r.seconds("processor_status_report_interval_sec", cfg.status.interval); !st) return st;
        if (auto st = r.number("processor_status_report_file_max_mb", 1, 1024 * 1024, kPmacctMegabyte, "a size in MB",
                               cfg.status.file_max_size);
            !st)
            return st;
        if (auto st = r.number("processor_status_report_file_backups", 0, 100, 1, "a number of old files",
                               cfg.status.file_backups);
            !st)
            return st;
        if (cfg.status.url.empty() && cfg.status.file.empty())
            return r.bad("processor_status_report_enabled",
                         "true, but neither processor_status_report_url nor processor_status_report_file_path is set");
    }
    return Ok{};
}

}  // namespace

Status apply_pmacct_conf(const std::string& text, const std::string& source, ExportConfig& cfg) {
    std::map<std::string, Entry> keys;
    std::istringstream in(text);
    std::string raw;
    int n = 0;
    while (std::getline(in, raw)) {
        n++;
        const std::string line = trim(raw);
        if (line.empty() || line[0] == '!' || line[0] == '#') continue;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;  // nfacctd's to judge
        const std::string key = lower(trim(line.substr(0, colon)));
        if (key.rfind("processor_", 0) != 0) continue;
        const std::string where = source + ":" + std::to_string(n) + ": ";
        if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
            return Error(where + "unknown key '" + key +
                         "' (the processor's keys: processor_ftp_*, processor_rotate_*, " +
                         "processor_file_prefix, processor_upload_interval_sec, processor_timezone, " +
                         "processor_status_report_*)");
        if (auto it = keys.find(key); it != keys.end())
            return Error(where + key + ": given twice (line " + std::to_string(it->second.line) + " and line " +
                         std::to_string(n) + ")");
        keys[key] = {trim(line.substr(colon + 1)), n};
    }
    return apply(Reader(std::move(keys), source), cfg);
}

Status load_pmacct_conf(const std::string& path, ExportConfig& cfg) {
    std::ifstream in(path);
    if (!in) return Error("read pmacct config", path, errno);
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Error("read pmacct config", path, errno);
    return apply_pmacct_conf(ss.str(), path, cfg);
}

}  // namespace pf
