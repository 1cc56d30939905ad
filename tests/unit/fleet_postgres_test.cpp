// Two collectors on one real PostgreSQL database (test_postgres.hpp), as a large fleet
// runs them: an agent switching between them in the middle of its backlog, both sent the
// same batches at the same moment, and both running the offline watch. Every batch counts
// once, the totals are exact, an agent going quiet raises one alert, and the second
// collector takes the watch over when the first stops.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "fleet_test_support.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

constexpr int64_t kT0 = 1796000000;  // 2026-11-30 00:53:20 UTC
constexpr int64_t kTs = 1795999800;  // a 5-minute bucket before it

WireFlowPair pair_row(uint64_t bytes) {
    WireFlowPair f;
    f.ts = kTs;
    f.iface = "eth0";
    f.src = "198.18.0.1";
    f.dst = "198.18.0.2";
    f.proto = 6;
    f.port = 6379;
    f.bytes = bytes;
    f.packets = 1;
    f.flows = 1;
    return f;
}

// A report with batch `seq` of the agent's flows stream (one pair, seq x 1000 bytes) and
// of its buckets stream (eth0's bucket seq x 300 s back, seq x 100 bytes received).
WireReport report(int64_t seq, int64_t time) {
    WireReport r = testing::agent_report("nas-1", time);
    r.batches.push_back(testing::batch_of("flows", &WireBatch::flows, seq, {pair_row(uint64_t(seq) * 1000)}));
    WireBucket b;
    b.iface = "eth0";
    b.ts = kTs - seq * 300;
    b.rx_bytes = uint64_t(seq) * 100;
    b.rx_packets = 1;
    r.batches.push_back(testing::bucket_batch(seq, {b}));
    return r;
}

class FleetPostgres : public ::testing::Test {
  protected:
    void SetUp() override {
        if (auto why = testing::TestPostgres::start(); !why.empty()) GTEST_SKIP() << why;
        database_ = testing::TestPostgres::get().create_database("two_collectors");
        clock_ = kT0;
        a_ = start();
        b_ = start();
        token_ = a_->store().create_token("nas-1", kT0).take();
    }
    std::unique_ptr<CollectorServer> start() {
        CollectorOptions o;
        o.host = "127.0.0.1";
        o.port = 0;
        o.database = database_;
        o.timezone = "UTC";
        o.clock = [this] { return clock_.load(); };
        o.watch = false;
        o.threads = 4;
        return CollectorServer::start(o).take();
    }
    int send(CollectorServer& to, const WireReport& r) {
        HttpRequest rq;
        rq.method = HttpMethod::Post;
        rq.url = "http://127.0.0.1:" + std::to_string(to.port()) + "/api/v1/agents/report";
        rq.body = gzip_compress(render_report(r));
        rq.headers = {"Authorization: Bearer " + token_, "Content-Encoding: gzip", "Content-Type: application/json"};
        auto res = http_request(rq);
        EXPECT_TRUE(res.ok()) << res.error().message();
        return res.ok() ? res->status : 0;
    }
    int64_t scalar(CollectorServer& s, const std::string& sql) {
        return s.store().with_db([&](StoreDb& db) {
            auto q = db.prepare(sql).take();
            EXPECT_EQ(q.step(), SQLITE_ROW) << sql;
            return q.i64(0);
        });
    }

    std::string database_, token_;
    std::atomic<int64_t> clock_{0};
    std::unique_ptr<CollectorServer> a_, b_;
};

// 1 + 2 + ... + n
int64_t tri(int64_t n) {
    return n * (n + 1) / 2;
}

