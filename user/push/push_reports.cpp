#include "peakflow/push/push_reports.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <unistd.h>
#include "peakflow/common/sqlite.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "peakflow/common/units.hpp"

namespace pf {

// ---- contents ----------------------------------------------------------------------------

std::string bytes_both(uint64_t bytes, Language lang) {
    if (lang == Language::Zh) return human_bytes(bytes) + "（" + std::to_string(bytes) + " 字节）";
    return human_bytes(bytes) + " (" + std::to_string(bytes) + " B)";
}

std::vector<SinceBoot> read_since_boot(const std::string& sysfs, const std::vector<std::string>& ifaces) {
    std::vector<SinceBoot> out;
    for (const auto& name : ifaces) {
        SinceBoot b{name};
        bool ok = true;
        for (auto [file, field] : {std::pair{"rx_bytes", &b.rx_bytes}, std::pair{"rx_packets", &b.rx_packets},
                                   std::pair{"tx_bytes", &b.tx_bytes}, std::pair{"tx_packets", &b.tx_packets}}) {
            std::ifstream in(sysfs + "/class/net/" + name + "/statistics/" + file);
            ok = ok && static_cast<bool>(in >> *field);
        }
        if (ok) out.push_back(b);
    }
    return out;
}

namespace {

// Every fixed phrase of the reports, in each language; figures are filled in around them.
struct Words {
    const char *daily, *monthly, *so_far, *peak, *offpeak, *total, *up, *down, *sum, *adjusted, *raw_sum, *top_macs,
        *none, *no_traffic, *to, *host, *tz, *peak_is, *directions, *sep, *colon, *today, *month_to_date, *started,
        *billing_month, *billing_day, *since_boot, *since_boot_note, *packets;
};

std::string more_macs(size_t n, Language lang) {
    if (lang == Language::Zh) return "（另有 " + std::to_string(n) + " 个 MAC）";
    return "(" + std::to_string(n) + " more MAC" + (n == 1 ? "" : "s") + ")";
}

constexpr Words kEn{"Daily traffic",
                    "Monthly traffic",
                    "Traffic so far",
                    "peak",
                    "off-peak",
                    "total",
                    "up ",
                    "down ",
                    "sum ",
                    "adjusted",
                    "raw sum ",
                    "top MACs",
                    "none",
                    "No traffic recorded.",
                    " to ",
                    "host ",
                    "time zone ",
                    "peak ",
                    "up = sent (tx), down = received (rx)",
                    ", ",
                    ": ",
                    "Today",
                    " to date",
                    "peakflow-bpf started at %s: what it has counted so far",
                    "billing month ",
                    "billing day ",
                    "Since boot (not billed)",
                    "what the interface's own counters (/sys/class/net/%s/statistics) say it carried since the "
                    "machine booted, before peakflow-bpf counted anything; not in the history or any bill",
                    " packets"};
constexpr Words kZh{"每日流量",
                    "每月流量",
                    "目前流量",
                    "晚高峰",
                    "平峰",
                    "合计",
                    "上行 ",
                    "下行 ",
                    "总计 ",
                    "已调整",
                    "原始总计 ",
                    "流量最多的 MAC",
                    "无",
                    "无流量记录。",
                    " 至 ",
                    "主机 ",
                    "时区 ",
                    "晚高峰 ",
                    "上行 = 发送 (tx)，下行 = 接收 (rx)",
                    "，",
                    "：",
                    "今日",
                    "截至目前",
                    "peakflow-bpf 于 %s 启动：目前已统计的流量",
                    "计费月 ",
                    "计费日 ",
                    "开机以来（不计费）",
                    "网卡自身计数器（/sys/class/net/%s/statistics）记录的开机以来流量，早于 peakflow-bpf "
                    "开始统计；不计入历史记录和任何账单",
                    " 个包"};

const Words& words(Language l) {
    return l == Language::Zh ? kZh : kEn;
}

std::string fill(const char* pattern, const std::string& v) {
    std::string s = pattern;
    if (auto p = s.find("%s"); p != std::string::npos) s.replace(p, 2, v);
    return s;
}

std::string peak_text(const Calendar& cal, const Words& w) {
    std::string peak;
    for (const auto& win : cal.windows()) peak += (peak.empty() ? "" : ", ") + format_peak_window(win);
    return peak.empty() ? w.none : peak;
}

// One interface's lines: peak, off-peak, totals, the adjustment, the top MACs.
std::string iface_block(const PeriodTotals& b, Language lang) {
    const Words& w = words(lang);
    auto bb = [lang](uint64_t v) { return bytes_both(v, lang); };
    const std::string sep = w.sep, colon = w.colon;
    const ReportFigures& f = b.total.shown;
    std::string s = "**" + b.name + "**\n";
    s += "- " + std::string(w.peak) + colon + w.up + bb(f.peak_up) + sep + w.down + bb(f.peak_down) + "\n";
    s += "- " + std::string(w.offpeak) + colon + w.up + bb(f.offpeak_up) + sep + w.down + bb(f.offpeak_down) + "\n";
    s += "- " + std::string(w.total) + colon + w.up + bb(f.up) + sep + w.down + bb(f.down) + sep + w.sum + bb(f.total) +
         "\n";
    if (b.total.adj.any())
        s += "- " + std::string(w.adjusted) + colon + describe_row_adjustment(b.total.adj) + "; " + w.raw_sum +
             bb(b.total.raw.total) + "\n";
    if (!b.macs.empty()) {
        s += "- " + std::string(w.top_macs) + colon.substr(0, colon.size() - (lang == Language::En ? 1 : 0)) + "\n";
        for (const auto& m : b.macs) {
            s += "  - " + m.label + colon + w.up + bb(m.shown.up) + sep + w.down + bb(m.shown.down);
            if (m.adj.any())
                s += lang == Language::Zh
                         ? "（" + std::string(w.adjusted) + colon + describe_row_adjustment(m.adj) + "）"
                         : " (adjusted: " + describe_row_adjustment(m.adj) + ")";
            s += "\n";
        }
        if (b.mac_count > b.macs.size()) s += "  - " + more_macs(b.mac_count - b.macs.size(), lang) + "\n";
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
        s += "\n" + iface_block(b, c.language);
        if (total) *total += static_cast<int64_t>(b.total.shown.total);
    }
    return s.empty() ? "\n" + std::string(words(c.language).no_traffic) + "\n" : s;
}

// Title, what it covers, then where and how it was counted.
std::string header(const Calendar& cal, const ReportContent& c, const std::string& title, const std::string& covers) {
    const Words& w = words(c.language);
    return "#### " + title + "\n" + covers + "\n\n" + w.host + c.host + w.sep + w.tz + cal.tz_name() + w.sep +
           w.peak_is + peak_text(cal, w) + (c.language == Language::Zh ? "；" : "; ") + w.directions + "\n";
}

std::string range(const Calendar& cal, int64_t from, int64_t to, Language lang) {
    return cal.format_local(from) + words(lang).to + cal.format_local(to);
}

// The interface counters since boot, each marked as such (first start only).
std::string since_boot_section(const std::vector<SinceBoot>& v, Language lang) {
    const Words& w = words(lang);
    std::string s = "\n##### " + std::string(w.since_boot) + "\n";
    for (const auto& b : v) {
        s += "\n**" + b.iface + "**: " + fill(w.since_boot_note, b.iface) + "\n";
        s += "- " + std::string(w.up) + bytes_both(b.tx_bytes, lang) + w.sep + std::to_string(b.tx_packets) +
             w.packets + "\n";
        s += "- " + std::string(w.down) + bytes_both(b.rx_bytes, lang) + w.sep + std::to_string(b.rx_packets) +
             w.packets + "\n";
    }
    return s;
}

}  // namespace

Result<PushReport> build_day_report(Store& store, const Calendar& cal, const ReportContent& c, const LocalDate& day) {
    PushReport r{"daily", day.str(), std::string(words(c.language).daily) + " " + day.str(), ""};
    const int64_t from = cal.day_start(day), to = cal.day_end(day);
    int64_t total = 0;
    auto body = period_body(store, c, from, to, &total);
    if (!body) return body.error();
    r.value = total;
    r.text = header(cal, c, r.title, range(cal, from, to, c.language)) + *body;
    return r;
}

Result<PushReport> build_month_report(Store& store, const Calendar& cal, const ReportContent& c,
                                      const BillingMonth& month) {
    const Words& w = words(c.language);
    PushReport r{"monthly", month.str(), std::string(w.monthly) + " " + month.str(), ""};
    const int64_t from = cal.month_start(month), to = cal.month_end(month);
    int64_t total = 0;
    auto body = period_body(store, c, from, to, &total);
    if (!body) return body.error();
    r.value = total;
    const std::string day = std::to_string(cal.billing_day());
    const std::string covers =
        w.billing_month + month.str() +
        (c.language == Language::Zh ? "（" + std::string(w.billing_day) + day + "）" : " (billing day " + day + ")") +
        w.colon + range(cal, from, to, c.language);
    r.text = header(cal, c, r.title, covers) + *body;
    return r;
}

Result<PushReport> build_startup_report(Store& store, const Calendar& cal, const ReportContent& c, int64_t now) {
    const Words& w = words(c.language);
    const LocalDate today = cal.local_date(now);
    const BillingMonth month = cal.billing_month(now);
    PushReport r{"startup", cal.format_local(now), std::string(w.so_far) + " " + today.str(), ""};
    const int64_t day_from = cal.day_start(today), month_from = cal.month_start(month);
    auto day = period_body(store, c, day_from, now);
    if (!day) return day.error();
    auto mon = period_body(store, c, month_from, now);
    if (!mon) return mon.error();
    const std::string month_head = c.language == Language::Zh
                                       ? std::string(w.billing_month) + month.str() + " " + w.month_to_date
                                       : "Billing month " + month.str() + w.month_to_date;
    r.text = header(cal, c, r.title, fill(w.started, cal.format_local(now))) + "\n##### " + w.today + w.colon +
             range(cal, day_from, now, c.language) + "\n" + *day + "\n##### " + month_head + w.colon +
             range(cal, month_from, now, c.language) + "\n" + *mon;
    if (!c.since_boot.empty()) r.text += since_boot_section(c.since_boot, c.language);
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
    // The first start ever: periods that ended before it are not reported (nothing counted),
    // and its startup report adds what the interfaces counted since boot.
    {
        auto q = s->db_.prepare("SELECT 1 FROM report_state WHERE key = 'first_start'");
        if (!q) return q.error();
        const int rc = q->step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_error(s->db_, "read first start");
        s->first_ever_ = rc == SQLITE_DONE;
    }
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
    ro.language = ctx.sections.get<PushConfig>().language;
    ro.ifaces = ctx.ifaces;
    ro.sysfs = ctx.paths.sysfs;
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
    o_.language = next.sections.get<PushConfig>().language;
    o_.ifaces = next.ifaces;
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
// so a failure part-way sends the rest later. The outbox queues (kind, period) once per
// sink: when the record fails after the enqueue, the next try does not queue it again.
Status ReportService::send(const PushReport& r) {
    for (const auto& sink : targets_) {
        if (o_.accepts && !o_.accepts(sink, r.kind)) continue;
        auto done = was_sent(r.kind, r.period, sink);
        if (!done) return done.error();
        if (*done) continue;
        OutboundMessage m{sink, r.kind, r.period, r.title, r.text, "", r.value};
        m.once = "report " + r.kind + " " + r.period;
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
    ReportContent content{o_.host, o_.reports.top_macs, o_.adjustments, o_.language, {}};
    if (!startup_done_) {
        ReportContent first = content;
        if (first_ever_) first.since_boot = read_since_boot(o_.sysfs, o_.ifaces);
        auto r = build_startup_report(*store_, cal, first, now);
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
