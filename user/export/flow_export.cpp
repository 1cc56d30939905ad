#include "peakflow/export/flow_export.hpp"

#include "peakflow/accounting/calendar.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <ctime>

namespace pf {

// ---- delta and timeouts ----

namespace {
int64_t to_utc_ms(uint64_t mono_ns, int64_t real_offset_ns) {
    return (static_cast<int64_t>(mono_ns) + real_offset_ns) / 1000000;
}
}  // namespace

FlowRecord FlowTracker::record(const FlowRow& row, const State& st, int64_t real_offset_ns) const {
    FlowRecord r;
    r.key = row.key;
    r.iface = iface_;
    r.ifindex = ifindex_;
    uint64_t start = std::min(st.window_start_ns, row.last_seen_ns);
    r.start_ms = to_utc_ms(start, real_offset_ns);
    r.end_ms = to_utc_ms(row.last_seen_ns, real_offset_ns);
    r.packets = row.packets - st.packets;
    r.bytes = row.bytes - st.bytes;
    r.tcp_flags = row.tcp_flags;
    return r;
}

namespace {
// The state continues for this row: same table entry (FlowRow::entry_id) and counters
// not below what was exported. Otherwise the flow was taken and started again.
template <typename State>
bool continues(const State& st, const FlowRow& row) {
    return row.entry_id == st.entry_id && row.packets >= st.packets && row.bytes >= st.bytes;
}
template <typename State>
State fresh(const FlowRow& row) {
    State st;
    st.entry_id = row.entry_id;
    st.window_start_ns = row.first_seen_ns;
    st.active_since_ns = row.first_seen_ns;
    return st;
}
}  // namespace

FlowTracker::ScanResult FlowTracker::scan(const std::vector<FlowRow>& rows, uint64_t now_ns, int64_t real_offset_ns,
                                          bool flush) {
    ScanResult out;
    pending_.clear();
    std::unordered_map<pf_flow_key, State, FlowKeyHash, FlowKeyEq> next;
    next.reserve(rows.size());
    for (const auto& row : rows) {
        if (row.packets == 0) continue;
        auto it = state_.find(row.key);
        // New flow, or the entry was deleted and created again: counting starts over.
        State st = it != state_.end() && continues(it->second, row) ? it->second : fresh<State>(row);
        const bool idle = now_ns >= row.last_seen_ns && now_ns - row.last_seen_ns >= idle_ns_;
        const bool active = now_ns >= st.active_since_ns && now_ns - st.active_since_ns >= active_ns_;
        if (idle || flush) {
            // The final record comes from finish(), with the value removed from the map.
            out.expired.push_back(row.key);
            pending_.emplace(row.key, st);
            continue;  // forgotten: the entry leaves the map
        }
        if (row.packets > st.packets && active) {
            out.records.push_back(record(row, st, real_offset_ns));
            st.packets = row.packets;
            st.bytes = row.bytes;
            // The next delta's packets all arrive after this scan.
            st.window_start_ns = std::max(now_ns, row.last_seen_ns);
            st.active_since_ns = now_ns;
        }
        next.emplace(row.key, st);
    }
    // Entries gone from the map (deleted, map re-created) are forgotten with them.
    state_ = std::move(next);
    return out;
}

std::vector<FlowRecord> FlowTracker::finish(const std::vector<FlowRow>& finals, int64_t real_offset_ns) {
    std::vector<FlowRecord> out;
    for (const auto& row : finals) {
        if (row.packets == 0) continue;
        auto it = pending_.find(row.key);
        State st = it != pending_.end() && continues(it->second, row) ? it->second : fresh<State>(row);
        if (row.packets > st.packets) out.push_back(record(row, st, real_offset_ns));
    }
    pending_.clear();
    return out;
}

std::vector<FlowSnapshot> FlowTracker::snapshot() const {
    std::vector<FlowSnapshot> out;
    out.reserve(state_.size());
    for (const auto& [k, st] : state_)
        out.push_back(FlowSnapshot{k, st.bytes, st.packets, st.entry_id, st.window_start_ns, st.active_since_ns});
    return out;
}

void FlowTracker::restore(const std::vector<FlowSnapshot>& flows) {
    state_.clear();
    pending_.clear();
    for (const auto& f : flows)
        state_[f.key] = State{f.bytes, f.packets, f.entry_id, f.window_start_ns, f.active_since_ns};
}

Result<MapScan> scan_flow_map(const MapSet& maps, FlowTracker& tracker, uint64_t now_ns, int64_t real_offset_ns,
                              bool flush, const std::function<void()>& before_take) {
    auto rows = maps.read_flows();
    if (!rows) return rows.error();
    auto res = tracker.scan(*rows, now_ns, real_offset_ns, flush);
    MapScan out;
    out.records = std::move(res.records);
    out.expired = res.expired.size();
    if (res.expired.empty()) return out;
    if (before_take) before_take();
    FlowTake taken = maps.take_flows(res.expired);
    for (auto& r : tracker.finish(taken.rows, real_offset_ns)) out.records.push_back(std::move(r));
    return out;
}

// ---- CSV ----

const char* const kFlowCsvHeader =
    "start_time,end_time,interface,direction,src_mac,dst_mac,src_ip,dst_ip,protocol,src_port,dst_port,vlan,"
    "inner_vlan,packets,bytes,tcp_flags\n";

namespace {

void put_u64(std::string& out, uint64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    out.append(b, r.ptr);
}

void put_2(char* p, unsigned v) {
    p[0] = char('0' + v / 10);
    p[1] = char('0' + v % 10);
}

// "YYYY-MM-DD HH:MM:SS.mmm" (UTC). The date and time of the last second are cached.
void put_time(std::string& out, int64_t ms) {
    thread_local int64_t cached_sec = INT64_MIN;
    thread_local char cached[19];
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int64_t frac = ms - sec * 1000;
    if (sec != cached_sec) {
        time_t t = static_cast<time_t>(sec);
        struct tm tm {};
        gmtime_r(&t, &tm);
        unsigned y = static_cast<unsigned>(tm.tm_year + 1900) % 10000;
        cached[0] = char('0' + y / 1000);
        cached[1] = char('0' + y / 100 % 10);
        cached[2] = char('0' + y / 10 % 10);
        cached[3] = char('0' + y % 10);
        cached[4] = '-';
        put_2(cached + 5, unsigned(tm.tm_mon + 1));
        cached[7] = '-';
        put_2(cached + 8, unsigned(tm.tm_mday));
        cached[10] = ' ';
        put_2(cached + 11, unsigned(tm.tm_hour));
        cached[13] = ':';
        put_2(cached + 14, unsigned(tm.tm_min));
        cached[16] = ':';
        put_2(cached + 17, unsigned(tm.tm_sec));
        cached_sec = sec;
    }
    out.append(cached, 19);
    char f[4] = {'.', char('0' + frac / 100), char('0' + frac / 10 % 10), char('0' + frac % 10)};
    out.append(f, 4);
}

void put_mac(std::string& out, const uint8_t* m) {
    static const char hex[] = "0123456789abcdef";
    char b[17];
    for (int i = 0; i < 6; i++) {
        b[i * 3] = hex[m[i] >> 4];
        b[i * 3 + 1] = hex[m[i] & 15];
        if (i < 5) b[i * 3 + 2] = ':';
    }
    out.append(b, 17);
}

void put_addr(std::string& out, const pf_flow_key& k, const uint8_t* a) {
    char b[INET6_ADDRSTRLEN];
    if (k.family == 4) {
        inet_ntop(AF_INET, a + 12, b, sizeof b);
    } else {
        inet_ntop(AF_INET6, a, b, sizeof b);
    }
    out.append(b);
}

}  // namespace

void append_csv_row(std::string& out, const FlowRecord& r) {
    put_time(out, r.start_ms);
    out += ',';
    put_time(out, r.end_ms);
    out += ',';
    out += r.iface;
    out += r.key.dir == PF_DIR_RX ? ",rx," : ",tx,";
    put_mac(out, r.key.src_mac);
    out += ',';
    put_mac(out, r.key.dst_mac);
    out += ',';
    put_addr(out, r.key, r.key.src_addr);
    out += ',';
    put_addr(out, r.key, r.key.dst_addr);
    out += ',';
    put_u64(out, r.key.proto);
    out += ',';
    put_u64(out, r.key.src_port);
    out += ',';
    put_u64(out, r.key.dst_port);
    out += ',';
    put_u64(out, r.key.vlan[0]);
    out += ',';
    put_u64(out, r.key.vlan[1]);
    out += ',';
    put_u64(out, r.packets);
    out += ',';
    put_u64(out, r.bytes);
    out += ',';
    put_u64(out, r.tcp_flags);
    out += '\n';
}

// ---- config ----

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
    if (v.rfind("ftp://", 0) == 0 || v.rfind("sftp://", 0) == 0) return "";
    return "expected an ftp:// or sftp:// URL, got '" + v + "'";
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
                             {"url", "user", "password", "password_file", "interval", "passive", "spool_limit",
                              "host_key_sha256", "known_hosts"});
        !st)
        return st;
    if (!n["url"]) return p.error_at(n.Mark(), k + ".url", "missing (ftp://host/dir/ or sftp://host/dir/)");
    if (auto st = p.read_checked(n["url"], k + ".url", "an ftp:// or sftp:// URL", c.url, ftp_url); !st) return st;
    if (c.url.back() != '/') c.url += '/';
    if (auto st = p.read_child(n, k, "user", "a user name", c.user); !st) return st;
    if (auto st = p.read_child(n, k, "password", "a password", c.password); !st) return st;
    if (auto st = p.read_child(n, k, "password_file", "a file path", c.password_file); !st) return st;
    if (n["password"] && n["password_file"])
        return p.error_at(n["password_file"].Mark(), k + ".password_file", "give password or password_file, not both");
    if (auto st = p.read_child_bounded(n, k, "interval", 1, 86400, c.interval); !st) return st;
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
    if (!sftp && (n["host_key_sha256"] || n["known_hosts"]))
        return p.error_at(n[n["known_hosts"] ? "known_hosts" : "host_key_sha256"].Mark(), k,
                          "host_key_sha256 and known_hosts are for sftp:// URLs");
    return Ok{};
}

