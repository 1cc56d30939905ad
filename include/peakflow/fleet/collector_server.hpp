#pragma once
// The collector's server: POST /api/v1/agents/report and /api/v1/agents/alert as
// docs/fleet.md says, GET /api/v1/health, the users' login, logout, me and users (the JSON
// API takes a user's session cookie or API token), the heartbeat service (heartbeat.hpp), the
// web dashboard and its read-only JSON (dashboard.hpp),
// and the offline watch that raises one alert when an agent goes quiet and one recovery
// notice when it reports again. Notices go to the store, the alert file, the log and the
// collector's own push sinks (the outbox).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/fleet/fleet_store.hpp"
#include "peakflow/fleet/fleet_users.hpp"
#include "peakflow/fleet/heartbeat.hpp"
#include "peakflow/push/push_config.hpp"
#include "peakflow/service/message_queue.hpp"

namespace pf {

struct CollectorOptions {
    std::string host = "127.0.0.1";
    int port = 8999;                // 0: a free port (tests)
    std::string tls_cert, tls_key;  // both set: HTTPS
    std::string database;
    int offline_after = 3;  // report intervals
    // Failed delivery attempts in a row of an agent's sink, as its push rows show them,
    // before the collector raises its own alert for it (FleetStore::set_push_alerts); 0: never.
    int push_failure_alert_after = 3;
    std::string alert_file;
    bool forward_alerts = false;  // agents' alerts to our push sinks too
    PushConfig push;
    std::string timezone;            // local times in notices and the alert file; "" the system's
    std::string fleet_name;          // the dashboard's title ("" none)
    std::function<int64_t()> clock;  // UTC seconds; default the system clock
    MessageQueue* queue = nullptr;   // instead of an outbox over `push` (tests)
    bool watch = true;               // run the offline watch thread (tests call check_offline)
    std::chrono::milliseconds watch_every{1000};
    int threads = 8;
    // The argon2id cost of passwords set through the server and of the dummy hash unknown
    // names are checked against; production keeps the defaults (tests: a cheaper one).
    Argon2Params password_hash;
    // Why a central value cannot be set ("" when it can): `set` and the config API ask it.
    // Default central_value_problem (shape only); the collector's CLI gives it the agent's
    // own config parser.
    std::function<std::string(const std::string& key, const std::string& json)> check_central;
    // The heartbeat service (POST /heartbeat/report and /heartbeat/status) and its database
    // probe, which runs on its own thread unless `probe` is false (tests call
    // CollectorServer::heartbeat().probe_now()).
    HeartbeatConfig heartbeat;
    bool probe = true;
    // UTC milliseconds, for the heartbeats' report times; default: `clock` x 1000 when a
    // clock is given, else the system clock.
    std::function<int64_t()> clock_ms;
};

class CollectorServer {
  public:
    // Opens the store (and the outbox when push sinks are configured), binds the listener
    // and serves on its own threads; errors (bind, TLS files, database) come back here.
    static Result<std::unique_ptr<CollectorServer>> start(CollectorOptions o);
    ~CollectorServer();
    CollectorServer(const CollectorServer&) = delete;
    CollectorServer& operator=(const CollectorServer&) = delete;

    void stop();  // idempotent
    int port() const;
    FleetStore& store();
    HeartbeatService& heartbeat();

    // One pass of the offline watch at the clock's now; the watch thread calls it.
    Status check_offline();

    struct Impl;

  private:
    explicit CollectorServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// "3m 5s", "2h 0m", "1d 4h": how long, for people.
std::string human_duration(int64_t seconds);

}  // namespace pf
