#pragma once
// The seam between the daemon and its background parts beside the accounting loop: the
// push pipeline, report schedules, the process and host watch, flow export. Each runs its
// own thread(s) and is driven by the daemon through these hooks. A service is built by
// one factory of one shape, `Result<std::unique_ptr<Service>> make_X_service(ServiceContext&)`
// (null: not configured), listed once in the daemon's registry (daemon/service_registry.cpp).
// A service sees its own config section (by type, from ServiceContext::sections) and the
// accounting settings, never the whole config.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <typeindex>
#include <utility>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/service/alerts.hpp"
#include "peakflow/service/message_queue.hpp"
#include "peakflow/service/stats.hpp"

namespace pf {

// The services' own config sections, each a type owned by its subsystem (PushConfig,
// ReportsConfig, CustomerReportConfig, HostWatchConfig, ExportConfig). The app fills it
// from the whole config; a service asks for its own type. A section never set reads as
// its type's defaults (switched off).
class ServiceSections {
  public:
    template <typename T>
    void set(T section) {
        map_[std::type_index(typeid(T))] = std::make_shared<const T>(std::move(section));
    }
    template <typename T>
    const T& get() const {
        auto it = map_.find(std::type_index(typeid(T)));
        if (it == map_.end()) {
            static const T kDefaults{};
            return kDefaults;
        }
        return *static_cast<const T*>(it->second.get());
    }

  private:
    std::map<std::type_index, std::shared_ptr<const void>> map_;  // shared: copies are cheap
};

// What services are built from, and given again on reload. `alerts` is never null once
// the services start; `outbox` is null when the push pipeline is not configured.
struct ServiceContext {
    AccountingConfig accounting;  // the history: database, calendar, adjustments
    ServiceSections sections;     // each service's own section
    Paths paths;
    std::chrono::milliseconds drain_interval{10000};
    std::function<int64_t()> clock;   // UTC seconds; never null once the services start
    std::vector<std::string> ifaces;  // the interfaces the daemon attached to
    AlertSink* alerts = nullptr;
    MessageQueue* outbox = nullptr;
    // The push sinks, name -> type ("dingtalk", "http", ...), set with `outbox` by the push
    // service: the report services address their messages to them by name.
    std::vector<std::pair<std::string, std::string>> sinks;
    // Asks the daemon to reload (as SIGHUP does): the uplink calls it when the collector sent
    // a new central config. May be null (tests, commands other than attach).
    std::function<void()> request_reload;
};

class Service {
  public:
    virtual ~Service() = default;
    virtual std::string name() const = 0;
    // On the daemon thread after each drain was committed to the history; `now` is that
    // drain's time (UTC seconds). Must be quick: hand work to the service's own thread.
    virtual void after_drain(int64_t now) { (void)now; }
    // SIGHUP with a new, valid config: the context as it would be built now.
    virtual void reload(const ServiceContext& next) { (void)next; }
    // Add this service's figures (thread-safe: called from the metrics thread).
    virtual void stats(DaemonStats& s) const { (void)s; }
    // Shutdown, after the last drain: finish what is open (files, a send in flight), join
    // threads. Called once, in the reverse order of start.
    virtual void stop() {}
};

using ServiceFactory = Result<std::unique_ptr<Service>> (*)(ServiceContext&);

// Runs `fn(now)` on its own thread after each drain, so a slow tick (a report built from
// the history) never holds up the daemon; ticks posted while one runs coalesce into one
// with the latest time.
class DrainTicker {
  public:
    explicit DrainTicker(std::function<void(int64_t)> fn);
    ~DrainTicker();  // stop()
    DrainTicker(const DrainTicker&) = delete;
    DrainTicker& operator=(const DrainTicker&) = delete;
    void post(int64_t now);
    void stop();  // runs what is in progress or pending, then joins; idempotent

  private:
    void run();
    std::function<void(int64_t)> fn_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<int64_t> pending_;
    bool stopping_ = false;
    std::thread worker_;
};

// The lifecycle both report producers share: work runs on a DrainTicker after each
// drain, one tick at a time, and a reload takes the same lock so it never races a tick.
class TickedService : public Service {
  public:
    void after_drain(int64_t now) final;
    void reload(const ServiceContext& next) final;
    void stop() override;

    // One committed drain at `now`, synchronously (tests call it directly).
    virtual Status tick(int64_t now) = 0;

  protected:
    // Called under the work lock with the new context (calendar already rebuilt).
    virtual void reload_locked(const ServiceContext& next) = 0;
    void start_ticker();  // once the service is ready: ticks go to tick(), failures to the log
    // The first start ever, kept in `state_table` (key 'first_start'): `now` when there is
    // none yet. Periods that ended before it are never reported (nothing was counted).
    static Result<int64_t> first_start(SqliteDb& db, const std::string& state_table, int64_t now);
    // The accounting calendar, rebuilt on reload; set by the derived service's create().
    std::optional<Calendar> cal_;
    std::mutex work_mu_;  // one tick, one reload at a time

  private:
    std::unique_ptr<DrainTicker> ticker_;
};

class Services {
  public:
    Services() = default;
    Services(const Services&) = delete;
    Services& operator=(const Services&) = delete;
    ~Services();  // stops what is still running

    void after_drain(int64_t now);
    void reload(const ServiceContext& next);
    // From the metrics thread, which starts before the services and scrapes while they are
    // added: the list is read under its lock, each service's stats() is thread-safe.
    void stats(DaemonStats& s) const;
    void stop();  // reverse order of start; idempotent

    void add(std::unique_ptr<Service> s) {
        std::lock_guard l(list_mu_);
        list_.push_back(std::move(s));
    }
    LogAlertSink log_alerts;  // where alerts go until (and unless) the push service starts

  private:
    mutable std::mutex list_mu_;  // add() against stats(); the rest runs on the daemon thread
    std::vector<std::unique_ptr<Service>> list_;
    bool stopped_ = false;
};

}  // namespace pf
