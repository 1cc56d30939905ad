#include "peakflow/fleet/store_db.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "peakflow/fleet/heartbeat.hpp"
#include "pg_session.hpp"

namespace pf {
namespace fs = std::filesystem;

class StoreStmtImpl {
  public:
    virtual ~StoreStmtImpl() = default;
    virtual void bind_text(int i, const std::string& v) = 0;
    virtual void bind_i64(int i, int64_t v) = 0;
    virtual void bind_f64(int i, double v) = 0;
    virtual void bind_null(int i) = 0;
    virtual int step() = 0;
    virtual void reset() = 0;
    virtual int64_t i64(int c) const = 0;
    virtual double f64(int c) const = 0;
    virtual bool is_null(int c) const = 0;
    virtual std::string text(int c) const = 0;
};

StoreStmt::StoreStmt(std::unique_ptr<StoreStmtImpl> impl) : impl_(std::move(impl)) {}
StoreStmt::~StoreStmt() = default;
StoreStmt::StoreStmt(StoreStmt&&) noexcept = default;
StoreStmt& StoreStmt::operator=(StoreStmt&&) noexcept = default;
StoreStmt& StoreStmt::bind(int i, const std::string& v) {
    impl_->bind_text(i, v);
    return *this;
}
StoreStmt& StoreStmt::bind(int i, double v) {
    impl_->bind_f64(i, v);
    return *this;
}
StoreStmt& StoreStmt::bind_i64(int i, int64_t v) {
    impl_->bind_i64(i, v);
    return *this;
}
StoreStmt& StoreStmt::bind_null(int i) {
    impl_->bind_null(i);
    return *this;
}
int StoreStmt::step() {
    return impl_->step();
}
void StoreStmt::reset() {
    impl_->reset();
}
int64_t StoreStmt::i64(int c) const {
    return impl_->i64(c);
}
double StoreStmt::f64(int c) const {
    return impl_->f64(c);
}
bool StoreStmt::is_null(int c) const {
    return impl_->is_null(c);
}
std::string StoreStmt::text(int c) const {
    return impl_->text(c);
}

StoreTx& StoreTx::operator=(StoreTx&& o) noexcept {
    if (this != &o) {
        rollback();
        db_ = o.db_;
        o.db_ = nullptr;
    }
    return *this;
}

Status StoreTx::commit() {
    if (!db_) return Error("commit: no transaction open");
    if (auto s = db_->end_tx(true); !s) return s;
    db_ = nullptr;
    return Ok{};
}

void StoreTx::rollback() {
    if (!db_) return;
    (void)db_->end_tx(false);
    db_ = nullptr;
}

Status StoreDb::check(int rc, const std::string& what) const {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return Ok{};
    return error(rc, what);
}

Result<StoreTx> StoreDb::begin(TxMode mode, const std::string& lock) {
    if (auto s = begin_tx(mode, lock); !s) return s.error();
    return StoreTx(*this);
}

bool is_postgres_target(const std::string& d) {
    if (d.rfind("postgresql://", 0) == 0 || d.rfind("postgres://", 0) == 0) return true;
    // key=value pairs: a file path has no '=' before its first '/'.
    const auto eq = d.find('=');
    return eq != std::string::npos && d.find('/') > eq && !d.empty() && std::isalpha(static_cast<unsigned char>(d[0]));
}

std::string redact_database(const std::string& d) {
    return is_postgres_target(d) ? mask_conninfo(d) : d;
}

namespace {

bool word_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

bool iequals(const std::string& a, const char* b) {
    size_t i = 0;
    for (; i < a.size() && b[i]; i++)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return i == a.size() && !b[i];
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
}

// The statement for `engine` (store_db.hpp, the rules); `params`: the highest parameter
// number. Literals and quoted names are copied as they are.
std::string rewrite(const std::string& in, SqlEngine engine, bool schema, int* params) {
    const bool pg = engine == SqlEngine::Postgres;
    std::string sql = in;
    bool ignore = false;
    if (pg) {
        if (schema) {
            replace_all(sql, "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY");
            replace_all(sql, " WITHOUT ROWID", "");
        }
        const auto start = sql.find_first_not_of(" \n");
        if (start != std::string::npos && sql.compare(start, 21, "INSERT OR IGNORE INTO") == 0) {
            sql.replace(start, 21, "INSERT INTO");
            ignore = true;
        }
    }
    std::string out;
    out.reserve(sql.size() + 16);
    int next = 0, highest = 0;
    for (size_t i = 0; i < sql.size();) {
        const char c = sql[i];
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < sql.size() && !(sql[j] == c && (j + 1 >= sql.size() || sql[j + 1] != c)))
                j += sql[j] == c ? 2 : 1;
            out.append(sql, i, j + 1 - i);
            i = j + 1;
            continue;
        }
        if (c == '?') {
            size_t j = i + 1;
            while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) j++;
            const int n = j > i + 1 ? std::atoi(sql.substr(i + 1, j - i - 1).c_str()) : ++next;
            highest = std::max(highest, n);
            out += pg ? "$" + std::to_string(n) : sql.substr(i, j - i);
            i = j;
            continue;
        }
        if (word_char(c) && (i == 0 || !word_char(sql[i - 1]))) {
            size_t j = i;
            while (j < sql.size() && word_char(sql[j])) j++;
            const std::string w = sql.substr(i, j - i);
            if (pg && iequals(w, "user"))
                out += "\"user\"";
            else if (!pg && iequals(w, "GREATEST"))
                out += "MAX";
            else if (pg && schema && iequals(w, "INTEGER"))
                out += "BIGINT";
            else if (pg && schema && iequals(w, "REAL"))
                out += "DOUBLE PRECISION";
            else
                out += w;
            i = j;
            continue;
        }
        out += c;
        i++;
    }
    if (ignore) {
        while (!out.empty() && (out.back() == ';' || out.back() == ' ' || out.back() == '\n')) out.pop_back();
        out += " ON CONFLICT DO NOTHING";
    }
    if (params) *params = highest;
    return out;
}

