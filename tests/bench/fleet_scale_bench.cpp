// The collector at scale, on SQLite and on a real PostgreSQL 15 (started here as in the
// tests: initdb and pg_ctl as nobody in a temporary directory; needs root, else the
// PostgreSQL rows are skipped). Figures, never pass/fail:
//
//   ingest   8 client threads send reports back to back for SECONDS (one sealed 5-minute
//            bucket and the open one, 11 rows each: the interface and 10 peer MACs, as the
//            agents do every 60 s) to one collector on SQLite, one on PostgreSQL, and two
//            on one PostgreSQL database (the clients alternate): reports/s, latency p50 and
//            p99, and the agents at a 60 s interval that rate carries.
//   queries  AGENTS agents x DAYS days of 5-minute rows (the interface totals: 288 a day
//            each) written straight into the store's tables, then the dashboard's JSON over
//            HTTP with a user's API token, 20 times each: the fleet overview (today, the
//            month, the last 24 hours of every agent), one agent's month, the agents list.
//            The past days' roll-ups (fleet_days), which the offline watch makes in the
//            background, are made first and timed apart.
//
//   pf_fleet_scale_bench [--agents N=1000] [--days D=35] [--seconds S=10] [--only ingest|queries]
//                        [--engine sqlite|postgresql]
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../unit/test_postgres.hpp"
#include "peakflow/accounting/usage_source.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/fleet/fleet_users.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace pf;

