#include "peakflow/push/push_reports.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <unistd.h>
#include "peakflow/common/sqlite.hpp"

#include <algorithm>
#include <cstdio>

#include "peakflow/common/units.hpp"

namespace pf {

// ---- contents ----------------------------------------------------------------------------

std::string bytes_both(uint64_t bytes) {
    return human_bytes(bytes) + " (" + std::to_string(bytes) + " B)";
}

namespace {

std::string peak_text(const Calendar& cal) {
    std::string peak;
    for (const auto& w : cal.windows()) peak += (peak.empty() ? "" : ", ") + format_peak_window(w);
    return peak.empty() ? "none" : peak;
}

// One interface's lines: peak, off-peak, totals, the adjustment, the top MACs.
std::string iface_block(const PeriodTotals& b) {
    const ReportFigures& f = b.total.shown;
    std::string s = "**" + b.name + "**\n";
    s += "- peak: up " + bytes_both(f.peak_up) + ", down " + bytes_both(f.peak_down) + "\n";
    s += "- off-peak: up " + bytes_both(f.offpeak_up) + ", down " + bytes_both(f.offpeak_down) + "\n";
    s += "- total: up " + bytes_both(f.up) + ", down " + bytes_both(f.down) + ", sum " + bytes_both(f.total) + "\n";
    if (b.total.adj.any())
        s +=
            "- adjusted: " + describe_row_adjustment(b.total.adj) + "; raw sum " + bytes_both(b.total.raw.total) + "\n";
    if (!b.macs.empty()) {
        s += "- top MACs:\n";
        for (const auto& m : b.macs) {
            s += "  - " + m.label + ": up " + bytes_both(m.shown.up) + ", down " + bytes_both(m.shown.down);
            if (m.adj.any()) s += " (adjusted: " + describe_row_adjustment(m.adj) + ")";
            s += "\n";
        }
        if (b.mac_count > b.macs.size()) {
            const size_t more = b.mac_count - b.macs.size();
            s += "  - (" + std::to_string(more) + " more MAC" + (more == 1 ? "" : "s") + ")\n";
        }
    }
    return s;
}

// The interfaces with traffic in [from, to), each as a block; a line when there is none.
// `total`, when given: the sum of the interfaces' totals as the blocks show them.
Result<std::string> period_body(Store& store, const ReportContent& c, int64_t from, int64_t to,
                                int64_t* total = nullptr) {
    auto names = store.interfaces();
    if (!names) return names.error();
    auto per = period_totals(store, c.adjustments, *names, std::nullopt, from, to, c.top_macs);
    if (!per) return per.error();
    std::string s;
    if (total) *total = 0;
    for (const auto& b : *per) {
        if (b.total.raw.total == 0 && b.mac_count == 0) continue;
        s += "\n" + iface_block(b);
        if (total) *total += static_cast<int64_t>(b.total.shown.total);
    }
    return s.empty() ? "\nNo traffic recorded.\n" : s;
}

// Title, what it covers, then where and how it was counted.
std::string header(const Calendar& cal, const ReportContent& c, const std::string& title, const std::string& covers) {
    return "#### " + title + "\n" + covers + "\n\nhost " + c.host + ", time zone " + cal.tz_name() + ", peak " +
           peak_text(cal) + "; up = sent (tx), down = received (rx)\n";
}

std::string range(const Calendar& cal, int64_t from, int64_t to) {
    return cal.format_local(from) + " to " + cal.format_local(to);
}

}  // namespace

Result<PushReport> build_day_report(Store& store, const Calendar& cal, const ReportContent& c, const LocalDate& day) {
    PushReport r{"daily", day.str(), "Daily traffic " + day.str(), ""};
    const int64_t from = cal.day_start(day), to = cal.day_end(day);
    int64_t total = 0;
    auto body = period_body(store, c, from, to, &total);
    if (!body) return body.error();
    r.value = total;
    r.text = header(cal, c, r.title, range(cal, from, to)) + *body;
    return r;
}

Result<PushReport> build_month_report(Store& store, const Calendar& cal, const ReportContent& c,
                                      const BillingMonth& month) {
    PushReport r{"monthly", month.str(), "Monthly traffic " + month.str(), ""};
    const int64_t from = cal.month_start(month), to = cal.month_end(month);
    int64_t total = 0;
    auto body = period_body(store, c, from, to, &total);
    if (!body) return body.error();
    r.value = total;
    r.text = header(cal, c, r.title,
                    "billing month " + month.str() + " (billing day " + std::to_string(cal.billing_day()) +
                        "): " + range(cal, from, to)) +
             *body;
    return r;
}

Result<PushReport> build_startup_report(Store& store, const Calendar& cal, const ReportContent& c, int64_t now) {
    const LocalDate today = cal.local_date(now);
    const BillingMonth month = cal.billing_month(now);
    PushReport r{"startup", cal.format_local(now), "Traffic so far " + today.str(), ""};
    const int64_t day_from = cal.day_start(today), month_from = cal.month_start(month);
    auto day = period_body(store, c, day_from, now);
    if (!day) return day.error();
    auto mon = period_body(store, c, month_from, now);
    if (!mon) return mon.error();
    r.text =
        header(cal, c, r.title, "peakflow-bpf started at " + cal.format_local(now) + ": what it has counted so far") +
        "\n##### Today: " + range(cal, day_from, now) + "\n" + *day + "\n##### Billing month " + month.str() +
        " to date: " + range(cal, month_from, now) + "\n" + *mon;
    return r;
}

// ---- schedule ----------------------------------------------------------------------------

int64_t local_time_on(const Calendar& cal, const LocalDate& day, int minutes) {
    const int64_t start = cal.day_start(day);
    const int64_t t = start + minutes * 60;
    // Correct by the offset change between midnight and then (DST): lands on the wall time.
    const int64_t fixed = t + cal.utc_offset_seconds(start) - cal.utc_offset_seconds(t);
    return cal.utc_offset_seconds(fixed) == cal.utc_offset_seconds(t) ? fixed : std::max(fixed, t);
}

namespace {

LocalDate previous_day(const Calendar& cal, const LocalDate& d) {
    return cal.local_date(cal.day_start(d) - 1);
}

}  // namespace

std::vector<DuePeriod> due_periods(const Calendar& cal, const ReportsConfig& rc, int64_t first_start, int64_t now) {
    std::vector<DuePeriod> out;
    if (rc.monthly) {
        // The current billing month and the one before: the newest ended one is due on
        // the first day of the next; older ones are not caught up (one month back at most).
        BillingMonth m = cal.billing_month(now);
        for (int i = 0; i < 2; i++) {
            m = cal.billing_month(cal.month_start(m) - 1);
            const int64_t end = cal.month_end(m);
            const int64_t due = local_time_on(cal, cal.local_date(end), rc.daily_at_min);
            if (due <= now && end > first_start) {
                DuePeriod p{"monthly", m.str(), due, std::nullopt, m};
                out.insert(out.begin(), p);
                break;
            }
        }
    }
    if (rc.daily) {
        std::vector<DuePeriod> days;
        LocalDate d = cal.local_date(now);
        for (int i = 0; i <= rc.catch_up_days + 1; i++) {
            d = previous_day(cal, d);
            const int64_t end = cal.day_end(d);
            if (end <= first_start) break;
            const int64_t due = local_time_on(cal, Calendar::next_day(d), rc.daily_at_min);
            if (due > now) continue;
            if (now - due > static_cast<int64_t>(rc.catch_up_days) * 86400) break;
            days.insert(days.begin(), DuePeriod{"daily", d.str(), due, d, std::nullopt});
        }
        out.insert(out.end(), days.begin(), days.end());
    }
    std::stable_sort(out.begin(), out.end(), [](const DuePeriod& a, const DuePeriod& b) { return a.due < b.due; });
    return out;
}

// ---- service -----------------------------------------------------------------------------

namespace {

constexpr SchemaPart kSchema[] = {{"reports", 1, R"(
CREATE TABLE IF NOT EXISTS report_sent(kind TEXT NOT NULL, period TEXT NOT NULL, sink TEXT NOT NULL,
    queued_at INTEGER NOT NULL, title TEXT NOT NULL, PRIMARY KEY(kind, period, sink)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)"}};

}  // namespace

Result<std::unique_ptr<ReportService>> ReportService::create(Options o, MessageQueue& queue) {
    if (!o.clock) o.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    if (o.host.empty()) {
        char h[256] = {};
        ::gethostname(h, sizeof h - 1);
        o.host = h;
    }
    std::unique_ptr<ReportService> s(new ReportService(std::move(o), queue));
    auto cal = Calendar::create(s->o_.timezone, s->o_.peak_windows, s->o_.billing_day);
    if (!cal) return cal.error();
    s->cal_ = std::move(*cal);
    // reports.sinks picks among the push sinks; a name that is not one is a config error.
    if (s->o_.reports.sinks.empty()) {
        s->targets_ = s->o_.sinks;
    } else {
        for (const auto& n : s->o_.reports.sinks) {
            if (std::find(s->o_.sinks.begin(), s->o_.sinks.end(), n) == s->o_.sinks.end())
                return Error("reports.sinks: '" + n + "' is not a configured push sink");
            s->targets_.push_back(n);
        }
    }
    if (s->targets_.empty()) spdlog::warn("reports: no push sink to send them to; none will be sent");
    auto st = Store::open(s->o_.database);
    if (!st) return st.error();
    s->store_ = std::move(*st);
    SqliteOptions so;
    so.mode = SqliteMode::ReadWrite;
    so.open_context = "open " + s->o_.database;
    so.error_context = "create report tables";
    auto db = SqliteDb::open(s->o_.database, so);
    if (!db) return db.error();
    s->db_ = std::move(*db);
    if (auto st = apply_schema(s->db_, kSchema); !st) return st.error();
    // The first start ever: periods that ended before it are not reported (nothing counted).
    auto first = first_start(s->db_, "report_state", s->o_.clock());
    if (!first) return first.error();
    s->first_start_ = *first;
    if (!s->o_.reports.on_start) s->startup_done_ = true;
    s->start_ticker();
    return s;
}

Result<std::unique_ptr<Service>> make_report_service(ServiceContext& ctx) {
    if (!ctx.outbox || !ctx.sections.get<ReportsConfig>().enabled) return std::unique_ptr<Service>();
    ReportService::Options ro;
    ro.database = ctx.accounting.database;
    ro.timezone = ctx.accounting.timezone;
    ro.peak_windows = ctx.accounting.peak_windows;
    ro.billing_day = ctx.accounting.billing_day;
    ro.reports = ctx.sections.get<ReportsConfig>();
    ro.adjustments = ctx.accounting.adjustments;
    for (const auto& [name, type] : ctx.sinks) ro.sinks.push_back(name);
    ro.clock = ctx.clock;
    ro.accepts = [push = ctx.sections.get<PushConfig>()](const std::string& sink, const std::string& kind) {
        const SinkConfig* s = push.find(sink);
        return !s || s->takes(kind);
    };
    auto s = ReportService::create(std::move(ro), *ctx.outbox);
    if (!s) return s.error();
    return std::unique_ptr<Service>(std::move(*s));
}

ReportService::~ReportService() {
    stop();
}

void ReportService::reload_locked(const ServiceContext& next) {
    o_.adjustments = next.accounting.adjustments;
    const bool keep_start = startup_done_;
    o_.reports = next.sections.get<ReportsConfig>();
    startup_done_ = keep_start;
}

Result<bool> ReportService::was_sent(const std::string& kind, const std::string& period, const std::string& sink) {
    auto q = db_.prepare("SELECT 1 FROM report_sent WHERE kind = ?1 AND period = ?2 AND sink = ?3");
    if (!q) return q.error();
    q->bind(1, kind);
    q->bind(2, period);
    q->bind(3, sink);
    const int rc = q->step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sql_error(db_, "read report_sent");
}

// One message per target sink not recorded yet; each recorded once the outbox holds it,
// so a failure part-way sends the rest later and nothing twice.
Status ReportService::send(const PushReport& r) {
    for (const auto& sink : targets_) {
        if (o_.accepts && !o_.accepts(sink, r.kind)) continue;
        auto done = was_sent(r.kind, r.period, sink);
        if (!done) return done.error();
        if (*done) continue;
        OutboundMessage m{sink, r.kind, r.period, r.title, r.text, "", r.value};
        if (auto st = queue_.enqueue(m); !st) return st;
        auto ins = db_.prepare(
            "INSERT OR IGNORE INTO report_sent(kind, period, sink, queued_at, title) VALUES(?1,?2,?3,?4,?5)");
        if (!ins) return ins.error();
        ins->bind(1, r.kind);
        ins->bind(2, r.period);
        ins->bind(3, sink);
        ins->bind(4, o_.clock());
        ins->bind(5, r.title);
        if (ins->step() != SQLITE_DONE) return sql_error(db_, "record report_sent");
        spdlog::info("reports: {} {} queued for {}", r.kind, r.period, sink);
    }
    return Ok{};
}

Status ReportService::tick(int64_t now) {
    std::lock_guard<std::mutex> w(work_mu_);
    if (!o_.reports.enabled || targets_.empty()) return Ok{};
    const Calendar& cal = *cal_;
    ReportContent content{o_.host, o_.reports.top_macs, o_.adjustments};
    if (!startup_done_) {
        auto r = build_startup_report(*store_, cal, content, now);
        if (!r) return r.error();
        if (auto st = send(*r); !st) return st;
        startup_done_ = true;
    }
    for (const auto& p : due_periods(cal, o_.reports, first_start_, now)) {
        bool all = true;
        for (const auto& sink : targets_) {
            if (o_.accepts && !o_.accepts(sink, p.kind)) continue;
            auto done = was_sent(p.kind, p.period, sink);
            if (!done) return done.error();
            all = all && *done;
        }
        if (all) continue;
        auto r = p.day ? build_day_report(*store_, cal, content, *p.day)
                       : build_month_report(*store_, cal, content, *p.month);
        if (!r) return r.error();
        if (auto st = send(*r); !st) return st;
    }
    return Ok{};
}

Result<std::vector<std::array<std::string, 3>>> ReportService::sent() {
    std::lock_guard<std::mutex> w(work_mu_);
    auto q = db_.prepare("SELECT kind, period, sink FROM report_sent ORDER BY queued_at, kind, period, sink");
    if (!q) return q.error();
    std::vector<std::array<std::string, 3>> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) out.push_back({q->text(0), q->text(1), q->text(2)});
    if (rc != SQLITE_DONE) return sql_error(db_, "read report_sent");
    return out;
}

}  // namespace pf
