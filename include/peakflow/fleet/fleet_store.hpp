#pragma once
// The collector's store (SQLite in WAL mode, or PostgreSQL: store_db.hpp): agents and
// their tokens, what each agent reported (5-minute rows, push history, host samples,
// episodes), the sequence held per (agent, spool, stream), and the alerts. One report is
// one transaction (the agent's turn): its batches, their records and the new sequence
// numbers commit together or not at all, so a batch sent again after a lost answer is
// acknowledged and never stored twice, also when it went to another collector on the
// same PostgreSQL database.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/usage_source.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/fleet/store_db.hpp"
#include "peakflow/fleet/wire.hpp"
#include "peakflow/push/outbox.hpp"

namespace pf {

inline constexpr const char* kTokenPrefix = "pfc_";

// 1 to 64 of A-Z a-z 0-9 . _ -
bool valid_agent_name(const std::string& name);
// SHA-256 of s as 64 lowercase hex digits.
std::string sha256_hex(const std::string& s);

struct AgentRow {
    std::string name;
    int64_t token_created = 0;
    bool revoked = false;
    std::string node, host, version, boot_id;
    int64_t interval = 60;
    std::string interfaces;                        // the announced list, JSON
    std::string iface, mac;                        // the counted interfaces and their MACs, comma-separated
    std::optional<int64_t> first_seen, last_seen;  // collector clock
    int64_t agent_time = 0;
    int64_t backlog = 0;
    std::string state;  // never | online | offline (as last persisted)
    std::optional<int64_t> offline_since;
};

struct StoredAlert {
    int64_t id = 0;
    int64_t time = 0;
    std::string agent;
    std::string origin;  // collector | agent
    std::string kind;    // alert | recovery
    std::string key, title, text, node, host;
};

struct TokenAuth {
    std::string agent;
    bool revoked = false;
};

// What one report did.
struct IngestResult {
    WireAck ack;            // what is held per stream after the report (before it, on a gap)
    std::string gap;        // non-empty: refused, nothing stored ("stream buckets: sequence gap: ...")
    size_t batches = 0;     // stored
    size_t duplicates = 0;  // acknowledged without being stored
    size_t records = 0;     // stored
    // The agent was offline and this report brings it back.
    std::optional<StoredAlert> notice;
    // Alerts and recoveries of agents' push sinks the push rows of this report raised
    // (FleetStore::set_push_alerts), stored in the same transaction.
    std::vector<StoredAlert> push_notices;
};

// A selection of the fleet's push history (FleetStore::push_history). Unset: any.
struct PushQuery {
    std::optional<std::string> agent, node, host, status;
    bool failed_only = false;         // status failed
    std::optional<int64_t> from, to;  // UTC seconds of the row's time: from <= time < to
    int64_t page = 1;                 // 1-based
    int64_t limit = 0;                // rows per page; 0: all of them
};

struct PushPage {
    int64_t total = 0;             // rows the selection matches, over all pages
    std::vector<HistoryRow> rows;  // newest first: time, then id, descending; agent set
};

// An agent the offline watch found quiet, already marked offline in the store.
struct OfflineTransition {
    AgentRow agent;  // as it was
    StoredAlert notice;
};

class FleetStore {
  public:
    // `database`: a SQLite file or a PostgreSQL database (is_postgres_target). SQLite,
    // read_only: the file must exist; otherwise it and its directory (0700) are created,
    // the file with mode 0600. The schema is brought up unless read_only.
    static Result<std::unique_ptr<FleetStore>> open(const std::string& database, bool read_only = false);
    // The database as messages show it (a PostgreSQL password masked).
    const std::string& path() const { return path_; }
    SqlEngine engine() const { return db_->engine(); }
    // The database as configured, a password included: for the heartbeat's probe only.
    const std::string& target() const { return target_; }

    // Tokens. create: refuses a name whose token is not revoked; returns the token.
    Result<std::string> create_token(const std::string& name, int64_t now);
    Status revoke_token(const std::string& name);
    // The agent the token belongs to; nullopt for an unknown token.
    Result<std::optional<TokenAuth>> authenticate(const std::string& token);

    // Makes the notice for an agent going offline or coming back; stored in the same
    // transaction as the state change, so a crash cannot lose one or raise it twice.
    using NoticeFn = std::function<StoredAlert(const AgentRow& before, int64_t now)>;

    // One report of `agent` (already authenticated and checked), received at `now`. An
    // agent that was offline is back: `recovery` makes the notice (returned in `notice`).
    Result<IngestResult> ingest(const std::string& agent, const WireReport& r, int64_t now,
                                const NoticeFn& recovery = {});

    // Agents not revoked whose last report (or `grace_from`, if later) is more than
    // offline_after x their interval before `now` are marked offline, each with the alert
    // `alert` makes, in one transaction; they are returned.
    Result<std::vector<OfflineTransition>> mark_offline(int64_t now, int64_t grace_from, int offline_after,
                                                        const NoticeFn& alert);

    // A sink of an agent whose push rows show `after` failed delivery attempts in a row
    // raises one alert (key "push-failed:AGENT:SINK") and its next delivery one recovery,
    // each made by `make` and stored with the report (docs/fleet.md, "Fleet push
    // history"). after 0 (the default): none.
    using PushNoticeFn =
        std::function<StoredAlert(const std::string& agent, const WirePush& row, bool raised, int after, int64_t now)>;
    void set_push_alerts(int after, PushNoticeFn make);

