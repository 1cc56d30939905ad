#include "peakflow/common/sqlite.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

namespace pf {

namespace {

// The store's tables are the database's own schema: their version has always been the
// row "schema_version", and a newer one is reported as "has schema N".
constexpr const char* kStorePart = "store";

// Where apply_schema() records versions. The same definition the store's first migration
// has always created it with, so either may come first.
constexpr const char* kMetaTable =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID";

std::string hint_for(int rc) {
    if (rc == SQLITE_READONLY) return "the database or its directory is read-only";
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) return "the file is corrupt or not a peakflow database";
    if (rc == SQLITE_FULL) return "the disk is full";
    return "";
}

int open_flags(const SqliteOptions& o) {
    int flags = o.mode == SqliteMode::ReadOnly    ? SQLITE_OPEN_READONLY
                : o.mode == SqliteMode::ReadWrite ? SQLITE_OPEN_READWRITE
                                                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    return o.no_mutex ? flags | SQLITE_OPEN_NOMUTEX : flags;
}

std::string pragmas(const SqliteOptions& o) {
    std::string sql;
    if (o.wal) sql += "PRAGMA journal_mode=WAL; ";
    if (o.synchronous == SqliteSync::Normal) sql += "PRAGMA synchronous=NORMAL;";
    if (o.synchronous == SqliteSync::Full) sql += "PRAGMA synchronous=FULL;";
    return sql;
}

}  // namespace

// ---- SqliteDb -----------------------------------------------------------------------

namespace {

// The history, the outbox and the collector's store hold MACs, traffic and tokens: 0600,
// whatever the umask (SysV and OpenWrt start daemons with 022). SQLite gives its -wal and
// -shm files the main file's permissions, so creating that one 0600 is enough; a file an
// older version left readable by others is closed to them.
void make_private(const std::string& path, SqliteMode mode) {
    if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return;
    if (mode == SqliteMode::Create) {
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) ::close(fd);
    }
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string f = path + suffix;
        struct stat st {};
        if (::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07) && st.st_uid == ::geteuid())
            ::chmod(f.c_str(), st.st_mode & 0700);
    }
}

}  // namespace

Result<SqliteDb> SqliteDb::open(const std::string& path, const SqliteOptions& o) {
    if (o.mode != SqliteMode::ReadOnly) make_private(path, o.mode);
    SqliteDb db;
    db.path_ = path;
    db.error_context_ = o.error_context;
    const int rc = sqlite3_open_v2(path.c_str(), &db.db_, open_flags(o), nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db.db_ ? sqlite3_errmsg(db.db_) : sqlite3_errstr(rc);
        if (!o.open_context.empty()) return Error(o.open_context + ": " + msg);
        // SQLite reports a file it could not create only as "unable to open database file".
        std::string dir = std::filesystem::path(path).parent_path().string();
        bool dir_ro = o.mode != SqliteMode::ReadOnly && ::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0;
        return Error("cannot open database " + path + ": " + msg, "", 0,
                     dir_ro ? "its directory is read-only; the daemon needs to write there" : "");
    }
    // SQLite falls back to read-only when it cannot open the file for writing: the owner
    // would only fail later, less clearly.
    if (o.require_writable && o.mode != SqliteMode::ReadOnly && sqlite3_db_readonly(db.db_, "main") == 1)
        return Error("database " + path + " is read-only", "", 0,
                     "the daemon needs to write it and its directory: check the file system and permissions");
    sqlite3_busy_timeout(db.db_, o.busy_timeout_ms);
    if (std::string sql = pragmas(o); !sql.empty())
        if (auto s = db.exec(sql.c_str()); !s) return s.error();
    return db;
}

SqliteDb::~SqliteDb() {
    close();
}

SqliteDb::SqliteDb(SqliteDb&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), path_(std::move(o.path_)), error_context_(std::move(o.error_context_)) {}

SqliteDb& SqliteDb::operator=(SqliteDb&& o) noexcept {
    if (this != &o) {
        close();
        db_ = std::exchange(o.db_, nullptr);
        path_ = std::move(o.path_);
        error_context_ = std::move(o.error_context_);
    }
    return *this;
}

void SqliteDb::close() {
    // _v2: a statement still alive keeps the connection until it is finalized, instead of
    // the close failing and leaking it.
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
}

Status SqliteDb::exec(const char* sql) {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
    sqlite3_free(msg);  // the same text as sqlite3_errmsg(), which error() reads
    return check(rc, "SQL");
}

Result<SqlStmt> SqliteDb::prepare(const std::string& sql, bool persistent) const {
    return SqlStmt::prepare(*this, sql, persistent);
}

