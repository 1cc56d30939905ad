#pragma once
// The SQLite layer: every connection, transaction and statement of the history database
// goes through these, so each sqlite3* and sqlite3_stmt* is closed or finalized by its
// owner, prepare errors are reported instead of leaving a null statement behind, and the
// components that keep tables in the shared database register them in one way.
//
//   SqliteDb           a connection: open flags, busy timeout, WAL and synchronous
//   SqliteTransaction  BEGIN [IMMEDIATE] ... commit(), ROLLBACK on scope exit otherwise
//   SqlStmt            a prepared statement: chainable binds, step, typed column reads
//   SchemaPart         a component's tables at a version; apply_schema() brings them up

#include <sqlite3.h>

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "peakflow/common/error.hpp"

namespace pf {

class SqlStmt;

enum class SqliteMode {
    ReadOnly,
    ReadWrite,  // the file must exist
    Create,     // read-write, created when missing
};

enum class SqliteSync {
    Default,  // not set: as the connection opens
    Normal,
    Full,
};

struct SqliteOptions {
    SqliteMode mode = SqliteMode::ReadWrite;
    int busy_timeout_ms = 5000;
    bool wal = false;  // PRAGMA journal_mode=WAL
    SqliteSync synchronous = SqliteSync::Default;
    // SQLITE_OPEN_NOMUTEX: the owner never uses the connection from two threads at once.
    bool no_mutex = true;
    // A read-write open that SQLite could only make read-only (read-only file system,
    // immutable file, permissions) is an error now rather than at the first write.
    bool require_writable = false;
    // How failures read. Without these: "cannot open database <path>: <sqlite's message>"
    // (with a hint when the directory is not writable), "<step> in <path>: <sqlite's
    // message>" (with a hint for read-only, corrupt and full). With them, the whole context
    // before ": <sqlite's message>", for the components that always worded it their way.
    std::string open_context;   // a failed open
    std::string error_context;  // everything after: pragmas, exec, transactions, schema
};

// One connection, closed when it goes out of scope. Move-only.
class SqliteDb {
  public:
    SqliteDb() = default;  // no connection
    static Result<SqliteDb> open(const std::string& path, const SqliteOptions& o = {});
    ~SqliteDb();
    SqliteDb(SqliteDb&& o) noexcept;
    SqliteDb& operator=(SqliteDb&& o) noexcept;
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;

    sqlite3* get() const { return db_; }
    explicit operator bool() const { return db_ != nullptr; }
    const std::string& path() const { return path_; }

    // One or more statements without results.
    Status exec(const char* sql);
    // Kept statements (persistent) are the ones a caller prepares once and reuses.
    Result<SqlStmt> prepare(const std::string& sql, bool persistent = false) const;
    int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

    // The failure of `what` (a step such as "SQL" or "write bucket") with result code rc,
    // worded as the options say; Ok for SQLITE_OK, SQLITE_ROW and SQLITE_DONE in check().
    Error error(int rc, const std::string& what) const;
    Status check(int rc, const std::string& what) const;

  private:
    void close();
    sqlite3* db_ = nullptr;
    std::string path_;
    std::string error_context_;
};

// BEGIN (IMMEDIATE: takes the write lock now, so a busy database fails here and not half
// way) and, unless commit() succeeded, ROLLBACK when it goes out of scope. Move-only.
class SqliteTransaction {
  public:
    enum class Mode { Deferred, Immediate };
    static Result<SqliteTransaction> begin(SqliteDb& db, Mode mode = Mode::Immediate);
    ~SqliteTransaction() { rollback(); }
    SqliteTransaction(SqliteTransaction&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
    SqliteTransaction& operator=(SqliteTransaction&& o) noexcept;
    SqliteTransaction(const SqliteTransaction&) = delete;
    SqliteTransaction& operator=(const SqliteTransaction&) = delete;

    // A failed COMMIT leaves the transaction open: it is rolled back with the guard.
    Status commit();
    // Now rather than at scope exit; best effort (after some failures SQLite has already
    // rolled back). Does not touch the connection's error message when nothing is open.
    void rollback();

  private:
    explicit SqliteTransaction(SqliteDb& db) : db_(&db) {}
    SqliteDb* db_ = nullptr;  // null once committed or rolled back
};

// One prepared statement, finalized when it goes out of scope, with chainable binds and
// typed column reads. Move-only. A statement that does not prepare is an Error naming the
// SQL and sqlite's message (SqliteDb::prepare), never a null statement.
class SqlStmt {
  public:
    static Result<SqlStmt> prepare(const SqliteDb& db, const std::string& sql, bool persistent = false);
    ~SqlStmt() { sqlite3_finalize(s_); }
    SqlStmt(SqlStmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    SqlStmt& operator=(SqlStmt&& o) noexcept;
    SqlStmt(const SqlStmt&) = delete;
    SqlStmt& operator=(const SqlStmt&) = delete;

    sqlite3_stmt* get() const { return s_; }

    SqlStmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    SqlStmt& bind(int i, const char* v) {
        sqlite3_bind_text(s_, i, v, -1, SQLITE_TRANSIENT);
        return *this;
    }
    template <std::integral T>
    SqlStmt& bind(int i, T v) {
        sqlite3_bind_int64(s_, i, static_cast<int64_t>(v));
        return *this;
    }
    SqlStmt& bind(int i, double v) {
        sqlite3_bind_double(s_, i, v);
        return *this;
    }
    SqlStmt& bind(int i, const std::optional<double>& v) {  // NULL when empty
        if (v)
            sqlite3_bind_double(s_, i, *v);
        else
            sqlite3_bind_null(s_, i);
        return *this;
    }
    // SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return sqlite3_step(s_); }
    // For a statement used again: back to the start, bindings cleared.
    void reset() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }

    int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
    double f64(int c) const { return sqlite3_column_double(s_, c); }
    bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::string text(int c) const {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
    }

  private:
    explicit SqlStmt(sqlite3_stmt* s) : s_(s) {}
    sqlite3_stmt* s_ = nullptr;
};

// "what: <sqlite's message>".
inline Error sql_error(sqlite3* db, const std::string& what) {
    return Error(what + ": " + sqlite3_errmsg(db));
}
inline Error sql_error(const SqliteDb& db, const std::string& what) {
    return sql_error(db.get(), what);
}

// ---- schema registry ----------------------------------------------------------------
//
// Several components keep tables in the one history database, each on its own
// connection. Each registers its tables as parts: `sql` brings component `name` to
// `version` from the version before (the first part, version 1, creates the tables). The
// version each component is at is a row of the `meta` table: key "schema_version" for the
// store's tables (as databases have always had it), "schema_version.<name>" for the others.
struct SchemaPart {
    const char* name;  // "store", "outbox", "reports", "customer_report", "host_history"
    int version;
    const char* sql;
};

// The meta key recording the version of component `name`.
std::string schema_version_key(const std::string& name);

// In one BEGIN IMMEDIATE transaction: for each component in `parts` (parts of one
// component in version order), reads its recorded version, refuses a database newer than
// the parts know, runs the parts above it and records the newest version.
Status apply_schema(SqliteDb& db, std::span<const SchemaPart> parts);

// The recorded version of component `name`; nullopt when there is no row. Errors (also a
// database without a meta table) read "read schema version in <path>: ...".
Result<std::optional<int>> read_schema_version(const SqliteDb& db, const std::string& name);

}  // namespace pf