TEST_F(FleetPostgres, AnAgentSwitchingCollectorsMidBacklogCountsEveryBatchOnce) {
    EXPECT_EQ(a_->store().engine(), SqlEngine::Postgres);
    // Batches 1-3 to A; A's answer lost, the agent turns to B with 3-6 (3 again); then back
    // to A with 5-8.
    for (int64_t seq = 1; seq <= 3; seq++) ASSERT_EQ(send(*a_, report(seq, kT0)), 200);
    for (int64_t seq = 3; seq <= 6; seq++) ASSERT_EQ(send(*b_, report(seq, kT0 + 60)), 200);
    for (int64_t seq = 5; seq <= 8; seq++) ASSERT_EQ(send(*a_, report(seq, kT0 + 120)), 200);
    EXPECT_EQ(scalar(*b_, "SELECT SUM(bytes) FROM fleet_flows"), tri(8) * 1000);
    EXPECT_EQ(scalar(*b_, "SELECT SUM(rx_bytes) FROM fleet_buckets"), tri(8) * 100);
    EXPECT_EQ(scalar(*b_, "SELECT count(*) FROM fleet_buckets"), 8);
    EXPECT_EQ(scalar(*a_, "SELECT seq FROM fleet_stream_seq WHERE stream = 'flows'"), 8);

    // The same reports to both at once, 20 rounds: one of each pair is stored, the other
    // acknowledged as a duplicate, whichever comes second.
    for (int64_t seq = 9; seq <= 28; seq++) {
        int sa = 0, sb = 0;
        const WireReport r = report(seq, kT0 + 120);
        std::thread ta([&] { sa = send(*a_, r); });
        std::thread tb([&] { sb = send(*b_, r); });
        ta.join();
        tb.join();
        EXPECT_EQ(sa, 200);
        EXPECT_EQ(sb, 200);
    }
    EXPECT_EQ(scalar(*a_, "SELECT SUM(bytes) FROM fleet_flows"), tri(28) * 1000);
    EXPECT_EQ(scalar(*a_, "SELECT SUM(flows) FROM fleet_flows"), 28);
    EXPECT_EQ(scalar(*a_, "SELECT SUM(rx_bytes) FROM fleet_buckets"), tri(28) * 100);
    EXPECT_EQ(scalar(*a_, "SELECT seq FROM fleet_stream_seq WHERE stream = 'buckets'"), 28);
}

TEST_F(FleetPostgres, OneCollectorRunsTheOfflineWatchAndTheOtherTakesOver) {
    ASSERT_EQ(send(*b_, report(1, kT0)), 200);
    clock_ = kT0 + 181;  // 3 x the 60 s interval, and one more second
    // Both look, at the same time and again: one alert.
    std::thread ta([&] { EXPECT_TRUE(a_->check_offline().ok()); });
    std::thread tb([&] { EXPECT_TRUE(b_->check_offline().ok()); });
    ta.join();
    tb.join();
    ASSERT_TRUE(a_->check_offline().ok());
    ASSERT_TRUE(b_->check_offline().ok());
    EXPECT_EQ(scalar(*b_, "SELECT count(*) FROM fleet_alerts WHERE kind = 'alert'"), 1);
    EXPECT_EQ(a_->store().lead("offline-watch").take() + b_->store().lead("offline-watch").take(), 1);

    // Back: one recovery, from whichever collector took the report.
    ASSERT_EQ(send(*a_, report(2, kT0 + 200)), 200);
    EXPECT_EQ(scalar(*b_, "SELECT count(*) FROM fleet_alerts WHERE kind = 'recovery'"), 1);

    // The watching collector stops: the other one watches from its next look on.
    const bool a_led = a_->store().lead("offline-watch").take();
    (a_led ? a_ : b_).reset();
    CollectorServer& left = a_ ? *a_ : *b_;
    clock_ = kT0 + 200 + 181;
    // The server ends the stopped collector's session a moment after it closed it: the
    // lock is free from then on (the watch looks again every few seconds).
    for (int i = 0; i < 100 && !left.store().lead("offline-watch").take(); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(left.check_offline().ok());
    EXPECT_TRUE(left.store().lead("offline-watch").take());
    EXPECT_EQ(scalar(left, "SELECT count(*) FROM fleet_alerts WHERE kind = 'alert'"), 2);
}

// The database restarts under a running collector: the report in flight when the
// connection is found broken is answered 500 (the agent keeps it and sends it again), the
// next one goes through on a new connection, and nothing is lost or counted twice.
TEST_F(FleetPostgres, ACollectorCarriesOnAfterTheDatabaseRestarts) {
    ASSERT_EQ(send(*a_, report(1, kT0)), 200);
    testing::TestPostgres::get().restart("fast");
    int failures = 0;
    for (int64_t seq = 2; seq <= 3; seq++) {
        int status = 0;
        for (int attempt = 0; attempt < 3 && status != 200; attempt++) {
            status = send(*a_, report(seq, kT0 + 60));
            if (status != 200) {
                EXPECT_EQ(status, 500);  // not 401: the token is fine, the database was away
                failures++;
            }
        }
        ASSERT_EQ(status, 200) << "seq " << seq;
    }
    EXPECT_LE(failures, 1);
    EXPECT_EQ(scalar(*a_, "SELECT SUM(bytes) FROM fleet_flows"), tri(3) * 1000);
    EXPECT_EQ(scalar(*a_, "SELECT SUM(rx_bytes) FROM fleet_buckets"), tri(3) * 100);
}

}  // namespace
}  // namespace pf