Status parse_status(const Parser& p, const YAML::Node& n, const std::string& k, ExportStatusConfig& c) {
    if (auto st = check_keys(p, n, k, {"url", "interval", "file", "instance_id"}); !st) return st;
    if (auto st = p.read_child_checked(n, k, "url", "an http(s):// URL", c.url, http_url); !st) return st;
    if (auto st = p.read_child_bounded(n, k, "interval", 1, 86400, c.interval); !st) return st;
    if (auto st = p.read_child(n, k, "file", "a file path", c.file); !st) return st;
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
        out << YAML::Key << "url" << YAML::Value << c.upload.url;
        out << YAML::Key << "user" << YAML::Value << c.upload.user;
        if (!c.upload.password.empty()) out << YAML::Key << "password" << YAML::Value << "(set)";
        if (!c.upload.password_file.empty())
            out << YAML::Key << "password_file" << YAML::Value << c.upload.password_file;
        out << YAML::Key << "interval" << YAML::Value << c.upload.interval.count();
        out << YAML::Key << "passive" << YAML::Value << c.upload.passive;
        out << YAML::Key << "spool_limit" << YAML::Value << c.upload.spool_limit;
        if (!c.upload.host_key_sha256.empty())
            out << YAML::Key << "host_key_sha256" << YAML::Value << "SHA256:" + c.upload.host_key_sha256;
        if (!c.upload.known_hosts.empty()) out << YAML::Key << "known_hosts" << YAML::Value << c.upload.known_hosts;
        out << YAML::EndMap;
    }
    if (!c.status.url.empty() || !c.status.file.empty()) {
        out << YAML::Key << "status" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "url" << YAML::Value << c.status.url;
        out << YAML::Key << "interval" << YAML::Value << c.status.interval.count();
        out << YAML::Key << "file" << YAML::Value << c.status.file;
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