Error SqliteDb::error(int rc, const std::string& what) const {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    if (!error_context_.empty()) return Error(error_context_ + ": " + msg);
    return Error(what + " in " + path_ + ": " + msg, "", 0, hint_for(rc));
}

Status SqliteDb::check(int rc, const std::string& what) const {
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Ok{};
    return error(rc, what);
}

// ---- SqliteTransaction --------------------------------------------------------------

Result<SqliteTransaction> SqliteTransaction::begin(SqliteDb& db, Mode mode) {
    if (auto s = db.exec(mode == Mode::Immediate ? "BEGIN IMMEDIATE" : "BEGIN"); !s) return s.error();
    return SqliteTransaction(db);
}

SqliteTransaction& SqliteTransaction::operator=(SqliteTransaction&& o) noexcept {
    if (this != &o) {
        rollback();
        db_ = std::exchange(o.db_, nullptr);
    }
    return *this;
}

Status SqliteTransaction::commit() {
    if (!db_) return Error("commit: no transaction open");
    auto s = db_->exec("COMMIT");
    if (s) db_ = nullptr;
    return s;
}

void SqliteTransaction::rollback() {
    SqliteDb* db = std::exchange(db_, nullptr);
    if (db && db->get() && sqlite3_get_autocommit(db->get()) == 0)
        sqlite3_exec(db->get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

// ---- SqlStmt ------------------------------------------------------------------------

Result<SqlStmt> SqlStmt::prepare(const SqliteDb& db, const std::string& sql, bool persistent) {
    sqlite3_stmt* s = nullptr;
    const unsigned flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0;
    if (sqlite3_prepare_v3(db.get(), sql.c_str(), -1, flags, &s, nullptr) != SQLITE_OK)
        return Error("prepare \"" + sql + "\" in " + db.path() + ": " + sqlite3_errmsg(db.get()));
    if (!s) return Error("prepare \"" + sql + "\" in " + db.path() + ": no SQL statement in it");
    return SqlStmt(s);
}

SqlStmt& SqlStmt::operator=(SqlStmt&& o) noexcept {
    if (this != &o) {
        sqlite3_finalize(s_);
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}

// ---- schema registry ----------------------------------------------------------------

std::string schema_version_key(const std::string& name) {
    return name == kStorePart ? "schema_version" : "schema_version." + name;
}

Result<std::optional<int>> read_schema_version(const SqliteDb& db, const std::string& name) {
    int rc = SQLITE_OK;
    int version = 0;
    {
        auto q = db.prepare("SELECT value FROM meta WHERE key = ?");
        // Not the prepare error: a file that is not a database (or has no meta table) shows
        // here first, and reads as the version that could not be read.
        if (!q) return db.error(sqlite3_errcode(db.get()), "read schema version");
        rc = q->bind(1, schema_version_key(name)).step();
        if (rc == SQLITE_ROW) version = static_cast<int>(q->i64(0));
    }
    if (rc == SQLITE_ROW) return std::optional<int>(version);
    if (rc == SQLITE_DONE) return std::optional<int>();
    return db.error(rc, "read schema version");
}

Status apply_schema(SqliteDb& db, std::span<const SchemaPart> parts) {
    auto tx = SqliteTransaction::begin(db);
    if (!tx) return tx.error();
    if (auto s = db.exec(kMetaTable); !s) return s;
    std::vector<std::string> names;
    for (const auto& p : parts)
        if (std::find(names.begin(), names.end(), p.name) == names.end()) names.emplace_back(p.name);
    for (const auto& name : names) {
        auto recorded = read_schema_version(db, name);
        if (!recorded) return recorded.error();
        const int version = recorded->value_or(0);
        int known = 0;
        for (const auto& p : parts)
            if (p.name == name) known = std::max(known, p.version);
        const bool store = name == kStorePart;
        if (version > known)
            return Error("database " + db.path() + " has " + (store ? "" : name + " ") + "schema " +
                         std::to_string(version) + ", newer than this peakflow-bpf knows (" + std::to_string(known) +
                         ")");
        for (const auto& p : parts)
            if (p.name == name && p.version > version)
                if (auto s = db.exec(p.sql); !s) return s;
        if (version == known) continue;
        auto w = db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
        if (!w) return w.error();
        w->bind(1, schema_version_key(name)).bind(2, known);
        if (auto c = db.check(w->step(), "write schema version"); !c) return c;
        // The store's line has always been there; the other components' tables used to be
        // created without a word, and recording their first version is no news.
        if (store || version > 0)
            spdlog::info("database {}: schema {} -> {}", db.path(), version, known);
        else
            spdlog::debug("database {}: {} schema {} -> {}", db.path(), name, version, known);
    }
    return tx->commit();
}

}  // namespace pf
