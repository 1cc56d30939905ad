#include "test_postgres.hpp"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace pf::testing {

namespace {

std::mutex g_mu;
std::unique_ptr<TestPostgres> g_server;
std::string g_failed;

// What `cmd` (a shell command) writes to stdout.
std::string output_of(const std::string& cmd) {
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        ::pclose(p);
    }
    return out;
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace

int TestPostgres::as_nobody(const std::string& cmd) const {
    return std::system(("cd " + dir_ + " && setpriv --reuid=nobody --regid=nogroup --clear-groups -- " + kPgBin + "/" +
                        cmd + " >>" + dir_ + "/pg.log 2>&1")
                           .c_str());
}

std::string TestPostgres::log() const {
    std::ifstream in(dir_ + "/pg.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string TestPostgres::start() {
    std::lock_guard<std::mutex> l(g_mu);
    if (g_server) return "";
    if (!g_failed.empty()) return g_failed;
    if (::geteuid() != 0)
        return g_failed = "needs root: runs PostgreSQL's initdb and pg_ctl as user nobody (CI runs as root)";
    if (!std::filesystem::exists(std::string(kPgBin) + "/initdb"))
        return g_failed = std::string(kPgBin) + "/initdb missing: apt-get install postgresql (scripts/install-deps.sh)";
    std::unique_ptr<TestPostgres> s(new TestPostgres());
    char tmpl[] = "/tmp/pf_pg_XXXXXX";
    if (!mkdtemp(tmpl)) return g_failed = "mkdtemp failed";
    s->dir_ = tmpl;
    // The socket's name only: the server listens on no TCP port.
    s->port_ = 50000 + static_cast<int>(::getpid() % 10000);
    if (std::system(("chown nobody:nogroup " + s->dir_).c_str()) != 0) return g_failed = "chown failed";
    if (s->as_nobody("initdb -D " + s->dir_ + "/data -U pf -A trust -N -E UTF8 --locale=C") != 0)
        return g_failed = "initdb failed: " + s->log();
    s->running_ = true;  // from here the destructor stops it, whatever happens
    g_server = std::move(s);
    g_server->restart("none");
    if (!g_server->running_) {
        g_failed = "pg_ctl start failed: " + g_server->log();
        g_server.reset();
        return g_failed;
    }
    return "";
}

TestPostgres& TestPostgres::get() {
    return *g_server;
}

void TestPostgres::restart(const char* mode) {
    if (std::string(mode) != "none") as_nobody("pg_ctl -D " + dir_ + "/data -w -m " + mode + " stop");
    running_ =
        as_nobody("pg_ctl -D " + dir_ + "/data -w -t 30 -l " + dir_ + "/server.log -o \"-k " + dir_ + " -p " +
                  std::to_string(port_) + " -c listen_addresses= -c fsync=off -c max_connections=200\" start") == 0;
}

TestPostgres::~TestPostgres() {
    if (dir_.empty()) return;
    if (running_) as_nobody("pg_ctl -D " + dir_ + "/data -w -m immediate stop");
    // A server pg_ctl could not stop: its postmaster, by the pid it wrote.
    std::ifstream pid(dir_ + "/data/postmaster.pid");
    if (long p = 0; pid >> p && p > 0 && ::kill(static_cast<pid_t>(p), 0) == 0) ::kill(static_cast<pid_t>(p), SIGKILL);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string TestPostgres::conninfo(const std::string& db) const {
    return "host=" + dir_ + " port=" + std::to_string(port_) + " user=pf dbname=" + db;
}

std::string TestPostgres::create_database(const std::string& hint) {
    std::string name;
    {
        std::lock_guard<std::mutex> l(g_mu);
        name = hint + "_" + std::to_string(++next_);
    }
    psql("postgres", "CREATE DATABASE " + name);
    return conninfo(name);
}

std::string TestPostgres::psql(const std::string& db, const std::string& sql) const {
    const std::string cmd = "/usr/bin/psql -X -q -A -t -v ON_ERROR_STOP=1 -h " + dir_ + " -p " + std::to_string(port_) +
                            " -U pf -d " + db + " -c " + shell_quote(sql) + " 2>&1";
    std::string out = output_of(cmd);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

bool store_on_postgres() {
    const char* v = std::getenv("PF_TEST_STORE");
    return v && std::string(v) == "postgresql";
}

namespace {
std::map<std::string, std::string> g_made;  // collector_database: test directory -> database
std::mutex g_made_mu;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

std::string collector_database_contents(const std::string& dir) {
    if (!store_on_postgres()) return read_file(dir + "/collector.db") + read_file(dir + "/collector.db-wal");
    std::string db;
    {
        std::lock_guard<std::mutex> l(g_made_mu);
        db = g_made.at(dir);
    }
    const std::string cmd = "/usr/bin/pg_dump '" + db + "' 2>&1";
    return output_of(cmd);
}

std::string collector_database(const std::string& dir) {
    if (!store_on_postgres()) return dir + "/collector.db";
    auto& made = g_made;
    std::lock_guard<std::mutex> l(g_made_mu);
    auto it = made.find(dir);
    if (it != made.end()) return it->second;
    if (auto why = TestPostgres::start(); !why.empty()) {
        std::fprintf(stderr, "PF_TEST_STORE=postgresql: %s\n", why.c_str());
        std::abort();
    }
    return made[dir] = TestPostgres::get().create_database("collector");
}

}  // namespace pf::testing
