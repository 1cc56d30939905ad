#include "peakflow/app/import_tracker.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "peakflow/app/config.hpp"
#include "peakflow/push/push_reports.hpp"

namespace pf {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// The first key of `names` the mapping has (the versions spelled some keys differently).
const YAML::Node* find_key(const std::map<std::string, YAML::Node>& m, std::initializer_list<const char*> names,
                           std::set<std::string>& used) {
    for (const char* n : names)
        if (auto it = m.find(n); it != m.end()) {
            used.insert(n);
            return &it->second;
        }
    return nullptr;
}

std::string scalar(const YAML::Node* n) {
    return n && n->IsScalar() ? n->Scalar() : "";
}

// "HH:MM" or "HH:MM:SS" -> "HH:MM"; "" when it is not a time of day.
std::string time_of_day(const std::string& v, bool& had_seconds) {
    int h = 0, m = 0, s = 0;
    char tail = 0;
    had_seconds = false;
    if (std::sscanf(v.c_str(), "%d:%d:%d%c", &h, &m, &s, &tail) == 3)
        had_seconds = s != 0;
    else if (std::sscanf(v.c_str(), "%d:%d%c", &h, &m, &tail) != 2)
        return "";
    if (h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59) return "";
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", h, m);
    return buf;
}

// "24h", "24", "86400s", "30d" -> hours; nullopt when not an interval.
std::optional<double> interval_hours(std::string v) {
    v = lower(v);
    double n = 0;
    char unit = 'h', tail = 0;
    int k = std::sscanf(v.c_str(), "%lf%c%c", &n, &unit, &tail);
    if (k < 1 || k > 2) return std::nullopt;
    if (unit == 'h') return n;
    if (unit == 'd') return n * 24;
    if (unit == 'm') return n / 60;
    if (unit == 's') return n / 3600;
    return std::nullopt;
}

}  // namespace