// ---- SQLite -------------------------------------------------------------------------

class SqliteStmtImpl final : public StoreStmtImpl {
  public:
    explicit SqliteStmtImpl(SqlStmt s) : s_(std::move(s)) {}
    void bind_text(int i, const std::string& v) override { s_.bind(i, v); }
    void bind_i64(int i, int64_t v) override { s_.bind(i, v); }
    void bind_f64(int i, double v) override { s_.bind(i, v); }
    void bind_null(int i) override { sqlite3_bind_null(s_.get(), i); }
    int step() override { return s_.step(); }
    void reset() override { s_.reset(); }
    int64_t i64(int c) const override { return s_.i64(c); }
    double f64(int c) const override { return s_.f64(c); }
    bool is_null(int c) const override { return s_.is_null(c); }
    std::string text(int c) const override { return s_.text(c); }

  private:
    SqlStmt s_;
};

class SqliteStore final : public StoreDb {
  public:
    static Result<std::unique_ptr<StoreDb>> open(const std::string& path, bool read_only) {
        std::unique_ptr<SqliteStore> st(new SqliteStore());
        st->where_ = path;
        std::error_code ec;
        if (read_only && !fs::exists(path, ec))
            return Error("no collector database yet: " + path + " does not exist", "", 0,
                         "'peakflow-collector token create NAME' or 'serve' creates it");
        if (!read_only) {
            // The store holds token hashes and every agent's traffic: only its owner reads it.
            fs::path dir = fs::path(path).parent_path();
            if (!dir.empty() && !fs::exists(dir, ec)) {
                fs::create_directories(dir, ec);
                if (ec) return Error("create database directory", dir.string(), ec.value());
                ::chmod(dir.c_str(), 0700);
            }
            int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0) return Error("create collector database", path, errno);
            ::close(fd);
        }
        SqliteOptions o;
        o.mode = read_only ? SqliteMode::ReadOnly : SqliteMode::ReadWrite;
        o.wal = !read_only;
        o.synchronous = read_only ? SqliteSync::Default : SqliteSync::Normal;
        o.require_writable = !read_only;
        // The server's threads and the offline watch share the connection under the
        // store's lock.
        o.no_mutex = true;
        auto db = SqliteDb::open(path, o);
        if (!db) return db.error();
        st->db_ = std::move(*db);
        return std::unique_ptr<StoreDb>(std::move(st));
    }

    SqlEngine engine() const override { return SqlEngine::Sqlite; }
    Status exec(const std::string& sql) override { return db_.exec(translate(sql).c_str()); }
    Result<StoreStmt> prepare(const std::string& sql, bool persistent) override {
        auto s = db_.prepare(translate(sql), persistent);
        if (!s) return s.error();
        return StoreStmt(std::make_unique<SqliteStmtImpl>(std::move(*s)));
    }
    int64_t changes() const override { return sqlite3_changes(db_.get()); }
    Result<int64_t> last_insert_id() override { return db_.last_insert_rowid(); }
    Error error(int rc, const std::string& what) const override { return db_.error(rc, what); }
    Status apply_schema(std::span<const SchemaPart> parts) override { return pf::apply_schema(db_, parts); }
    Result<std::optional<int>> schema_version(const std::string& name) override {
        return read_schema_version(db_, name);
    }
    Result<bool> try_leader(const std::string&) override { return true; }
    Status lock_exclusive(const std::string&) override { return Ok{}; }
    std::string translate(const std::string& sql) const override {
        return rewrite(sql, SqlEngine::Sqlite, false, nullptr);
    }

  protected:
    Status begin_tx(TxMode mode, const std::string&) override {
        return db_.exec(mode == TxMode::Read ? "BEGIN" : "BEGIN IMMEDIATE");
    }
    Status end_tx(bool commit) override {
        if (commit) return db_.exec("COMMIT");
        if (sqlite3_get_autocommit(db_.get())) return Ok{};  // SQLite already rolled back
        return db_.exec("ROLLBACK");
    }

  private:
    SqliteDb db_;
};

