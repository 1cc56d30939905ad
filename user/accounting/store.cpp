#include "peakflow/accounting/store.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string_view>

namespace fs = std::filesystem;

namespace pf {
namespace {

// The store's tables, in order; each part takes them from the version before to its own.
constexpr SchemaPart kSchema[] = {
    {"store", 1, R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE iface(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- Which kernel maps the snapshots in bucket5m belong to.
CREATE TABLE generation(iface_id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL, map_id INTEGER NOT NULL);
CREATE TABLE bucket5m(
  iface_id INTEGER NOT NULL, ts INTEGER NOT NULL, mac INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  snap_rx_bytes INTEGER NOT NULL, snap_rx_packets INTEGER NOT NULL,
  snap_tx_bytes INTEGER NOT NULL, snap_tx_packets INTEGER NOT NULL,
  PRIMARY KEY(iface_id, ts, mac)) WITHOUT ROWID;
-- The bucket holding each key's latest snapshot (retention never deletes it).
CREATE TABLE key_last(iface_id INTEGER NOT NULL, mac INTEGER NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY(iface_id, mac)) WITHOUT ROWID;
CREATE TABLE hourly(iface_id INTEGER NOT NULL, ts INTEGER NOT NULL, mac INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(iface_id, ts, mac, peak)) WITHOUT ROWID;
CREATE TABLE daily(iface_id INTEGER NOT NULL, day TEXT NOT NULL, mac INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(iface_id, day, mac, peak)) WITHOUT ROWID;
CREATE TABLE monthly(iface_id INTEGER NOT NULL, month TEXT NOT NULL, mac INTEGER NOT NULL, peak INTEGER NOT NULL,
  rx_bytes INTEGER NOT NULL, rx_packets INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, tx_packets INTEGER NOT NULL,
  PRIMARY KEY(iface_id, month, mac, peak)) WITHOUT ROWID;
-- Periods rolled up: kind 'day' or 'month', period 'YYYY-MM-DD' / 'YYYY-MM', [start, end) UTC.
CREATE TABLE finalized(kind TEXT NOT NULL, period TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
  tz TEXT NOT NULL, PRIMARY KEY(kind, period)) WITHOUT ROWID;
CREATE INDEX finalized_start ON finalized(kind, start);
)sql"},
    // The fleet uplink (fleet/uplink.cpp) sends buckets before meta 'uplink.sealed_until'
    // once; a drain that writes into one of them lists the row here, in the same
    // transaction, so it is sent again with its new totals. Its own component, so that a
    // reader of the store's tables is not refused by a database that has it.
    {"uplink_resend", 1, R"sql(
CREATE TABLE IF NOT EXISTS uplink_resend(iface_id INTEGER NOT NULL, ts INTEGER NOT NULL, mac INTEGER NOT NULL,
  PRIMARY KEY(iface_id, ts, mac)) WITHOUT ROWID;
)sql"},
    // Days imported from another tool's history (`peakflow-bpf import`): their daily rows
    // are ordinary finalized rows; this table marks them, so a re-import adds nothing.
    {"imported", 1, R"sql(
CREATE TABLE IF NOT EXISTS imported(iface_id INTEGER NOT NULL, day TEXT NOT NULL, source TEXT NOT NULL,
  imported_at INTEGER NOT NULL, PRIMARY KEY(iface_id, day)) WITHOUT ROWID;
)sql"},
};

constexpr int store_schema_version() {
    int v = 0;
    for (const auto& p : kSchema)
        if (std::string_view(p.name) == "store") v = p.version;
    return v;
}
static_assert(store_schema_version() == kSchemaVersion);

constexpr int kBusyTimeoutMs = 5000;

// The end of the last finalized day (0 when none).
constexpr const char* kFinalizedUntil = "SELECT COALESCE(MAX(end), 0) FROM finalized WHERE kind = 'day'";

// iface first: the bucket key starts with iface_id, so each day is an index range, not a
// scan of every bucket kept.
constexpr const char* kDailyRollup =
    "INSERT OR REPLACE INTO daily SELECT b.iface_id, ?3, b.mac, b.peak, SUM(b.rx_bytes), SUM(b.rx_packets), "
    "SUM(b.tx_bytes), SUM(b.tx_packets) FROM iface i CROSS JOIN bucket5m b ON b.iface_id = i.id "
    "WHERE b.ts >= ?1 AND b.ts < ?2 GROUP BY b.iface_id, b.mac, b.peak";
constexpr const char* kHourlyRollup =
    "INSERT OR REPLACE INTO hourly SELECT b.iface_id, h.hour, b.mac, b.peak, SUM(b.rx_bytes), "
    "SUM(b.rx_packets), SUM(b.tx_bytes), SUM(b.tx_packets) FROM iface i CROSS JOIN bucket5m b ON b.iface_id = i.id "
    "JOIN temp.hourmap h ON h.ts = b.ts "
    "WHERE b.ts >= ?1 AND b.ts < ?2 GROUP BY b.iface_id, h.hour, b.mac, b.peak";

Counter add(Counter a, Counter b) {
    return Counter{a.bytes + b.bytes, a.packets + b.packets};
}

int64_t i64(uint64_t v) {
    return static_cast<int64_t>(v);
}
uint64_t u64(sqlite3_int64 v) {
    return static_cast<uint64_t>(v);
}

// Fills the four counter columns starting at column `col`.
void read_counters(const SqlStmt& s, int col, Counter (&dir)[PF_DIR_COUNT]) {
    dir[PF_DIR_RX] = {u64(s.i64(col)), u64(s.i64(col + 1))};
    dir[PF_DIR_TX] = {u64(s.i64(col + 2)), u64(s.i64(col + 3))};
}

// Resets a kept statement when it goes out of scope, whatever happened.
struct StmtGuard {
    SqlStmt& s;
    ~StmtGuard() { s.reset(); }
};

}  // namespace

std::string read_boot_id(const std::string& procfs) {
    std::ifstream in(procfs + "/sys/kernel/random/boot_id");
    std::string id;
    in >> id;
    return id;
}

void merge_drain_rows(DrainRows& a, const DrainRows& b) {
    a.map_id = b.map_id;
    a.boot_id = b.boot_id;
    a.new_generation = a.new_generation || b.new_generation;
    // Indexed: while the disk is failing, rows pile up drain after drain.
    std::map<std::pair<int64_t, int64_t>, size_t> index;
    for (size_t i = 0; i < a.rows.size(); i++) index[{a.rows[i].ts, a.rows[i].mac}] = i;
    for (const auto& r : b.rows) {
        auto [it, inserted] = index.try_emplace({r.ts, r.mac}, a.rows.size());
        if (inserted) {
            a.rows.push_back(r);
            continue;
        }
        BucketUpdate& x = a.rows[it->second];
        for (int d = 0; d < PF_DIR_COUNT; d++) {
            x.delta[d] = add(x.delta[d], r.delta[d]);
            x.snap[d] = r.snap[d];
        }
    }
}

DroppedRows bound_pending_rows(std::vector<DrainRows>& pending, size_t cap) {
    DroppedRows out;
    size_t total = 0;
    for (const auto& p : pending) total += p.rows.size();
    if (total <= cap) return out;
    struct Ref {
        bool is_total;
        int64_t ts;
        size_t drain, row;
    };
    std::vector<Ref> refs;
    refs.reserve(total);
    for (size_t d = 0; d < pending.size(); d++)
        for (size_t r = 0; r < pending[d].rows.size(); r++)
            refs.push_back({pending[d].rows[r].mac == kIfaceTotal, pending[d].rows[r].ts, d, r});
    const size_t over = total - cap;
    std::partial_sort(refs.begin(), refs.begin() + static_cast<std::ptrdiff_t>(over), refs.end(),
                      [](const Ref& a, const Ref& b) {
                          if (a.is_total != b.is_total) return !a.is_total;
                          if (a.ts != b.ts) return a.ts < b.ts;
                          return std::tie(a.drain, a.row) < std::tie(b.drain, b.row);
                      });
    std::vector<std::vector<bool>> drop(pending.size());
    for (size_t d = 0; d < pending.size(); d++) drop[d].assign(pending[d].rows.size(), false);
    for (size_t i = 0; i < over; i++) {
        const BucketUpdate& u = pending[refs[i].drain].rows[refs[i].row];
        drop[refs[i].drain][refs[i].row] = true;
        out.rows++;
        for (int dir = 0; dir < PF_DIR_COUNT; dir++) out.bytes += u.delta[dir].bytes;
    }
    for (size_t d = 0; d < pending.size(); d++) {
        std::vector<BucketUpdate> kept;
        kept.reserve(pending[d].rows.size());
        for (size_t r = 0; r < pending[d].rows.size(); r++)
            if (!drop[d][r]) kept.push_back(pending[d].rows[r]);
        pending[d].rows = std::move(kept);
    }
    return out;
}

Status Store::start_background_checkpoints(std::chrono::milliseconds every) {
    if (checkpointer_.joinable()) return Ok{};
    SqliteOptions o;
    o.mode = SqliteMode::ReadWrite;
    o.busy_timeout_ms = 100;
    o.open_context = "open a checkpoint connection to " + path_;
    o.error_context = "read " + path_ + " from the checkpoint connection";
    auto cdb = SqliteDb::open(path_, o);
    if (!cdb) return cdb.error();
    // A connection learns the database is in WAL mode on its first read; until then a
    // checkpoint on it silently does nothing.
    if (auto s = cdb->exec("SELECT COUNT(*) FROM sqlite_master"); !s) return s;
    // The writer no longer checkpoints on its own.
    if (auto s = exec("PRAGMA wal_autocheckpoint=0"); !s) return s;
    // The thread owns the connection: it closes when the thread is done.
    checkpointer_ = std::thread([this, db = std::move(*cdb), every] {
        std::unique_lock lock(checkpoint_mu_);
        while (!checkpoint_cv_.wait_for(lock, every, [this] { return stopping_; })) {
            lock.unlock();
            int log = 0, done = 0;
            // PASSIVE: copies what it can without blocking the writer or readers.
            int rc = sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                spdlog::warn("WAL checkpoint of {}: {}", path_, sqlite3_errmsg(db.get()));
            lock.lock();
        }
    });
    return Ok{};
}

Store::~Store() {
    if (checkpointer_.joinable()) {
        {
            std::lock_guard lock(checkpoint_mu_);
            stopping_ = true;
        }
        checkpoint_cv_.notify_all();
        checkpointer_.join();
    }
}

Status Store::check(int rc, const char* what) {
    return db_.check(rc, what);
}

Status Store::exec(const char* sql) {
    return db_.exec(sql);
}

Result<SqlStmt*> Store::prepare(const std::string& sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return &it->second;
    auto s = db_.prepare(sql, true);
    if (!s) return s.error();
    return &stmts_.emplace(sql, std::move(*s)).first->second;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, bool read_only) {
    std::unique_ptr<Store> st(new Store());
    st->path_ = path;
    st->read_only_ = read_only;
    if (read_only && !fs::exists(path))
        return Error("no history yet: " + path + " does not exist", "", 0,
                     "the daemon ('peakflow-bpf attach') creates it with its first drain");
    if (!read_only) {
        std::error_code ec;
        fs::path dir = fs::path(path).parent_path();
        if (!dir.empty()) fs::create_directories(dir, ec);
        if (ec) return Error("create database directory", dir.string(), ec.value());
    }
    SqliteOptions o;
    o.mode = read_only ? SqliteMode::ReadOnly : SqliteMode::Create;
    o.busy_timeout_ms = kBusyTimeoutMs;
    o.require_writable = !read_only;
    // WAL: reports read while the daemon writes. NORMAL is durable across process
    // crashes; an OS crash may lose the last drains, never corrupt the file.
    o.wal = !read_only;
    o.synchronous = read_only ? SqliteSync::Default : SqliteSync::Normal;
    auto db = SqliteDb::open(path, o);
    if (!db) return db.error();
    st->db_ = std::move(*db);
    if (!read_only) {
        if (auto s = apply_schema(st->db_, kSchema); !s) return s.error();
        return st;
    }
    auto version = read_schema_version(st->db_, "store");
    if (!version) return version.error();
    // A meta table without the row reads as a corrupt file, as it always has.
    if (!*version) return st->db_.error(SQLITE_CORRUPT, "read schema version");
    if (**version != kSchemaVersion)
        return Error("database " + path + " has schema " + std::to_string(**version) + ", this build reads " +
                     std::to_string(kSchemaVersion));
    return st;
}

Result<int64_t> Store::iface_id(const std::string& name, bool create) {
    if (auto it = iface_ids_.find(name); it != iface_ids_.end()) return it->second;
    {
        auto p = prepare("SELECT id FROM iface WHERE name = ?");
        if (!p) return p.error();
        SqlStmt& q = **p;
        StmtGuard g{q};
        int rc = q.bind(1, name).step();
        if (rc == SQLITE_ROW) return iface_ids_[name] = q.i64(0);
        if (rc != SQLITE_DONE) return check(rc, "look up interface").error();
    }
    if (!create) return int64_t{-1};
    auto p = prepare("INSERT INTO iface(name) VALUES(?)");
    if (!p) return p.error();
    SqlStmt& ins = **p;
    StmtGuard g{ins};
    if (auto c = check(ins.bind(1, name).step(), "add interface"); !c) return c.error();
    return iface_ids_[name] = db_.last_insert_rowid();
}

Status Store::upsert_rows(const char* what, const char* head, int columns, size_t rows, const char* tail,
                          const std::function<void(SqlStmt&, int, size_t)>& bind) {
    constexpr size_t kBatch = 64;
    for (size_t start = 0; start < rows; start += kBatch) {
        size_t n = std::min(kBatch, rows - start);
        std::string tuple = "(?";
        for (int c = 1; c < columns; c++) tuple += ",?";
        tuple += ")";
        std::string sql = head;
        for (size_t i = 0; i < n; i++) sql += (i ? "," : "") + tuple;
        sql += tail;
        auto p = prepare(sql);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        for (size_t i = 0; i < n; i++) bind(s, static_cast<int>(i) * columns + 1, start + i);
        if (auto c = check(s.step(), what); !c) return c;
    }
    return Ok{};
}

// ---- commit_drain ------------------------------------------------------------------------

Status Store::commit_drain(const std::vector<DrainRows>& drains) {
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    auto saved_last = last_ts_;
    auto saved_ids = iface_ids_;
    auto bounds = read_rollup_bounds();
    Status st = bounds ? Status(Ok{}) : Status(bounds.error());
    std::set<int64_t> late_ts;
    for (size_t i = 0; st && i < drains.size(); i++) st = write_drain(drains[i], *bounds, late_ts);
    if (st && !late_ts.empty()) st = reopen_rollups_from(*late_ts.begin());
    if (st) st = record_uplink_resends(drains);
    if (st) st = tx->commit();
    if (!st) {
        tx->rollback();
        last_ts_ = std::move(saved_last);  // nothing was written: forget what we thought was
        iface_ids_ = std::move(saved_ids);
    }
    return st;
}

// Rows written into buckets the fleet uplink has already sealed (read and maybe sent) go
// to uplink_resend, so their new totals reach the collector. Without an uplink there is
// no 'uplink.sealed_until' and this costs one key lookup; with one, drains normally
// write only the open bucket, which is never sealed.
Status Store::record_uplink_resends(const std::vector<DrainRows>& drains) {
    int64_t sealed_until = 0;
    {
        auto p = prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'uplink.sealed_until'");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        int rc = s.step();
        if (rc == SQLITE_ROW)
            sealed_until = s.i64(0);
        else if (rc != SQLITE_DONE)
            return check(rc, "read uplink.sealed_until");
    }
    if (sealed_until <= 0) return Ok{};
    std::vector<const BucketUpdate*> sealed;
    for (const auto& d : drains) {
        sealed.clear();
        for (const auto& r : d.rows)
            if (r.ts < sealed_until) sealed.push_back(&r);
        if (sealed.empty()) continue;
        auto id = iface_id(d.iface, true);
        if (!id) return id.error();
        if (auto st = upsert_rows("record uplink resend", "INSERT INTO uplink_resend(iface_id, ts, mac) VALUES ", 3,
                                  sealed.size(), " ON CONFLICT DO NOTHING",
                                  [&](SqlStmt& s, int p, size_t i) {
                                      s.bind(p, *id).bind(p + 1, sealed[i]->ts).bind(p + 2, sealed[i]->mac);
                                  });
            !st)
            return st;
    }
    return Ok{};
}

Result<Store::RollupBounds> Store::read_rollup_bounds() {
    RollupBounds b;
    {
        auto p = prepare(kFinalizedUntil);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (s.step() == SQLITE_ROW) b.finalized_until = s.i64(0);
    }
    // Days that started before this have lost buckets to retention: they cannot be rolled
    // up again, so a late row for one of them is added to its roll-ups instead of
    // reopening it (and a late row before every finalized day reopens nothing).
    auto p = prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'buckets_complete_from'");
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    if (s.step() == SQLITE_ROW) b.buckets_from = s.i64(0);
    return b;
}

// One interface's part of the drain: which maps it counts, its buckets with their
// snapshots, the key registry, and what its late rows do to the roll-ups.
Status Store::write_drain(const DrainRows& d, const RollupBounds& bounds, std::set<int64_t>& late_ts) {
    auto id = iface_id(d.iface, true);
    if (!id) return id.error();
    if (auto s = write_generation(*id, d); !s) return s;
    if (d.new_generation) {
        if (auto s = forget_snapshots(*id); !s) return s;
    }
    if (auto s = write_buckets(*id, d.rows); !s) return s;
    if (auto s = write_key_registry(*id, d.rows); !s) return s;
    return handle_late_rows(*id, d.rows, bounds, late_ts);
}

Status Store::write_generation(int64_t iface, const DrainRows& d) {
    auto p = prepare(
        "INSERT INTO generation(iface_id, boot_id, map_id) VALUES(?, ?, ?) "
        "ON CONFLICT(iface_id) DO UPDATE SET boot_id = excluded.boot_id, map_id = excluded.map_id");
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    s.bind(1, iface).bind(2, d.boot_id).bind(3, d.map_id);
    return check(s.step(), "write generation");
}

// The maps were re-created: the interface's snapshots must not be resumed.
Status Store::forget_snapshots(int64_t iface) {
    {
        auto p = prepare("DELETE FROM key_last WHERE iface_id = ?");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (auto c = check(s.bind(1, iface).step(), "reset snapshots"); !c) return c;
    }
    for (auto it = last_ts_.begin(); it != last_ts_.end();)
        it = it->first.first == iface ? last_ts_.erase(it) : std::next(it);
    return Ok{};
}

Status Store::write_buckets(int64_t iface, const std::vector<BucketUpdate>& rows) {
    // Many rows per statement: per-statement overhead, not the B-tree, dominates.
    return upsert_rows("write bucket", "INSERT INTO bucket5m VALUES ", 12, rows.size(),
                       " ON CONFLICT(iface_id, ts, mac) DO UPDATE SET "
                       "rx_bytes = rx_bytes + excluded.rx_bytes, rx_packets = rx_packets + excluded.rx_packets, "
                       "tx_bytes = tx_bytes + excluded.tx_bytes, tx_packets = tx_packets + excluded.tx_packets, "
                       "snap_rx_bytes = excluded.snap_rx_bytes, snap_rx_packets = excluded.snap_rx_packets, "
                       "snap_tx_bytes = excluded.snap_tx_bytes, snap_tx_packets = excluded.snap_tx_packets",
                       [&](SqlStmt& s, int p, size_t i) {
                           const BucketUpdate& r = rows[i];
                           const int64_t v[] = {iface,
                                                r.ts,
                                                r.mac,
                                                r.peak ? 1 : 0,
                                                i64(r.delta[PF_DIR_RX].bytes),
                                                i64(r.delta[PF_DIR_RX].packets),
                                                i64(r.delta[PF_DIR_TX].bytes),
                                                i64(r.delta[PF_DIR_TX].packets),
                                                i64(r.snap[PF_DIR_RX].bytes),
                                                i64(r.snap[PF_DIR_RX].packets),
                                                i64(r.snap[PF_DIR_TX].bytes),
                                                i64(r.snap[PF_DIR_TX].packets)};
                           for (int c = 0; c < 12; c++) s.bind(p + c, v[c]);
                       });
}

Status Store::write_key_registry(int64_t iface, const std::vector<BucketUpdate>& rows) {
    // The key registry changes once per key and bucket, not on every drain.
    std::vector<const BucketUpdate*> moved;
    for (const auto& r : rows) {
        auto& last = last_ts_[{iface, r.mac}];
        if (last != r.ts) {
            moved.push_back(&r);
            last = r.ts;
        }
    }
    return upsert_rows("write key", "INSERT INTO key_last(iface_id, mac, ts) VALUES ", 3, moved.size(),
                       " ON CONFLICT(iface_id, mac) DO UPDATE SET ts = excluded.ts", [&](SqlStmt& s, int p, size_t i) {
                           s.bind(p, iface).bind(p + 1, moved[i]->mac).bind(p + 2, moved[i]->ts);
                       });
}

// Rows before the end of the last finalized day: their day is reopened (late_ts) while
// its buckets are all there, else the row is added to the day's roll-ups.
Status Store::handle_late_rows(int64_t iface, const std::vector<BucketUpdate>& rows, const RollupBounds& bounds,
                               std::set<int64_t>& late_ts) {
    for (const auto& r : rows) {
        if (r.ts >= bounds.finalized_until) continue;
        std::string period;
        int64_t day_start = r.ts;  // not in a finalized day: before all of them, or in one reopened
        {
            auto p = prepare("SELECT period, start FROM finalized WHERE kind = 'day' AND start <= ?1 AND end > ?1");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            if (s.bind(1, r.ts).step() == SQLITE_ROW) {
                period = s.text(0);
                day_start = s.i64(1);
            }
        }
        if (day_start >= bounds.buckets_from) {
            late_ts.insert(r.ts);
        } else if (!period.empty()) {
            if (auto c = add_late_row_to_rollups(iface, r, period, day_start); !c) return c;
        }
    }
    return Ok{};
}

// Adds a late row to the daily, hourly and monthly rows of its (finalized) day.
Status Store::add_late_row_to_rollups(int64_t iface, const BucketUpdate& r, const std::string& day, int64_t day_start) {
    // Local hours start whole hours after local midnight (not in zones that shift by 30 minutes).
    int64_t hour = day_start + (r.ts - day_start) / 3600 * 3600;
    static const std::string add =
        " DO UPDATE SET rx_bytes = rx_bytes + excluded.rx_bytes, rx_packets = rx_packets + excluded.rx_packets, "
        "tx_bytes = tx_bytes + excluded.tx_bytes, tx_packets = tx_packets + excluded.tx_packets";
    static const std::string sql[] = {
        "INSERT INTO daily VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(iface_id, day, mac, peak)" + add,
        "INSERT INTO hourly VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(iface_id, ts, mac, peak)" + add,
        "INSERT INTO monthly SELECT ?1, period, ?3, ?4, ?5, ?6, ?7, ?8 FROM finalized WHERE kind = 'month' AND "
        "start <= ?2 AND end > ?2 ON CONFLICT(iface_id, month, mac, peak)" +
            add,
    };
    for (int i = 0; i < 3; i++) {
        auto p = prepare(sql[i]);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        s.bind(1, iface);
        if (i == 0) s.bind(2, day);
        if (i == 1) s.bind(2, hour);
        if (i == 2) s.bind(2, r.ts);
        s.bind(3, r.mac).bind(4, r.peak ? 1 : 0);
        s.bind(5, i64(r.delta[PF_DIR_RX].bytes)).bind(6, i64(r.delta[PF_DIR_RX].packets));
        s.bind(7, i64(r.delta[PF_DIR_TX].bytes)).bind(8, i64(r.delta[PF_DIR_TX].packets));
        if (auto c = check(s.step(), "add late row to roll-ups"); !c) return c;
    }
    spdlog::warn("the clock went back into {}, whose 5-minute buckets are gone: added to its roll-ups", day);
    return Ok{};
}

// A clock stepped back into a day already rolled up: reopen that day and every period
// after it, so the next finalize() rolls them up again from the buckets, in order.
Status Store::reopen_rollups_from(int64_t ts) {
    static const char* const reopen_sql[] = {
        "DELETE FROM daily WHERE day IN (SELECT period FROM finalized WHERE kind = 'day' AND end > ?1)",
        "DELETE FROM hourly WHERE ts >= (SELECT MIN(start) FROM finalized WHERE kind = 'day' AND end > ?1)",
        "DELETE FROM monthly WHERE month IN (SELECT period FROM finalized WHERE kind = 'month' AND end > ?1)",
        "DELETE FROM finalized WHERE end > ?1",
    };
    for (const char* sql : reopen_sql) {
        auto p = prepare(sql);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (auto c = check(s.bind(1, ts).step(), "reopen rolled-up periods"); !c) return c;
    }
    spdlog::warn("the clock went back into a day already rolled up; it and the days after it will be rolled up again");
    return Ok{};
}

Result<Store::Resume> Store::load_resume(const std::string& iface) {
    Resume r;
    auto id = iface_id(iface, false);
    if (!id) return id.error();
    if (*id < 0) return r;
    {
        auto p = prepare("SELECT boot_id, map_id FROM generation WHERE iface_id = ?");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        int rc = s.bind(1, *id).step();
        if (rc == SQLITE_ROW) {
            r.found = true;
            r.boot_id = s.text(0);
            r.map_id = static_cast<uint32_t>(s.i64(1));
        } else if (rc != SQLITE_DONE) {
            return check(rc, "read generation").error();
        }
    }
    auto p = prepare(
        "SELECT k.mac, k.ts, b.snap_rx_bytes, b.snap_rx_packets, b.snap_tx_bytes, b.snap_tx_packets "
        "FROM key_last k JOIN bucket5m b ON b.iface_id = k.iface_id AND b.ts = k.ts AND b.mac = k.mac "
        "WHERE k.iface_id = ?");
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    s.bind(1, *id);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
        int64_t mac = s.i64(0);
        Counter dir[PF_DIR_COUNT];
        read_counters(s, 2, dir);
        r.snapshots[mac] = {dir[0], dir[1]};
        last_ts_[{*id, mac}] = s.i64(1);
    }
    if (rc != SQLITE_DONE) return check(rc, "read snapshots").error();
    return r;
}

// ---- finalize ----------------------------------------------------------------------------

Status Store::finalize(const Calendar& cal, int64_t now) {
    auto from = first_day_to_roll_up(cal);
    if (!from) return from.error();
    if (!*from) return Ok{};  // no bucket since the last finalized day
    if (auto s = roll_up_days(cal, **from, now); !s) return s;
    return roll_up_months(cal, now);
}

// The start of the day after the last finalized one, else of the first bucket's day;
// nothing when there is no bucket from then on.
Result<std::optional<int64_t>> Store::first_day_to_roll_up(const Calendar& cal) {
    int64_t from = 0;
    {
        auto p = prepare(kFinalizedUntil);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (s.step() == SQLITE_ROW) from = s.i64(0);
    }
    auto p = prepare("SELECT MIN(ts) FROM bucket5m WHERE ts >= ?");
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    if (s.bind(1, from).step() != SQLITE_ROW || s.is_null(0)) return std::optional<int64_t>();
    int64_t first = s.i64(0);
    if (from == 0 || first > from) from = cal.day_start(cal.local_date(first));
    return std::optional<int64_t>(from);
}

// Every local day from `from` that is over at `now`, each in its own transaction.
Status Store::roll_up_days(const Calendar& cal, int64_t from, int64_t now) {
    // Bucket -> local hour, filled per day: lets SQL group buckets into local hours.
    if (auto s = exec("CREATE TEMP TABLE IF NOT EXISTS hourmap(ts INTEGER PRIMARY KEY, hour INTEGER NOT NULL)"); !s)
        return s;
    int days = 0;
    for (LocalDate d = cal.local_date(from); cal.day_end(d) <= now; d = Calendar::next_day(d)) {
        if (auto s = roll_up_day(cal, d); !s) return s;
        days++;
        if (days > 4000) break;  // a decade of catching up is enough for one call
    }
    if (days) spdlog::debug("rolled up {} finished day(s)", days);
    return Ok{};
}

// The day's buckets into its daily and (local) hourly rows, and the day marked finalized.
Status Store::roll_up_day(const Calendar& cal, const LocalDate& d) {
    int64_t start = cal.day_start(d), end = cal.day_end(d);
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    if (auto s = exec("DELETE FROM temp.hourmap"); !s) return s;
    {
        auto p = prepare("INSERT INTO temp.hourmap VALUES(?, ?)");
        if (!p) return p.error();
        SqlStmt& hm = **p;
        for (int64_t ts = Calendar::bucket_start(start); ts < end; ts += kBucketSeconds) {
            StmtGuard g{hm};
            if (auto c = check(hm.bind(1, ts).bind(2, cal.hour_start(ts)).step(), "hour map"); !c) return c;
        }
    }
    std::string day = d.str();
    for (const char* sql : {kDailyRollup, kHourlyRollup}) {
        auto p = prepare(sql);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        s.bind(1, start).bind(2, end);
        if (sql == kDailyRollup) s.bind(3, day);
        if (auto c = check(s.step(), "roll up day"); !c) return c;
    }
    if (auto s = mark_finalized("day", day, start, end, cal.tz_name()); !s) return s;
    return tx->commit();
}

// Billing months whose days are all final.
Status Store::roll_up_months(const Calendar& cal, int64_t now) {
    int64_t first = 0;
    {
        auto p = prepare("SELECT MIN(start) FROM finalized WHERE kind = 'day'");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (s.step() != SQLITE_ROW || s.is_null(0)) return Ok{};
        first = s.i64(0);
    }
    for (BillingMonth m = cal.billing_month(first); cal.month_end(m) <= now; m = Calendar::next_month(m)) {
        {
            auto p = prepare("SELECT 1 FROM finalized WHERE kind = 'month' AND period = ?");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            if (s.bind(1, m.str()).step() == SQLITE_ROW) continue;
        }
        if (auto s = roll_up_month(cal, m); !s) return s;
    }
    return Ok{};
}

// The month's daily rows into its monthly row, and the month marked finalized.
Status Store::roll_up_month(const Calendar& cal, const BillingMonth& m) {
    std::string period = m.str();
    int64_t start = cal.month_start(m), end = cal.month_end(m);
    std::string d0 = cal.local_date(start).str(), d1 = cal.local_date(end).str();
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    {
        auto p = prepare(
            "INSERT OR REPLACE INTO monthly SELECT iface_id, ?3, mac, peak, SUM(rx_bytes), SUM(rx_packets), "
            "SUM(tx_bytes), SUM(tx_packets) FROM daily WHERE day >= ?1 AND day < ?2 GROUP BY iface_id, mac, peak");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (auto c = check(s.bind(1, d0).bind(2, d1).bind(3, period).step(), "roll up month"); !c) return c;
    }
    if (auto s = mark_finalized("month", period, start, end, cal.tz_name()); !s) return s;
    return tx->commit();
}

Status Store::mark_finalized(const char* kind, const std::string& period, int64_t start, int64_t end,
                             const std::string& tz) {
    auto p = prepare("INSERT OR REPLACE INTO finalized VALUES(?, ?, ?, ?, ?)");
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    s.bind(1, kind).bind(2, period).bind(3, start).bind(4, end).bind(5, tz);
    return check(s.step(), (std::string("mark ") + kind).c_str());
}

Result<ImportOutcome> Store::import_days(const Calendar& cal, const std::string& iface, const std::string& source,
                                         const std::vector<ImportedDay>& days, int64_t now) {
    ImportOutcome out;
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    auto id = iface_id(iface, true);
    if (!id) return id.error();
    // Where peakflow's own counting begins: its first bucket on any interface.
    int64_t own_from = INT64_MAX;
    {
        auto p = prepare("SELECT MIN(ts) FROM bucket5m");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (s.step() == SQLITE_ROW && !s.is_null(0)) own_from = s.i64(0);
    }
    std::set<std::string> months;
    for (const auto& d : days) {
        const std::string day = d.day.str();
        const int64_t start = cal.day_start(d.day), end = cal.day_end(d.day);
        {
            auto p = prepare("SELECT 1 FROM imported WHERE iface_id = ?1 AND day = ?2");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            if (s.bind(1, *id).bind(2, day).step() == SQLITE_ROW) {
                out.already.push_back(day);
                continue;
            }
        }
        if (end > now) {
            out.skipped.emplace_back(day, "the day is not over yet");
            continue;
        }
        bool own = end > own_from;
        if (!own) {
            // A day rolled up from our own buckets (retention may have deleted them since).
            auto p = prepare(
                "SELECT 1 FROM finalized WHERE kind = 'day' AND period = ?1 AND NOT EXISTS "
                "(SELECT 1 FROM imported WHERE day = ?1)");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            own = s.bind(1, day).step() == SQLITE_ROW;
        }
        if (own) {
            out.skipped.emplace_back(day, "peakflow-bpf counted this day itself; importing it would count it twice");
            continue;
        }
        for (int peak = 0; peak < 2; ++peak) {
            auto p = prepare("INSERT INTO daily VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6, 0)");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            s.bind(1, *id).bind(2, day).bind(3, kIfaceTotal).bind(4, int64_t{peak});
            s.bind(5, i64(peak ? d.peak_rx : d.offpeak_rx)).bind(6, i64(peak ? d.peak_tx : d.offpeak_tx));
            if (auto c = check(s.step(), "import day"); !c) return c.error();
        }
        {
            // Another interface's import may have finalized the day already.
            auto p = prepare("INSERT OR IGNORE INTO finalized VALUES('day', ?1, ?2, ?3, ?4)");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            s.bind(1, day).bind(2, start).bind(3, end).bind(4, cal.tz_name());
            if (auto c = check(s.step(), "import day"); !c) return c.error();
        }
        {
            auto p = prepare("INSERT INTO imported VALUES(?1, ?2, ?3, ?4)");
            if (!p) return p.error();
            SqlStmt& s = **p;
            StmtGuard g{s};
            if (auto c = check(s.bind(1, *id).bind(2, day).bind(3, source).bind(4, now).step(), "import day"); !c)
                return c.error();
        }
        months.insert(cal.billing_month(start).str());
        out.imported.push_back(day);
    }
    // Months rolled up before these days were there are rolled up again below.
    for (const auto& m : months) {
        auto p = prepare("DELETE FROM finalized WHERE kind = 'month' AND period = ?1");
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        if (auto c = check(s.bind(1, m).step(), "import day"); !c) return c.error();
    }
    if (auto st = tx->commit(); !st) {
        iface_ids_.clear();  // the interface row may have been rolled back with it
        return st.error();
    }
    // Our own finished days first (the daemon may be stopped), then every month over.
    if (auto st = finalize(cal, now); !st) return st.error();
    if (auto st = roll_up_months(cal, now); !st) return st.error();
    return out;
}

Status Store::apply_retention(const Retention& r, int64_t now) {
    constexpr int64_t day = 86400;
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    auto run = [&](const char* sql, int64_t cutoff) -> Status {
        auto p = prepare(sql);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        return check(s.bind(1, cutoff).step(), "retention");
    };
    Status st = Ok{};
    // Buckets go only once their day is rolled up, and never a key's latest snapshot.
    if (st && r.five_minute_days > 0)
        st =
            run("DELETE FROM bucket5m WHERE ts < ?1 AND ts < (SELECT COALESCE(MAX(end), 0) FROM finalized "
                "WHERE kind = 'day') AND NOT EXISTS (SELECT 1 FROM key_last k WHERE k.iface_id = bucket5m.iface_id "
                "AND k.mac = bucket5m.mac AND k.ts = bucket5m.ts)",
                now - r.five_minute_days * day);
    if (st && r.five_minute_days > 0)
        // Where complete days begin now: commit_drain must not reopen a day before it.
        st =
            run("INSERT INTO meta(key, value) VALUES('buckets_complete_from', "
                "MIN(?1, (SELECT COALESCE(MAX(end), 0) FROM finalized WHERE kind = 'day'))) "
                "ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                now - r.five_minute_days * day);
    if (st && r.hourly_days > 0) st = run("DELETE FROM hourly WHERE ts < ?1", now - r.hourly_days * day);
    if (st && r.daily_days > 0)
        st = run("DELETE FROM daily WHERE day IN (SELECT period FROM finalized WHERE kind = 'day' AND end < ?1)",
                 now - r.daily_days * day);
    if (st && r.monthly_months > 0)
        st = run("DELETE FROM monthly WHERE month IN (SELECT period FROM finalized WHERE kind = 'month' AND end < ?1)",
                 now - int64_t{r.monthly_months} * 31 * day);
    if (!st) return st;  // rolled back with the transaction
    return tx->commit();
}

Result<std::vector<std::string>> Store::interfaces() {
    std::vector<std::string> out;
    auto p = prepare("SELECT name FROM iface ORDER BY name");
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(s.text(0));
    if (rc != SQLITE_DONE) return check(rc, "list interfaces").error();
    return out;
}

namespace {

// SQL filter on iface/mac shared by the queries below; ?1/?2 are the time range.
std::string filter_sql(const Filter& f) {
    std::string w;
    if (f.iface) w += " AND i.name = ?3";
    if (f.mac) w += " AND t.mac = ?4";
    return w;
}

void bind_filter(SqlStmt& s, const Filter& f) {
    if (f.iface) s.bind(3, *f.iface);
    if (f.mac) s.bind(4, *f.mac);
}

// The column order every usage query selects: iface name, mac, ts, peak, rx bytes,
// rx packets, tx bytes, tx packets.
constexpr const char* kUsageColumns = "i.name, t.mac, t.ts, t.peak, t.rx_bytes, t.rx_packets, t.tx_bytes, t.tx_packets";
constexpr const char* kUsageSums =
    "i.name, t.mac, 0, t.peak, SUM(t.rx_bytes), SUM(t.rx_packets), SUM(t.tx_bytes), SUM(t.tx_packets)";

UsageRow read_usage_row(const SqlStmt& s) {
    UsageRow r;
    r.iface = s.text(0);
    r.mac = s.i64(1);
    r.ts = s.i64(2);
    r.peak = s.i64(3) != 0;
    read_counters(s, 4, r.dir);
    return r;
}

// Adds r's counters into `into`, which takes r's identity (with ts as given).
void add_usage(UsageRow& into, const UsageRow& r, int64_t ts) {
    into.iface = r.iface;
    into.mac = r.mac;
    into.ts = ts;
    into.peak = r.peak;
    for (int d = 0; d < PF_DIR_COUNT; d++) into.dir[d] = add(into.dir[d], r.dir[d]);
}

}  // namespace

Result<std::vector<UsageRow>> Store::buckets(const Filter& f, int64_t from, int64_t to) {
    std::string sql = std::string("SELECT ") + kUsageColumns +
                      " FROM bucket5m t JOIN iface i ON i.id = t.iface_id WHERE t.ts >= ?1 AND t.ts < ?2" +
                      filter_sql(f) + " ORDER BY t.ts, i.name, t.mac";
    auto p = prepare(sql);
    if (!p) return p.error();
    SqlStmt& s = **p;
    StmtGuard g{s};
    s.bind(1, from).bind(2, to);
    bind_filter(s, f);
    std::vector<UsageRow> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_usage_row(s));
    if (rc != SQLITE_DONE) return check(rc, "read buckets").error();
    return out;
}

Result<std::vector<UsageRow>> Store::hours(const Filter& f, const Calendar& cal, int64_t from, int64_t to) {
    // Rolled-up hours first; hours of days not rolled up yet come from the buckets.
    std::string sql = std::string("SELECT ") + kUsageColumns +
                      " FROM hourly t JOIN iface i ON i.id = t.iface_id WHERE t.ts >= ?1 AND t.ts < ?2" + filter_sql(f);
    std::map<std::tuple<int64_t, std::string, int64_t, bool>, UsageRow> acc;
    {
        auto p = prepare(sql);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        s.bind(1, from).bind(2, to);
        bind_filter(s, f);
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            UsageRow r = read_usage_row(s);
            acc[{r.ts, r.iface, r.mac, r.peak}] = r;
        }
        if (rc != SQLITE_DONE) return check(rc, "read hours").error();
    }
    // Which days in range are rolled up: their hours are complete in the hourly table.
    std::vector<std::pair<int64_t, int64_t>> done;
    {
        auto p = prepare("SELECT start, end FROM finalized WHERE kind = 'day' AND end > ?1 AND start < ?2");
        if (!p) return p.error();
        SqlStmt& d = **p;
        StmtGuard g{d};
        d.bind(1, from).bind(2, to);
        while (d.step() == SQLITE_ROW) done.emplace_back(d.i64(0), d.i64(1));
    }
    auto b = buckets(f, from, to);
    if (!b) return b.error();
    for (const auto& r : *b) {
        bool in_done =
            std::any_of(done.begin(), done.end(), [&](auto p) { return r.ts >= p.first && r.ts < p.second; });
        if (in_done) continue;
        int64_t h = cal.hour_start(r.ts);
        add_usage(acc[{h, r.iface, r.mac, r.peak}], r, h);
    }
    std::vector<UsageRow> out;
    for (auto& [k, v] : acc) out.push_back(v);
    return out;
}

