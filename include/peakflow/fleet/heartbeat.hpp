#pragma once
// The heartbeat service of the collector (docs/fleet.md, "Heartbeat service"; the heartbeat
// requirements, issue 16): services say they are alive (POST /heartbeat/report), users ask
// for the status grouped by service type (POST /heartbeat/status), and a probe runs
// SELECT 1 on the collector's own database and on configured PostgreSQL databases on its
// own thread, so a slow database never holds a request thread.
//
// The HTTP routes and the user check live in the collector's server; this file has what
// they call: the reporter check (heartbeat token or allowed address), the body checks, the
// store, the status answer and the probe.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/sqlite.hpp"

namespace pf {

class FleetStore;

inline constexpr const char* kHeartbeatTokenPrefix = "pfh_";
inline constexpr size_t kHeartbeatMaxBody = 16 * 1024;
inline constexpr size_t kHeartbeatMaxName = 256;  // bytes of a service_name
// How far end_time may be ahead of the collector's clock (a browser's clock), as the wire
// protocol allows for agents.
inline constexpr int64_t kHeartbeatFutureSlack = 300;
// An agent's heartbeat that reaches the collector more than this after its check (sent from
// the agent's backlog after an outage) is stored as late: listed, never counted as live.
inline constexpr int64_t kHeartbeatLateMs = 30000;

// Service names starting with `prefix` (ASCII letters compared case-insensitively) are of
// `type` (a key of service_status) and online while their last report is at most
// `timeout` seconds old.
struct HeartbeatType {
    std::string prefix;
    std::string type;
    int64_t timeout = 60;
};

// The requirements' table: 数据采集 -> data_collection 2 min, kafka -> kafka_process 2 min,
// redis -> redis 1 min, 后端 -> backend 1 min, 前端 -> frontend 1 min.
std::vector<HeartbeatType> default_heartbeat_types();
// The keys service_status always has, in the requirements' order (before `other` and
// `database`).
const std::vector<std::string>& heartbeat_document_types();

// Where one edge of traffic_status counts rows with `traffic_source: tables` (the
// requirements' 流量统计说明): COUNT(*) of `table` in the range by `time`, grouped by the
// `source` and `target` columns; a side without a column is the fixed `*_label`.
struct TrafficTable {
    std::string edge;                     // a key of traffic_status
    std::string table;                    // [schema.]table, as unquoted SQL names it
    std::string time;                     // the column the range applies to
    std::string time_type = "timestamp";  // timestamp (or timestamptz) | unix | unix_ms
    std::string source, target;           // columns ("" : the label)
    std::string source_label, target_label;
};
// The requirements' tables: node_monitor_metrics (by ip_address; its total for
// kafka_to_database), database_access_log and redis_access_log (by client_ip) and access_logs
// (by server_ip and client_ip). The requirements give access_logs' columns only; the time
// columns of the others (created_at, access_time) are settable.
std::vector<TrafficTable> default_traffic_tables();
// Why `name` cannot be a table (with_schema) or column name in traffic_tables ("" when it can).
std::string sql_name_problem(const std::string& name, bool with_schema);
inline constexpr size_t kTrafficTableMaxPairs = 1000;  // per edge, the largest counts

// The rows one edge counted, or why not.
struct TableCount {
    std::string source, target;
    int64_t rows = 0;
};
struct EdgeCount {
    std::string edge;
    std::vector<TableCount> pairs;  // largest first, at most kTrafficTableMaxPairs
    bool truncated = false;         // more pairs than that
    std::string error;              // "" when counted
};
// Counts every table's rows with start <= time < end on one connection, read-only, the
// whole of it within `timeout_s`. Errors never quote the connection string's secrets.
std::vector<EdgeCount> count_traffic_tables(const std::string& conninfo, const std::vector<TrafficTable>& tables,
                                            int64_t start, int64_t end, double timeout_s);

// The collector config's `heartbeat:` section.
struct HeartbeatConfig {
    std::vector<HeartbeatType> types = default_heartbeat_types();
    int64_t other_timeout = 120;          // services of no type (listed under `other`)
    int64_t retention = 7 * 86400;        // reports kept; also the longest status range
    std::vector<std::string> allow_from;  // CIDRs that may report without a token
    std::vector<std::string> databases;   // PostgreSQL connection strings (libpq)
    double probe_interval = 30;           // seconds between probe rounds
    double probe_timeout = 5;             // per database, connecting and SELECT 1 together
    // data_count of traffic_status: "flows" (the connections the agents measured) or
    // "tables" (rows of traffic_tables in traffic_database, default the first of databases).
    std::string traffic_source = "flows";
    std::string traffic_database;
    std::vector<TrafficTable> traffic_tables = default_traffic_tables();
    double traffic_timeout = 5;  // counting all the tables of one status query
};

// An address block: "10.0.0.0/8", "fd00::/8", or one address ("192.0.2.7").
class Cidr {
  public:
    static Result<Cidr> parse(const std::string& text);
    // An IPv4 address also matches as an IPv4-mapped IPv6 address (::ffff:a.b.c.d), as a
    // dual-stack listener shows it.
    bool contains(const std::string& address) const;