// ---- PostgreSQL ---------------------------------------------------------------------

// Advisory lock keys (two int4: class, object): the store's one writer and named locks,
// and one per agent (hashtext of its name; a collision only makes two agents take turns).
constexpr int kLockClassNamed = 0x7066;  // "pf"
constexpr int kLockClassAgent = 0x7067;

constexpr Oid kInt8Oid = 20, kTextOid = 25, kFloat8Oid = 701;

using PgResult = std::unique_ptr<PGresult, decltype(&PQclear)>;

class PgStore;

class PgStmtImpl final : public StoreStmtImpl {
  public:
    // A parameter never bound is a NULL of type text: PostgreSQL must know every
    // parameter's type, also of one the statement does not use (a filter left out).
    PgStmtImpl(PgStore& db, std::string sql, int params)
        : db_(db), sql_(std::move(sql)), values_(params), types_(params, kTextOid) {}
    void bind_text(int i, const std::string& v) override { set(i, v, kTextOid); }
    void bind_i64(int i, int64_t v) override { set(i, std::to_string(v), kInt8Oid); }
    void bind_f64(int i, double v) override {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        set(i, buf, kFloat8Oid);
    }
    void bind_null(int i) override {
        if (i >= 1 && static_cast<size_t>(i) <= values_.size()) {
            values_[i - 1].reset();
            types_[i - 1] = 0;
        }
    }
    int step() override;
    void reset() override {
        res_.reset();
        row_ = -1;
        std::fill(values_.begin(), values_.end(), std::nullopt);
        std::fill(types_.begin(), types_.end(), kTextOid);
    }
    int64_t i64(int c) const override {
        const char* v = value(c);
        if (!v) return 0;
        if (v[0] == 't' && !v[1]) return 1;  // a boolean
        return std::strtoll(v, nullptr, 10);
    }
    double f64(int c) const override {
        const char* v = value(c);
        return v ? std::strtod(v, nullptr) : 0.0;
    }
    bool is_null(int c) const override { return !res_ || PQgetisnull(res_.get(), row_, c); }
    std::string text(int c) const override {
        const char* v = value(c);
        return v ? std::string(v, static_cast<size_t>(PQgetlength(res_.get(), row_, c))) : std::string();
    }

