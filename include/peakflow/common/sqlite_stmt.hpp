#pragma once
// One prepared SQLite statement, finalized when it goes out of scope, with chainable binds
// and typed column reads. For the components that keep their own tables in the history
// database (outbox, report schedules, customer report); the Store caches its statements.

#include <sqlite3.h>

#include <concepts>
#include <cstdint>
#include <string>

#include "peakflow/common/error.hpp"

namespace pf {

class SqlStmt {
  public:
    SqlStmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
    ~SqlStmt() { sqlite3_finalize(s_); }
    SqlStmt(const SqlStmt&) = delete;
    SqlStmt& operator=(const SqlStmt&) = delete;

    bool ok() const { return s_ != nullptr; }
    sqlite3_stmt* get() const { return s_; }

    SqlStmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
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
    // SQLITE_ROW, SQLITE_DONE or an error code (also when the statement did not prepare).
    int step() { return s_ ? sqlite3_step(s_) : SQLITE_ERROR; }

    int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
    double f64(int c) const { return sqlite3_column_double(s_, c); }
    std::string text(int c) const {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
    }

  private:
    sqlite3_stmt* s_ = nullptr;
};

// "what: <sqlite's message>".
inline Error sql_error(sqlite3* db, const std::string& what) {
    return Error(what + ": " + sqlite3_errmsg(db));
}

}  // namespace pf
