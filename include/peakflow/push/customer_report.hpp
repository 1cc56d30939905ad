#pragma once
// The customer's hourly traffic report (seed 001): for each finished local hour and each
// reported MAC, one JSON body with the 12 five-minute points v0..v11 in bytes, POSTed as
// is by a push sink of type http. Every body queued is recorded (customer_report table);
// where the customer offers a query API, what it holds is compared with the history and
// a mismatch is sent again with version + 1 (customer_verify table).

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/push/customer_answer.hpp"
#include "peakflow/push/reports_config.hpp"
#include "peakflow/service/message_queue.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

using HourPoints = std::array<uint64_t, 12>;

// The bytes of the 12 five-minute buckets of the local hour starting at hour_start, in
// `direction` (tx, rx or both), adjusted per point as `report --five-minutes` shows them.
// peer: a peer MAC's rows; nullopt: the interface totals.
Result<HourPoints> hour_points(Store& store, const std::vector<Adjustment>& adjustments, const std::string& iface,
                               std::optional<int64_t> peer, const std::string& direction, int64_t hour_start);

// flux_dat "YYYY-MM-DD" and flux_hour "YYYY-MM-DD HH" of a local hour.
std::string flux_dat(const Calendar& cal, int64_t hour_start);
std::string flux_hour(const Calendar& cal, int64_t hour_start);

// The exact request body (compact JSON, keys in the documented order).
std::string customer_body(const CustomerReportConfig& c, const Calendar& cal, const std::string& mac,
                          int64_t hour_start, const HourPoints& v, int version);

// "2026-11-21T15" (local) -> the UTC start of that hour; an error if the hour does not
// exist that day (DST) or the text is malformed.
Result<int64_t> parse_local_hour(const Calendar& cal, const std::string& text);

// The interface's own MAC from <sysfs>/class/net/<iface>/address.
Result<MacAddr> read_iface_mac(const std::string& sysfs, const std::string& iface);

// What `report --customer-hour` prints: the body of each reported MAC for that hour, one
// per line, with the version last recorded for it (1 if never sent).
struct CustomerHourRequest {
    std::string database;
    std::string sysfs = "/sys";
    std::string iface;  // resolved by the caller
    int64_t hour_start = 0;
    std::optional<MacAddr> mac;  // only this MAC
};
Result<std::vector<std::string>> customer_hour_bodies(const CustomerReportConfig& c,
                                                      const std::vector<Adjustment>& adjustments, const Calendar& cal,
                                                      const CustomerHourRequest& r);

// `report --verify`: the recorded verification outcomes, newest first, as text lines.
Result<std::vector<std::string>> customer_verify_log(const std::string& database, const Calendar& cal, int limit);

class CustomerReportService : public TickedService {
  public:
    struct Options {
        CustomerReportConfig cfg;
        std::string database;
        std::string sysfs = "/sys";
        std::string iface;  // resolved: customer_report.iface or the daemon's first interface
        std::string timezone;
        std::vector<PeakWindow> peak_windows{PeakWindow{}};
        int billing_day = 1;
        std::vector<Adjustment> adjustments;
        int64_t drain_interval = 10;  // seconds: an hour is due this long after it ended
        std::function<int64_t()> clock;
        // Verification's query: the whole answer within this (a trickling server is an error).
        std::chrono::milliseconds query_timeout{30000};
    };
    static Result<std::unique_ptr<CustomerReportService>> create(Options o, MessageQueue& queue);
    ~CustomerReportService() override;

    std::string name() const override { return "customer_report"; }

    // One committed drain at `now`: note a MAC change, queue every due hour not queued yet,
    // then verify (when query_url is set, at most once per hour). Synchronous.
    Status tick(int64_t now) override;
    // One verification pass now. The customer's API is asked without the work lock, so a
    // reload never waits on it.
    Status verify(int64_t now);
    void stop() override;  // a pass under way stops before its next query

    struct Sent {
        std::string mac;
        int64_t hour = 0;
        int version = 0;
        std::string values;  // JSON array of the 12 points
        std::string outcome;
    };
    Result<std::vector<Sent>> sent();

  private:
    CustomerReportService(Options o, MessageQueue& q) : o_(std::move(o)), queue_(q) {}
    void reload_locked(const ServiceContext& next) override;
    Status note_mac(int64_t now);
    Result<std::string> mac_for_hour(int64_t hour);
    Result<std::vector<std::pair<std::string, std::optional<int64_t>>>> reported_for_hour(int64_t hour);
    Status queue_hour(const std::string& mac, std::optional<int64_t> peer, int64_t hour, int version,
                      const std::string& outcome, int64_t now);
    void record_verify(int64_t now, const std::string& mac, int64_t hour, const std::string& outcome,
                       const std::string& detail);
    // Under the work lock: queue what is due; true when a verification pass is due.
    Result<bool> queue_due(int64_t now);
    struct VerifyJob {
        std::string mac;
        std::vector<int64_t> hours;
        std::string start, end;  // flux_hour of the first and last
    };
    Result<std::vector<VerifyJob>> plan_verify(int64_t now);
    Status judge_verify(int64_t now, const VerifyJob& job, const Result<std::map<std::string, HeldRecord>>& held);
    bool reported_now(const std::string& mac, std::optional<int64_t>* peer = nullptr) const;

    Options o_;
    MessageQueue& queue_;
    std::unique_ptr<Store> store_;
    SqliteDb db_;
    int64_t first_start_ = 0;
    int64_t last_verify_hour_ = 0;
    std::atomic<bool> stopping_{false};
};

// The service's options from the daemon's context; checks that customer_report.sink is a
// push sink of type http.
Result<CustomerReportService::Options> customer_report_options(const ServiceContext& ctx);

// The daemon service, with customer_report.enabled (which needs the push pipeline).
Result<std::unique_ptr<Service>> make_customer_report_service(ServiceContext& ctx);

}  // namespace pf