Result<TrackerConfig> translate_tracker_config(const std::string& yaml_text, const std::string& dir) {
    YAML::Node root;
    try {
        root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
        return Error(dir + "/config.yaml: " + e.what());
    }
    TrackerConfig t;
    t.database = dir + "/peakflow.db";
    std::map<std::string, YAML::Node> keys;
    if (root.IsMap())
        for (const auto& kv : root) keys[lower(kv.first.as<std::string>())] = kv.second;
    else if (!root.IsNull())
        return Error(dir + "/config.yaml: expected a mapping of key: value");
    std::set<std::string> used;

    std::string token = scalar(find_key(keys, {"token", "access_token", "dingtalk_token", "ding_token"}, used));
    // A whole webhook URL where the token belongs: its access_token is the token.
    if (auto p = token.find("access_token="); p != std::string::npos) {
        token = token.substr(p + 13);
        token = token.substr(0, token.find('&'));
    }
    const std::string secret = scalar(find_key(keys, {"secret", "sign", "dingtalk_secret"}, used));
    const std::string sendkey =
        scalar(find_key(keys, {"sendkey", "send_key", "sckey", "serverchan_key", "server_key", "serverchan"}, used));
    std::string type = lower(scalar(find_key(keys, {"push_type", "push", "type", "notify", "notice", "mode"}, used)));
    if (type == "钉钉" || type == "ding" || type == "dingding") type = "dingtalk";
    if (type == "server酱" || type == "ftqq" || type == "sc" || type == "server") type = "serverchan";
    if (!type.empty() && type != "dingtalk" && type != "serverchan") {
        t.unmapped.push_back("key 'push_type': '" + type + "' is neither dingtalk nor serverchan");
        type.clear();
    }
    t.interface = scalar(find_key(
        keys,
        {"interface", "iface", "nic", "network", "net", "eth", "card", "net_card", "network_card", "device", "网卡"},
        used));
    const std::string log_dir = scalar(find_key(keys, {"log_dir", "log", "log_path", "logdir"}, used));
    if (auto db = scalar(find_key(keys, {"db", "database", "db_path", "sqlite"}, used)); !db.empty()) t.database = db;

    // time: a time of day (1.0.6: the daily push time), an interval (24 h and 30 days by
    // default), or a mapping of both.
    std::string daily_at;
    bool monthly = true;
    if (const YAML::Node* time = find_key(keys, {"time", "push_time", "times", "schedule"}, used)) {
        std::vector<std::pair<std::string, std::string>> items;
        if (time->IsMap()) {
            for (const auto& kv : *time) items.emplace_back(lower(kv.first.as<std::string>()), scalar(&kv.second));
        } else if (time->IsSequence()) {
            for (const auto& v : *time) items.emplace_back("", scalar(&v));
        } else {
            items.emplace_back("", scalar(time));
        }
        for (const auto& [k, v] : items) {
            const std::string key = k.empty() ? "time" : "time." + k;
            bool secs = false;
            if (std::string at = time_of_day(v, secs); !at.empty()) {
                daily_at = at;
                if (secs) t.unmapped.push_back("key '" + key + "': seconds dropped; reports.daily_at is HH:MM");
            } else if (auto h = interval_hours(v); h && std::fabs(*h - 24) < 1e-9) {
                // Every 24 hours: the daily report, sent once the local day is over.
            } else if (h && *h >= 24 * 28 && *h <= 24 * 31) {
                monthly = true;  // "30 days": the report of each billing month, on its first day
            } else {
                t.unmapped.push_back("key '" + key + "': '" + v +
                                     "' is not a time of day, 24 hours or a month; peakflow reports each local day "
                                     "and each billing month");
            }
        }
    }
    for (const auto& [k, v] : keys)
        if (!used.count(k))
            t.unmapped.push_back("key '" + k + "': not a PeakFlow_Tracker key peakflow knows; left out");

    YAML::Emitter e;
    e << YAML::BeginMap;
    if (!t.interface.empty()) e << YAML::Key << "interfaces" << YAML::Value << YAML::Flow << std::vector{t.interface};
    e << YAML::Key << "peak_windows" << YAML::Value << YAML::Flow << std::vector<std::string>{"18:00-24:00"};
    if (!log_dir.empty()) e << YAML::Key << "log_dir" << YAML::Value << log_dir;
    const bool ding = !token.empty() && (type.empty() || type == "dingtalk");
    const bool sc = !sendkey.empty() && (type.empty() || type == "serverchan");
    if (!token.empty() && !ding) t.unmapped.push_back("key 'token': push_type is serverchan; the token is unused");
    if (!sendkey.empty() && !sc) t.unmapped.push_back("key 'sendkey': push_type is dingtalk; the sendkey is unused");
    if (type == "dingtalk" && token.empty()) t.unmapped.push_back("push_type dingtalk without a token: no sink");
    if (type == "serverchan" && sendkey.empty())
        t.unmapped.push_back("push_type serverchan without a sendkey: no sink");
    if (ding || sc) {
        e << YAML::Key << "push" << YAML::Value << YAML::BeginMap;
        e << YAML::Key << "language" << YAML::Value << "zh";
        e << YAML::Key << "sinks" << YAML::Value << YAML::BeginSeq;
        if (ding) {
            e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "dingtalk" << YAML::Key << "type"
              << YAML::Value << "dingtalk" << YAML::Key << "token" << YAML::Value << YAML::DoubleQuoted << token;
            if (!secret.empty()) e << YAML::Key << "secret" << YAML::Value << YAML::DoubleQuoted << secret;
            e << YAML::EndMap;
        }
        if (sc)
            e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "serverchan" << YAML::Key << "type"
              << YAML::Value << "serverchan" << YAML::Key << "sendkey" << YAML::Value << YAML::DoubleQuoted << sendkey
              << YAML::EndMap;
        e << YAML::EndSeq << YAML::EndMap;
    } else if (!secret.empty()) {
        t.unmapped.push_back("key 'secret': no DingTalk token to sign for");
    }
    e << YAML::Key << "reports" << YAML::Value << YAML::BeginMap;
    if (!daily_at.empty()) e << YAML::Key << "daily_at" << YAML::Value << YAML::DoubleQuoted << daily_at;
    e << YAML::Key << "daily" << YAML::Value << true << YAML::Key << "monthly" << YAML::Value << monthly << YAML::Key
      << "on_start" << YAML::Value << true << YAML::EndMap;
    e << YAML::EndMap;
    t.yaml = std::string("# peakflow-bpf config from PeakFlow_Tracker's ") + dir +
             "/config.yaml (peakflow-bpf import peakflow-tracker)\n" + e.c_str() + "\n";
    if (auto c = parse_config(t.yaml, "imported config"); !c)
        return Error("internal: the translated config does not parse: " + c.error().message());
    return t;
}

