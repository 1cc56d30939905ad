#include "peakflow/fleet/fleet_store.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <tuple>

#include <spdlog/spdlog.h>

#include "peakflow/fleet/heartbeat.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {
namespace fs = std::filesystem;

namespace {

constexpr SchemaPart kSchema[] = {{"fleet", 1, R"(
CREATE TABLE IF NOT EXISTS fleet_agents(
  name TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL, token_created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
  node TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '',
  boot_id TEXT NOT NULL DEFAULT '', interval INTEGER NOT NULL DEFAULT 60,
  interfaces TEXT NOT NULL DEFAULT '[]', iface TEXT NOT NULL DEFAULT '', mac TEXT NOT NULL DEFAULT '',
  first_seen INTEGER, last_seen INTEGER, agent_time INTEGER NOT NULL DEFAULT 0,
  backlog INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'never', offline_since INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fleet_agents_token ON fleet_agents(token_hash);
CREATE TABLE IF NOT EXISTS fleet_stream_seq(
  agent TEXT NOT NULL, spool TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(agent, spool, stream)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_buckets(
  agent TEXT NOT NULL, iface TEXT NOT NULL, mac INTEGER NOT NULL, ts INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(agent, iface, ts, mac)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fleet_buckets_ts ON fleet_buckets(ts);
CREATE TABLE IF NOT EXISTS fleet_push(
  agent TEXT NOT NULL, id INTEGER NOT NULL, time INTEGER NOT NULL,
  node TEXT NOT NULL, host TEXT NOT NULL, sink TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,
  bytes INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL,
  PRIMARY KEY(agent, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_host(
  agent TEXT NOT NULL, time INTEGER NOT NULL, load1 REAL, cpu REAL, mem_total INTEGER, mem_used REAL,
  disk_total INTEGER, disk_used REAL, temperature REAL);
CREATE INDEX IF NOT EXISTS fleet_host_agent ON fleet_host(agent, time);
CREATE TABLE IF NOT EXISTS fleet_episodes(
  agent TEXT NOT NULL, id INTEGER NOT NULL, pid INTEGER NOT NULL, name TEXT NOT NULL, user TEXT NOT NULL,
  since INTEGER NOT NULL, detected INTEGER NOT NULL, ended INTEGER NOT NULL, end_reason TEXT NOT NULL,
  peak_cpu REAL, peak_mem REAL,
  PRIMARY KEY(agent, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_alerts(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, agent TEXT NOT NULL,
  origin TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
  node TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '', digest TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS fleet_alerts_digest ON fleet_alerts(agent, digest) WHERE digest IS NOT NULL;
)"},
                                  // The traffic each push row reports (NULL: none), the history's
                                  // newest-first order, and per agent's sink whether its failure
                                  // alert is raised and which row raised the last one.
                                  {"fleet", 2, R"(
ALTER TABLE fleet_push ADD COLUMN value INTEGER;
CREATE INDEX IF NOT EXISTS fleet_push_time ON fleet_push(time, id);
CREATE TABLE IF NOT EXISTS fleet_push_sinks(
  agent TEXT NOT NULL, sink TEXT NOT NULL, alerted INTEGER NOT NULL, alert_row INTEGER,
  PRIMARY KEY(agent, sink)) WITHOUT ROWID;
)"},
                                  // Traffic between address pairs per 5-minute bucket, from the
                                  // agents' flows stream (the heartbeat service's traffic_status):
                                  // each batch adds to its rows, once, by the stream's seq.
                                  {"fleet", 3, R"(
CREATE TABLE IF NOT EXISTS fleet_flows(
  agent TEXT NOT NULL, iface TEXT NOT NULL, ts INTEGER NOT NULL, other INTEGER NOT NULL,
  src TEXT NOT NULL, dst TEXT NOT NULL, proto INTEGER NOT NULL, port INTEGER NOT NULL,
  bytes INTEGER NOT NULL, packets INTEGER NOT NULL, flows INTEGER NOT NULL,
  PRIMARY KEY(agent, iface, ts, other, src, dst, proto, port)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fleet_flows_ts ON fleet_flows(ts);
)"},
                                  // Day roll-ups of fleet_buckets (FleetStore::use_day_rollups): the
                                  // sums of each local day of the collector's time zone, valid for
                                  // the days listed in fleet_days_clean; a bucket written into a day
                                  // takes the day off that list.
                                  {"fleet", 4, R"(
CREATE TABLE IF NOT EXISTS fleet_days(
  agent TEXT NOT NULL, iface TEXT NOT NULL, mac INTEGER NOT NULL, day INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(day, agent, iface, mac, peak)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_days_clean(day INTEGER PRIMARY KEY, zone TEXT NOT NULL);
)"},
                                  // The fleet's 5-minute totals (the interface-total rows of every
                                  // agent summed per bucket and peak flag), kept as reports arrive;
                                  // the time index covers the columns the range reads need.
                                  {"fleet", 5, R"(
CREATE TABLE IF NOT EXISTS fleet_points(
  ts INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(ts, peak)) WITHOUT ROWID;
INSERT INTO fleet_points(ts, peak, rx_bytes, rx_packets, tx_bytes, tx_packets)
  SELECT ts, peak, SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) FROM fleet_buckets
  WHERE mac = -1 GROUP BY ts, peak;
DROP INDEX IF EXISTS fleet_buckets_ts;
CREATE INDEX IF NOT EXISTS fleet_buckets_time ON fleet_buckets(
  ts, mac, agent, iface, peak, rx_bytes, rx_packets, tx_bytes, tx_packets);
)"},
                                  // Each interface's totals per local day of the collector's zone
                                  // (zone), kept as reports arrive, today's too: made from the
                                  // buckets when the zone is new (FleetStore::use_day_rollups).
                                  {"fleet", 6, R"(
CREATE TABLE IF NOT EXISTS fleet_iface_days(
  day INTEGER NOT NULL, agent TEXT NOT NULL, iface TEXT NOT NULL, peak INTEGER NOT NULL, zone TEXT NOT NULL,
  mac INTEGER NOT NULL DEFAULT -1,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(day, agent, iface, peak)) WITHOUT ROWID;
)"},
                                  // Central configuration (central_store.hpp): values per scope ('' the
                                  // fleet, else an agent), each scope's version, the audit log, and what
                                  // each agent reported it runs.
                                  {"fleet_control", 1, R"(
CREATE TABLE IF NOT EXISTS central_values(
  scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY(scope, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS central_scopes(scope TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS central_audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, version INTEGER NOT NULL,
  who TEXT NOT NULL, origin TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, old_value TEXT, new_value TEXT);
CREATE TABLE IF NOT EXISTS central_agent_state(
  agent TEXT PRIMARY KEY, version INTEGER NOT NULL, problems TEXT NOT NULL) WITHOUT ROWID;
)"}};

constexpr const char* kAgentColumns =
    "name, token_created, revoked, node, host, version, boot_id, interval, interfaces, iface, mac, first_seen, "
    "last_seen, agent_time, backlog, state, offline_since";

std::optional<int64_t> opt_i64(const StoreStmt& s, int c) {
    return s.is_null(c) ? std::nullopt : std::optional<int64_t>(s.i64(c));
}

std::optional<double> opt_f64(const StoreStmt& s, int c) {
    return s.is_null(c) ? std::nullopt : std::optional<double>(s.f64(c));
}

AgentRow read_agent(const StoreStmt& s) {
    AgentRow a;
    a.name = s.text(0);
    a.token_created = s.i64(1);
    a.revoked = s.i64(2) != 0;
    a.node = s.text(3);
    a.host = s.text(4);
    a.version = s.text(5);
    a.boot_id = s.text(6);
    a.interval = s.i64(7);
    a.interfaces = s.text(8);
    a.iface = s.text(9);
    a.mac = s.text(10);
    a.first_seen = opt_i64(s, 11);
    a.last_seen = opt_i64(s, 12);
    a.agent_time = s.i64(13);
    a.backlog = s.i64(14);
    a.state = s.text(15);
    a.offline_since = opt_i64(s, 16);
    return a;
}

// Resets a kept statement when it goes out of scope, whatever happened.
struct StmtGuard {
    StoreStmt& s;
    ~StmtGuard() { s.reset(); }
};

int64_t mac_key(const std::string& mac) {
    if (mac.empty()) return kIfaceTotal;
    auto m = parse_mac(mac);
    return m ? mac_to_int(*m) : kIfaceTotal;  // parse_report checked the shape
}

// Stores `a` and sets its id; inserted false: an agent's alert (digest set) already stored.
Status insert_alert(StoreDb& db, StoredAlert& a, const std::string& digest, bool& inserted) {
    auto q = db.prepare(
        "INSERT OR IGNORE INTO fleet_alerts(time, agent, origin, kind, key, title, text, node, host, digest) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)");
    if (!q) return q.error();
    q->bind(1, a.time).bind(2, a.agent).bind(3, a.origin).bind(4, a.kind).bind(5, a.key).bind(6, a.title);
    q->bind(7, a.text).bind(8, a.node).bind(9, a.host);
    if (digest.empty())
        q->bind_null(10);
    else
        q->bind(10, digest);
    if (auto st = db.check(q->step(), "store alert"); !st) return st;
    inserted = db.changes() > 0;
    if (!inserted) return Ok{};
    auto id = db.last_insert_id();
    if (!id) return id.error();
    a.id = *id;
    return Ok{};
}

// `r`'s figures added to `into`, which takes its interface, MAC, peak flag and `ts`.
void add_into(UsageRow& into, const UsageRow& r, int64_t ts) {
    into.iface = r.iface;
    into.mac = r.mac;
    into.ts = ts;
    into.peak = r.peak;
    for (int d = 0; d < PF_DIR_COUNT; d++) {
        into.dir[d].bytes += r.dir[d].bytes;
        into.dir[d].packets += r.dir[d].packets;
    }
}

// A day is rolled up an hour after it ended, not before: the agents' reports of its last
// buckets arrive in the minutes after midnight, and each would take it off the clean list
// again. Until then sums read its buckets.
constexpr int64_t kSettleAfter = 3600;

// The usage views of one selection.
class FleetUsage : public UsageSource {
  public:
    FleetUsage(FleetStore& s, FleetStore::Selection sel) : s_(s), sel_(std::move(sel)), qualified_(!sel_.agent) {}

    Result<std::vector<std::string>> interfaces() override { return s_.usage_interfaces(sel_, qualified_); }
    Result<std::vector<UsageRow>> buckets(const Filter& f, int64_t from, int64_t to) override {
        return s_.read_usage(sel_, qualified_, f, from, to, false);
    }
    Result<std::vector<UsageRow>> hours(const Filter& f, const Calendar& cal, int64_t from, int64_t to) override {
        auto rows = buckets(f, from, to);
        if (!rows) return rows.error();
        // Ordered as the agent's store returns them: (hour, iface, mac, peak).
        std::map<std::tuple<int64_t, std::string, int64_t, bool>, UsageRow> acc;
        for (const auto& r : *rows) {
            const int64_t h = cal.hour_start(r.ts);
            add_into(acc[{h, r.iface, r.mac, r.peak}], r, h);
        }
        std::vector<UsageRow> out;
        out.reserve(acc.size());
        for (auto& [k, v] : acc) out.push_back(std::move(v));
        return out;
    }
    Result<std::vector<UsageRow>> totals(const Filter& f, int64_t from, int64_t to) override {
        return s_.read_usage(sel_, qualified_, f, from, to, true);
    }
    std::string describe() const override {
        std::string what = sel_.agent ? "agent " + *sel_.agent : sel_.node ? "node " + *sel_.node : "the fleet";
        return s_.path() + " (" + what + ")";
    }
    std::string no_data_hint() const override {
        return "agents send their 5-minute rows with each report ('peakflow-collector agents' shows who reported)";
    }

  private:
    FleetStore& s_;
    FleetStore::Selection sel_;
    bool qualified_;
};

}  // namespace

bool valid_agent_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

std::string sha256_hex(const std::string& s) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char b : md) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

std::string agent_state(const AgentRow& a, int64_t now, int offline_after) {
    if (!a.last_seen) return "never";
    return now - *a.last_seen > static_cast<int64_t>(offline_after) * a.interval ? "offline" : "online";
}

Result<std::unique_ptr<FleetStore>> FleetStore::open(const std::string& database, bool read_only) {
    std::unique_ptr<FleetStore> st(new FleetStore());
    auto db = StoreDb::open(database, read_only);
    if (!db) return db.error();
    st->db_ = std::move(*db);
    st->path_ = st->db_->where();
    st->target_ = database;
    if (!read_only) {
        if (auto s = st->db_->apply_schema(kSchema); !s) return s.error();
        if (auto s = st->db_->apply_schema(heartbeat_schema()); !s) return s.error();
        return st;
    }
    auto version = st->db_->schema_version("fleet");
    if (!version) return version.error();
    if (!*version) return Error("database " + st->path_ + " is not a collector database (no fleet tables)");
    return st;
}

Result<StoreStmt*> FleetStore::kept(const std::string& sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return &it->second;
    auto s = db_->prepare(sql, true);
    if (!s) return s.error();
    return &stmts_.emplace(sql, std::move(*s)).first->second;
}

Result<std::string> FleetStore::create_token(const std::string& name, int64_t now) {
    if (!valid_agent_name(name)) return Error("agent name '" + name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error("getrandom", "", errno);
        }
        got += static_cast<size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string token = kTokenPrefix;
    for (unsigned char b : raw) {
        token += hex[b >> 4];
        token += hex[b & 15];
    }
    std::lock_guard<std::mutex> l(mu_);
    auto tx = db_->begin();
    if (!tx) return tx.error();
    auto q = db_->prepare("SELECT revoked FROM fleet_agents WHERE name = ?");
    if (!q) return q.error();
    q->bind(1, name);
    int rc = q->step();
    if (rc == SQLITE_ROW && q->i64(0) == 0)
        return Error("agent '" + name + "' already has a token", "", 0,
                     "revoke it first: peakflow-collector token revoke " + name);
    if (auto st = db_->check(rc, "read token"); !st) return st.error();
    // A new token for a revoked name keeps what the agent reported.
    auto up = db_->prepare(
        "INSERT INTO fleet_agents(name, token_hash, token_created, revoked) VALUES (?1, ?2, ?3, 0) "
        "ON CONFLICT(name) DO UPDATE SET token_hash = ?2, token_created = ?3, revoked = 0");
    if (!up) return up.error();
    up->bind(1, name).bind(2, sha256_hex(token)).bind(3, now);
    if (auto st = db_->check(up->step(), "store token"); !st) return st.error();
    if (auto st = tx->commit(); !st) return st.error();
    return token;
}

Status FleetStore::revoke_token(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare("UPDATE fleet_agents SET revoked = 1 WHERE name = ?");
    if (!q) return q.error();
    q->bind(1, name);
    if (auto st = db_->check(q->step(), "revoke token"); !st) return st;
    if (db_->changes() == 0) return Error("no agent named '" + name + "'");
    return Ok{};
}

Result<std::optional<TokenAuth>> FleetStore::authenticate(const std::string& token) {
    const std::string hash = sha256_hex(token);
    std::lock_guard<std::mutex> l(mu_);
    auto p = kept("SELECT name, token_hash, revoked FROM fleet_agents WHERE token_hash = ?");
    if (!p) return p.error();
    StoreStmt& q = **p;
    StmtGuard g{q};
    q.bind(1, hash);
    int rc = q.step();
    if (rc == SQLITE_DONE) return std::optional<TokenAuth>();
    if (rc != SQLITE_ROW) return db_->error(rc, "look up token");
    // The lookup found the row by index; the comparison that decides is constant-time.
    const std::string stored = q.text(1);
    if (stored.size() != hash.size() || CRYPTO_memcmp(stored.data(), hash.data(), hash.size()) != 0)
        return std::optional<TokenAuth>();
    return std::optional<TokenAuth>(TokenAuth{q.text(0), q.i64(2) != 0});
}

// What the interface-total rows of a batch add to the fleet's 5-minute totals: each
// field's growth over what is held (a row's values only grow: write_buckets), under the
// peak flag the row has now (moved from the old one if it changed).
Status FleetStore::add_points(const std::string& agent, const std::vector<WireBucket>& rows) {
    using Figures = std::array<int64_t, 4>;
    std::map<std::pair<int64_t, bool>, Figures> add;
    std::map<std::tuple<int64_t, std::string, bool>, Figures> add_day;  // (day, iface, peak)
    auto day_of = [&](int64_t ts) { return rollup_cal_->day_start(rollup_cal_->local_date(ts)); };
    std::map<std::pair<std::string, int64_t>, std::pair<bool, Figures>> seen;  // earlier rows of the batch
    auto old = kept(
        "SELECT peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM fleet_buckets "
        "WHERE agent = ? AND iface = ? AND ts = ? AND mac = ?");
    if (!old) return old.error();
    for (const auto& b : rows) {
        if (!b.mac.empty()) continue;
        const Figures now{int64_t(b.rx_bytes), int64_t(b.rx_packets), int64_t(b.tx_bytes), int64_t(b.tx_packets)};
        std::optional<std::pair<bool, Figures>> held;
        if (auto it = seen.find({b.iface, b.ts}); it != seen.end()) {
            held = it->second;
        } else {
            StoreStmt& s = **old;
            StmtGuard g{s};
            s.bind(1, agent).bind(2, b.iface).bind(3, b.ts).bind(4, kIfaceTotal);
            const int rc = s.step();
            if (rc == SQLITE_ROW)
                held = std::make_pair(s.i64(0) != 0, Figures{s.i64(1), s.i64(2), s.i64(3), s.i64(4)});
            else if (auto c = db_->check(rc, "read bucket"); !c)
                return c;
        }
        Figures merged = now;
        if (held) {
            for (size_t i = 0; i < 4; i++) merged[i] = std::max(merged[i], held->second[i]);
            Figures& from = add[{b.ts, held->first}];
            for (size_t i = 0; i < 4; i++) from[i] -= held->second[i];
            if (rollup_cal_) {
                Figures& d = add_day[{day_of(b.ts), b.iface, held->first}];
                for (size_t i = 0; i < 4; i++) d[i] -= held->second[i];
            }
        }
        Figures& to = add[{b.ts, b.peak}];
        for (size_t i = 0; i < 4; i++) to[i] += merged[i];
        if (rollup_cal_) {
            Figures& d = add_day[{day_of(b.ts), b.iface, b.peak}];
            for (size_t i = 0; i < 4; i++) d[i] += merged[i];
        }
        seen[{b.iface, b.ts}] = {b.peak, merged};
    }
    auto up = kept(
        "INSERT INTO fleet_points(ts, peak, rx_bytes, rx_packets, tx_bytes, tx_packets) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT(ts, peak) DO UPDATE SET rx_bytes = fleet_points.rx_bytes + excluded.rx_bytes, "
        "rx_packets = fleet_points.rx_packets + excluded.rx_packets, "
        "tx_bytes = fleet_points.tx_bytes + excluded.tx_bytes, tx_packets = fleet_points.tx_packets + "
        "excluded.tx_packets");
    if (!up) return up.error();
    for (const auto& [key, f] : add) {
        if (f == Figures{}) continue;
        StoreStmt& s = **up;
        StmtGuard g{s};
        s.bind(1, key.first).bind(2, key.second ? 1 : 0).bind(3, f[0]).bind(4, f[1]).bind(5, f[2]).bind(6, f[3]);
        if (auto c = db_->check(s.step(), "store the fleet's totals"); !c) return c;
    }
    if (add_day.empty()) return Ok{};
    auto upd = kept(
        "INSERT INTO fleet_iface_days(day, agent, iface, peak, zone, rx_bytes, rx_packets, tx_bytes, tx_packets) "
        "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(day, agent, iface, peak) DO UPDATE SET "
        "rx_bytes = fleet_iface_days.rx_bytes + excluded.rx_bytes, "
        "rx_packets = fleet_iface_days.rx_packets + excluded.rx_packets, "
        "tx_bytes = fleet_iface_days.tx_bytes + excluded.tx_bytes, "
        "tx_packets = fleet_iface_days.tx_packets + excluded.tx_packets");
    if (!upd) return upd.error();
    for (const auto& [key, f] : add_day) {
        if (f == Figures{}) continue;
        StoreStmt& s = **upd;
        StmtGuard g{s};
        s.bind(1, std::get<0>(key)).bind(2, agent).bind(3, std::get<1>(key)).bind(4, std::get<2>(key) ? 1 : 0);
        s.bind(5, rollup_cal_->tz_name()).bind(6, f[0]).bind(7, f[1]).bind(8, f[2]).bind(9, f[3]);
        if (auto c = db_->check(s.step(), "store the day's totals"); !c) return c;
    }
    return Ok{};
}

Result<std::vector<UsageRow>> FleetStore::fleet_points(int64_t from, int64_t to) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(
        "SELECT ts, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM fleet_points WHERE ts >= ? AND ts < ? "
        "ORDER BY ts, peak");
    if (!q) return q.error();
    q->bind(1, from).bind(2, to);
    std::vector<UsageRow> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
        UsageRow r;
        r.mac = kIfaceTotal;
        r.ts = q->i64(0);
        r.peak = q->i64(1) != 0;
        r.dir[PF_DIR_RX] = {static_cast<uint64_t>(q->i64(2)), static_cast<uint64_t>(q->i64(3))};
        r.dir[PF_DIR_TX] = {static_cast<uint64_t>(q->i64(4)), static_cast<uint64_t>(q->i64(5))};
        out.push_back(std::move(r));
    }
    if (auto c = db_->check(rc, "read the fleet's totals"); !c) return c.error();
    return out;
}

Status FleetStore::write_buckets(const std::string& agent, const std::vector<WireBucket>& rows) {
    if (auto st = dirty_days(rows); !st) return st;
    if (auto st = add_points(agent, rows); !st) return st;
    // Many rows per statement: a 20000-row batch is 200 statements, not 20000. A bucket's
    // values at the agent only grow, so the larger of what is held and what arrives wins,
    // field by field: the order in which copies of a row arrive (a live copy, the closed
    // row, a resend) cannot make a value go back.
    constexpr size_t kPer = 100;
    constexpr int kCols = 9;
    for (size_t start = 0; start < rows.size(); start += kPer) {
        const size_t n = std::min(kPer, rows.size() - start);
        std::string sql =
            "INSERT INTO fleet_buckets(agent, iface, mac, ts, peak, rx_bytes, rx_packets, tx_bytes, "
            "tx_packets) VALUES ";
        for (size_t i = 0; i < n; i++) sql += i ? ",(?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?)";
        sql +=
            " ON CONFLICT(agent, iface, ts, mac) DO UPDATE SET peak = excluded.peak, "
            "rx_bytes = GREATEST(fleet_buckets.rx_bytes, excluded.rx_bytes), "
            "rx_packets = GREATEST(fleet_buckets.rx_packets, excluded.rx_packets), "
            "tx_bytes = GREATEST(fleet_buckets.tx_bytes, excluded.tx_bytes), "
            "tx_packets = GREATEST(fleet_buckets.tx_packets, excluded.tx_packets)";
        auto p = kept(sql);
        if (!p) return p.error();
        StoreStmt& s = **p;
        StmtGuard g{s};
        for (size_t i = 0; i < n; i++) {
            const WireBucket& b = rows[start + i];
            const int c = static_cast<int>(i) * kCols + 1;
            s.bind(c, agent).bind(c + 1, b.iface).bind(c + 2, mac_key(b.mac)).bind(c + 3, b.ts);
            s.bind(c + 4, b.peak ? 1 : 0).bind(c + 5, b.rx_bytes).bind(c + 6, b.rx_packets);
            s.bind(c + 7, b.tx_bytes).bind(c + 8, b.tx_packets);
        }
        if (auto st = db_->check(s.step(), "store buckets"); !st) return st;
    }
    return Ok{};
}

Status FleetStore::write_push(const std::string& agent, const std::vector<WirePush>& rows, int64_t now,
                              std::vector<StoredAlert>& notices) {
    auto p = kept(
        "INSERT INTO fleet_push(agent, id, time, node, host, sink, kind, period, bytes, status, attempts, error, "
        "value) "
        "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) ON CONFLICT(agent, id) DO UPDATE SET time = ?3, "
        "node = ?4, host = ?5, sink = ?6, kind = ?7, period = ?8, bytes = ?9, status = ?10, attempts = ?11, "
        "error = ?12, value = ?13");
    if (!p) return p.error();
    StoreStmt& s = **p;
    for (const auto& r : rows) {
        StmtGuard g{s};
        s.bind(1, agent).bind(2, r.id).bind(3, r.time).bind(4, r.node).bind(5, r.host).bind(6, r.sink);
        s.bind(7, r.kind).bind(8, r.period).bind(9, r.bytes).bind(10, r.status).bind(11, r.attempts).bind(12, r.error);
        if (r.value)
            s.bind(13, *r.value);
        else
            s.bind_null(13);
        if (auto st = db_->check(s.step(), "store push history"); !st) return st;
        if (auto st = watch_push_sink(agent, r, now, notices); !st) return st;
    }
    return Ok{};
}

// The agent's outbox sends a sink's oldest message until it is delivered, so every attempt
// counted in a row still `failed` failed in a row, and a `sent` row's attempts before the
// last one did. Rows come in the agent's (time, id) order: a sink's streak shows as
// its failed row with more attempts each time, then that row sent. The state of each
// (agent, sink) is kept, so a row that comes again (a resent batch, a later copy) raises
// nothing twice; a sent row whose earlier attempts reached the threshold before any failed
// copy of it arrived raises the alert and the recovery together.
Status FleetStore::watch_push_sink(const std::string& agent, const WirePush& r, int64_t now,
                                   std::vector<StoredAlert>& notices) {
    if (push_alert_after_ <= 0 || !push_notice_ || (r.status != "failed" && r.status != "sent")) return Ok{};
    auto q = kept("SELECT alerted, alert_row FROM fleet_push_sinks WHERE agent = ? AND sink = ?");
    if (!q) return q.error();
    bool alerted = false;
    std::optional<int64_t> alert_row;
    {
        StoreStmt& s = **q;
        StmtGuard g{s};
        s.bind(1, agent).bind(2, r.sink);
        const int rc = s.step();
        if (rc == SQLITE_ROW) {
            alerted = s.i64(0) != 0;
            alert_row = opt_i64(s, 1);
        } else if (auto c = db_->check(rc, "read push sink state"); !c) {
            return c;
        }
    }
    const int64_t failures = r.status == "failed" ? r.attempts : r.attempts - 1;
    bool raise = false, recover = false;
    if (r.status == "failed") {
        raise = !alerted && failures >= push_alert_after_;
    } else if (alerted) {
        recover = true;
    } else if (failures >= push_alert_after_ && alert_row != r.id) {
        raise = recover = true;
    }
    if (!raise && !recover) return Ok{};
    for (bool raised : {true, false}) {
        if (raised ? !raise : !recover) continue;
        StoredAlert n = push_notice_(agent, r, raised, push_alert_after_, now);
        bool inserted = false;
        if (auto st = insert_alert(*db_, n, "", inserted); !st) return st;
        notices.push_back(std::move(n));
    }
    if (raise) alert_row = r.id;
    auto u = kept(
        "INSERT INTO fleet_push_sinks(agent, sink, alerted, alert_row) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(agent, sink) DO UPDATE SET alerted = ?3, alert_row = ?4");
    if (!u) return u.error();
    StoreStmt& s = **u;
    StmtGuard g{s};
    s.bind(1, agent).bind(2, r.sink).bind(3, recover ? 0 : 1);
    if (alert_row)
        s.bind(4, *alert_row);
    else
        s.bind_null(4);
    return db_->check(s.step(), "store push sink state");
}

void FleetStore::set_push_alerts(int after, PushNoticeFn make) {
    std::lock_guard<std::mutex> l(mu_);
    push_alert_after_ = after;
    push_notice_ = std::move(make);
}

Result<PushPage> FleetStore::push_history(const PushQuery& pq) {
    // Parameters by number: ?1 agent, ?2 node, ?3 host, ?4 status, ?5 from, ?6 to, ?7
    // limit, ?8 offset.
    std::string where = " WHERE TRUE";
    if (pq.agent) where += " AND agent = ?1";
    if (pq.node) where += " AND node = ?2";
    if (pq.host) where += " AND host = ?3";
    if (pq.status) where += " AND status = ?4";
    if (pq.failed_only) where += " AND status = 'failed'";
    if (pq.from) where += " AND time >= ?5";
    if (pq.to) where += " AND time < ?6";
    auto bind = [&](StoreStmt& q) {
        if (pq.agent) q.bind(1, *pq.agent);
        if (pq.node) q.bind(2, *pq.node);
        if (pq.host) q.bind(3, *pq.host);
        if (pq.status) q.bind(4, *pq.status);
        if (pq.from) q.bind(5, *pq.from);
        if (pq.to) q.bind(6, *pq.to);
    };
    const int64_t page = std::max<int64_t>(1, pq.page);
    std::lock_guard<std::mutex> l(mu_);
    PushPage out;
    {
        auto q = db_->prepare("SELECT count(*) FROM fleet_push" + where);
        if (!q) return q.error();
        bind(*q);
        const int rc = q->step();
        if (rc != SQLITE_ROW) return db_->error(rc, "count push history");
        out.total = q->i64(0);
    }
    // A read-only open of a store a collector has not brought to fleet schema 2 yet: no
    // value column, rows without values.
    bool has_value = db_->engine() == SqlEngine::Postgres;
    if (!has_value) {
        auto c = db_->prepare("SELECT 1 FROM pragma_table_info('fleet_push') WHERE name = 'value'");
        if (!c) return c.error();
        has_value = c->step() == SQLITE_ROW;
    }
    std::string sql = std::string("SELECT id, time, node, host, sink, kind, period, bytes, status, attempts, error, ") +
                      (has_value ? "value" : "NULL") + ", agent FROM fleet_push" + where +
                      " ORDER BY time DESC, id DESC, agent";
    if (pq.limit > 0) sql += " LIMIT ?7 OFFSET ?8";
    auto q = db_->prepare(sql);
    if (!q) return q.error();
    bind(*q);
    if (pq.limit > 0) {
        q->bind(7, pq.limit);
        q->bind(8, (page - 1) * pq.limit);
    }
    int rc;
    while ((rc = q->step()) == SQLITE_ROW)
        out.rows.push_back(HistoryRow{q->i64(0), q->i64(1), q->text(2), q->text(3), q->text(4), q->text(5), q->text(6),
                                      q->i64(7), q->text(8), q->i64(9), q->text(10), opt_i64(*q, 11), q->text(12)});
    if (auto c = db_->check(rc, "read push history"); !c) return c.error();
    return out;
}

Status FleetStore::write_host(const std::string& agent, const std::vector<WireHost>& rows) {
    auto sys = kept(
        "INSERT INTO fleet_host(agent, time, load1, cpu, mem_total, mem_used, disk_total, disk_used, temperature) "
        "VALUES (?,?,?,?,?,?,?,?,?)");
    if (!sys) return sys.error();
    auto ep = kept(
        "INSERT INTO fleet_episodes(agent, id, pid, name, user, since, detected, ended, end_reason, peak_cpu, "
        "peak_mem) "
        "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT(agent, id) DO UPDATE SET pid = ?3, name = ?4, "
        "user = ?5, since = ?6, detected = ?7, ended = ?8, end_reason = ?9, peak_cpu = ?10, peak_mem = ?11");
    if (!ep) return ep.error();
    auto opt_int = [](StoreStmt& s, int i, const std::optional<int64_t>& v) {
        if (v)
            s.bind(i, *v);
        else
            s.bind_null(i);
    };
    for (const auto& h : rows) {
        if (h.type == "sys") {
            StoreStmt& s = **sys;
            StmtGuard g{s};
            s.bind(1, agent).bind(2, h.time).bind(3, h.load1).bind(4, h.cpu);
            opt_int(s, 5, h.mem_total);
            s.bind(6, h.mem_used);
            opt_int(s, 7, h.disk_total);
            s.bind(8, h.disk_used).bind(9, h.temperature);
            if (auto st = db_->check(s.step(), "store host sample"); !st) return st;
        } else {
            StoreStmt& s = **ep;
            StmtGuard g{s};
            s.bind(1, agent).bind(2, h.id).bind(3, h.pid).bind(4, h.name).bind(5, h.user).bind(6, h.since);
            s.bind(7, h.detected).bind(8, h.ended).bind(9, h.end_reason).bind(10, h.peak_cpu).bind(11, h.peak_mem);
            if (auto st = db_->check(s.step(), "store episode"); !st) return st;
        }
    }
    return Ok{};
}

// Heartbeats from the agent's checks, as the heartbeat service stores its reports; one that
// arrives more than kHeartbeatLateMs after its check (a backlog after an outage) is marked
// late: listed, never counted as live.
Status FleetStore::write_heartbeats(const std::string& agent, const std::vector<WireHeartbeat>& rows, int64_t now) {
    auto q = kept(
        "INSERT INTO heartbeat_reports(time_ms, ip_address, service_name, reporter, source_addr, late) "
        "VALUES (?1, ?2, ?3, ?4, '', ?5)");
    if (!q) return q.error();
    for (const auto& h : rows) {
        StoreStmt& s = **q;
        StmtGuard g{s};
        const bool late = now * 1000 - h.time_ms > kHeartbeatLateMs;
        s.bind(1, h.time_ms).bind(2, h.ip_address).bind(3, h.service_name).bind(4, "agent " + agent);
        s.bind(5, int64_t(late));
        if (auto st = db_->check(s.step(), "store heartbeat"); !st) return st;
    }
    return Ok{};
}

Status FleetStore::write_flows(const std::string& agent, const std::vector<WireFlowPair>& rows) {
    auto q = kept(
        "INSERT INTO fleet_flows(agent, iface, ts, other, src, dst, proto, port, bytes, packets, flows) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "ON CONFLICT(agent, iface, ts, other, src, dst, proto, port) DO UPDATE SET "
        "bytes = fleet_flows.bytes + excluded.bytes, packets = fleet_flows.packets + excluded.packets, "
        "flows = fleet_flows.flows + excluded.flows");
    if (!q) return q.error();
    for (const auto& f : rows) {
        StoreStmt& s = **q;
        StmtGuard g{s};
        s.bind(1, agent).bind(2, f.iface).bind(3, f.ts).bind(4, int64_t(f.other)).bind(5, f.src).bind(6, f.dst);
        s.bind(7, f.proto).bind(8, f.port).bind(9, f.bytes).bind(10, f.packets).bind(11, f.flows);
        if (auto st = db_->check(s.step(), "store flow pairs"); !st) return st;
    }
    return Ok{};
}

Result<IngestResult> FleetStore::ingest(const std::string& agent, const WireReport& r, int64_t now,
                                        const NoticeFn& recovery) {
    std::lock_guard<std::mutex> l(mu_);
    // Reports of one agent take turns, also over several collectors on one PostgreSQL
    // database: the sequences read below are the ones this transaction moves on.
    auto tx = db_->begin(TxMode::Agent, agent);
    if (!tx) return tx.error();
    IngestResult res;
    res.ack.time = now;
    {
        auto q = db_->prepare("SELECT stream, seq FROM fleet_stream_seq WHERE agent = ? AND spool = ?");
        if (!q) return q.error();
        q->bind(1, agent).bind(2, r.spool);
        int rc;
        while ((rc = q->step()) == SQLITE_ROW)
            if (int64_t* held = res.ack.of(q->text(0))) *held = q->i64(1);
        if (auto st = db_->check(rc, "read sequences"); !st) return st.error();
    }
    WireAck held = res.ack;
    for (const auto& b : r.batches) {
        int64_t* h = held.of(b.stream);
        if (!h) return Error("unknown stream " + b.stream);  // parse_report refuses these
        if (b.seq <= *h) {
            res.duplicates++;
            continue;
        }
        if (b.seq > *h + 1) {
            // Nothing of the report is kept: the transaction rolls back with its guard.
            res.gap =
                "stream " + b.stream + ": sequence gap: holds " + std::to_string(*h) + ", got " + std::to_string(b.seq);
            res.batches = res.records = res.duplicates = 0;
            res.push_notices.clear();
            return res;
        }
        Status st = b.stream == "buckets"     ? write_buckets(agent, b.buckets)
                    : b.stream == "push"      ? write_push(agent, b.push, now, res.push_notices)
                    : b.stream == "heartbeat" ? write_heartbeats(agent, b.heartbeat, now)
                    : b.stream == "flows"     ? write_flows(agent, b.flows)
                                              : write_host(agent, b.host);
        if (!st) return st.error();
        auto q = db_->prepare(
            "INSERT INTO fleet_stream_seq(agent, spool, stream, seq) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT(agent, spool, stream) DO UPDATE SET seq = ?4");
        if (!q) return q.error();
        q->bind(1, agent).bind(2, r.spool).bind(3, b.stream).bind(4, b.seq);
        if (auto c = db_->check(q->step(), "store sequence"); !c) return c.error();
        *h = b.seq;
        res.batches++;
        res.records += b.size();
    }
    // The agent's open buckets: no seq, applied with every accepted report.
    if (auto st = write_buckets(agent, r.live); !st) return st.error();
    std::optional<AgentRow> before;
    {
        auto q = db_->prepare(std::string("SELECT ") + kAgentColumns + " FROM fleet_agents WHERE name = ?");
        if (!q) return q.error();
        q->bind(1, agent);
        int rc = q->step();
        if (rc == SQLITE_ROW)
            before = read_agent(*q);
        else if (auto c = db_->check(rc, "read agent"); !c)
            return c.error();
    }
    if (!before) return Error("agent '" + agent + "' has no token any more");
    nlohmann::json ifs = nlohmann::json::array();
    std::string iface, mac;
    for (const auto& i : r.agent.interfaces) {
        ifs.push_back({{"name", i.name}, {"mac", i.mac}, {"counted", i.counted}});
        if (!i.counted) continue;
        iface += (iface.empty() ? "" : ",") + i.name;
        mac += (mac.empty() ? "" : ",") + i.mac;
    }
    auto q = db_->prepare(
        "UPDATE fleet_agents SET node = ?2, host = ?3, version = ?4, boot_id = ?5, interval = ?6, interfaces = ?7, "
        "iface = ?8, mac = ?9, first_seen = COALESCE(first_seen, ?10), last_seen = ?10, agent_time = ?11, "
        "backlog = ?12, state = 'online', offline_since = NULL WHERE name = ?1");
    if (!q) return q.error();
    q->bind(1, agent).bind(2, r.agent.node).bind(3, r.agent.host).bind(4, r.agent.version).bind(5, r.agent.boot_id);
    q->bind(6, r.agent.interval).bind(7, ifs.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    q->bind(8, iface).bind(9, mac).bind(10, now).bind(11, r.agent.time).bind(12, r.backlog());
    if (auto c = db_->check(q->step(), "update agent"); !c) return c.error();
    if (before->state == "offline" && recovery) {
        StoredAlert n = recovery(*before, now);
        bool inserted = false;
        if (auto st = insert_alert(*db_, n, "", inserted); !st) return st.error();
        res.notice = std::move(n);
    }
    if (auto c = tx->commit(); !c) return c.error();
    res.ack = held;
    res.ack.time = now;
    return res;
}

Result<std::vector<OfflineTransition>> FleetStore::mark_offline(int64_t now, int64_t grace_from, int offline_after,
                                                                const NoticeFn& alert) {
    std::lock_guard<std::mutex> l(mu_);
    // Quick test first, without a write lock: nearly every second nothing changes.
    std::vector<AgentRow> quiet;
    {
        auto q = db_->prepare(std::string("SELECT ") + kAgentColumns +
                              " FROM fleet_agents WHERE state = 'online' AND revoked = 0 AND last_seen IS NOT NULL "
                              "AND ?1 - GREATEST(last_seen, ?2) > ?3 * interval ORDER BY name");
        if (!q) return q.error();
        q->bind(1, now).bind(2, grace_from).bind(3, offline_after);
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) quiet.push_back(read_agent(*q));
        if (auto c = db_->check(rc, "find quiet agents"); !c) return c.error();
    }
    std::vector<OfflineTransition> out;
    if (quiet.empty()) return out;
    auto tx = db_->begin();
    if (!tx) return tx.error();
    for (auto& a : quiet) {
        // Only if it is still quiet: a report may have come in since the look above.
        auto u = db_->prepare(
            "UPDATE fleet_agents SET state = 'offline', offline_since = ?2 WHERE name = ?1 AND state = 'online' "
            "AND last_seen = ?3");
        if (!u) return u.error();
        u->bind(1, a.name).bind(2, now).bind(3, *a.last_seen);
        if (auto c = db_->check(u->step(), "mark agent offline"); !c) return c.error();
        if (db_->changes() == 0) continue;
        OfflineTransition t;
        t.notice = alert(a, now);
        bool inserted = false;
        if (auto st = insert_alert(*db_, t.notice, "", inserted); !st) return st.error();
        t.agent = std::move(a);
        out.push_back(std::move(t));
    }
    if (auto c = tx->commit(); !c) return c.error();
    return out;
}

Result<bool> FleetStore::lead(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    return db_->try_leader(name);
}

Result<bool> FleetStore::add_alert(const StoredAlert& a, const std::string& digest) {
    std::lock_guard<std::mutex> l(mu_);
    bool inserted = false;
    StoredAlert stored = a;
    if (auto st = insert_alert(*db_, stored, digest, inserted); !st) return st.error();
    return inserted;
}

Result<std::vector<WireHost>> FleetStore::host_samples(const std::string& agent, int64_t from, int64_t to) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(
        "SELECT time, load1, cpu, mem_total, mem_used, disk_total, disk_used, temperature FROM fleet_host "
        "WHERE agent = ? AND time >= ? AND time < ? ORDER BY time");
    if (!q) return q.error();
    q->bind(1, agent).bind(2, from).bind(3, to);
    std::vector<WireHost> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
        WireHost h;
        h.type = "sys";
        h.time = q->i64(0);
        h.load1 = opt_f64(*q, 1);
        h.cpu = opt_f64(*q, 2);
        h.mem_total = opt_i64(*q, 3);
        h.mem_used = opt_f64(*q, 4);
        h.disk_total = opt_i64(*q, 5);
        h.disk_used = opt_f64(*q, 6);
        h.temperature = opt_f64(*q, 7);
        out.push_back(std::move(h));
    }
    if (auto c = db_->check(rc, "read host samples"); !c) return c.error();
    return out;
}

Result<std::vector<WireHost>> FleetStore::episodes(const std::string& agent, size_t limit) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(
        "SELECT id, pid, name, user, since, detected, ended, end_reason, peak_cpu, peak_mem FROM fleet_episodes "
        "WHERE agent = ? ORDER BY ended DESC, id DESC LIMIT ?");
    if (!q) return q.error();
    q->bind(1, agent).bind(2, static_cast<int64_t>(limit));
    std::vector<WireHost> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
        WireHost e;
        e.type = "episode";
        e.id = q->i64(0);
        e.pid = q->i64(1);
        e.name = q->text(2);
        e.user = q->text(3);
        e.since = q->i64(4);
        e.detected = q->i64(5);
        e.ended = e.time = q->i64(6);
        e.end_reason = q->text(7);
        e.peak_cpu = opt_f64(*q, 8);
        e.peak_mem = opt_f64(*q, 9);
        out.push_back(std::move(e));
    }
    if (auto c = db_->check(rc, "read episodes"); !c) return c.error();
    return out;
}

Result<std::vector<StoredAlert>> FleetStore::alerts(size_t limit) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(
        "SELECT id, time, agent, origin, kind, key, title, text, node, host FROM fleet_alerts "
        "ORDER BY time DESC, id DESC LIMIT ?");
    if (!q) return q.error();
    q->bind(1, static_cast<int64_t>(limit));
    std::vector<StoredAlert> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
        StoredAlert a;
        a.id = q->i64(0);
        a.time = q->i64(1);
        a.agent = q->text(2);
        a.origin = q->text(3);
        a.kind = q->text(4);
        a.key = q->text(5);
        a.title = q->text(6);
        a.text = q->text(7);
        a.node = q->text(8);
        a.host = q->text(9);
        out.push_back(std::move(a));
    }
    if (auto c = db_->check(rc, "read alerts"); !c) return c.error();
    return out;
}

Result<std::vector<AgentRow>> FleetStore::agents() {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(std::string("SELECT ") + kAgentColumns + " FROM fleet_agents ORDER BY name");
    if (!q) return q.error();
    std::vector<AgentRow> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) out.push_back(read_agent(*q));
    if (auto c = db_->check(rc, "read agents"); !c) return c.error();
    return out;
}

Result<std::optional<AgentRow>> FleetStore::agent(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(std::string("SELECT ") + kAgentColumns + " FROM fleet_agents WHERE name = ?");
    if (!q) return q.error();
    q->bind(1, name);
    int rc = q->step();
    if (rc == SQLITE_ROW) return std::optional<AgentRow>(read_agent(*q));
    if (auto c = db_->check(rc, "read agent"); !c) return c.error();
    return std::optional<AgentRow>();
}

Result<int64_t> FleetStore::count(const std::string& table) {
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare("SELECT count(*) FROM " + table);
    if (!q) return q.error();
    if (q->step() != SQLITE_ROW) return db_->error(SQLITE_ERROR, "count " + table);
    return q->i64(0);
}

std::unique_ptr<UsageSource> FleetStore::usage(const Selection& s) {
    return std::make_unique<FleetUsage>(*this, s);
}

namespace {

// The selection's WHERE terms: ?3 agent, ?4 node; ?5/?6 the interface filter (agent and
// interface of "agent/iface" when qualified); ?7 the MAC.
std::string selection_sql(const FleetStore::Selection& s, bool qualified, const Filter& f) {
    std::string w;
    if (s.agent) w += " AND b.agent = ?3";
    if (s.node) w += " AND b.agent IN (SELECT name FROM fleet_agents WHERE node = ?4)";
    if (f.iface) w += qualified ? " AND b.agent = ?5 AND b.iface = ?6" : " AND b.iface = ?6";
    if (f.mac) w += " AND b.mac = ?7";
    return w;
}

void bind_selection(StoreStmt& q, const FleetStore::Selection& s, bool qualified, const Filter& f) {
    if (s.agent) q.bind(3, *s.agent);
    if (s.node) q.bind(4, *s.node);
    if (f.iface) {
        if (qualified) {
            const auto slash = f.iface->find('/');
            q.bind(5, f.iface->substr(0, slash));
            q.bind(6, slash == std::string::npos ? std::string() : f.iface->substr(slash + 1));
        } else {
            q.bind(6, *f.iface);
        }
    }
    if (f.mac) q.bind(7, *f.mac);
}

}  // namespace

// The local days a batch of rows wrote into are no longer rolled up. Every such write takes
// the table's lock (PostgreSQL: ROW EXCLUSIVE, also when no row goes), so it waits for a
// settle_day() under way and a settle_day() waits for it (LOCK ... EXCLUSIVE): a day is
// never marked clean with a write it did not see.
Status FleetStore::dirty_days(const std::vector<WireBucket>& rows) {
    if (!rollup_cal_ || rows.empty()) return Ok{};
    std::vector<int64_t> days;
    for (const auto& b : rows) {
        const int64_t d = rollup_cal_->day_start(rollup_cal_->local_date(b.ts));
        if (std::find(days.begin(), days.end(), d) == days.end()) days.push_back(d);
    }
    auto p = kept("DELETE FROM fleet_days_clean WHERE day = ?");
    if (!p) return p.error();
    for (int64_t d : days) {
        StoreStmt& s = **p;
        StmtGuard g{s};
        s.bind(1, d);
        if (auto st = db_->check(s.step(), "mark day for roll-up"); !st) return st;
    }
    return Ok{};
}

Status FleetStore::use_day_rollups(const Calendar& cal, std::function<int64_t()> clock) {
    std::lock_guard<std::mutex> l(mu_);
    rollup_cal_ = cal;
    rollup_clock_ = std::move(clock);
    // fleet_iface_days in this zone, made from the buckets if its rows are of another zone
    // (or there are none yet while buckets are there: a store from before it). The table's
    // lock makes reports under way finish first and those that come wait: each adds to
    // what was made from the buckets it could see.
    auto tx = db_->begin();
    if (!tx) return tx.error();
    if (auto st = db_->lock_exclusive("fleet_iface_days"); !st) return st;
    int64_t other = 0, mine = 0, lo = 0, hi = -1;
    {
        auto q = db_->prepare(
            "SELECT (SELECT count(*) FROM fleet_iface_days WHERE zone <> ?1), "
            "(SELECT count(*) FROM fleet_iface_days WHERE zone = ?1), "
            "(SELECT min(ts) FROM fleet_buckets WHERE mac = -1), (SELECT max(ts) FROM fleet_buckets WHERE mac = -1)");
        if (!q) return q.error();
        q->bind(1, cal.tz_name());
        if (const int rc = q->step(); rc != SQLITE_ROW) return db_->error(rc, "read day totals");
        other = q->i64(0);
        mine = q->i64(1);
        if (!q->is_null(2)) {
            lo = q->i64(2);
            hi = q->i64(3);
        }
    }
    if (other == 0 && (mine > 0 || hi < lo)) return tx->commit();
    spdlog::info("database {}: making each interface's day totals in {} from the 5-minute rows", path_, cal.tz_name());
    if (auto st = db_->exec("DELETE FROM fleet_iface_days"); !st) return st;
    auto ins = db_->prepare(
        "INSERT INTO fleet_iface_days(day, agent, iface, peak, zone, rx_bytes, rx_packets, tx_bytes, tx_packets) "
        "SELECT ?1, agent, iface, peak, ?3, SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) "
        "FROM fleet_buckets WHERE mac = -1 AND ts >= ?1 AND ts < ?2 GROUP BY agent, iface, peak");
    if (!ins) return ins.error();
    for (LocalDate d = cal.local_date(lo); cal.day_start(d) <= hi; d = Calendar::next_day(d)) {
        StmtGuard g{*ins};
        ins->bind(1, cal.day_start(d)).bind(2, cal.day_end(d)).bind(3, cal.tz_name());
        if (auto st = db_->check(ins->step(), "make day totals"); !st) return st;
    }
    return tx->commit();
}

// Day `day` (a local day start) of every agent summed from its buckets into fleet_days and
// marked clean, unless it already is (another collector on the database did it).
Status FleetStore::settle_day(int64_t day, int64_t day_end) {
    auto tx = db_->begin();
    if (!tx) return tx.error();
    if (auto st = db_->lock_exclusive("fleet_days_clean"); !st) return st;
    {
        auto q = db_->prepare("SELECT count(*) FROM fleet_days_clean WHERE day = ? AND zone = ?");
        if (!q) return q.error();
        q->bind(1, day).bind(2, rollup_cal_->tz_name());
        if (const int rc = q->step(); rc != SQLITE_ROW) return db_->error(rc, "read roll-up state");
        if (q->i64(0) > 0) return Ok{};
    }
    const char* steps[] = {
        "DELETE FROM fleet_days WHERE day = ?1",
        "INSERT INTO fleet_days(agent, iface, mac, day, peak, rx_bytes, rx_packets, tx_bytes, tx_packets) "
        "SELECT agent, iface, mac, ?1, peak, SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) "
        "FROM fleet_buckets WHERE ts >= ?1 AND ts < ?2 GROUP BY agent, iface, mac, peak",
        "INSERT INTO fleet_days_clean(day, zone) VALUES (?1, ?3) "
        "ON CONFLICT(day) DO UPDATE SET zone = excluded.zone"};
    for (const char* sql : steps) {
        auto q = db_->prepare(sql);
        if (!q) return q.error();
        q->bind(1, day).bind(2, day_end).bind(3, rollup_cal_->tz_name());
        if (auto st = db_->check(q->step(), "roll up a day"); !st) return st;
    }
    return tx->commit();
}

Result<int> FleetStore::settle_days(int64_t from, int64_t to) {
    std::lock_guard<std::mutex> l(mu_);
    return settle_locked(from, to);
}

// The whole local days of [from, to) that ended before now, rolled up where they are not.
Result<int> FleetStore::settle_locked(int64_t from, int64_t to) {
    if (!rollup_cal_) return 0;
    const int64_t now = rollup_clock_();
    std::vector<std::pair<int64_t, int64_t>> days;
    for (LocalDate d = rollup_cal_->local_date(from);; d = Calendar::next_day(d)) {
        const int64_t start = rollup_cal_->day_start(d), end = rollup_cal_->day_end(d);
        if (end > to || end + kSettleAfter > now) break;
        if (start >= from) days.emplace_back(start, end);
    }
    if (days.empty()) return 0;
    std::vector<int64_t> clean;
    {
        auto q = db_->prepare("SELECT day FROM fleet_days_clean WHERE day >= ? AND day < ? AND zone = ?");
        if (!q) return q.error();
        q->bind(1, days.front().first).bind(2, days.back().second).bind(3, rollup_cal_->tz_name());
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) clean.push_back(q->i64(0));
        if (auto c = db_->check(rc, "read roll-up state"); !c) return c.error();
    }
    int settled = 0;
    for (const auto& [start, end] : days) {
        if (std::find(clean.begin(), clean.end(), start) != clean.end()) continue;
        if (auto st = settle_day(start, end); !st) return st.error();
        settled++;
    }
    return settled;
}

Result<std::vector<UsageRow>> FleetStore::read_usage(const Selection& s, bool qualified, const Filter& f, int64_t from,
                                                     int64_t to, bool sums) {
    // Interface totals over whole days, today's too, from fleet_iface_days; other sums over
    // whole days that ended from the day roll-ups; the edges from the buckets.
    if (sums && rollup_cal_) {
        std::lock_guard<std::mutex> l(mu_);
        const bool iface_days = f.mac == kIfaceTotal;
        if (!iface_days)
            if (auto n = settle_locked(from, to); !n) return n.error();
        int64_t first = -1, last = -1;  // the whole days: [first, last)
        for (LocalDate d = rollup_cal_->local_date(from);; d = Calendar::next_day(d)) {
            const int64_t start = rollup_cal_->day_start(d), end = rollup_cal_->day_end(d);
            if (end > to || (!iface_days && end + kSettleAfter > rollup_clock_())) break;
            if (start < from) continue;
            if (first < 0) first = start;
            last = end;
        }
        if (first >= 0) {
            std::map<std::tuple<std::string, int64_t, bool>, UsageRow> acc;
            for (auto [table, a, b] : {std::tuple<const char*, int64_t, int64_t>{
                                           iface_days ? "fleet_iface_days" : "fleet_days", first, last},
                                       {"fleet_buckets", from, first},
                                       {"fleet_buckets", last, to}}) {
                if (a >= b) continue;
                auto rows = read_sums(table, s, qualified, f, a, b);
                if (!rows) return rows.error();
                for (const auto& r : *rows) add_into(acc[{r.iface, r.mac, r.peak}], r, 0);
            }
            std::vector<UsageRow> out;
            out.reserve(acc.size());
            for (auto& [k, v] : acc) out.push_back(std::move(v));
            return out;
        }
    }
    if (sums) {
        std::lock_guard<std::mutex> l(mu_);
        return read_sums("fleet_buckets", s, qualified, f, from, to);
    }
    std::lock_guard<std::mutex> l(mu_);
    return read_rows("fleet_buckets", "ts", s, qualified, f, from, to, false);
}

// Sums per (interface, MAC, peak) of `table` (fleet_buckets by ts, fleet_days by day).
Result<std::vector<UsageRow>> FleetStore::read_sums(const char* table, const Selection& s, bool qualified,
                                                    const Filter& f, int64_t from, int64_t to) {
    return read_rows(table, std::string(table) == "fleet_buckets" ? "ts" : "day", s, qualified, f, from, to, true);
}

Result<std::vector<UsageRow>> FleetStore::read_rows(const char* table, const char* time, const Selection& s,
                                                    bool qualified, const Filter& f, int64_t from, int64_t to,
                                                    bool sums) {
    const std::string name = qualified ? "b.agent || '/' || b.iface" : "b.iface";
    const std::string t = std::string("b.") + time;
    std::string sql =
        sums ? "SELECT " + name +
                   " AS n, b.mac, 0, b.peak, SUM(b.rx_bytes), SUM(b.rx_packets), SUM(b.tx_bytes), SUM(b.tx_packets)"
             : "SELECT " + name + " AS n, b.mac, " + t + ", b.peak, b.rx_bytes, b.rx_packets, b.tx_bytes, b.tx_packets";
    sql +=
        std::string(" FROM ") + table + " b WHERE " + t + " >= ?1 AND " + t + " < ?2" + selection_sql(s, qualified, f);
    sql += sums ? " GROUP BY n, b.mac, b.peak ORDER BY n, b.mac, b.peak" : " ORDER BY " + t + ", n, b.mac";
    auto q = db_->prepare(sql);
    if (!q) return q.error();
    q->bind(1, from).bind(2, to);
    bind_selection(*q, s, qualified, f);
    std::vector<UsageRow> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
        UsageRow r;
        r.iface = q->text(0);
        r.mac = q->i64(1);
        r.ts = q->i64(2);
        r.peak = q->i64(3) != 0;
        r.dir[PF_DIR_RX] = {static_cast<uint64_t>(q->i64(4)), static_cast<uint64_t>(q->i64(5))};
        r.dir[PF_DIR_TX] = {static_cast<uint64_t>(q->i64(6)), static_cast<uint64_t>(q->i64(7))};
        out.push_back(std::move(r));
    }
    if (auto c = db_->check(rc, "read usage"); !c) return c.error();
    return out;
}

Result<std::vector<std::string>> FleetStore::usage_interfaces(const Selection& s, bool qualified) {
    const std::string name = qualified ? "b.agent || '/' || b.iface" : "b.iface";
    std::string sql =
        "SELECT DISTINCT " + name + " AS n FROM fleet_buckets b WHERE TRUE" + selection_sql(s, qualified, {});
    sql += " ORDER BY n";
    std::lock_guard<std::mutex> l(mu_);
    auto q = db_->prepare(sql);
    if (!q) return q.error();
    bind_selection(*q, s, qualified, {});
    std::vector<std::string> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) out.push_back(q->text(0));
    if (auto c = db_->check(rc, "list interfaces"); !c) return c.error();
    return out;
}

}  // namespace pf
