#pragma once
// A real PostgreSQL 15 for the tests: initdb and pg_ctl as user `nobody` in a temporary
// directory, the server on a unix socket in that directory only (no TCP), fsync off. It is
// stopped and its directory removed when the test process ends.
//
// PF_TEST_STORE=postgresql runs the collector's tests against it: collector_database(dir)
// gives each test directory a database of its own instead of DIR/collector.db (ctest's
// `unit_postgresql` runs those suites so; docs/testing.md).

#include <string>

namespace pf::testing {

inline constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

class TestPostgres {
  public:
    // Empty when it runs; else why it cannot (not root, PostgreSQL not installed, initdb
    // or pg_ctl failed: with their output).
    static std::string start();
    // The running server (start() first).
    static TestPostgres& get();

    // A new empty database; its libpq connection string (key=value).
    std::string create_database(const std::string& hint = "t");
    // libpq connection string of database `db`.
    std::string conninfo(const std::string& db) const;
    const std::string& dir() const { return dir_; }
    int port() const { return port_; }

    // Stopped (mode: smart | fast | immediate) and started again, data kept.
    void restart(const char* mode = "fast");
    // A SQL statement via psql as the superuser; its output, or "ERROR: ..." .
    std::string psql(const std::string& db, const std::string& sql) const;

    ~TestPostgres();

  private:
    TestPostgres() = default;
    int as_nobody(const std::string& cmd) const;
    std::string log() const;
    std::string dir_;
    int port_ = 0;
    int next_ = 0;
    bool running_ = false;
};

// The collector's tests against PostgreSQL (PF_TEST_STORE=postgresql)?
bool store_on_postgres();

// Where a test in directory `dir` keeps its collector database: DIR/collector.db, or under
// PF_TEST_STORE=postgresql a database of the test server made for that directory on its
// first use (the same one for every later call with the same dir).
std::string collector_database(const std::string& dir);

// Everything the collector database of `dir` holds, as bytes to search for secrets: the
// SQLite file and its WAL, or a pg_dump of the PostgreSQL database.
std::string collector_database_contents(const std::string& dir);

}  // namespace pf::testing