// ---- history --------------------------------------------------------------------------

namespace {

struct Sqlite {
    sqlite3* db = nullptr;
    ~Sqlite() { sqlite3_close(db); }
};

std::vector<std::string> columns_of(sqlite3* db, const std::string& table) {
    std::vector<std::string> out;
    sqlite3_stmt* s = nullptr;
    std::string sql = "PRAGMA table_info(\"" + table + "\")";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return out;
    while (sqlite3_step(s) == SQLITE_ROW) out.push_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
    sqlite3_finalize(s);
    return out;
}

// The column whose lower-case name is one of `names`, or -1.
int pick(const std::vector<std::string>& cols, std::initializer_list<const char*> names) {
    for (const char* n : names)
        for (size_t i = 0; i < cols.size(); ++i)
            if (lower(cols[i]) == n) return static_cast<int>(i);
    return -1;
}

// Bytes in a cell: an integer, a real (rounded) or numeric text; nullopt otherwise.
std::optional<int64_t> bytes_cell(sqlite3_stmt* s, int col) {
    switch (sqlite3_column_type(s, col)) {
        case SQLITE_INTEGER: return sqlite3_column_int64(s, col);
        case SQLITE_FLOAT: return std::llround(sqlite3_column_double(s, col));
        case SQLITE_TEXT: {
            const char* t = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
            char* end = nullptr;
            double v = std::strtod(t, &end);
            if (end == t || *end) return std::nullopt;
            return std::llround(v);
        }
        default: return std::nullopt;
    }
}

// A cell that says peak: 1, true, "peak", "晚高峰", "high".
bool peak_cell(sqlite3_stmt* s, int col) {
    if (sqlite3_column_type(s, col) == SQLITE_INTEGER) return sqlite3_column_int64(s, col) != 0;
    std::string v = lower(reinterpret_cast<const char*>(sqlite3_column_text(s, col) ? sqlite3_column_text(s, col)
                                                                                    : (const unsigned char*)""));
    return v == "1" || v == "true" || v == "peak" || v == "晚高峰" || v == "高峰" || v == "high" || v == "evening";
}

// The instant a time cell stands for: epoch seconds (or milliseconds), or local text
// "YYYY-MM-DD[ HH:MM[:SS]]" (also with '/' or 'T').
std::optional<int64_t> time_cell(sqlite3_stmt* s, int col, const Calendar& cal) {
    if (sqlite3_column_type(s, col) == SQLITE_INTEGER) {
        int64_t v = sqlite3_column_int64(s, col);
        return v > 100000000000LL ? v / 1000 : v;
    }
    if (sqlite3_column_type(s, col) != SQLITE_TEXT) return std::nullopt;
    std::string t = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
    std::replace(t.begin(), t.end(), '/', '-');
    std::replace(t.begin(), t.end(), 'T', ' ');
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    int n = std::sscanf(t.c_str(), "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &sec);
    if (n != 3 && n < 5) return std::nullopt;
    auto day = parse_local_date(t.substr(0, t.find(' ')).size() == 10 ? t.substr(0, 10) : "");
    if (!day) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, mo, d);
        day = parse_local_date(buf);
        if (!day) return std::nullopt;
    }
    return local_time_on(cal, *day, h * 60 + mi) + sec;
}

}  // namespace