namespace {

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

std::unique_ptr<CollectorServer> start(const std::string& database, int64_t now) {
    CollectorOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.database = database;
    o.timezone = "Asia/Shanghai";
    o.clock = [now] { return now; };
    o.watch = false;
    auto s = CollectorServer::start(o);
    if (!s) {
        std::fprintf(stderr, "collector on %s: %s\n", database.c_str(), s.error().message().c_str());
        std::exit(1);
    }
    return std::move(*s);
}

std::vector<WireBucket> rows_of(int64_t ts, uint64_t base) {
    std::vector<WireBucket> rows;
    for (int m = -1; m < 10; ++m) {
        WireBucket b;
        b.iface = "eth0";
        if (m >= 0) {
            char mac[18];
            std::snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", m);
            b.mac = mac;
        }
        b.ts = ts;
        b.rx_bytes = base + 1000 * static_cast<uint64_t>(m + 2);
        b.rx_packets = base / 1000 + 1;
        b.tx_bytes = base / 2;
        b.tx_packets = base / 2000 + 1;
        rows.push_back(std::move(b));
    }
    return rows;
}

void ingest(const char* label, const std::vector<std::string>& databases, int seconds) {
    const int64_t now = static_cast<int64_t>(::time(nullptr)) / 300 * 300;
    std::vector<std::unique_ptr<CollectorServer>> servers;
    for (const auto& d : databases) servers.push_back(start(d, now + 60));
    constexpr int kClients = 8, kAgentsPerClient = 25;
    struct A {
        std::string name, token;
        int64_t seq = 0;
    };
    std::vector<std::vector<A>> agents(kClients);
    for (int c = 0; c < kClients; c++)
        for (int i = 0; i < kAgentsPerClient; i++) {
            A a;
            a.name = "agent-" + std::to_string(c * kAgentsPerClient + i);
            a.token = servers[0]->store().create_token(a.name, now).take();
            agents[c].push_back(std::move(a));
        }
    std::atomic<bool> stop{false};
    std::vector<std::vector<double>> lat(kClients);
    std::atomic<int> failed{0};
    std::vector<std::thread> th;
    const auto t0 = Clock::now();
    for (int c = 0; c < kClients; c++)
        th.emplace_back([&, c] {
            for (size_t k = 0; !stop; k++) {
                A& a = agents[c][k % agents[c].size()];
                WireReport r;
                r.agent.name = a.name;
                r.agent.host = a.name + ".bench";
                r.agent.node = "bench";
                r.agent.version = "bench";
                r.agent.boot_id = "boot";
                r.agent.interval = 60;
                r.agent.time = now;
                r.agent.interfaces.push_back({"eth0", "02:00:00:00:ff:01", true});
                r.spool = std::string(32, 'a');
                WireBatch b;
                b.stream = "buckets";
                b.seq = a.seq + 1;
                b.buckets = rows_of(now - 300 * (1 + int64_t(a.seq % 2000)), k);
                r.batches.push_back(std::move(b));
                r.live = rows_of(now, k);
                CollectorServer& to = *servers[k % servers.size()];
                HttpRequest rq;
                rq.method = HttpMethod::Post;
                rq.url = "http://127.0.0.1:" + std::to_string(to.port()) + "/api/v1/agents/report";
                rq.headers = {"Authorization: Bearer " + a.token, "Content-Type: application/json",
                              "Content-Encoding: gzip"};
                rq.body = gzip_compress(render_report(r));
                const auto s0 = Clock::now();
                auto res = http_request(rq);
                lat[c].push_back(ms_since(s0));
                if (res && res->status == 200)
                    a.seq++;
                else
                    failed++;
            }
        });
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
    for (auto& t : th) t.join();
    const double secs = ms_since(t0) / 1000;
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    const double rate = static_cast<double>(all.size()) / secs;
    std::printf("  %-34s %8.0f %9.1f %9.1f %12.0f %7d\n", label, rate, percentile(all, 0.5), percentile(all, 0.99),
                rate * 60, failed.load());
}

// AGENTS x DAYS x 288 rows of interface totals, written in one transaction (a statement per
// agent), and the fleet's 5-minute totals of them.
void fill(FleetStore& store, int agents, int days, int64_t now) {
    const int64_t first = now - int64_t(days) * 86400;
    const int64_t n = int64_t(days) * 288;
    for (int i = 0; i < agents; i++) store.create_token("agent-" + std::to_string(i), first).take();
    auto must = [](StoreDb& db, int rc, const char* what) {
        if (rc != SQLITE_DONE) {
            std::fprintf(stderr, "fill: %s\n", db.error(rc, what).message().c_str());
            std::exit(1);
        }
    };
    store.with_db([&](StoreDb& db) {
        auto tx = db.begin().take();
        for (int i = 0; i < agents; i++) {
            auto q = db.prepare(
                           "INSERT INTO fleet_buckets(agent, iface, mac, ts, peak, rx_bytes, rx_packets, tx_bytes, "
                           "tx_packets) WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM t WHERE k < ?1) "
                           "SELECT ?2, 'eth0', ?3, ?4 + k * 300, CASE WHEN k % 288 >= 120 THEN 1 ELSE 0 END, "
                           "1000 + (k * 7919) % 100000, 10 + k % 100, 500 + (k * 104729) % 50000, 5 + k % 50 FROM t")
                         .take();
            q.bind(1, n - 1).bind(2, "agent-" + std::to_string(i)).bind(3, kIfaceTotal).bind(4, first);
            must(db, q.step(), "insert buckets");
        }
        auto p = db.prepare(
                       "INSERT INTO fleet_points(ts, peak, rx_bytes, rx_packets, tx_bytes, tx_packets) SELECT ts, "
                       "peak, SUM(rx_bytes), SUM(rx_packets), SUM(tx_bytes), SUM(tx_packets) FROM fleet_buckets "
                       "WHERE mac = -1 GROUP BY ts, peak")
                     .take();
        must(db, p.step(), "insert points");
        auto u = db.prepare(
                       "UPDATE fleet_agents SET node = 'bench', host = name, iface = 'eth0', "
                       "mac = '02:00:00:00:ff:01', first_seen = ?1, last_seen = ?2, state = 'online'")
                     .take();
        u.bind(1, first).bind(2, now - 30);
        must(db, u.step(), "update agents");
        (void)tx.commit();
        // PostgreSQL: the planner's statistics and the visibility map (index-only scans), as
        // autovacuum would have them on a running database.
        if (db.engine() == SqlEngine::Postgres) (void)db.exec("VACUUM ANALYZE");
        // SQLite: the WAL the one big transaction left checkpointed into the file, as the
        // running collector's automatic checkpoints keep it.
        if (db.engine() == SqlEngine::Sqlite) (void)db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        return 0;
    });
}

void queries(const char* label, const std::string& database, int agents, int days) {
    const int64_t now = static_cast<int64_t>(::time(nullptr)) / 300 * 300;
    auto t_fill = Clock::now();
    {
        auto store = FleetStore::open(database).take();
        fill(*store, agents, days, now);
    }
    const double fill_s = ms_since(t_fill) / 1000;
    auto server = start(database, now);
    auto users = FleetUsers::open(server->store(), Argon2Params{1, 1024, 1}).take();
    users->add("bench", "admin", "bench-password-1", now).take();
    const std::string token = users->create_token("bench", now, std::nullopt).take();
    auto get = [&](const std::string& path) {
        HttpRequest rq;
        rq.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
        rq.headers = {"Authorization: Bearer " + token};
        rq.max_response_bytes = 64 << 20;
        const auto t0 = Clock::now();
        auto r = http_request(rq);
        const double ms = ms_since(t0);
        if (!r || r->status != 200) {
            std::fprintf(stderr, "GET %s: %s\n", path.c_str(), r ? r->body.c_str() : r.error().message().c_str());
            std::exit(1);
        }
        return ms;
    };
    // What the offline watch does in the background on a running collector: the past days'
    // roll-ups (fleet_days) made before the first reader needs them.
    const auto t_settle = Clock::now();
    const int settled = server->store().settle_days(now - 40 * 86400, now).take();
    const double settle_ms = ms_since(t_settle);
    std::printf("  %s: %d agents x %d days = %lld rows, written in %.0f s; %d past days rolled up in %.0f ms\n", label,
                agents, days, static_cast<long long>(agents) * days * 288, fill_s, settled, settle_ms);
    const Calendar cal = Calendar::create("Asia/Shanghai", {PeakWindow{}}, 1).take();
    const std::string month = cal.billing_month(now).str();
    for (const auto& [what, path] : std::vector<std::pair<std::string, std::string>>{
             {"overview", "/api/v1/overview"},
             {"agent's month", "/api/v1/traffic?agent=agent-7&month=" + month},
             {"agent's day", "/api/v1/traffic?agent=agent-7"},
             {"agents list", "/api/v1/agents"}}) {
        std::vector<double> v;
        for (int i = 0; i < 20; i++) v.push_back(get(path));
        std::printf("    %-16s p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms\n", what.c_str(), percentile(v, 0.5),
                    percentile(v, 0.95), *std::max_element(v.begin(), v.end()));
    }
}

}  // namespace