  private:
    void set(int i, std::string v, Oid type) {
        if (i < 1 || static_cast<size_t>(i) > values_.size()) return;  // as SQLite: SQLITE_RANGE, ignored
        values_[i - 1] = std::move(v);
        types_[i - 1] = type;
    }
    const char* value(int c) const {
        if (!res_ || row_ < 0 || c >= PQnfields(res_.get()) || PQgetisnull(res_.get(), row_, c)) return nullptr;
        return PQgetvalue(res_.get(), row_, c);
    }

    PgStore& db_;
    std::string sql_;
    std::vector<std::optional<std::string>> values_;
    std::vector<Oid> types_;
    PgResult res_{nullptr, &PQclear};
    int row_ = -1;
};

class PgStore final : public StoreDb {
  public:
    static Result<std::unique_ptr<StoreDb>> open(const std::string& target, bool read_only) {
        std::unique_ptr<PgStore> st(new PgStore());
        st->where_ = redact_database(target);
        st->target_ = target;
        st->read_only_ = read_only;
        if (auto s = st->connect(); !s) return s.error();
        return std::unique_ptr<StoreDb>(std::move(st));
    }
    ~PgStore() override {
        if (c_) PQfinish(c_);
    }

    SqlEngine engine() const override { return SqlEngine::Postgres; }

