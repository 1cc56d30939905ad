#pragma once
// The collector's database connection, SQLite or PostgreSQL behind one interface, so the
// store, the central configuration, the users and the heartbeat service keep one set of
// SQL and one set of tests for both engines (docs/fleet.md, "PostgreSQL").
//
//   StoreDb    a connection: statements, transactions, schema parts, the engine's errors
//   StoreStmt  a statement: chainable binds, step() as SQLite's (SQLITE_ROW, SQLITE_DONE,
//              else an error code for StoreDb::check), typed column reads
//   StoreTx    BEGIN ... commit(), ROLLBACK on scope exit otherwise
//
// The SQL is written once, in SQLite's dialect with these rules, and translated for
// PostgreSQL when a statement is prepared: `?` and `?N` parameters (`$N`); GREATEST(a, b)
// for the larger of two values (SQLite's MAX(a, b)); upserts with ON CONFLICT(...) DO
// UPDATE, the target table's columns named with the table (`t.c`); INSERT OR IGNORE
// (ON CONFLICT DO NOTHING); the column name `user` (quoted); schema parts with INTEGER,
// REAL, INTEGER PRIMARY KEY AUTOINCREMENT and WITHOUT ROWID (BIGINT, DOUBLE PRECISION,
// BIGSERIAL PRIMARY KEY, nothing). Everything else must mean the same in both.
//
// Transactions: SQLite has one writer; so does PostgreSQL here for TxMode::Write, by a
// transaction-scoped advisory lock. TxMode::Agent locks one agent's key instead, so that
// reports of different agents commit side by side on several collectors, while two reports
// of one agent (over two collectors) take turns and each batch is counted once.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/sqlite.hpp"

namespace pf {

enum class SqlEngine { Sqlite, Postgres };

// "postgresql://...", "postgres://..." or a libpq key=value string ("host=... dbname=...")
// name a PostgreSQL database; anything else is a SQLite file path.
bool is_postgres_target(const std::string& database);
// The target as logs and errors may show it: a PostgreSQL password (in the URL's user
// part, as password=... or in a query parameter) replaced by ***.
std::string redact_database(const std::string& database);

class StoreStmtImpl;

class StoreStmt {
  public:
    explicit StoreStmt(std::unique_ptr<StoreStmtImpl> impl);
    ~StoreStmt();
    StoreStmt(StoreStmt&&) noexcept;
    StoreStmt& operator=(StoreStmt&&) noexcept;

    StoreStmt& bind(int i, const std::string& v);
    StoreStmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
    template <std::integral T>
    StoreStmt& bind(int i, T v) {
        return bind_i64(i, static_cast<int64_t>(v));
    }
    StoreStmt& bind(int i, double v);
    StoreStmt& bind(int i, const std::optional<double>& v) { return v ? bind(i, *v) : bind_null(i); }
    StoreStmt& bind(int i, const std::optional<int64_t>& v) { return v ? bind_i64(i, *v) : bind_null(i); }
    StoreStmt& bind_i64(int i, int64_t v);
    StoreStmt& bind_null(int i);

    // SQLITE_ROW, SQLITE_DONE or an error code (StoreDb::check words it).
    int step();
    // Back to the start, bindings cleared.
    void reset();

    int64_t i64(int c) const;
    double f64(int c) const;
    bool is_null(int c) const;
    std::string text(int c) const;

  private:
    std::unique_ptr<StoreStmtImpl> impl_;
};

class StoreDb;

class StoreTx {
  public:
    StoreTx() = default;
    explicit StoreTx(StoreDb& db) : db_(&db) {}
    ~StoreTx() { rollback(); }
    StoreTx(StoreTx&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
    StoreTx& operator=(StoreTx&& o) noexcept;
    StoreTx(const StoreTx&) = delete;
    StoreTx& operator=(const StoreTx&) = delete;

    // A failed COMMIT leaves the transaction open: it is rolled back with the guard.
    Status commit();
    void rollback();

  private:
    StoreDb* db_ = nullptr;  // null once committed or rolled back
};

enum class TxMode {
    Read,   // a consistent read (SQLite: deferred)
    Write,  // the one writer (SQLite: IMMEDIATE; PostgreSQL: the store's advisory lock)
    Agent,  // writes of one agent's rows (SQLite: IMMEDIATE; PostgreSQL: that agent's lock)
};

class StoreDb {
  public:
    virtual ~StoreDb() = default;

    // A SQLite file (created 0600 in a 0700 directory unless read_only) or a PostgreSQL
    // database (is_postgres_target), where read_only makes every transaction read-only.
    static Result<std::unique_ptr<StoreDb>> open(const std::string& database, bool read_only);

    virtual SqlEngine engine() const = 0;
    // The target as messages show it (redact_database).
    const std::string& where() const { return where_; }

    // One or more statements without parameters or results.
    virtual Status exec(const std::string& sql) = 0;
    // Kept statements (persistent) are the ones a caller prepares once and reuses.
    virtual Result<StoreStmt> prepare(const std::string& sql, bool persistent = false) = 0;
    // Rows the last INSERT, UPDATE or DELETE changed.
    virtual int64_t changes() const = 0;
    // The id the last INSERT into a table with an AUTOINCREMENT id gave its row.
    virtual Result<int64_t> last_insert_id() = 0;

    // The failure of `what` with result code rc (from StoreStmt::step), worded with the
    // engine's message; Ok for SQLITE_OK, SQLITE_ROW and SQLITE_DONE in check().
    virtual Error error(int rc, const std::string& what) const = 0;
    Status check(int rc, const std::string& what) const;

    // lock: the agent's name for TxMode::Agent.
    Result<StoreTx> begin(TxMode mode = TxMode::Write, const std::string& lock = "");

    // As apply_schema() and read_schema_version() of common/sqlite.hpp, on either engine.
    virtual Status apply_schema(std::span<const SchemaPart> parts) = 0;
    virtual Result<std::optional<int>> schema_version(const std::string& name) = 0;

    // Inside a transaction: no other transaction writes `table` until this one ends, and
    // this one waits for those that did (PostgreSQL: LOCK TABLE ... IN EXCLUSIVE MODE;
    // SQLite: nothing to do, its one writer is this transaction).
    virtual Status lock_exclusive(const std::string& table) = 0;

    // A lock only one connection holds at a time, kept until the connection closes (or
    // released): true when this connection holds it now. SQLite: always true (one file, one
    // collector).
    virtual Result<bool> try_leader(const std::string& name) = 0;

    // The SQL as this engine runs it.
    virtual std::string translate(const std::string& sql) const = 0;

  protected:
    friend class StoreTx;
    virtual Status begin_tx(TxMode mode, const std::string& lock) = 0;
    virtual Status end_tx(bool commit) = 0;
    std::string where_;
};

}  // namespace pf
