#pragma once
// Background parts of the daemon beside the accounting loop: the push pipeline, report
// schedules, the process and host watch, flow export. Each runs its own thread(s) and is
// driven by the daemon through these hooks.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/app/config.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/daemon/metrics.hpp"
#include "peakflow/service/alerts.hpp"
#include "peakflow/service/message_queue.hpp"

namespace pf {

struct DaemonOptions;

class Service {
  public:
    virtual ~Service() = default;
    virtual std::string name() const = 0;
    // On the daemon thread after each drain was committed to the history; `now` is that
    // drain's time (UTC seconds). Must be quick: hand work to the service's own thread.
    virtual void after_drain(int64_t now) { (void)now; }
    // SIGHUP with a new, valid config.
    virtual void reload(const Config& cfg) { (void)cfg; }
    // Add this service's figures (thread-safe: called from the metrics thread).
    virtual void stats(DaemonStats& s) const { (void)s; }
    // Shutdown, after the last drain: finish what is open (files, a send in flight), join
    // threads. Called once, in the reverse order of start.
    virtual void stop() {}
};

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

// What services are built from. `alerts` is never null; `outbox` is null when the push
// pipeline is not configured.
struct ServiceContext {
    const Config& config;
    const DaemonOptions& options;     // paths, database path, clock
    std::vector<std::string> ifaces;  // the interfaces the daemon attached to
    AlertSink* alerts = nullptr;
    MessageQueue* outbox = nullptr;
    // The push sinks, name -> type ("dingtalk", "http", ...), set with `outbox` by the push
    // block: the report services address their messages to them by name.
    std::vector<std::pair<std::string, std::string>> sinks;
};

class Services {
  public:
    Services() = default;
    Services(const Services&) = delete;
    Services& operator=(const Services&) = delete;
    ~Services();  // stops what is still running

    void after_drain(int64_t now);
    void reload(const Config& cfg);
    void stats(DaemonStats& s) const;
    void stop();  // reverse order of start; idempotent

    void add(std::unique_ptr<Service> s) { list_.push_back(std::move(s)); }
    // Owners of what services share (the outbox-backed alert sink), kept alive until stop.
    std::vector<std::shared_ptr<void>> keep;
    LogAlertSink log_alerts;

  private:
    std::vector<std::unique_ptr<Service>> list_;
    bool stopped_ = false;
};

// Builds and starts the services the config asks for. A service that cannot start (bad
// credentials file, unwritable spool directory) is an error: the daemon does not start.
Status start_services(Services& out, ServiceContext& ctx);

}  // namespace pf