    Status exec(const std::string& sql) override {
        if (auto s = usable(); !s) return s;
        PgResult r(PQexec(c_, translate(sql).c_str()), &PQclear);
        return result_status(r.get(), "SQL");
    }
    Result<StoreStmt> prepare(const std::string& sql, bool) override {
        int params = 0;
        std::string t = rewrite(sql, SqlEngine::Postgres, false, &params);
        return StoreStmt(std::make_unique<PgStmtImpl>(*this, std::move(t), params));
    }
    int64_t changes() const override { return changes_; }
    Result<int64_t> last_insert_id() override {
        PgResult r(PQexec(c_, "SELECT lastval()"), &PQclear);
        if (auto s = result_status(r.get(), "read the new row's id"); !s) return s.error();
        return static_cast<int64_t>(std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10));
    }
    Error error(int, const std::string& what) const override {
        return Error(what + " in " + where_ + ": " + (last_error_.empty() ? "unknown error" : last_error_));
    }
    Status apply_schema(std::span<const SchemaPart> parts) override;
    Result<std::optional<int>> schema_version(const std::string& name) override {
        auto q = prepare("SELECT value FROM meta WHERE key = ?", false);
        if (!q) return q.error();
        // A database without the table yet: no version.
        auto exists = prepare("SELECT to_regclass('meta') IS NOT NULL", false);
        if (!exists) return exists.error();
        if (exists->step() != SQLITE_ROW) return error(SQLITE_ERROR, "read schema version");
        if (exists->i64(0) == 0) return std::optional<int>();
        const int rc = q->bind(1, schema_version_key(name)).step();
        if (rc == SQLITE_ROW) return std::optional<int>(std::atoi(q->text(0).c_str()));
        if (rc == SQLITE_DONE) return std::optional<int>();
        return error(rc, "read schema version");
    }
    Status lock_exclusive(const std::string& table) override {
        return exec("LOCK TABLE " + table + " IN EXCLUSIVE MODE");
    }
    Result<bool> try_leader(const std::string& name) override {
        auto q = prepare("SELECT pg_try_advisory_lock(" + std::to_string(kLockClassNamed) + ", hashtext(?))", false);
        if (!q) return q.error();
        q->bind(1, "leader:" + name);
        const int rc = q->step();
        if (rc != SQLITE_ROW) return error(rc, "take the " + name + " lock");
        return q->i64(0) == 1;
    }
    std::string translate(const std::string& sql) const override {
        return rewrite(sql, SqlEngine::Postgres, false, nullptr);
    }

    // PgStmtImpl::step's statement; the result or null (last_error_ says why).
    PgResult run(const std::string& sql, const std::vector<std::optional<std::string>>& values,
                 const std::vector<Oid>& types) {
        constraint_ = false;
        if (auto s = usable(); !s) return PgResult(nullptr, &PQclear);
        std::vector<const char*> v(values.size());
        for (size_t i = 0; i < values.size(); i++) v[i] = values[i] ? values[i]->c_str() : nullptr;
        PgResult r(
            PQexecParams(c_, sql.c_str(), static_cast<int>(v.size()), types.data(), v.data(), nullptr, nullptr, 0),
            &PQclear);
        if (!result_status(r.get(), "SQL")) {
            const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
            constraint_ = state && state[0] == '2' && state[1] == '3';  // integrity_constraint_violation
            return PgResult(nullptr, &PQclear);
        }
        return r;
    }

  protected:
    Status begin_tx(TxMode mode, const std::string& lock) override {
        if (auto s = usable(); !s) return s;
        std::string sql = "BEGIN";
        if (mode == TxMode::Write) sql += "; SELECT pg_advisory_xact_lock(" + std::to_string(kLockClassNamed) + ", 0)";
        if (auto s = exec(sql); !s) return s;
        in_tx_ = true;
        if (mode == TxMode::Agent) {
            auto q =
                prepare("SELECT pg_advisory_xact_lock(" + std::to_string(kLockClassAgent) + ", hashtext(?))", false);
            if (!q) return q.error();
            if (auto s = check(q->bind(1, lock).step(), "lock agent " + lock); !s) {
                (void)end_tx(false);
                return s;
            }
        }
        return Ok{};
    }
    Status end_tx(bool commit) override {
        in_tx_ = false;
        if (PQstatus(c_) != CONNECTION_OK) return commit ? error(SQLITE_ERROR, "commit") : Status(Ok{});
        PgResult r(PQexec(c_, commit ? "COMMIT" : "ROLLBACK"), &PQclear);
        if (auto s = result_status(r.get(), commit ? "commit" : "roll back"); !s) return s;
        // A COMMIT of a transaction that failed is answered ROLLBACK.
        if (commit && std::string(PQcmdStatus(r.get())) == "ROLLBACK") {
            last_error_ = "the transaction was rolled back";
            return error(SQLITE_ERROR, "commit");
        }
        return Ok{};
    }

  private:
    PgStore() = default;

    Status connect() {
        if (c_) PQfinish(c_);
        // connect_timeout first: the target's own value, if it has one, comes after it and wins.
        const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
        const char* vals[] = {"10", "peakflow-collector", target_.c_str(), nullptr};
        c_ = PQconnectdbParams(keys, vals, 1);
        if (!c_) return Error("cannot connect to " + where_ + ": libpq could not allocate a connection");
        if (PQstatus(c_) != CONNECTION_OK)
            return Error("cannot connect to " + where_ + ": " + pg_one_line(PQerrorMessage(c_)));
        // NOTICEs ("relation ... already exists, skipping") are not news for the logs.
        PQsetNoticeProcessor(
            c_, [](void*, const char*) {}, nullptr);
        std::string setup = "SET client_min_messages = warning; SET statement_timeout = '60s'";
        if (read_only_) setup += "; SET default_transaction_read_only = on";
        PgResult r(PQexec(c_, setup.c_str()), &PQclear);
        return result_status(r.get(), "set up the session");
    }

    // The connection, reconnected when it broke between transactions (a server restart):
    // a statement inside a transaction that lost it fails, and the caller's next one
    // starts again on a new connection.
    Status usable() {
        if (PQstatus(c_) == CONNECTION_OK) return Ok{};
        if (in_tx_) {
            last_error_ = "the connection to the server was lost";
            return error(SQLITE_ERROR, "SQL");
        }
        spdlog::warn("database {}: connection lost, connecting again", where_);
        if (auto s = connect(); !s) {
            last_error_ = s.error().message();
            return s;
        }
        return Ok{};
    }

    Status result_status(PGresult* r, const std::string& what) {
        const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            const char* n = PQcmdTuples(r);
            changes_ = n && *n ? std::strtoll(n, nullptr, 10) : 0;
            return Ok{};
        }
        last_error_ = pg_one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c_));
        return error(SQLITE_ERROR, what);
    }

    PGconn* c_ = nullptr;
    std::string target_;
    bool read_only_ = false;
    bool in_tx_ = false;
    int64_t changes_ = 0;
    std::string last_error_;

  public:
    bool constraint_ = false;  // the last statement failed on a constraint (SQLITE_CONSTRAINT)
};