Result<std::vector<UsageRow>> Store::totals(const Filter& f, int64_t from, int64_t to) {
    // Finished days inside [from, to) come from the daily table; the gaps from buckets.
    std::vector<std::tuple<std::string, int64_t, int64_t>> days;
    {
        auto p = prepare(
            "SELECT period, start, end FROM finalized WHERE kind = 'day' AND start >= ?1 AND end <= ?2 ORDER BY start");
        if (!p) return p.error();
        SqlStmt& d = **p;
        StmtGuard g{d};
        d.bind(1, from).bind(2, to);
        while (d.step() == SQLITE_ROW) days.emplace_back(d.text(0), d.i64(1), d.i64(2));
    }
    std::map<std::tuple<std::string, int64_t, bool>, UsageRow> acc;
    auto accumulate = [&](SqlStmt& s) -> Status {
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) {
            UsageRow r = read_usage_row(s);
            add_usage(acc[{r.iface, r.mac, r.peak}], r, 0);
        }
        return check(rc, "sum usage");
    };
    if (!days.empty()) {
        std::string sql =
            std::string("SELECT ") + kUsageSums +
            " FROM daily t JOIN iface i ON i.id = t.iface_id WHERE t.day >= ?5 AND t.day <= ?6" + filter_sql(f) +
            " AND t.day IN (SELECT period FROM finalized WHERE kind = 'day' AND start >= ?1 AND end <= ?2)"
            " GROUP BY i.name, t.mac, t.peak";
        auto p = prepare(sql);
        if (!p) return p.error();
        SqlStmt& s = **p;
        StmtGuard g{s};
        s.bind(1, from).bind(2, to);
        bind_filter(s, f);
        s.bind(5, std::get<0>(days.front())).bind(6, std::get<0>(days.back()));
        if (auto st = accumulate(s); !st) return st.error();
    }
    // Gaps between finished days.
    std::vector<std::pair<int64_t, int64_t>> gaps;
    int64_t cursor = from;
    for (const auto& [p, s, e] : days) {
        if (s > cursor) gaps.emplace_back(cursor, s);
        cursor = std::max(cursor, e);
    }
    if (cursor < to) gaps.emplace_back(cursor, to);
    std::string sql = std::string("SELECT ") + kUsageSums +
                      " FROM bucket5m t JOIN iface i ON i.id = t.iface_id WHERE t.ts >= ?1 AND t.ts < ?2" +
                      filter_sql(f) + " GROUP BY i.name, t.mac, t.peak";
    auto p = prepare(sql);
    if (!p) return p.error();
    SqlStmt& s = **p;
    for (auto [a, b] : gaps) {
        StmtGuard g{s};
        s.bind(1, a).bind(2, b);
        bind_filter(s, f);
        if (auto st = accumulate(s); !st) return st.error();
    }
    std::vector<UsageRow> out;
    for (auto& [k, v] : acc) out.push_back(v);
    return out;
}

}  // namespace pf
