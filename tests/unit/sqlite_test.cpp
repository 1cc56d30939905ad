// The SQLite layer against real files in a fresh temporary directory per test: what open()
// sets, how failures read, the transaction guard, statements that do not prepare, and the
// schema registry's versions.
#include "peakflow/common/sqlite.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace pf {
namespace {

class Sqlite : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf-sqlite-test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/h.db";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    SqliteDb open(SqliteOptions o = {}) {
        auto db = SqliteDb::open(path_, o);
        if (!db) {
            ADD_FAILURE() << db.error().message();
            return SqliteDb();
        }
        return std::move(*db);
    }
    SqliteDb create() {
        SqliteOptions o;
        o.mode = SqliteMode::Create;
        return open(o);
    }

    // Every row as "a|b", in the query's order, through a second connection.
    std::vector<std::string> rows(const std::string& sql) {
        SqliteDb db = open();
        auto q = db.prepare(sql);
        if (!q) {
            ADD_FAILURE() << q.error().message();
            return {};
        }
        std::vector<std::string> out;
        while (q->step() == SQLITE_ROW) {
            std::string row;
            for (int c = 0; c < sqlite3_column_count(q->get()); c++) row += (c ? "|" : "") + q->text(c);
            out.push_back(row);
        }
        return out;
    }

    std::string dir_, path_;
};

TEST_F(Sqlite, OpenSetsTheModeWalAndSynchronousItIsAskedFor) {
    SqliteOptions o;
    o.mode = SqliteMode::Create;
    o.wal = true;
    o.synchronous = SqliteSync::Full;
    SqliteDb db = open(o);
    ASSERT_TRUE(db);
    EXPECT_TRUE(fs::is_regular_file(path_));
    auto q = db.prepare("PRAGMA journal_mode");
    ASSERT_TRUE(q);
    ASSERT_EQ(q->step(), SQLITE_ROW);
    EXPECT_EQ(q->text(0), "wal");
    auto s = db.prepare("PRAGMA synchronous");
    ASSERT_TRUE(s);
    ASSERT_EQ(s->step(), SQLITE_ROW);
    EXPECT_EQ(s->i64(0), 2);  // FULL

    SqliteOptions ro;
    ro.mode = SqliteMode::ReadOnly;
    SqliteDb r = open(ro);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r.exec("CREATE TABLE t(x)"));
}

// Under SysV and OpenWrt daemons start with umask 022: the database, its -wal and -shm are
// 0600 all the same, and a file an older version left readable by others is closed to them.
TEST_F(Sqlite, TheDatabaseAndItsWalAreOwnerOnlyWhateverTheUmask) {
    const mode_t old_umask = ::umask(022);
    auto mode = [](const std::string& f) {
        struct stat st {};
        return ::stat(f.c_str(), &st) == 0 ? int(st.st_mode & 07777) : -1;
    };
    {
        SqliteOptions o;
        o.mode = SqliteMode::Create;
        o.wal = true;
        SqliteDb db = open(o);
        ASSERT_TRUE(db);
        ASSERT_TRUE(db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)"));
        EXPECT_EQ(mode(path_), 0600);
        EXPECT_EQ(mode(path_ + "-wal"), 0600);
        EXPECT_EQ(mode(path_ + "-shm"), 0600);
    }
    ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
    {
        SqliteOptions o;
        o.mode = SqliteMode::ReadWrite;
        o.wal = true;
        SqliteDb db = open(o);
        ASSERT_TRUE(db);
        ASSERT_TRUE(db.exec("INSERT INTO t VALUES (2)"));
        EXPECT_EQ(mode(path_), 0600);
        EXPECT_EQ(mode(path_ + "-wal"), 0600);
        EXPECT_EQ(mode(path_ + "-shm"), 0600);
    }
    ::umask(old_umask);
}

TEST_F(Sqlite, FailuresReadWithThePathOrTheContextTheOwnerGave) {
    SqliteOptions o;  // read-write: the file must exist
    auto missing = SqliteDb::open(path_, o);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "cannot open database " + path_ + ": unable to open database file");
    o.open_context = "cannot open the outbox in " + path_;
    missing = SqliteDb::open(path_, o);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "cannot open the outbox in " + path_ + ": unable to open database file");

    SqliteDb db = create();
    auto s = db.exec("INSERT INTO nowhere VALUES(1)");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message(), "SQL in " + path_ + ": no such table: nowhere");
    SqliteOptions c;
    c.error_context = "host history";
    SqliteDb ctx = open(c);
    s = ctx.exec("INSERT INTO nowhere VALUES(1)");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message(), "host history: no such table: nowhere");
}

TEST_F(Sqlite, AStatementThatDoesNotPrepareIsAnErrorNamingItsSql) {
    SqliteDb db = create();
    auto q = db.prepare("SELECT x FROM nowhere");
    ASSERT_FALSE(q);
    EXPECT_EQ(q.error().message(), "prepare \"SELECT x FROM nowhere\" in " + path_ + ": no such table: nowhere");
    auto empty = db.prepare("-- nothing");
    ASSERT_FALSE(empty);
}