int PgStmtImpl::step() {
    if (!res_) {
        res_ = db_.run(sql_, values_, types_);
        if (!res_) return db_.constraint_ ? SQLITE_CONSTRAINT : SQLITE_ERROR;
        row_ = 0;
    } else {
        row_++;
    }
    return row_ < PQntuples(res_.get()) ? SQLITE_ROW : SQLITE_DONE;
}

Status PgStore::apply_schema(std::span<const SchemaPart> parts) {
    // Two collectors starting together: one brings the schema up, the other waits and finds
    // it done. DDL is transactional here: a failed part leaves nothing behind.
    auto tx = begin(TxMode::Write);
    if (!tx) return tx.error();
    if (auto s = exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"); !s) return s;
    std::vector<std::string> names;
    for (const auto& p : parts)
        if (std::find(names.begin(), names.end(), p.name) == names.end()) names.emplace_back(p.name);
    for (const auto& name : names) {
        auto recorded = schema_version(name);
        if (!recorded) return recorded.error();
        const int version = recorded->value_or(0);
        int known = 0;
        for (const auto& p : parts)
            if (p.name == name) known = std::max(known, p.version);
        if (version > known)
            return Error("database " + where_ + " has " + name + " schema " + std::to_string(version) +
                         ", newer than this peakflow-collector knows (" + std::to_string(known) + ")");
        for (const auto& p : parts) {
            if (p.name != name || p.version <= version) continue;
            PgResult r(PQexec(c_, rewrite(p.sql, SqlEngine::Postgres, true, nullptr).c_str()), &PQclear);
            if (auto s = result_status(r.get(), name + " schema " + std::to_string(p.version)); !s) return s;
        }
        if (version == known) continue;
        // As on SQLite: creating the tables is no news, a migration is.
        if (version > 0) spdlog::info("database {}: {} schema {} -> {}", where_, name, version, known);
        auto w = prepare(
            "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", false);
        if (!w) return w.error();
        w->bind(1, schema_version_key(name)).bind(2, std::to_string(known));
        if (auto c = check(w->step(), "write schema version"); !c) return c;
    }
    return tx->commit();
}

}  // namespace

Result<std::unique_ptr<StoreDb>> StoreDb::open(const std::string& database, bool read_only) {
    if (is_postgres_target(database)) return PgStore::open(database, read_only);
    return SqliteStore::open(database, read_only);
}

}  // namespace pf
