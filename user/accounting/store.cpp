#include "peakflow/accounting/store.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

namespace fs = std::filesystem;

namespace pf {
namespace {

// Migrations, in order; migration i takes the schema from version i to i + 1.
const char* const kMigrations[] = {
    R"sql(
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
)sql",
};

constexpr int kBusyTimeoutMs = 5000;

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
void read_counters(sqlite3_stmt* s, int col, Counter (&dir)[PF_DIR_COUNT]) {
    dir[PF_DIR_RX] = {u64(sqlite3_column_int64(s, col)), u64(sqlite3_column_int64(s, col + 1))};
    dir[PF_DIR_TX] = {u64(sqlite3_column_int64(s, col + 2)), u64(sqlite3_column_int64(s, col + 3))};
}

// Resets a cached statement when it goes out of scope, whatever happened.
struct StmtGuard {
    sqlite3_stmt* s;
    ~StmtGuard() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
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

Status Store::start_background_checkpoints(std::chrono::milliseconds every) {
    if (checkpointer_.joinable()) return Ok{};
    sqlite3* cdb = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &cdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        std::string msg = cdb ? sqlite3_errmsg(cdb) : "out of memory";
        sqlite3_close(cdb);
        return Error("open a checkpoint connection to " + path_ + ": " + msg);
    }
    sqlite3_busy_timeout(cdb, 100);
    // A connection learns the database is in WAL mode on its first read; until then a
    // checkpoint on it silently does nothing.
    if (sqlite3_exec(cdb, "SELECT COUNT(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK) {
        std::string msg = sqlite3_errmsg(cdb);
        sqlite3_close(cdb);
        return Error("read " + path_ + " from the checkpoint connection: " + msg);
    }
    // The writer no longer checkpoints on its own.
    if (auto s = exec("PRAGMA wal_autocheckpoint=0"); !s) {
        sqlite3_close(cdb);
        return s;
    }
    checkpointer_ = std::thread([this, cdb, every] {
        std::unique_lock lock(checkpoint_mu_);
        while (!checkpoint_cv_.wait_for(lock, every, [this] { return stopping_; })) {
            lock.unlock();
            int log = 0, done = 0;
            // PASSIVE: copies what it can without blocking the writer or readers.
            int rc = sqlite3_wal_checkpoint_v2(cdb, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                spdlog::warn("WAL checkpoint of {}: {}", path_, sqlite3_errmsg(cdb));
            lock.lock();
        }
        sqlite3_close(cdb);
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
    for (auto& [sql, s] : stmts_) sqlite3_finalize(s);
    if (db_) sqlite3_close(db_);
}

Status Store::check(int rc, const char* what) {
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Ok{};
    std::string hint;
    if (rc == SQLITE_READONLY) hint = "the database or its directory is read-only";
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) hint = "the file is corrupt or not a peakflow database";
    if (rc == SQLITE_FULL) hint = "the disk is full";
    return Error(std::string(what) + " in " + path_ + ": " + sqlite3_errmsg(db_), "", 0, hint);
}

void Store::rollback() {
    // Best effort: after a failed statement SQLite may already have rolled back.
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Store::exec(const char* sql) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
    if (msg) sqlite3_free(msg);
    return check(rc, "SQL");
}

sqlite3_stmt* Store::prepare(const char* sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
        spdlog::error("prepare failed: {}: {}", sqlite3_errmsg(db_), sql);
        return nullptr;
    }
    stmts_[sql] = s;
    return s;
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
    int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path.c_str(), &st->db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = st->db_ ? sqlite3_errmsg(st->db_) : sqlite3_errstr(rc);
        // SQLite reports a file it could not create only as "unable to open database file".
        std::string dir = fs::path(path).parent_path().string();
        bool dir_ro = !read_only && ::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0;
        return Error("cannot open database " + path + ": " + msg, "", 0,
                     dir_ro ? "its directory is read-only; the daemon needs to write there" : "");
    }
    // SQLite falls back to read-only when it cannot open the file for writing (read-only
    // file system, immutable file, permissions): the daemon would only fail later, less clearly.
    if (!read_only && sqlite3_db_readonly(st->db_, "main") == 1)
        return Error("database " + path + " is read-only", "", 0,
                     "the daemon needs to write it and its directory: check the file system and permissions");
    sqlite3_busy_timeout(st->db_, kBusyTimeoutMs);
    if (!read_only) {
        // WAL: reports read while the daemon writes. NORMAL is durable across process
        // crashes; an OS crash may lose the last drains, never corrupt the file.
        if (auto s = st->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !s) return s.error();
        if (auto s = st->migrate(); !s) return s.error();
    } else {
        sqlite3_stmt* s = nullptr;
        rc = sqlite3_prepare_v2(st->db_, "SELECT value FROM meta WHERE key='schema_version'", -1, &s, nullptr);
        if (rc == SQLITE_OK) rc = sqlite3_step(s);
        int version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW) {
            auto c = st->check(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "read schema version");
            return c.ok() ? Error("database " + path + " has no schema version") : c.error();
        }
        if (version != kSchemaVersion)
            return Error("database " + path + " has schema " + std::to_string(version) + ", this build reads " +
                         std::to_string(kSchemaVersion));
    }
    return st;
}

Status Store::migrate() {
    if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
    auto fail = [&](Status s) {
        rollback();
        return s;
    };
    if (auto s = exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"); !s)
        return fail(s);
    int version = 0;
    {
        sqlite3_stmt* s = prepare("SELECT value FROM meta WHERE key='schema_version'");
        if (!s) return fail(check(sqlite3_errcode(db_), "read schema version"));
        StmtGuard g{s};
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            version = sqlite3_column_int(s, 0);
        else if (rc != SQLITE_DONE)
            return fail(check(rc, "read schema version"));
    }
    constexpr int known = static_cast<int>(std::size(kMigrations));
    if (version > known)
        return fail(Error("database " + path_ + " has schema " + std::to_string(version) +
                          ", newer than this peakflow-bpf knows (" + std::to_string(known) + ")"));
    for (int v = version; v < known; v++)
        if (auto s = exec(kMigrations[v]); !s) return fail(s);
    if (version != known) {
        sqlite3_stmt* s = prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)");
        StmtGuard g{s};
        sqlite3_bind_int(s, 1, known);
        if (auto c = check(sqlite3_step(s), "write schema version"); !c) return fail(c);
        spdlog::info("database {}: schema {} -> {}", path_, version, known);
    }
    return exec("COMMIT");
}

Result<int64_t> Store::iface_id(const std::string& name, bool create) {
    if (auto it = iface_ids_.find(name); it != iface_ids_.end()) return it->second;
    sqlite3_stmt* s = prepare("SELECT id FROM iface WHERE name = ?");
    {
        StmtGuard g{s};
        sqlite3_bind_text(s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) return iface_ids_[name] = sqlite3_column_int64(s, 0);
        if (rc != SQLITE_DONE) return check(rc, "look up interface").error();
    }
    if (!create) return int64_t{-1};
    sqlite3_stmt* ins = prepare("INSERT INTO iface(name) VALUES(?)");
    StmtGuard g{ins};
    sqlite3_bind_text(ins, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    if (auto c = check(sqlite3_step(ins), "add interface"); !c) return c.error();
    return iface_ids_[name] = sqlite3_last_insert_rowid(db_);
}

Status Store::upsert_rows(const char* what, const char* head, int columns, size_t rows, const char* tail,
                          const std::function<void(sqlite3_stmt*, int, size_t)>& bind) {
    constexpr size_t kBatch = 64;
    for (size_t start = 0; start < rows; start += kBatch) {
        size_t n = std::min(kBatch, rows - start);
        std::string tuple = "(?";
        for (int c = 1; c < columns; c++) tuple += ",?";
        tuple += ")";
        std::string sql = head;
        for (size_t i = 0; i < n; i++) sql += (i ? "," : "") + tuple;
        sql += tail;
        sqlite3_stmt* s = prepare(sql.c_str());
        if (!s) return check(sqlite3_errcode(db_), "prepare");
        StmtGuard g{s};
        for (size_t i = 0; i < n; i++) bind(s, static_cast<int>(i) * columns + 1, start + i);
        if (auto c = check(sqlite3_step(s), what); !c) return c;
    }
    return Ok{};
}

Status Store::commit_drain(const std::vector<DrainRows>& drains) {
    if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
    auto saved_last = last_ts_;
    auto saved_ids = iface_ids_;
    auto fail = [&](Status s) {
        rollback();
        last_ts_ = std::move(saved_last);  // nothing was written: forget what we thought was
        iface_ids_ = std::move(saved_ids);
        return s;
    };
    sqlite3_stmt* gen = prepare(
        "INSERT INTO generation(iface_id, boot_id, map_id) VALUES(?, ?, ?) "
        "ON CONFLICT(iface_id) DO UPDATE SET boot_id = excluded.boot_id, map_id = excluded.map_id");
    sqlite3_stmt* drop_keys = prepare("DELETE FROM key_last WHERE iface_id = ?");
    sqlite3_stmt* reopen = prepare("SELECT kind, period, start, end FROM finalized WHERE start <= ?1 AND end > ?1");
    if (!gen || !drop_keys || !reopen) return fail(check(sqlite3_errcode(db_), "prepare"));

    int64_t finalized_until = 0;
    {
        sqlite3_stmt* s = prepare("SELECT COALESCE(MAX(end), 0) FROM finalized WHERE kind = 'day'");
        StmtGuard g{s};
        if (sqlite3_step(s) == SQLITE_ROW) finalized_until = sqlite3_column_int64(s, 0);
    }
    std::set<int64_t> late_ts;

    // Days that started before this have lost buckets to retention: they cannot be rolled
    // up again, so a late row for one of them is added to its roll-ups instead of
    // reopening it (and a late row before every finalized day reopens nothing).
    int64_t buckets_from = 0;
    {
        sqlite3_stmt* s = prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'buckets_complete_from'");
        StmtGuard g{s};
        if (sqlite3_step(s) == SQLITE_ROW) buckets_from = sqlite3_column_int64(s, 0);
    }
    sqlite3_stmt* day_of =
        prepare("SELECT period, start FROM finalized WHERE kind = 'day' AND start <= ?1 AND end > ?1");
    if (!day_of) return fail(check(sqlite3_errcode(db_), "prepare"));
    // Adds a late row to the daily, hourly and monthly rows of its (finalized) day.
    auto fold = [&](int64_t id, const BucketUpdate& r, const std::string& period, int64_t start) -> Status {
        // Local hours start whole hours after local midnight (not in zones that shift by 30 minutes).
        int64_t hour = start + (r.ts - start) / 3600 * 3600;
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
            sqlite3_stmt* s = prepare(sql[i].c_str());
            if (!s) return check(sqlite3_errcode(db_), "prepare late roll-up");
            StmtGuard g{s};
            sqlite3_bind_int64(s, 1, id);
            if (i == 0) sqlite3_bind_text(s, 2, period.c_str(), -1, SQLITE_TRANSIENT);
            if (i == 1) sqlite3_bind_int64(s, 2, hour);
            if (i == 2) sqlite3_bind_int64(s, 2, r.ts);
            sqlite3_bind_int64(s, 3, r.mac);
            sqlite3_bind_int(s, 4, r.peak ? 1 : 0);
            sqlite3_bind_int64(s, 5, i64(r.delta[PF_DIR_RX].bytes));
            sqlite3_bind_int64(s, 6, i64(r.delta[PF_DIR_RX].packets));
            sqlite3_bind_int64(s, 7, i64(r.delta[PF_DIR_TX].bytes));
            sqlite3_bind_int64(s, 8, i64(r.delta[PF_DIR_TX].packets));
            if (auto c = check(sqlite3_step(s), "add late row to roll-ups"); !c) return c;
        }
        spdlog::warn("the clock went back into {}, whose 5-minute buckets are gone: added to its roll-ups", period);
        return Ok{};
    };

    for (const auto& d : drains) {
        auto id = iface_id(d.iface, true);
        if (!id) return fail(id.error());
        {
            StmtGuard g{gen};
            sqlite3_bind_int64(gen, 1, *id);
            sqlite3_bind_text(gen, 2, d.boot_id.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(gen, 3, d.map_id);
            if (auto c = check(sqlite3_step(gen), "write generation"); !c) return fail(c);
        }
        if (d.new_generation) {
            StmtGuard g{drop_keys};
            sqlite3_bind_int64(drop_keys, 1, *id);
            if (auto c = check(sqlite3_step(drop_keys), "reset snapshots"); !c) return fail(c);
            for (auto it = last_ts_.begin(); it != last_ts_.end();)
                it = it->first.first == *id ? last_ts_.erase(it) : std::next(it);
        }
        // Many rows per statement: per-statement overhead, not the B-tree, dominates.
        auto st = upsert_rows("write bucket", "INSERT INTO bucket5m VALUES ", 12, d.rows.size(),
                              " ON CONFLICT(iface_id, ts, mac) DO UPDATE SET "
                              "rx_bytes = rx_bytes + excluded.rx_bytes, rx_packets = rx_packets + excluded.rx_packets, "
                              "tx_bytes = tx_bytes + excluded.tx_bytes, tx_packets = tx_packets + excluded.tx_packets, "
                              "snap_rx_bytes = excluded.snap_rx_bytes, snap_rx_packets = excluded.snap_rx_packets, "
                              "snap_tx_bytes = excluded.snap_tx_bytes, snap_tx_packets = excluded.snap_tx_packets",
                              [&](sqlite3_stmt* s, int p, size_t i) {
                                  const BucketUpdate& r = d.rows[i];
                                  const int64_t v[] = {*id,
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
                                  for (int c = 0; c < 12; c++) sqlite3_bind_int64(s, p + c, v[c]);
                              });
        if (!st) return fail(st);
        // The key registry changes once per key and bucket, not on every drain.
        std::vector<const BucketUpdate*> moved;
        for (const auto& r : d.rows) {
            auto& last = last_ts_[{*id, r.mac}];
            if (last != r.ts) {
                moved.push_back(&r);
                last = r.ts;
            }
        }
        st = upsert_rows("write key", "INSERT INTO key_last(iface_id, mac, ts) VALUES ", 3, moved.size(),
                         " ON CONFLICT(iface_id, mac) DO UPDATE SET ts = excluded.ts",
                         [&](sqlite3_stmt* s, int p, size_t i) {
                             sqlite3_bind_int64(s, p, *id);
                             sqlite3_bind_int64(s, p + 1, moved[i]->mac);
                             sqlite3_bind_int64(s, p + 2, moved[i]->ts);
                         });
        if (!st) return fail(st);
        for (const auto& r : d.rows) {
            if (r.ts >= finalized_until) continue;
            std::string period;
            int64_t day_start = r.ts;  // not in a finalized day: before all of them, or in one reopened
            {
                StmtGuard g{day_of};
                sqlite3_bind_int64(day_of, 1, r.ts);
                if (sqlite3_step(day_of) == SQLITE_ROW) {
                    period = reinterpret_cast<const char*>(sqlite3_column_text(day_of, 0));
                    day_start = sqlite3_column_int64(day_of, 1);
                }
            }
            if (day_start >= buckets_from) {
                late_ts.insert(r.ts);
            } else if (!period.empty()) {
                if (auto c = fold(*id, r, period, day_start); !c) return fail(c);
            }
        }
    }

    // A clock stepped back into a day already rolled up: reopen that day and every period
    // after it, so the next finalize() rolls them up again from the buckets, in order.
    if (!late_ts.empty()) {
        int64_t ts = *late_ts.begin();
        const char* reopen_sql[] = {
            "DELETE FROM daily WHERE day IN (SELECT period FROM finalized WHERE kind = 'day' AND end > ?1)",
            "DELETE FROM hourly WHERE ts >= (SELECT MIN(start) FROM finalized WHERE kind = 'day' AND end > ?1)",
            "DELETE FROM monthly WHERE month IN (SELECT period FROM finalized WHERE kind = 'month' AND end > ?1)",
            "DELETE FROM finalized WHERE end > ?1",
        };
        for (const char* sql : reopen_sql) {
            sqlite3_stmt* st = prepare(sql);
            if (!st) return fail(check(sqlite3_errcode(db_), "prepare reopen"));
            StmtGuard g{st};
            sqlite3_bind_int64(st, 1, ts);
            if (auto c = check(sqlite3_step(st), "reopen rolled-up periods"); !c) return fail(c);
        }
        spdlog::warn(
            "the clock went back into a day already rolled up; it and the days after it will be rolled up again");
    }
    if (auto s = exec("COMMIT"); !s) return fail(s);
    return Ok{};
}

Result<Store::Resume> Store::load_resume(const std::string& iface) {
    Resume r;
    auto id = iface_id(iface, false);
    if (!id) return id.error();
    if (*id < 0) return r;
    {
        sqlite3_stmt* s = prepare("SELECT boot_id, map_id FROM generation WHERE iface_id = ?");
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, *id);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            r.found = true;
            r.boot_id = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
            r.map_id = static_cast<uint32_t>(sqlite3_column_int64(s, 1));
        } else if (rc != SQLITE_DONE) {
            return check(rc, "read generation").error();
        }
    }
    sqlite3_stmt* s = prepare(
        "SELECT k.mac, k.ts, b.snap_rx_bytes, b.snap_rx_packets, b.snap_tx_bytes, b.snap_tx_packets "
        "FROM key_last k JOIN bucket5m b ON b.iface_id = k.iface_id AND b.ts = k.ts AND b.mac = k.mac "
        "WHERE k.iface_id = ?");
    StmtGuard g{s};
    sqlite3_bind_int64(s, 1, *id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t mac = sqlite3_column_int64(s, 0);
        Counter dir[PF_DIR_COUNT];
        read_counters(s, 2, dir);
        r.snapshots[mac] = {dir[0], dir[1]};
        last_ts_[{*id, mac}] = sqlite3_column_int64(s, 1);
    }
    if (rc != SQLITE_DONE) return check(rc, "read snapshots").error();
    return r;
}

Status Store::finalize(const Calendar& cal, int64_t now) {
    // Where to start: the day after the last finalized one, else the first bucket's day.
    int64_t from = 0;
    {
        sqlite3_stmt* s = prepare("SELECT COALESCE(MAX(end), 0) FROM finalized WHERE kind = 'day'");
        StmtGuard g{s};
        if (sqlite3_step(s) == SQLITE_ROW) from = sqlite3_column_int64(s, 0);
    }
    {
        sqlite3_stmt* s = prepare("SELECT MIN(ts) FROM bucket5m WHERE ts >= ?");
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, from);
        if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_type(s, 0) == SQLITE_NULL) return Ok{};
        int64_t first = sqlite3_column_int64(s, 0);
        if (from == 0 || first > from) from = cal.day_start(cal.local_date(first));
    }
    // Bucket -> local hour, filled per day: lets SQL group buckets into local hours.
    if (auto s = exec("CREATE TEMP TABLE IF NOT EXISTS hourmap(ts INTEGER PRIMARY KEY, hour INTEGER NOT NULL)"); !s)
        return s;
    // iface first: the bucket key starts with iface_id, so each day is an index range, not a
    // scan of every bucket kept.
    sqlite3_stmt* daily = prepare(
        "INSERT OR REPLACE INTO daily SELECT b.iface_id, ?3, b.mac, b.peak, SUM(b.rx_bytes), SUM(b.rx_packets), "
        "SUM(b.tx_bytes), SUM(b.tx_packets) FROM iface i CROSS JOIN bucket5m b ON b.iface_id = i.id "
        "WHERE b.ts >= ?1 AND b.ts < ?2 GROUP BY b.iface_id, b.mac, b.peak");
    sqlite3_stmt* hourly = prepare(
        "INSERT OR REPLACE INTO hourly SELECT b.iface_id, h.hour, b.mac, b.peak, SUM(b.rx_bytes), "
        "SUM(b.rx_packets), SUM(b.tx_bytes), SUM(b.tx_packets) FROM iface i CROSS JOIN bucket5m b ON b.iface_id = i.id "
        "JOIN temp.hourmap h ON h.ts = b.ts "
        "WHERE b.ts >= ?1 AND b.ts < ?2 GROUP BY b.iface_id, h.hour, b.mac, b.peak");
    sqlite3_stmt* mark = prepare("INSERT OR REPLACE INTO finalized VALUES(?, ?, ?, ?, ?)");
    sqlite3_stmt* hm = prepare("INSERT INTO temp.hourmap VALUES(?, ?)");
    if (!daily || !hourly || !mark || !hm) return check(sqlite3_errcode(db_), "prepare roll-up");

    int days = 0;
    for (LocalDate d = cal.local_date(from); cal.day_end(d) <= now; d = Calendar::next_day(d)) {
        int64_t start = cal.day_start(d), end = cal.day_end(d);
        if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
        auto fail = [&](Status s) {
            rollback();
            return s;
        };
        if (auto s = exec("DELETE FROM temp.hourmap"); !s) return fail(s);
        for (int64_t ts = Calendar::bucket_start(start); ts < end; ts += kBucketSeconds) {
            StmtGuard g{hm};
            sqlite3_bind_int64(hm, 1, ts);
            sqlite3_bind_int64(hm, 2, cal.hour_start(ts));
            if (auto c = check(sqlite3_step(hm), "hour map"); !c) return fail(c);
        }
        std::string day = d.str();
        for (sqlite3_stmt* s : {daily, hourly}) {
            StmtGuard g{s};
            sqlite3_bind_int64(s, 1, start);
            sqlite3_bind_int64(s, 2, end);
            if (s == daily) sqlite3_bind_text(s, 3, day.c_str(), -1, SQLITE_TRANSIENT);
            if (auto c = check(sqlite3_step(s), "roll up day"); !c) return fail(c);
        }
        {
            StmtGuard g{mark};
            sqlite3_bind_text(mark, 1, "day", -1, SQLITE_STATIC);
            sqlite3_bind_text(mark, 2, day.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(mark, 3, start);
            sqlite3_bind_int64(mark, 4, end);
            sqlite3_bind_text(mark, 5, cal.tz_name().c_str(), -1, SQLITE_TRANSIENT);
            if (auto c = check(sqlite3_step(mark), "mark day"); !c) return fail(c);
        }
        if (auto s = exec("COMMIT"); !s) return fail(s);
        days++;
        if (days > 4000) break;  // a decade of catching up is enough for one call
    }
    if (days) spdlog::debug("rolled up {} finished day(s)", days);

    // Billing months whose days are all final.
    sqlite3_stmt* first_day = prepare("SELECT MIN(start) FROM finalized WHERE kind = 'day'");
    int64_t first = 0;
    {
        StmtGuard g{first_day};
        if (sqlite3_step(first_day) != SQLITE_ROW || sqlite3_column_type(first_day, 0) == SQLITE_NULL) return Ok{};
        first = sqlite3_column_int64(first_day, 0);
    }
    sqlite3_stmt* is_done = prepare("SELECT 1 FROM finalized WHERE kind = 'month' AND period = ?");
    sqlite3_stmt* monthly = prepare(
        "INSERT OR REPLACE INTO monthly SELECT iface_id, ?3, mac, peak, SUM(rx_bytes), SUM(rx_packets), "
        "SUM(tx_bytes), SUM(tx_packets) FROM daily WHERE day >= ?1 AND day < ?2 GROUP BY iface_id, mac, peak");
    for (BillingMonth m = cal.billing_month(first); cal.month_end(m) <= now; m = Calendar::next_month(m)) {
        std::string period = m.str();
        {
            StmtGuard g{is_done};
            sqlite3_bind_text(is_done, 1, period.c_str(), -1, SQLITE_TRANSIENT);
            if (sqlite3_step(is_done) == SQLITE_ROW) continue;
        }
        int64_t start = cal.month_start(m), end = cal.month_end(m);
        std::string d0 = cal.local_date(start).str(), d1 = cal.local_date(end).str();
        if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
        {
            StmtGuard g{monthly};
            sqlite3_bind_text(monthly, 1, d0.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(monthly, 2, d1.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(monthly, 3, period.c_str(), -1, SQLITE_TRANSIENT);
            if (auto c = check(sqlite3_step(monthly), "roll up month"); !c) {
                rollback();
                return c;
            }
        }
        {
            StmtGuard g{mark};
            sqlite3_bind_text(mark, 1, "month", -1, SQLITE_STATIC);
            sqlite3_bind_text(mark, 2, period.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(mark, 3, start);
            sqlite3_bind_int64(mark, 4, end);
            sqlite3_bind_text(mark, 5, cal.tz_name().c_str(), -1, SQLITE_TRANSIENT);
            if (auto c = check(sqlite3_step(mark), "mark month"); !c) {
                rollback();
                return c;
            }
        }
        if (auto s = exec("COMMIT"); !s) return s;
    }
    return Ok{};
}

Status Store::apply_retention(const Retention& r, int64_t now) {
    constexpr int64_t day = 86400;
    if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
    auto run = [&](const char* sql, int64_t cutoff) -> Status {
        sqlite3_stmt* s = prepare(sql);
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, cutoff);
        return check(sqlite3_step(s), "retention");
    };
    Status st = Ok{};
    // Buckets go only once their day is rolled up, and never a key's latest snapshot.
    if (st && r.five_minute_days > 0)
        st =
            run("DELETE FROM bucket5m WHERE ts < ?1 AND ts < (SELECT COALESCE(MAX(end), 0) FROM finalized "
                "WHERE kind = 'day') AND NOT EXISTS (SELECT 1 FROM key_last k WHERE k.iface_id = bucket5m.iface_id "
                "AND k.mac = bucket5m.mac AND k.ts = bucket5m.ts)",
                now - r.five_minute_days * day);
    if (st && r.five_minute_days > 0) {
        // Where complete days begin now: commit_drain must not reopen a day before it.
        sqlite3_stmt* s = prepare(
            "INSERT INTO meta(key, value) VALUES('buckets_complete_from', "
            "MIN(?1, (SELECT COALESCE(MAX(end), 0) FROM finalized WHERE kind = 'day'))) "
            "ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))");
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, now - r.five_minute_days * day);
        st = check(sqlite3_step(s), "retention");
    }
    if (st && r.hourly_days > 0) st = run("DELETE FROM hourly WHERE ts < ?1", now - r.hourly_days * day);
    if (st && r.daily_days > 0)
        st = run("DELETE FROM daily WHERE day IN (SELECT period FROM finalized WHERE kind = 'day' AND end < ?1)",
                 now - r.daily_days * day);
    if (st && r.monthly_months > 0)
        st = run("DELETE FROM monthly WHERE month IN (SELECT period FROM finalized WHERE kind = 'month' AND end < ?1)",
                 now - int64_t{r.monthly_months} * 31 * day);
    if (!st) {
        rollback();
        return st;
    }
    return exec("COMMIT");
}

Result<std::vector<std::string>> Store::interfaces() {
    std::vector<std::string> out;
    sqlite3_stmt* s = prepare("SELECT name FROM iface ORDER BY name");
    if (!s) return check(sqlite3_errcode(db_), "list interfaces").error();
    StmtGuard g{s};
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
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

void bind_filter(sqlite3_stmt* s, const Filter& f) {
    if (f.iface) sqlite3_bind_text(s, 3, f.iface->c_str(), -1, SQLITE_TRANSIENT);
    if (f.mac) sqlite3_bind_int64(s, 4, *f.mac);
}

// The column order every usage query selects: iface name, mac, ts, peak, rx bytes,
// rx packets, tx bytes, tx packets.
constexpr const char* kUsageColumns = "i.name, t.mac, t.ts, t.peak, t.rx_bytes, t.rx_packets, t.tx_bytes, t.tx_packets";
constexpr const char* kUsageSums =
    "i.name, t.mac, 0, t.peak, SUM(t.rx_bytes), SUM(t.rx_packets), SUM(t.tx_bytes), SUM(t.tx_packets)";

UsageRow read_usage_row(sqlite3_stmt* s) {
    UsageRow r;
    r.iface = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    r.mac = sqlite3_column_int64(s, 1);
    r.ts = sqlite3_column_int64(s, 2);
    r.peak = sqlite3_column_int(s, 3) != 0;
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
    sqlite3_stmt* s = prepare(sql.c_str());
    if (!s) return check(sqlite3_errcode(db_), "read buckets").error();
    StmtGuard g{s};
    sqlite3_bind_int64(s, 1, from);
    sqlite3_bind_int64(s, 2, to);
    bind_filter(s, f);
    std::vector<UsageRow> out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(read_usage_row(s));
    if (rc != SQLITE_DONE) return check(rc, "read buckets").error();
    return out;
}

Result<std::vector<UsageRow>> Store::hours(const Filter& f, const Calendar& cal, int64_t from, int64_t to) {
    // Rolled-up hours first; hours of days not rolled up yet come from the buckets.
    std::string sql = std::string("SELECT ") + kUsageColumns +
                      " FROM hourly t JOIN iface i ON i.id = t.iface_id WHERE t.ts >= ?1 AND t.ts < ?2" + filter_sql(f);
    sqlite3_stmt* s = prepare(sql.c_str());
    if (!s) return check(sqlite3_errcode(db_), "read hours").error();
    std::map<std::tuple<int64_t, std::string, int64_t, bool>, UsageRow> acc;
    {
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, from);
        sqlite3_bind_int64(s, 2, to);
        bind_filter(s, f);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            UsageRow r = read_usage_row(s);
            acc[{r.ts, r.iface, r.mac, r.peak}] = r;
        }
        if (rc != SQLITE_DONE) return check(rc, "read hours").error();
    }
    // Which days in range are rolled up: their hours are complete in the hourly table.
    std::vector<std::pair<int64_t, int64_t>> done;
    {
        sqlite3_stmt* d = prepare("SELECT start, end FROM finalized WHERE kind = 'day' AND end > ?1 AND start < ?2");
        StmtGuard g{d};
        sqlite3_bind_int64(d, 1, from);
        sqlite3_bind_int64(d, 2, to);
        while (sqlite3_step(d) == SQLITE_ROW) done.emplace_back(sqlite3_column_int64(d, 0), sqlite3_column_int64(d, 1));
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
        sqlite3_stmt* d = prepare(
            "SELECT period, start, end FROM finalized WHERE kind = 'day' AND start >= ?1 AND end <= ?2 ORDER BY start");
        StmtGuard g{d};
        sqlite3_bind_int64(d, 1, from);
        sqlite3_bind_int64(d, 2, to);
        while (sqlite3_step(d) == SQLITE_ROW)
            days.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(d, 0)), sqlite3_column_int64(d, 1),
                              sqlite3_column_int64(d, 2));
    }
    std::map<std::tuple<std::string, int64_t, bool>, UsageRow> acc;
    auto accumulate = [&](sqlite3_stmt* s) -> Status {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
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
        sqlite3_stmt* s = prepare(sql.c_str());
        if (!s) return check(sqlite3_errcode(db_), "sum days").error();
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, from);
        sqlite3_bind_int64(s, 2, to);
        bind_filter(s, f);
        sqlite3_bind_text(s, 5, std::get<0>(days.front()).c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 6, std::get<0>(days.back()).c_str(), -1, SQLITE_TRANSIENT);
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
    sqlite3_stmt* s = prepare(sql.c_str());
    if (!s) return check(sqlite3_errcode(db_), "sum buckets").error();
    for (auto [a, b] : gaps) {
        StmtGuard g{s};
        sqlite3_bind_int64(s, 1, a);
        sqlite3_bind_int64(s, 2, b);
        bind_filter(s, f);
        if (auto st = accumulate(s); !st) return st.error();
    }
    std::vector<UsageRow> out;
    for (auto& [k, v] : acc) out.push_back(v);
    return out;
}

}  // namespace pf
