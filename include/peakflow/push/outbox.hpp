#pragma once
// The durable outbox: every message is a row in SQLite (tables `outbox` and `push_history`
// in the history database) before any send is tried. A worker thread per sink sends the
// sink's oldest message, removes it only after the service confirmed it, and otherwise
// backs off (exponential, with jitter) and tries the same message again: per-sink order,
// and a failing sink holds up only itself. A restart resumes from the table.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/common/sqlite.hpp"
#include "peakflow/push/sinks.hpp"
#include "peakflow/service/alerts.hpp"
#include "peakflow/service/message_queue.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

struct HistoryRow {
    int64_t id = 0;
    int64_t time = 0;  // UTC seconds of the last change
    std::string node, host, sink, kind, period;
    int64_t bytes = 0;
    std::string status;  // pending | failed | sent | skipped
    int64_t attempts = 0;
    std::string last_error;
    std::optional<int64_t> value{};  // the traffic the message reports (bytes); none for alerts, tests
    std::string agent{};             // the collector's view: whose row it is ("" at the agent)
};

struct OutboxOptions {
    std::string database;
    PushConfig push;
    std::string host;                 // default: gethostname()
    std::function<int64_t()> now_ms;  // wall ms for the history and alerts; default: the system clock
    // ms for durations (backoff, rate limit, the workers' waits): a wall clock stepped back
    // stalls nothing. Default: std::chrono::steady_clock.
    std::function<int64_t()> mono_ms;
    std::function<std::unique_ptr<Sink>(const SinkConfig&)> make_sink;  // default: make_sink()
    uint64_t seed = 0;                                                  // jitter; 0: random
    double idle_poll = 1.0;  // seconds between looks for rows other processes added
};

class Outbox : public MessageQueue {
  public:
    static Result<std::unique_ptr<Outbox>> open(OutboxOptions o);
    ~Outbox() override;

    // m.sink set: that sink only. Empty: every configured sink that takes m.kind (reports
    // list, alerts flag). Disabled sinks (or push.enabled false) get a history row with
    // status skipped and nothing is queued.
    Status enqueue(const OutboundMessage& m) override;

    // One delivery step for a sink: if its head is due (backoff, rate limit), send it and
    // record the outcome. Returns the time (mono_ms) when the sink wants the next step, or 0
    // when its queue is empty. The worker threads call this; tests call it directly.
    Result<int64_t> step(const std::string& sink);

    void start();  // one worker thread per configured sink
    void stop();   // lets a send in flight finish, joins
    // A reload (SIGHUP, or the collector's central config): new switches, addresses and
    // settings for the same sinks. The workers stop (a send in flight finishes), the config
    // is replaced and they start again; failure streaks and backoffs stay. A sink added,
    // removed or of another type is an error: that needs a restart.
    Status reconfigure(const PushConfig& next);
    // How many push sections reconfigure() has put in use since open.
    uint64_t reconfigured() const { return reconfigured_.load(); }
    void wake();

    uint64_t depth() const;  // messages waiting, all sinks
    Result<std::vector<HistoryRow>> history(bool failed_only) const;
    Result<std::vector<int64_t>> queued_ids(const std::string& sink) const;

    // Alerts raised by delivery failures go here (besides the outbox itself).
    void set_log_alerts(AlertSink* a) { log_alerts_ = a; }

  private:
    explicit Outbox(OutboxOptions o) : o_(std::move(o)) {}
    struct SinkState {
        const SinkConfig* cfg = nullptr;
        std::unique_ptr<Sink> sink;
        int failures = 0;  // consecutive failed attempts
        bool alerted = false;
        int64_t not_before = 0;    // mono ms: backoff
        std::deque<int64_t> sent;  // mono ms of recent sends (rate limit)
        std::mt19937_64 rng;       // jitter; one per sink, as each sink has its own thread
        // The outcome of the last send while it is not recorded yet (the database was busy,
        // locked or full): recording it is retried before anything else, and the message
        // is never sent again for it.
        struct Outcome {
            int64_t id = 0;
            std::string kind, title;
            SendResult r;
            int64_t done = 0;       // wall ms
            int64_t done_mono = 0;  // mono ms
        };
        std::optional<Outcome> unrecorded;
    };
    Result<int64_t> record(const std::string& name, SinkState& st);
    Status enqueue_locked(const OutboundMessage& m, bool skip);
    Alert make_alert(const std::string& failed_sink, bool recovered, const std::string& error, int64_t now_ms) const;
    void worker(const std::string& sink);
    int64_t now_ms() const;
    int64_t mono_ms() const;

    OutboxOptions o_;
    mutable std::mutex db_mu_;
    SqliteDb db_;
    std::map<std::string, SinkState> sinks_;
    std::mutex wake_mu_;
    std::condition_variable wake_cv_;
    uint64_t wake_gen_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<uint64_t> reconfigured_{0};
    std::vector<std::thread> threads_;
    AlertSink* log_alerts_ = nullptr;
};

// Alerts from the daemon's watchers: logged, and queued for every sink that takes alerts
// (kind alert or recovery, period = the alert key).
class OutboxAlertSink : public AlertSink {
  public:
    explicit OutboxAlertSink(MessageQueue& q) : q_(q) {}
    void alert(const Alert& a) override;

  private:
    MessageQueue& q_;
    LogAlertSink log_;
};

// The daemon service (with a `push:` section): opens the outbox, runs the workers, provides
// ctx.outbox, ctx.alerts and ctx.sinks to the services after it.
Result<std::unique_ptr<Service>> make_push_service(ServiceContext& ctx);

// CLI parts.
Result<std::vector<HistoryRow>> read_push_history(const std::string& database, bool failed_only);
// The `history` table or JSON ({"history":[…]}); with_agent: the collector's, with an
// AGENT column (and an "agent" key first) before the agent's own columns.
std::string render_history(const std::vector<HistoryRow>& rows, bool json,
                           const std::function<std::string(int64_t)>& fmt, bool with_agent = false);
int run_push_test(const PushConfig& c, const std::string& only_sink, std::ostream& out);

}  // namespace pf