    // The push history of the fleet, filtered and paged.
    Result<PushPage> push_history(const PushQuery& q);

    // Whether this collector holds the lock `name` (taking it when free): with several
    // collectors on one PostgreSQL database, the one that runs a fleet-wide job (the
    // offline watch). SQLite: always.
    Result<bool> lead(const std::string& name);

    // Alerts. add_alert: a collector alert (digest empty) or an agent's (digest set: at
    // most once per (agent, digest)); returns false when it was already stored.
    Result<bool> add_alert(const StoredAlert& a, const std::string& digest);
    Result<std::vector<StoredAlert>> alerts(size_t limit = 1000);

    Result<std::vector<AgentRow>> agents();
    Result<std::optional<AgentRow>> agent(const std::string& name);

    // An agent's host stream as stored: its health samples ("sys") with time in [from, to),
    // oldest first, and its newest ended runaway-process episodes ("episode"), newest
    // first (by end, then id), at most `limit`.
    Result<std::vector<WireHost>> host_samples(const std::string& agent, int64_t from, int64_t to);
    Result<std::vector<WireHost>> episodes(const std::string& agent, size_t limit);

    // Counts, for tests and logs.
    Result<int64_t> count(const std::string& table);

    // Runs `f(StoreDb&)` on the store's connection under its lock: the parts kept in the
    // same database beside the agents' data (central config, users, heartbeats) use it.
    template <typename F>
    auto with_db(F&& f) {
        std::lock_guard<std::mutex> l(mu_);
        return f(*db_);
    }

    // Usage over a selection: one agent (its interface names as they are), or a node or
    // the whole fleet (interface names "agent/iface").
    struct Selection {
        std::optional<std::string> agent;
        std::optional<std::string> node;
    };
    std::unique_ptr<UsageSource> usage(const Selection& s);

    // Day roll-ups (docs/fleet.md, "Roll-ups"): sums over whole local days of `cal`'s zone
    // that ended before clock() come from one row per (day, agent, interface, MAC, peak)
    // instead of the day's 288 buckets; a bucket written into a day takes it off the list of
    // clean days, and the next read (or settle_days) rolls it up again. Off until called.
    // Also keeps each interface's totals per day (today's too) as reports arrive, made from
    // the buckets when the zone is new: interface-total sums over whole days read those.
    Status use_day_rollups(const Calendar& cal, std::function<int64_t()> clock);
    // Rolls up the whole days of [from, to) that ended and are not clean; how many.
    Result<int> settle_days(int64_t from, int64_t to);

    // The fleet's 5-minute totals in [from, to) (every agent's interface totals summed per
    // bucket and peak flag; iface empty, mac kIfaceTotal), kept as reports arrive: the
    // dashboard's fleet chart without reading every agent's rows.
    Result<std::vector<UsageRow>> fleet_points(int64_t from, int64_t to);

    // Internal to the usage views.
    Result<std::vector<UsageRow>> read_usage(const Selection& s, bool qualified, const Filter& f, int64_t from,
                                             int64_t to, bool sums);
    Result<std::vector<std::string>> usage_interfaces(const Selection& s, bool qualified);

  private:
    FleetStore() = default;
    Status write_buckets(const std::string& agent, const std::vector<WireBucket>& rows);
    Status write_push(const std::string& agent, const std::vector<WirePush>& rows, int64_t now,
                      std::vector<StoredAlert>& notices);
    Status watch_push_sink(const std::string& agent, const WirePush& r, int64_t now, std::vector<StoredAlert>& notices);
    Status write_host(const std::string& agent, const std::vector<WireHost>& rows);
    Status write_heartbeats(const std::string& agent, const std::vector<WireHeartbeat>& rows, int64_t now);
    Status write_flows(const std::string& agent, const std::vector<WireFlowPair>& rows);
    Status dirty_days(const std::vector<WireBucket>& rows);
    Status add_points(const std::string& agent, const std::vector<WireBucket>& rows);
    Status settle_day(int64_t day, int64_t day_end);
    Result<int> settle_locked(int64_t from, int64_t to);
    Result<std::vector<UsageRow>> read_sums(const char* table, const Selection& s, bool qualified, const Filter& f,
                                            int64_t from, int64_t to);
    Result<std::vector<UsageRow>> read_rows(const char* table, const char* time, const Selection& s, bool qualified,
                                            const Filter& f, int64_t from, int64_t to, bool sums);
    Result<StoreStmt*> kept(const std::string& sql);

    std::mutex mu_;  // one connection, used by the server's threads and the offline watch
    std::unique_ptr<StoreDb> db_;
    std::string path_, target_;
    std::map<std::string, StoreStmt> stmts_;  // after db_: finalized before it closes
    std::optional<Calendar> rollup_cal_;
    std::function<int64_t()> rollup_clock_;
    int push_alert_after_ = 0;
    PushNoticeFn push_notice_;
};

// State of an agent now: never (no report yet), offline (quiet for more than offline_after
// x its interval), online.
std::string agent_state(const AgentRow& a, int64_t now, int offline_after);

}  // namespace pf
