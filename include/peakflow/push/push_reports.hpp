#pragma once
// Scheduled reports for the push sinks: the previous local day (daily), the previous
// billing month (monthly, on the first day of the next one) and what has been counted so
// far (at start). Contents come from the history through the same figures `report` shows
// (period_totals); ReportService decides when each is due and queues one message per sink.

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/report.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/push/push_config.hpp"
#include "peakflow/push/reports_config.hpp"
#include "peakflow/push/sinks.hpp"
#include "peakflow/service/message_queue.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

struct PushReport {
    std::string kind;    // daily | monthly | startup
    std::string period;  // 2026-11-21 | 2026-11 | the local start time
    std::string title;   // one line, at most 32 characters
    std::string text;    // markdown
    // The period's total bytes as the text shows them (adjusted), summed over the
    // interfaces: the push history's value. None for the startup report (two periods).
    std::optional<int64_t> value{};
};

// What an interface's own counters (/sys/class/net/IF/statistics) say it carried since
// the machine booted: shown once, in the startup report of the very first start, so a new
// user sees figures at once. Not history: billing starts at the first attach.
struct SinceBoot {
    std::string iface;
    uint64_t rx_bytes = 0, rx_packets = 0, tx_bytes = 0, tx_packets = 0;
};
// The interfaces whose four statistics files can be read under <sysfs>/class/net/.
std::vector<SinceBoot> read_since_boot(const std::string& sysfs, const std::vector<std::string>& ifaces);

struct ReportContent {
    std::string host;  // shown in the text
    int top_macs = 5;
    std::vector<Adjustment> adjustments;
    Language language = Language::En;   // push.language
    std::vector<SinceBoot> since_boot;  // startup report only; empty: no such section
};

// The previous local day / billing month (`from`..`to`), or the startup report (today and
// the billing month to date at `now`).
Result<PushReport> build_day_report(Store& store, const Calendar& cal, const ReportContent& c, const LocalDate& day);
Result<PushReport> build_month_report(Store& store, const Calendar& cal, const ReportContent& c,
                                      const BillingMonth& month);
Result<PushReport> build_startup_report(Store& store, const Calendar& cal, const ReportContent& c, int64_t now);

// "1.50 MiB (1572864 B)"; in Chinese "1.50 MiB（1572864 字节）"
std::string bytes_both(uint64_t bytes, Language lang = Language::En);

// The UTC instant the local wall clock reads `minutes` after midnight on `day`; when
// daylight saving time skips that wall time, the instant as many minutes after midnight.
int64_t local_time_on(const Calendar& cal, const LocalDate& day, int minutes);

// When each report of a kind is due; periods a ReportService would send at `now`.
struct DuePeriod {
    std::string kind, period;
    int64_t due = 0;
    std::optional<LocalDate> day;
    std::optional<BillingMonth> month;
};
std::vector<DuePeriod> due_periods(const Calendar& cal, const ReportsConfig& rc, int64_t first_start, int64_t now);

class ReportService : public TickedService {
  public:
    struct Options {
        std::string database;
        std::string timezone;
        std::vector<PeakWindow> peak_windows{PeakWindow{}};
        int billing_day = 1;
        ReportsConfig reports;
        std::vector<Adjustment> adjustments;
        std::vector<std::string> sinks;  // the push sinks' names (reports.sinks picks among them)
        std::string host;                // default: gethostname()
        Language language = Language::En;
        // The very first start's startup report adds what these interfaces counted since
        // boot, read under <sysfs>/class/net/.
        std::vector<std::string> ifaces;
        std::string sysfs = "/sys";
        std::function<int64_t()> clock;  // first start, startup report time
        // Whether a sink takes a report kind (its `reports` list); unset: every kind.
        std::function<bool(const std::string& sink, const std::string& kind)> accepts;
    };
    // Opens its own connections to the history and creates its table (report_sent).
    static Result<std::unique_ptr<ReportService>> create(Options o, MessageQueue& queue);
    ~ReportService() override;

    std::string name() const override { return "reports"; }

    // What the worker does for one committed drain at `now`: the startup report once, then
    // every due period not yet queued for a sink. Synchronous (tests call it directly).
    Status tick(int64_t now) override;
    // (kind, period, sink) rows recorded as queued.
    Result<std::vector<std::array<std::string, 3>>> sent();

  private:
    ReportService(Options o, MessageQueue& q) : o_(std::move(o)), queue_(q) {}
    void reload_locked(const ServiceContext& next) override;
    Status send(const PushReport& r);
    Result<bool> was_sent(const std::string& kind, const std::string& period, const std::string& sink);

    Options o_;
    MessageQueue& queue_;
    std::unique_ptr<Store> store_;
    SqliteDb db_;
    std::vector<std::string> targets_;
    int64_t first_start_ = 0;
    bool first_ever_ = false;  // no start was recorded before this one
    bool startup_done_ = false;
};

// The daemon service, with reports.enabled and the push pipeline.
Result<std::unique_ptr<Service>> make_report_service(ServiceContext& ctx);

}  // namespace pf
