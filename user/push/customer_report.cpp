#include "peakflow/push/customer_report.hpp"
#include "peakflow/push/customer_answer.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "peakflow/common/sqlite.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "peakflow/accounting/report.hpp"
#include "peakflow/common/http.hpp"

namespace pf {

using Json = nlohmann::ordered_json;

// ---- contents ----------------------------------------------------------------------------

Result<HourPoints> hour_points(Store& store, const std::vector<Adjustment>& adjustments, const std::string& iface,
                               std::optional<int64_t> peer, const std::string& direction, int64_t hour_start) {
    auto rows = store.buckets(Filter{iface, peer.value_or(kIfaceTotal)}, hour_start, hour_start + 12 * kBucketSeconds);
    if (!rows) return rows.error();
    uint64_t raw[12][PF_DIR_COUNT] = {};
    for (const auto& r : *rows) {
        const auto i = static_cast<size_t>((r.ts - hour_start) / kBucketSeconds);
        for (int d = 0; d < PF_DIR_COUNT; d++) raw[i][d] += r.dir[d].bytes;
    }
    const Adjustment* adj_rx = match_adjustment(adjustments, iface, peer, PF_DIR_RX);
    const Adjustment* adj_tx = match_adjustment(adjustments, iface, peer, PF_DIR_TX);
    HourPoints v{};
    for (size_t i = 0; i < 12; i++) {
        const uint64_t tx = apply_adjustment(adj_tx, raw[i][PF_DIR_TX]);
        const uint64_t rx = apply_adjustment(adj_rx, raw[i][PF_DIR_RX]);
        v[i] = direction == "tx" ? tx : direction == "rx" ? rx : tx + rx;
    }
    return v;
}

std::string flux_dat(const Calendar& cal, int64_t hour_start) {
    return cal.format_local(hour_start).substr(0, 10);
}

std::string flux_hour(const Calendar& cal, int64_t hour_start) {
    return cal.format_local(hour_start).substr(0, 13);
}

namespace {

Json field_json(const StaticField& f) {
    if (f.number) return Json(std::stoll(f.value));
    return Json(f.value);
}

Json points_json(const HourPoints& v) {
    Json a = Json::array();
    for (auto x : v) a.push_back(x);
    return a;
}

}  // namespace

std::string customer_body(const CustomerReportConfig& c, const Calendar& cal, const std::string& mac,
                          int64_t hour_start, const HourPoints& v, int version) {
    Json j;
    j["flux_dat"] = flux_dat(cal, hour_start);
    j["flux_hour"] = flux_hour(cal, hour_start);
    j["provider_id"] = field_json(c.provider_id);
    j["provider_uiid"] = field_json(c.provider_uiid);
    j["isp_id"] = field_json(c.isp_id);
    j["mac"] = mac;
    for (size_t i = 0; i < v.size(); i++) j["v" + std::to_string(i)] = v[i];
    j["version"] = version;
    j["device_type"] = field_json(c.device_type);
    for (const auto& f : c.fields) j[f.key] = field_json(f);
    return j.dump();
}

Result<int64_t> parse_local_hour(const Calendar& cal, const std::string& text) {
    const auto bad = Error("'" + text + "' is not a local hour YYYY-MM-DDTHH");
    if (text.size() != 13 || text[10] != 'T' || !std::isdigit(static_cast<unsigned char>(text[11])) ||
        !std::isdigit(static_cast<unsigned char>(text[12])))
        return bad;
    auto d = parse_local_date(text.substr(0, 10));
    if (!d) return bad;
    const int hour = std::stoi(text.substr(11, 2));
    if (hour > 23) return bad;
    const std::string want = text.substr(0, 10) + " " + text.substr(11, 2);
    for (int64_t t = cal.day_start(*d); t < cal.day_end(*d); t += kBucketSeconds)
        if (cal.format_local(t).substr(0, 13) == want) return cal.hour_start(t);
    return Error("hour " + text.substr(11, 2) + " does not exist on " + d->str() + " in " + cal.tz_name(), "", 0,
                 "the clocks skip it for daylight saving time");
}

Result<MacAddr> read_iface_mac(const std::string& sysfs, const std::string& iface) {
    const std::string path = sysfs + "/class/net/" + iface + "/address";
    std::ifstream in(path);
    std::string s;
    if (!in || !std::getline(in, s)) return Error("read interface MAC", path, errno);
    auto m = parse_mac(s);
    if (!m) return Error("read interface MAC", path, 0, "'" + s + "' is not a MAC address");
    return *m;
}

// ---- tables ------------------------------------------------------------------------------

namespace {

constexpr SchemaPart kSchema[] = {{"customer_report", 1, R"(
CREATE TABLE IF NOT EXISTS customer_report(mac TEXT NOT NULL, hour INTEGER NOT NULL, version INTEGER NOT NULL,
    flux_hour TEXT NOT NULL, points TEXT NOT NULL, body TEXT NOT NULL, queued_at INTEGER NOT NULL,
    outcome TEXT NOT NULL, checked_at INTEGER, PRIMARY KEY(mac, hour, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customer_mac(since INTEGER PRIMARY KEY, mac TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customer_verify(checked_at INTEGER NOT NULL, mac TEXT NOT NULL, hour INTEGER NOT NULL,
    outcome TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customer_state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)"}};

std::string points_text(const HourPoints& v) {
    return points_json(v).dump();
}

// Latest recorded version of (mac, hour): {version, points}; version 0 when never sent
// (also when it cannot be read, as it always was).
std::pair<int, std::string> latest(const SqliteDb& db, const std::string& mac, int64_t hour) {
    auto q = db.prepare(
        "SELECT version, points FROM customer_report WHERE mac = ?1 AND hour = ?2 ORDER BY version DESC LIMIT 1");
    if (!q) return {0, ""};
    q->bind(1, mac);
    q->bind(2, hour);
    if (q->step() == SQLITE_ROW) return {static_cast<int>(q->i64(0)), q->text(1)};
    return {0, ""};
}

// The MAC recorded for an hour by the daemon (customer_mac), if any.
std::optional<std::string> recorded_mac(const SqliteDb& db, int64_t hour) {
    auto q = db.prepare("SELECT mac FROM customer_mac WHERE since <= ?1 ORDER BY since DESC LIMIT 1");
    if (!q) return std::nullopt;
    q->bind(1, hour);
    if (q->step() == SQLITE_ROW) return q->text(0);
    return std::nullopt;
}

Result<SqliteDb> open_tables(const std::string& path, bool read_only, const std::string& error_context = "") {
    SqliteOptions o;
    o.mode = read_only ? SqliteMode::ReadOnly : SqliteMode::ReadWrite;
    o.error_context = error_context;
    return SqliteDb::open(path, o);
}

bool has_table(const SqliteDb& db, const char* name) {
    auto q = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    return q && q->bind(1, name).step() == SQLITE_ROW;
}

}  // namespace

Result<std::vector<std::string>> customer_hour_bodies(const CustomerReportConfig& c,
                                                      const std::vector<Adjustment>& adjustments, const Calendar& cal,
                                                      const CustomerHourRequest& r) {
    auto store = Store::open(r.database, true);
    if (!store) return store.error();
    auto db = open_tables(r.database, true);  // without it (or its tables): nothing recorded yet
    const bool tables = db && has_table(*db, "customer_report");
    std::vector<std::pair<std::string, std::optional<int64_t>>> who;  // mac text, peer key
    if (c.macs.empty()) {
        std::optional<std::string> mac = tables ? recorded_mac(*db, r.hour_start) : std::nullopt;
        if (!mac) {
            auto m = read_iface_mac(r.sysfs, r.iface);
            if (!m) return m.error();
            mac = format_mac(*m);
        }
        who.emplace_back(*mac, std::nullopt);
    } else {
        for (const auto& m : c.macs) who.emplace_back(format_mac(m), mac_to_int(m));
    }
    std::vector<std::string> out;
    for (const auto& [mac, peer] : who) {
        if (r.mac && format_mac(*r.mac) != mac) continue;
        auto v = hour_points(**store, adjustments, r.iface, peer, c.direction, r.hour_start);
        if (!v) return v.error();
        const int version = tables ? std::max(1, latest(*db, mac, r.hour_start).first) : 1;
        out.push_back(customer_body(c, cal, mac, r.hour_start, *v, version));
    }
    if (out.empty() && r.mac) return Error("MAC " + format_mac(*r.mac) + " is not reported on " + r.iface);
    return out;
}

Result<std::vector<std::string>> customer_verify_log(const std::string& database, const Calendar& cal, int limit) {
    auto db = open_tables(database, true);
    if (!db) return Error("cannot open database " + database);
    std::vector<std::string> out;
    if (has_table(*db, "customer_verify")) {
        auto p = db->prepare(
            "SELECT checked_at, mac, hour, outcome, detail FROM customer_verify ORDER BY checked_at DESC, hour DESC "
            "LIMIT ?1");
        if (!p) return p.error();
        SqlStmt& q = *p;
        q.bind(1, limit);
        while (q.step() == SQLITE_ROW) {
            std::string line =
                cal.format_local(q.i64(0)) + "  " + q.text(1) + "  " + flux_hour(cal, q.i64(2)) + "  " + q.text(3);
            if (!q.text(4).empty()) line += "  " + q.text(4);
            out.push_back(line);
        }
    }
    return out;
}

// ---- service -----------------------------------------------------------------------------

Result<CustomerReportService::Options> customer_report_options(const ServiceContext& ctx) {
    CustomerReportService::Options o;
    o.cfg = ctx.sections.get<CustomerReportConfig>();
    auto it = std::find_if(ctx.sinks.begin(), ctx.sinks.end(), [&](const auto& s) { return s.first == o.cfg.sink; });
    if (it == ctx.sinks.end()) return Error("customer_report.sink: '" + o.cfg.sink + "' is not a configured push sink");
    if (it->second != "http")
        return Error("customer_report.sink: '" + o.cfg.sink + "' is of type " + it->second +
                     ", the customer report needs type http (the body is POSTed as is)");
    o.database = ctx.accounting.database;
    o.sysfs = ctx.paths.sysfs;
    o.iface = o.cfg.iface.empty() ? (ctx.ifaces.empty() ? "" : ctx.ifaces.front()) : o.cfg.iface;
    o.timezone = ctx.accounting.timezone;
    o.peak_windows = ctx.accounting.peak_windows;
    o.billing_day = ctx.accounting.billing_day;
    o.adjustments = ctx.accounting.adjustments;
    o.drain_interval =
        std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(ctx.drain_interval).count());
    o.clock = ctx.clock;
    return o;
}

// Switched off but with a sink named, the service runs and waits for the switch (a reload,
// or the collector's central config), recording that nothing before it is reported.
Result<std::unique_ptr<Service>> make_customer_report_service(ServiceContext& ctx) {
    const CustomerReportConfig& cr = ctx.sections.get<CustomerReportConfig>();
    if (!cr.enabled && cr.sink.empty()) return std::unique_ptr<Service>();
    if (!ctx.outbox) {
        if (!cr.enabled) return std::unique_ptr<Service>();
        return Error("customer_report is enabled but push is not configured", "", 0,
                     "add a push sink of type http and name it in customer_report.sink");
    }
    auto co = customer_report_options(ctx);
    auto s = co ? CustomerReportService::create(std::move(*co), *ctx.outbox)
                : Result<std::unique_ptr<CustomerReportService>>(co.error());
    if (!s) {
        if (cr.enabled) return s.error();
        spdlog::warn("customer_report (switched off): {}; switching it on will need a restart", s.error().message());
        return std::unique_ptr<Service>();
    }
    return std::unique_ptr<Service>(std::move(*s));
}

Result<std::unique_ptr<CustomerReportService>> CustomerReportService::create(Options o, MessageQueue& queue) {
    if (!o.clock) o.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    if (o.iface.empty()) return Error("customer_report: no interface to report");
    std::unique_ptr<CustomerReportService> s(new CustomerReportService(std::move(o), queue));
    auto cal = Calendar::create(s->o_.timezone, s->o_.peak_windows, s->o_.billing_day);
    if (!cal) return cal.error();
    s->cal_ = std::move(*cal);
    if (s->o_.cfg.macs.empty())
        if (auto m = read_iface_mac(s->o_.sysfs, s->o_.iface); !m)
            return Error("customer_report: " + m.error().message(), "", 0,
                         "list the MACs to report in customer_report.macs");
    auto st = Store::open(s->o_.database);
    if (!st) return st.error();
    s->store_ = std::move(*st);
    auto db = open_tables(s->o_.database, false, "create customer report tables");
    if (!db) return Error("cannot open database " + s->o_.database);
    s->db_ = std::move(*db);
    if (auto st = apply_schema(s->db_, kSchema); !st) return st.error();
    // Reporting starts with the hour the switch was first turned on.
    auto first = first_start(s->db_, "customer_state", s->o_.clock());
    if (!first) return first.error();
    s->first_start_ = *first;
    s->start_ticker();
    return s;
}

CustomerReportService::~CustomerReportService() {
    stop();
}

void CustomerReportService::reload_locked(const ServiceContext& next) {
    const CustomerReportConfig& cfg = next.sections.get<CustomerReportConfig>();
    o_.adjustments = next.accounting.adjustments;
    // The sink and interface need a restart (checked against the push sinks at start);
    // the fields, MAC list, direction and verification settings apply from now on.
    const std::string sink = o_.cfg.sink, iface = o_.cfg.iface;
    const bool enabled = o_.cfg.enabled;
    o_.cfg = cfg;
    o_.cfg.sink = sink;
    o_.cfg.iface = iface;
    if (!cfg.enabled && enabled) spdlog::info("customer_report: switched off; hours are not reported");
}

// The interface's MAC now; a change counts from the next local hour on (the hour in which
// it was seen is still reported under the MAC it started with).
Status CustomerReportService::note_mac(int64_t now) {
    if (!o_.cfg.macs.empty()) return Ok{};
    auto m = read_iface_mac(o_.sysfs, o_.iface);
    if (!m) return m.error();
    const std::string mac = format_mac(*m);
    auto q = db_.prepare("SELECT mac FROM customer_mac ORDER BY since DESC LIMIT 1");
    if (!q) return q.error();
    const int rc = q->step();
    if (rc == SQLITE_ROW && q->text(0) == mac) return Ok{};
    const int64_t since = rc == SQLITE_ROW ? cal_->hour_start(now) + 3600 : 0;
    auto ins = db_.prepare("INSERT OR REPLACE INTO customer_mac(since, mac) VALUES(?1, ?2)");
    if (!ins) return ins.error();
    ins->bind(1, since);
    ins->bind(2, mac);
    if (ins->step() != SQLITE_DONE) return sql_error(db_, "record interface MAC");
    if (rc == SQLITE_ROW)
        spdlog::info("customer_report: {} changed MAC {} -> {}; reported under the new one from {}", o_.iface,
                     q->text(0), mac, cal_->format_local(since));
    return Ok{};
}

Result<std::vector<std::pair<std::string, std::optional<int64_t>>>> CustomerReportService::reported_for_hour(
    int64_t hour) {
    std::vector<std::pair<std::string, std::optional<int64_t>>> who;
    if (o_.cfg.macs.empty()) {
        auto m = recorded_mac(db_, hour);
        if (!m) return Error("customer_report: no MAC recorded for " + o_.iface);
        who.emplace_back(*m, std::nullopt);
    } else {
        for (const auto& m : o_.cfg.macs) who.emplace_back(format_mac(m), mac_to_int(m));
    }
    return who;
}

Status CustomerReportService::queue_hour(const std::string& mac, std::optional<int64_t> peer, int64_t hour, int version,
                                         const std::string& outcome, int64_t now) {
    auto v = hour_points(*store_, o_.adjustments, o_.iface, peer, o_.cfg.direction, hour);
    if (!v) return v.error();
    const std::string body = customer_body(o_.cfg, *cal_, mac, hour, *v, version);
    const std::string fh = flux_hour(*cal_, hour);
    OutboundMessage m{o_.cfg.sink,
                      "hourly",
                      fh.substr(0, 10) + "T" + fh.substr(11, 2),
                      "Hourly " + fh.substr(0, 10) + "T" + fh.substr(11, 2) + " v" + std::to_string(version),
                      "hourly report of " + mac + ", version " + std::to_string(version),
                      body};
    // What the hour reports (推送数据): the sum of its twelve 5-minute values, as sent.
    int64_t sum = 0;
    for (auto x : *v) sum += static_cast<int64_t>(x);
    m.value = sum;
    // Once per (MAC, hour, version): when the record below fails, the next tick does not
    // queue the hour again.
    m.once = "customer " + mac + " " + std::to_string(hour) + " v" + std::to_string(version);
    if (auto st = queue_.enqueue(m); !st) return st;
    auto p = db_.prepare(
        "INSERT OR REPLACE INTO customer_report(mac, hour, version, flux_hour, points, body, queued_at, outcome) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    if (!p) return p.error();
    SqlStmt& ins = *p;
    ins.bind(1, mac);
    ins.bind(2, hour);
    ins.bind(3, version);
    ins.bind(4, fh);
    ins.bind(5, points_text(*v));
    ins.bind(6, body);
    ins.bind(7, now);
    ins.bind(8, outcome);
    if (ins.step() != SQLITE_DONE) return sql_error(db_, "record customer report");
    spdlog::info("customer_report: {} {} version {} queued", mac, fh, version);
    return Ok{};
}

Status CustomerReportService::tick(int64_t now) {
    auto due = queue_due(now);
    if (!due) return due.error();
    // Verification talks to the customer's API: outside the work lock (see verify()).
    if (*due)
        if (auto st = verify(now); !st) spdlog::warn("customer_report: verification: {}", st.error().message());
    return Ok{};
}

Result<bool> CustomerReportService::queue_due(int64_t now) {
    std::lock_guard<std::mutex> w(work_mu_);
    if (!o_.cfg.enabled) {
        // Switched off (by a reload): the hours until it is on again are never reported.
        auto up = db_.prepare("UPDATE customer_state SET value = ?1 WHERE key = 'first_start'");
        if (!up) return up.error();
        if (up->bind(1, now).step() != SQLITE_DONE) return sql_error(db_, "record the switch");
        first_start_ = now;
        return false;
    }
    if (auto st = note_mac(now); !st) return st.error();
    // Hours whose end is one drain interval behind the drain: their last bucket is complete.
    const int64_t last = cal_->hour_start(now - o_.drain_interval) - 3600;
    const int64_t oldest = std::max(now - static_cast<int64_t>(o_.cfg.catch_up_hours) * 3600, first_start_ - 3599);
    std::vector<int64_t> hours;
    for (int64_t h = last; h + 3600 > oldest && h + 3600 > first_start_; h = cal_->hour_start(h - 1))
        hours.push_back(h);
    std::reverse(hours.begin(), hours.end());
    for (int64_t h : hours) {
        auto who = reported_for_hour(h);
        if (!who) return who.error();
        for (const auto& [mac, peer] : *who) {
            if (latest(db_, mac, h).first > 0) continue;
            if (auto st = queue_hour(mac, peer, h, 1, "sent", now); !st) return st.error();
        }
    }
    if (!o_.cfg.query_url.empty() && !hours.empty() && hours.back() > last_verify_hour_) {
        last_verify_hour_ = hours.back();
        return true;
    }
    return false;
}

// ---- verification ------------------------------------------------------------------------

namespace {

// GET query_url?mac=..&start=..&end=.. -> the records it holds for mac (see README).
Result<std::map<std::string, HeldRecord>> fetch_held(const CustomerReportConfig& c, std::chrono::milliseconds timeout,
                                                     const std::string& mac, const std::string& start,
                                                     const std::string& end) {
    HttpRequest req;
    req.url = c.query_url + (c.query_url.find('?') == std::string::npos ? "?" : "&") + "mac=" + url_escape(mac) +
              "&start=" + url_escape(start) + "&end=" + url_escape(end);
    for (const auto& [k, v] : c.query_headers) req.headers.push_back(k + ": " + v);
    req.timeout = timeout;
    req.connect_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(10));
    req.max_response_bytes = kQueryAnswerCap;  // a longer answer is an error, never held whole
    auto answer = http_request(req);
    if (!answer) return Error("query " + c.query_url + ": " + answer.error().message());
    const long status = answer->status;
    if (status < 200 || status > 299) return Error("query " + c.query_url + ": HTTP " + std::to_string(status));
    auto held = parse_held_answer(answer->body, mac);
    if (!held) return Error("query " + c.query_url + ": " + held.error().message());
    return held;
}

}  // namespace

void CustomerReportService::record_verify(int64_t now, const std::string& mac, int64_t hour, const std::string& outcome,
                                          const std::string& detail) {
    // Best effort, as it always was: the verification log is for diagnosis.
    if (auto ins =
            db_.prepare("INSERT INTO customer_verify(checked_at, mac, hour, outcome, detail) VALUES(?1,?2,?3,?4,?5)")) {
        ins->bind(1, now);
        ins->bind(2, mac);
        ins->bind(3, hour);
        ins->bind(4, outcome);
        ins->bind(5, detail);
        (void)ins->step();
    }
    if (auto up = db_.prepare(
            "UPDATE customer_report SET outcome = CASE WHEN ?3 = 'matched' OR outcome = 'sent' THEN ?3 ELSE outcome "
            "END, checked_at = ?4 WHERE mac = ?1 AND hour = ?2 AND version = (SELECT max(version) FROM "
            "customer_report WHERE mac = ?1 AND hour = ?2)")) {
        up->bind(1, mac);
        up->bind(2, hour);
        up->bind(3, outcome);
        up->bind(4, now);
        (void)up->step();
    }
}

constexpr int64_t kVerifyGraceSeconds = 300;

// The work lock guards the history, the tables and the options, never a network call: a
// reload (SIGHUP, on the daemon's main thread) takes it and must not wait on the customer's
// API (30 s a query, one query per MAC). So a pass plans under the lock, asks the API
// without it, and judges each answer under it again against the options then in force.
Status CustomerReportService::verify(int64_t now) {
    CustomerReportConfig cfg;
    std::chrono::milliseconds timeout{};
    std::vector<VerifyJob> jobs;
    {
        std::lock_guard<std::mutex> w(work_mu_);
        auto planned = plan_verify(now);
        if (!planned) return planned.error();
        jobs = std::move(*planned);
        cfg = o_.cfg;
        timeout = o_.query_timeout;
    }
    for (const auto& job : jobs) {
        if (stopping_.load()) break;  // the rest waits for the next pass after a restart
        auto held = fetch_held(cfg, timeout, job.mac, job.start, job.end);
        std::lock_guard<std::mutex> w(work_mu_);
        if (auto st = judge_verify(now, job, held); !st) return st;
    }
    return Ok{};
}

Result<std::vector<CustomerReportService::VerifyJob>> CustomerReportService::plan_verify(int64_t now) {
    std::vector<VerifyJob> jobs;
    if (o_.cfg.query_url.empty()) return jobs;
    // The recorded hours in the window, per MAC.
    std::map<std::string, std::vector<int64_t>> hours;
    {
        auto p = db_.prepare(
            "SELECT mac, hour FROM customer_report WHERE hour >= ?1 GROUP BY mac, hour HAVING max(queued_at) <= ?2 "
            "ORDER BY mac, hour");
        if (!p) return p.error();
        SqlStmt& q = *p;
        q.bind(1, now - static_cast<int64_t>(o_.cfg.verify_hours) * 3600);
        // What was queued moments ago may still be on its way: not "missing" yet.
        q.bind(2, now - kVerifyGraceSeconds);
        while (q.step() == SQLITE_ROW) hours[q.text(0)].push_back(q.i64(1));
    }
    for (auto& [mac, list] : hours) {
        if (!reported_now(mac)) continue;  // no longer reported
        jobs.push_back(VerifyJob{mac, list, flux_hour(*cal_, list.front()), flux_hour(*cal_, list.back())});
    }
    return jobs;
}

// Whether `mac` is still reported under the options in force; with a MAC list, its peer.
bool CustomerReportService::reported_now(const std::string& mac, std::optional<int64_t>* peer) const {
    if (o_.cfg.macs.empty()) return true;
    for (const auto& m : o_.cfg.macs)
        if (format_mac(m) == mac) {
            if (peer) *peer = mac_to_int(m);
            return true;
        }
    return false;
}

Status CustomerReportService::judge_verify(int64_t now, const VerifyJob& job,
                                           const Result<std::map<std::string, HeldRecord>>& held) {
    const std::string& mac = job.mac;
    std::optional<int64_t> peer;
    // A reload while the query was out may have taken the MAC off the list or switched the
    // report off: then the answer is not acted on.
    if (!o_.cfg.enabled || !reported_now(mac, &peer)) return Ok{};
    if (!held) {
        for (int64_t h : job.hours) record_verify(now, mac, h, "error", held.error().message());
        return Ok{};
    }
    const std::map<std::string, HeldRecord>& by_hour = held.value();
    for (int64_t h : job.hours) {
        auto ours = hour_points(*store_, o_.adjustments, o_.iface, peer, o_.cfg.direction, h);
        if (!ours) return ours.error();
        const auto [version, sent_points] = latest(db_, mac, h);
        auto it = by_hour.find(flux_hour(*cal_, h));
        if (it == by_hour.end()) {
            record_verify(now, mac, h, "missing", "the customer holds no record of this hour");
            continue;
        }
        const HeldRecord& rec = it->second;
        bool same = true;
        std::string diff;
        for (size_t i = 0; i < 12; i++) {
            const bool ok = rec.points[i] == (*ours)[i];
            if (!ok && diff.empty())
                diff = "v" + std::to_string(i) + ": held " + rec.shown[i] + ", ours " + std::to_string((*ours)[i]);
            same = same && ok;
        }
        if (same) {
            record_verify(now, mac, h, "matched", "version " + std::to_string(rec.version));
            continue;
        }
        const int next = std::max(version, rec.version) + 1;
        record_verify(now, mac, h, "mismatch", diff + "; resent as version " + std::to_string(next));
        if (auto st = queue_hour(mac, peer, h, next, "resent", now); !st) {
            record_verify(now, mac, h, "error", "resend: " + st.error().message());
            return st;
        }
    }
    return Ok{};
}

void CustomerReportService::stop() {
    stopping_ = true;
    TickedService::stop();
}

Result<std::vector<CustomerReportService::Sent>> CustomerReportService::sent() {
    std::lock_guard<std::mutex> w(work_mu_);
    auto p = db_.prepare("SELECT mac, hour, version, points, outcome FROM customer_report ORDER BY hour, mac, version");
    if (!p) return p.error();
    SqlStmt& q = *p;
    std::vector<Sent> out;
    while (q.step() == SQLITE_ROW)
        out.push_back(Sent{q.text(0), q.i64(1), static_cast<int>(q.i64(2)), q.text(3), q.text(4)});
    return out;
}

}  // namespace pf