TEST_F(Sqlite, StatementsBindAndReadTypedValues) {
    SqliteDb db = create();
    ASSERT_TRUE(db.exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, n REAL)"));
    auto ins = db.prepare("INSERT INTO t VALUES(?, ?, ?, ?)");
    ASSERT_TRUE(ins);
    const uint64_t big = 1ull << 40;
    ins->bind(1, big).bind(2, 2.5).bind(3, std::string("a\0b", 3)).bind(4, std::optional<double>());
    EXPECT_EQ(ins->step(), SQLITE_DONE);
    ins->reset();
    ins->bind(1, -1).bind(2, 0.0).bind(3, "x").bind(4, std::optional<double>(1.5));
    EXPECT_EQ(ins->step(), SQLITE_DONE);
    auto q = db.prepare("SELECT i, d, s, n FROM t ORDER BY rowid");
    ASSERT_TRUE(q);
    ASSERT_EQ(q->step(), SQLITE_ROW);
    EXPECT_EQ(q->i64(0), static_cast<int64_t>(big));
    EXPECT_EQ(q->f64(1), 2.5);
    EXPECT_EQ(q->text(2), std::string("a\0b", 3));
    EXPECT_TRUE(q->is_null(3));
    ASSERT_EQ(q->step(), SQLITE_ROW);
    EXPECT_EQ(q->i64(0), -1);
    EXPECT_EQ(q->text(2), "x");
    EXPECT_EQ(q->f64(3), 1.5);
    EXPECT_EQ(q->step(), SQLITE_DONE);
}

TEST_F(Sqlite, ATransactionNotCommittedIsRolledBackAtScopeExit) {
    SqliteDb db = create();
    ASSERT_TRUE(db.exec("CREATE TABLE t(x)"));
    {
        auto tx = SqliteTransaction::begin(db);
        ASSERT_TRUE(tx);
        ASSERT_TRUE(db.exec("INSERT INTO t VALUES(1)"));
    }
    EXPECT_TRUE(rows("SELECT x FROM t").empty());
    EXPECT_NE(sqlite3_get_autocommit(db.get()), 0) << "the transaction is still open";
    {
        auto tx = SqliteTransaction::begin(db, SqliteTransaction::Mode::Deferred);
        ASSERT_TRUE(tx);
        ASSERT_TRUE(db.exec("INSERT INTO t VALUES(2)"));
        ASSERT_TRUE(tx->commit());
    }
    EXPECT_EQ(rows("SELECT x FROM t"), std::vector<std::string>{"2"});
}

TEST_F(Sqlite, BeginImmediateFailsOnALockedDatabase) {
    SqliteDb db = create();
    SqliteOptions o;
    o.busy_timeout_ms = 10;
    SqliteDb other = open(o);
    ASSERT_TRUE(db.exec("BEGIN EXCLUSIVE"));
    auto tx = SqliteTransaction::begin(other);
    ASSERT_FALSE(tx);
    EXPECT_EQ(tx.error().message(), "SQL in " + path_ + ": database is locked");
    ASSERT_TRUE(db.exec("ROLLBACK"));
}

TEST_F(Sqlite, SchemaPartsAboveTheRecordedVersionRunAndTheNewestIsRecorded) {
    constexpr SchemaPart v1[] = {
        {"store", 1, "CREATE TABLE a(x)"},
        {"outbox", 1, "CREATE TABLE b(x)"},
    };
    constexpr SchemaPart v2[] = {
        {"store", 1, "CREATE TABLE a(x)"},
        {"outbox", 1, "CREATE TABLE b(x)"},
        {"outbox", 2, "ALTER TABLE b ADD COLUMN y"},
    };
    SqliteDb db = create();
    ASSERT_TRUE(apply_schema(db, v1));
    EXPECT_EQ(rows("SELECT key, value FROM meta ORDER BY key"),
              (std::vector<std::string>{"schema_version|1", "schema_version.outbox|1"}));
    ASSERT_TRUE(apply_schema(db, v1)) << "an applied part is not run again";
    ASSERT_TRUE(apply_schema(db, v2));
    EXPECT_EQ(rows("SELECT key, value FROM meta ORDER BY key"),
              (std::vector<std::string>{"schema_version|1", "schema_version.outbox|2"}));
    EXPECT_EQ(rows("SELECT name FROM pragma_table_info('b') ORDER BY cid"), (std::vector<std::string>{"x", "y"}));
    auto v = read_schema_version(db, "outbox");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, std::optional<int>(2));
    auto none = read_schema_version(db, "reports");
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);

    auto newer = apply_schema(db, v1);
    ASSERT_FALSE(newer);
    EXPECT_EQ(newer.error().message(),
              "database " + path_ + " has outbox schema 2, newer than this peakflow-bpf knows (1)");
}

TEST_F(Sqlite, SchemaPartsApplyInOneTransaction) {
    constexpr SchemaPart parts[] = {
        {"reports", 1, "CREATE TABLE r(x)"},
        {"customer_report", 1, "CREATE TABLE c(x); INSERT INTO nowhere VALUES(1)"},
    };
    SqliteDb db = create();
    auto s = apply_schema(db, parts);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message(), "SQL in " + path_ + ": no such table: nowhere");
    EXPECT_EQ(rows("SELECT name FROM sqlite_master ORDER BY name"), std::vector<std::string>{})
        << "nothing of the first part is left, not even the meta table";
}

TEST_F(Sqlite, ReadingAVersionWithoutAMetaTableSaysSo) {
    SqliteDb db = create();
    auto v = read_schema_version(db, "store");
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().message(), "read schema version in " + path_ + ": no such table: meta");
}

}  // namespace
}  // namespace pf