  private:
    int family_ = 0;
    unsigned char bytes_[16] = {};
    int bits_ = 0;
};

// True for an IPv4 or IPv6 address in text form.
bool valid_ip_address(const std::string& s);

// Why `conninfo` is not a libpq connection string ("" when it is). Never quotes it: it may
// hold a password.
std::string conninfo_problem(const std::string& conninfo);
// The connection string as key=value pairs with every secret libpq knows of (password,
// sslpassword) as "***": what logs and answers show.
std::string mask_conninfo(const std::string& conninfo);

// "2025-11-21T10:30:00.000Z" from milliseconds since the epoch.
std::string iso8601_ms(int64_t ms);

// Each IPv4 and IPv6 address in `text` replaced by shown(address) (error messages that
// name a server, shown to a viewer).
std::string replace_addresses(const std::string& text, const std::function<std::string(const std::string&)>& shown);

// The last result of probing one database.
struct DbProbe {
    std::string name;    // "collector", "postgresql 1", ...
    std::string target;  // the SQLite file, or the masked connection string
    bool probed = false;
    bool connected = false;
    int64_t time_ms = 0;  // when it started
    int64_t duration_ms = 0;
    std::string error;  // "" when connected
};

// SELECT 1 on a PostgreSQL database through libpq, non-blocking, the whole of it (connect,
// authenticate, query) within `timeout_s`. Host names are resolved before the clock starts
// (libpq resolves them blocking): give hostaddr= to avoid DNS. Sets connected, error and
// duration_ms of `out`.
void probe_postgres(const std::string& conninfo, double timeout_s, DbProbe& out);
// SELECT 1 and the schema version (so the file itself is read) on a fresh read-only
// connection to the SQLite file, waiting at most `timeout_s` for a lock.
void probe_sqlite(const std::string& path, double timeout_s, DbProbe& out);

// What an endpoint answers: 200 and `body` (JSON), or `status` and `message` for the
// {"status":"error","message":...} the server sends.
struct HeartbeatReply {
    int status = 200;
    std::string body;
    std::string message;
};

// How the caller of the status query may see it: its IP addresses through `ip` (the
// server's shown_ip), and the traffic lists or not.
struct HeartbeatViewer {
    std::function<std::string(const std::string&)> ip;
    bool traffic = false;
};

struct HeartbeatTokenRow {
    std::string name;
    int64_t created = 0;
    bool revoked = false;
    std::optional<int64_t> last_report_ms;  // the newest report made with it
};

// The "heartbeat" schema part: reports and heartbeat tokens, in the collector's database.
std::span<const SchemaPart> heartbeat_schema();

// Heartbeat tokens ("pfh_" + 64 hex), stored as SHA-256: one per name; create refuses a
// name whose token is not revoked and returns the token, shown once.
Result<std::string> heartbeat_token_create(FleetStore& store, const std::string& name, int64_t now);
Status heartbeat_token_revoke(FleetStore& store, const std::string& name);
Result<std::vector<HeartbeatTokenRow>> heartbeat_tokens(FleetStore& store);

class HeartbeatService {
  public:
    // now_ms: the collector's clock in milliseconds. probe_thread: probe every
    // probe_interval on its own thread (tests call probe_now instead).
    static Result<std::unique_ptr<HeartbeatService>> start(FleetStore& store, HeartbeatConfig c,
                                                           std::function<int64_t()> now_ms, bool probe_thread = true);
    ~HeartbeatService();
    HeartbeatService(const HeartbeatService&) = delete;
    HeartbeatService& operator=(const HeartbeatService&) = delete;
    void stop();  // idempotent; waits for a probe under way

    // POST /heartbeat/report from `remote_addr` with the request's Authorization header.
    HeartbeatReply report(const std::string& authorization, const std::string& remote_addr, const std::string& body);
    // POST /heartbeat/status for a caller already known to be a user.
    HeartbeatReply status(const std::string& body, const HeartbeatViewer& viewer);

    // One probe round now, on the calling thread.
    void probe_now();
    std::vector<DbProbe> probes() const;
    // Deletes reports and the agents' flow pairs older than the retention; returns how many.
    Result<int64_t> prune_now();

  private:
    HeartbeatService(FleetStore& store, HeartbeatConfig c, std::function<int64_t()> now_ms);
    // The reporter ("token NAME" or "address") or, in `why`, the 401's reason.
    std::optional<std::string> reporter(const std::string& authorization, const std::string& remote_addr,
                                        std::string& why);
    const HeartbeatType* type_of(const std::string& service_name) const;
    void probe_loop();

    FleetStore& store_;
    HeartbeatConfig c_;
    std::function<int64_t()> now_ms_;
    std::vector<Cidr> allow_;

    mutable std::mutex probe_mu_;
    std::vector<DbProbe> probes_;  // [0] the collector's own database, then c_.databases
    std::mutex round_mu_;          // one probe round at a time

    std::thread prober_;
    std::mutex stop_mu_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;
    int64_t pruned_at_ms_ = 0;
};

}  // namespace pf