int main(int argc, char** argv) {
    int agents = 1000, days = 35, seconds = 10;
    std::string only, engine;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--agents")
            agents = std::atoi(v.c_str());
        else if (k == "--days")
            days = std::atoi(v.c_str());
        else if (k == "--seconds")
            seconds = std::atoi(v.c_str());
        else if (k == "--only")
            only = v;
        else if (k == "--engine")
            engine = v;
        else {
            std::fprintf(stderr,
                         "usage: pf_fleet_scale_bench [--agents N] [--days D] [--seconds S] "
                         "[--only ingest|queries] [--engine sqlite|postgresql]\n");
            return 2;
        }
    }
    spdlog::set_level(spdlog::level::warn);
    char tmpl[] = "/tmp/pf-fleet-scale.XXXXXX";
    const fs::path dir = mkdtemp(tmpl);
    const std::string pg_why = engine == "sqlite" ? "not asked for" : testing::TestPostgres::start();
    const bool pg = pg_why.empty();
    if (!pg) std::printf("PostgreSQL rows skipped: %s\n", pg_why.c_str());
    std::printf("fleet scale bench (%u CPUs)\n", std::thread::hardware_concurrency());
    if (only.empty() || only == "ingest") {
        std::printf("ingest, %d s each, 8 clients x 25 agents, 22 rows a report:\n", seconds);
        std::printf("  %-34s %8s %9s %9s %12s %7s\n", "", "reports/s", "p50 ms", "p99 ms", "agents@60s", "failed");
        if (engine != "postgresql") ingest("SQLite, 1 collector", {(dir / "ingest.db").string()}, seconds);
        if (pg) {
            ingest("PostgreSQL, 1 collector", {testing::TestPostgres::get().create_database("ingest")}, seconds);
            const std::string shared = testing::TestPostgres::get().create_database("ingest");
            ingest("PostgreSQL, 2 collectors, 1 database", {shared, shared}, seconds);
        }
    }
    if (only.empty() || only == "queries") {
        std::printf("dashboard queries (HTTP, 20 each):\n");
        if (engine != "postgresql") queries("SQLite", (dir / "queries.db").string(), agents, days);
        if (pg) queries("PostgreSQL", testing::TestPostgres::get().create_database("queries"), agents, days);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 0;
}