Result<TrackerHistory> read_tracker_history(const std::string& db_path, const Calendar& cal) {
    Sqlite old;
    if (sqlite3_open_v2(db_path.c_str(), &old.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
        return Error("cannot open " + db_path + ": " + sqlite3_errmsg(old.db));
    std::vector<std::string> tables;
    {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(old.db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1, &s,
                               nullptr) != SQLITE_OK)
            return Error(db_path + ": not a SQLite database (" + sqlite3_errmsg(old.db) + ")");
        while (sqlite3_step(s) == SQLITE_ROW)
            tables.push_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
        sqlite3_finalize(s);
    }
    static const auto kTime = {"time", "timestamp", "ts", "date", "datetime", "created_at", "record_time", "day"};
    static const auto kUp = {"upload", "up", "tx", "tx_bytes", "sent", "upload_bytes", "upstream", "out"};
    static const auto kDown = {"download", "down",           "rx",         "rx_bytes", "recv",
                               "received", "download_bytes", "downstream", "in"};
    static const auto kPeak = {"peak", "is_peak", "period", "type", "kind", "slot"};
    static const auto kPeakUp = {"peak_upload", "peak_up", "peak_tx"};
    static const auto kPeakDown = {"peak_download", "peak_down", "peak_rx"};
    static const auto kOffUp = {"offpeak_upload", "off_peak_upload", "offpeak_up",
                                "off_peak_up",    "offpeak_tx",      "flat_upload"};
    static const auto kOffDown = {"offpeak_download", "off_peak_download", "offpeak_down",
                                  "off_peak_down",    "offpeak_rx",        "flat_download"};
    TrackerHistory h;
    std::map<std::string, ImportedDay> days;
    for (const auto& table : tables) {
        auto cols = columns_of(old.db, table);
        const int tc = pick(cols, kTime);
        if (tc < 0) continue;
        const int pu = pick(cols, kPeakUp), pd = pick(cols, kPeakDown), ou = pick(cols, kOffUp),
                  od = pick(cols, kOffDown);
        const bool four = pu >= 0 && pd >= 0 && ou >= 0 && od >= 0;
        const int up = pick(cols, kUp), down = pick(cols, kDown), peak = pick(cols, kPeak);
        if (!four && (up < 0 || down < 0)) continue;
        h.table = table;
        sqlite3_stmt* s = nullptr;
        std::string sql = "SELECT * FROM \"" + table + "\"";
        if (sqlite3_prepare_v2(old.db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
            return Error(db_path + ": cannot read table " + table + ": " + sqlite3_errmsg(old.db));
        int64_t bad = 0, line = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
            ++line;
            auto t = time_cell(s, tc, cal);
            // A row holds what was counted up to its time (hourly increments): its instant
            // is a second earlier, so 00:00:00 closes the day before and 18:00 off-peak.
            if (!t) {
                ++bad;
                continue;
            }
            const int64_t at = *t - (four ? 0 : 1);
            ImportedDay& d = days[cal.local_date(at).str()];
            d.day = cal.local_date(at);
            if (four) {
                auto a = bytes_cell(s, pu), b = bytes_cell(s, pd), c = bytes_cell(s, ou), e = bytes_cell(s, od);
                if (!a || !b || !c || !e || *a < 0 || *b < 0 || *c < 0 || *e < 0) {
                    ++bad;
                    continue;
                }
                d.peak_tx += *a, d.peak_rx += *b, d.offpeak_tx += *c, d.offpeak_rx += *e;
            } else {
                auto u = bytes_cell(s, up), w = bytes_cell(s, down);
                if (!u || !w || *u < 0 || *w < 0) {
                    ++bad;
                    continue;
                }
                const bool is_peak = peak >= 0 ? peak_cell(s, peak) : cal.is_peak(at);
                (is_peak ? d.peak_tx : d.offpeak_tx) += *u;
                (is_peak ? d.peak_rx : d.offpeak_rx) += *w;
            }
        }
        sqlite3_finalize(s);
        if (bad)
            h.unmapped.push_back("table " + table + ": " + std::to_string(bad) + " of " + std::to_string(line) +
                                 " rows left out (no readable time, or a byte count that is missing or negative)");
        for (const auto& other : tables)
            if (other != table && other.rfind("sqlite_", 0) != 0)
                h.unmapped.push_back("table " + other + ": not read (the traffic is in " + table + ")");
        for (auto& [k, v] : days) h.days.push_back(v);
        return h;
    }
    std::string list;
    for (const auto& t : tables) list += (list.empty() ? "" : ", ") + t;
    return Error(db_path + ": no table with a time column and upload/download columns (tables: " +
                 (list.empty() ? "none" : list) + "); see docs/migration.md for the shapes it reads");
}

// ---- the command ------------------------------------------------------------------------

int run_import_tracker(const ImportTrackerOptions& o, std::ostream& out, std::ostream& err) {
    const std::string cfg_path = o.dir + "/config.yaml";
    std::ifstream in(cfg_path);
    if (!in) {
        err << "peakflow-bpf: error: cannot read " << cfg_path << " (is " << o.dir
            << " PeakFlow_Tracker's directory? give it as DIR)\n";
        return 1;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto t = translate_tracker_config(text, o.dir);
    if (!t) {
        err << "peakflow-bpf: error: " << t.error().message() << "\n";
        return 1;
    }
    if (!o.write.empty()) {
        if (std::filesystem::exists(o.write) && !o.force) {
            err << "peakflow-bpf: error: " << o.write << " exists; give --force to replace it\n";
            return 1;
        }
        // It holds the push tokens: readable by its owner only, as config check asks.
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(o.write).parent_path(), ec);
        std::ofstream f(o.write, std::ios::trunc);
        ::chmod(o.write.c_str(), 0600);
        if (!(f << t->yaml) || !f.flush()) {
            err << "peakflow-bpf: error: cannot write " << o.write << "\n";
            return 1;
        }
        err << "config: written to " << o.write << "\n";
    } else {
        out << t->yaml;
    }
    for (const auto& u : t->unmapped) err << "not mapped: " << u << "\n";

    if (!std::filesystem::exists(t->database)) {
        err << "history: no " << t->database << ", nothing to import\n";
        return 0;
    }
    const std::string iface = o.interface.empty() ? t->interface : o.interface;
    if (iface.empty()) {
        err << "peakflow-bpf: error: the old config names no interface: give --interface IF for the history\n";
        return 1;
    }
    auto h = read_tracker_history(t->database, *o.calendar);
    if (!h) {
        err << "peakflow-bpf: error: " << h.error().message() << "\n";
        return 1;
    }
    auto store = Store::open(o.database);
    if (!store) {
        err << "peakflow-bpf: error: " << store.error().message() << "\n";
        return 1;
    }
    const int64_t now = o.clock ? o.clock() : static_cast<int64_t>(::time(nullptr));
    auto r = (*store)->import_days(*o.calendar, iface, "PeakFlow_Tracker " + t->database, h->days, now);
    if (!r) {
        err << "peakflow-bpf: error: " << r.error().message() << "\n";
        return 1;
    }
    err << "history: " << r->imported.size() << " day(s) of " << t->database << " (table " << h->table
        << ") imported into " << o.database << " as interface " << iface;
    if (!r->imported.empty()) err << ", " << r->imported.front() << " to " << r->imported.back();
    err << "\n";
    if (!r->already.empty()) err << "history: " << r->already.size() << " day(s) were imported before; unchanged\n";
    for (const auto& [day, why] : r->skipped) err << "not imported: " << day << ": " << why << "\n";
    for (const auto& u : h->unmapped) err << "not imported: " << u << "\n";
    return 0;
}

}  // namespace pf
