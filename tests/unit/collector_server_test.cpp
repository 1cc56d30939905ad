// The collector's server on 127.0.0.1 (a free port) over a real SQLite file, spoken to
// through the project's HTTP client: every refusal of docs/fleet.md with its exact answer
// and nothing stored, duplicates acknowledged once, the offline watch on an injected clock
// (one alert, one recovery, a restart's grace), the alert file's lines, agent alerts.

#include "peakflow/fleet/collector_server.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fleet_test_support.hpp"
#include "peakflow/accounting/report.hpp"
#include "peakflow/collector/collector_cli.hpp"
#include "peakflow/common/http.hpp"
#include "report_test_support.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

using pf::testing::collector_database;
using pf::testing::store_on_postgres;

using nlohmann::json;

constexpr int64_t kT0 = 1796000000;  // 2026-11-30 00:53:20 UTC
constexpr int64_t kTs = 1795999800;  // 2026-11-30 00:50:00 UTC

WireReport report_of(const std::string& agent, int64_t seq, std::vector<WireBucket> rows, int64_t time = kT0) {
    WireReport r = testing::agent_report(agent, time);
    r.backlog_buckets = 42;
    if (seq > 0) r.batches.push_back(testing::bucket_batch(seq, std::move(rows)));
    return r;
}

class CollectorServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_collector_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        clock_ = kT0;
        start_server();
        token_ = server_->store().create_token("nas-1", kT0).take();
        other_ = server_->store().create_token("nas-2", kT0).take();
    }
    void TearDown() override {
        server_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    void start_server(bool forward = false) {
        server_.reset();
        CollectorOptions o;
        o.host = "127.0.0.1";
        o.port = 0;
        o.database = collector_database(dir_);
        o.alert_file = dir_ + "/alerts.log";
        o.timezone = "UTC";
        o.forward_alerts = forward;
        o.clock = [this] { return clock_.load(); };
        o.queue = &queue_;
        o.watch = false;
        o.threads = 2;
        server_ = CollectorServer::start(o).take();
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    }
    HttpResponse post(const std::string& path, const std::string& body, std::vector<std::string> headers) {
        HttpRequest rq;
        rq.method = HttpMethod::Post;
        rq.url = url(path);
        rq.body = body;
        rq.headers = std::move(headers);
        rq.headers.push_back("Content-Type: application/json");
        auto r = http_request(rq);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? *r : HttpResponse{};
    }
    HttpResponse send(const WireReport& r, const std::string& token) {
        return post("/api/v1/agents/report", gzip_compress(render_report(r)),
                    {"Authorization: Bearer " + token, "Content-Encoding: gzip"});
    }
    int64_t count(const char* table) { return server_->store().count(table).take(); }
    // One value, read through the store's connection (SQLite or PostgreSQL).
    int64_t scalar(const std::string& sql) {
        return server_->store().with_db([&](StoreDb& db) {
            auto q = db.prepare(sql).take();
            EXPECT_EQ(q.step(), SQLITE_ROW) << sql;
            return q.i64(0);
        });
    }
    std::string alert_file() {
        std::ifstream in(dir_ + "/alerts.log");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    void expect_nothing_stored() {
        EXPECT_EQ(count("fleet_buckets"), 0);
        EXPECT_EQ(count("fleet_stream_seq"), 0);
        EXPECT_FALSE(server_->store().agent("nas-1").take()->last_seen.has_value());
    }

    std::string dir_, token_, other_;
    std::atomic<int64_t> clock_{kT0};
    testing::RecordingQueue queue_;
    std::unique_ptr<CollectorServer> server_;
};

TEST_F(CollectorServerTest, HealthAndAcceptedReport) {
    HttpRequest rq;
    rq.url = url("/api/v1/health");
    auto h = http_request(rq).take();
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.body, R"j({"status":"ok"})j");

    auto r = send(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1000, 10, 500, 5}}), token_);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body,
              R"j({"status":"ok","acked":{"buckets":1,"push":0,"host":0,"heartbeat":0,"flows":0},"time":1796000000})j");
    // Identity is accepted too.
    auto id =
        post("/api/v1/agents/report", render_report(report_of("nas-1", 0, {})), {"Authorization: Bearer " + token_});
    EXPECT_EQ(id.status, 200);
    EXPECT_EQ(id.body,
              R"j({"status":"ok","acked":{"buckets":1,"push":0,"host":0,"heartbeat":0,"flows":0},"time":1796000000})j");
    EXPECT_EQ(count("fleet_buckets"), 1);
    auto a = server_->store().agent("nas-1").take();
    EXPECT_EQ(a->last_seen, kT0);
    EXPECT_EQ(a->backlog, 42);
}

TEST_F(CollectorServerTest, DuplicateBatchAcknowledgedNotStoredTwice) {
    const WireReport r = report_of(
        "nas-1", 1,
        {{"eth0", "", kTs, false, 1000, 10, 500, 5}, {"eth0", "02:00:00:00:00:09", kTs, false, 700, 7, 300, 3}});
    EXPECT_EQ(send(r, token_).status, 200);
    clock_ = kT0 + 60;
    auto again = send(r, token_);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.body,
              R"j({"status":"ok","acked":{"buckets":1,"push":0,"host":0,"heartbeat":0,"flows":0},"time":1796000060})j");
    EXPECT_EQ(count("fleet_buckets"), 2);
    EXPECT_EQ(scalar("SELECT SUM(rx_bytes) FROM fleet_buckets"), 1700);
    EXPECT_EQ(scalar("SELECT SUM(tx_bytes) FROM fleet_buckets"), 800);
    EXPECT_EQ(scalar("SELECT SUM(rx_packets) + SUM(tx_packets) FROM fleet_buckets"), 25);
}

TEST_F(CollectorServerTest, Refuses401) {
    const std::string body =
        gzip_compress(render_report(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1, 1, 1, 1}})));
    auto none = post("/api/v1/agents/report", body, {"Content-Encoding: gzip"});
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.body, R"j({"status":"error","message":"missing Authorization: Bearer token"})j");
    auto unknown = post("/api/v1/agents/report", body,
                        {"Authorization: Bearer pfc_" + std::string(64, '0'), "Content-Encoding: gzip"});
    EXPECT_EQ(unknown.status, 401);
    EXPECT_EQ(unknown.body, R"j({"status":"error","message":"unknown or revoked token"})j");
    auto garbage = post("/api/v1/agents/report", body, {"Authorization: Bearer hunter2", "Content-Encoding: gzip"});
    EXPECT_EQ(garbage.status, 401);
    EXPECT_EQ(garbage.body, R"j({"status":"error","message":"unknown or revoked token"})j");
    ASSERT_TRUE(server_->store().revoke_token("nas-1").ok());
    auto revoked = post("/api/v1/agents/report", body, {"Authorization: Bearer " + token_, "Content-Encoding: gzip"});
    EXPECT_EQ(revoked.status, 401);
    EXPECT_EQ(revoked.body, R"j({"status":"error","message":"unknown or revoked token"})j");
    expect_nothing_stored();
}

TEST_F(CollectorServerTest, Refuses403ForAnotherAgentsName) {
    auto r = send(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1, 1, 1, 1}}), other_);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, R"j({"status":"error","message":"the token is agent 'nas-2''s, not 'nas-1's"})j");
    expect_nothing_stored();
    EXPECT_FALSE(server_->store().agent("nas-2").take()->last_seen.has_value());
}

TEST_F(CollectorServerTest, Refuses400) {
    auto auth = std::vector<std::string>{"Authorization: Bearer " + token_};
    auto bad = post("/api/v1/agents/report", "{\"protocol\":", auth);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(json::parse(bad.body)["status"], "error");
    EXPECT_EQ(json::parse(bad.body)["message"].get<std::string>().substr(0, 10), "not JSON: ");

    json j = json::parse(render_report(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1, 1, 1, 1}})));
    json wrong = j;
    wrong["batches"][0]["records"][0]["rx_bytes"] = "1";
    auto w = post("/api/v1/agents/report", wrong.dump(), auth);
    EXPECT_EQ(w.status, 400);
    EXPECT_EQ(
        w.body,
        R"j({"status":"error","message":"field 'batches[0].records[0].rx_bytes' must be a non-negative integer"})j");

    json proto = j;
    proto["protocol"] = 2;
    auto p = post("/api/v1/agents/report", proto.dump(), auth);
    EXPECT_EQ(p.status, 400);
    EXPECT_EQ(p.body, R"j({"status":"error","message":"protocol 2 not supported (this collector speaks 1)"})j");

    json future = j;
    future["batches"][0]["records"][0]["ts"] = kTs + 900;  // 700 s ahead
    auto f = post("/api/v1/agents/report", future.dump(), auth);
    EXPECT_EQ(f.status, 400);
    EXPECT_EQ(
        f.body,
        R"j({"status":"error","message":"batches[0].records[0].ts 1796000700 is 700 s ahead of the collector's clock (at most 300)"})j");

    auto corrupt = post("/api/v1/agents/report", "\x1f\x8b not really gzip", {auth[0], "Content-Encoding: gzip"});
    EXPECT_EQ(corrupt.status, 400);
    expect_nothing_stored();
}

TEST_F(CollectorServerTest, Refuses409GapWithAcked) {
    EXPECT_EQ(send(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1, 1, 1, 1}}), token_).status, 200);
    auto g = send(report_of("nas-1", 3, {{"eth0", "", kTs + 300, false, 5, 5, 5, 5}}), token_);
    EXPECT_EQ(g.status, 409);
    EXPECT_EQ(
        g.body,
        R"j({"status":"error","message":"stream buckets: sequence gap: holds 1, got 3","acked":{"buckets":1,"push":0,"host":0,"heartbeat":0,"flows":0}})j");
    auto ack = parse_ack(g.body);
    ASSERT_TRUE(ack.ok());
    EXPECT_EQ(ack->buckets, 1);
    EXPECT_EQ(count("fleet_buckets"), 1);
    EXPECT_EQ(scalar("SELECT seq FROM fleet_stream_seq"), 1);
}

TEST_F(CollectorServerTest, Refuses413BigBodyAndGzipBomb) {
    auto auth = "Authorization: Bearer " + token_;
    auto big = post("/api/v1/agents/report", std::string(10 * 1000 * 1000, ' '), {auth});
    EXPECT_EQ(big.status, 413);
    EXPECT_EQ(big.body, R"j({"status":"error","message":"body over 4194304 bytes"})j");

    const std::string bomb = gzip_compress(std::string(100u << 20, '\0'));
    ASSERT_LT(bomb.size(), kWireMaxCompressed);
    auto b = post("/api/v1/agents/report", bomb, {auth, "Content-Encoding: gzip"});
    EXPECT_EQ(b.status, 413);
    EXPECT_EQ(b.body, R"j({"status":"error","message":"decompressed body over 33554432 bytes"})j");
    expect_nothing_stored();
    // Still serving.
    EXPECT_EQ(send(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1, 1, 1, 1}}), token_).status, 200);
}

TEST_F(CollectorServerTest, Refuses415) {
    auto r = post("/api/v1/agents/report", render_report(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1, 1, 1, 1}})),
                  {"Authorization: Bearer " + token_, "Content-Encoding: compress"});
    EXPECT_EQ(r.status, 415);
    EXPECT_EQ(r.body,
              R"j({"status":"error","message":"Content-Encoding 'compress' is not supported: use gzip or identity"})j");
    expect_nothing_stored();
}

TEST_F(CollectorServerTest, OfflineOnceRecoveryOnceAndAlertFile) {
    EXPECT_EQ(send(report_of("nas-1", 0, {}), token_).status, 200);
    clock_ = kT0 + 180;  // 3 x 60 s: not yet
    ASSERT_TRUE(server_->check_offline().ok());
    EXPECT_TRUE(queue_.take().empty());
    clock_ = kT0 + 181;
    ASSERT_TRUE(server_->check_offline().ok());
    clock_ = kT0 + 240;
    ASSERT_TRUE(server_->check_offline().ok());
    auto raised = queue_.take();
    ASSERT_EQ(raised.size(), 1u);
    EXPECT_EQ(raised[0].kind, "alert");
    EXPECT_EQ(raised[0].period, "agent-offline:nas-1");
    EXPECT_EQ(raised[0].title, "nas-1 offline");
    EXPECT_EQ(raised[0].text,
              "No report from agent **nas-1** (node beijing-1, host nas-1.lan) since 2026-11-30 00:53:20: 3m 1s, more "
              "than 3 x its 60 s interval.");
    // nas-2 never reported: never, no alert.
    EXPECT_EQ(server_->store().agent("nas-2").take()->state, "never");

    clock_ = kT0 + 600;
    EXPECT_EQ(send(report_of("nas-1", 0, {}, kT0 + 600), token_).status, 200);
    clock_ = kT0 + 660;
    EXPECT_EQ(send(report_of("nas-1", 0, {}, kT0 + 660), token_).status, 200);
    auto back = queue_.take();
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].kind, "recovery");
    EXPECT_EQ(back[0].title, "nas-1 back online");
    EXPECT_EQ(back[0].text,
              "Agent **nas-1** reports again after 10m 0s without a report (last report 2026-11-30 00:53:20); backlog "
              "it announced: 42 records.");

    EXPECT_EQ(alert_file(),
              "2026-11-30 00:56:21 alert nas-1: nas-1 offline\n"
              "2026-11-30 01:03:20 recovery nas-1: nas-1 back online\n");
    auto stored = server_->store().alerts().take();
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[0].kind, "recovery");
    EXPECT_EQ(stored[0].origin, "collector");
    EXPECT_EQ(stored[1].kind, "alert");
    EXPECT_EQ(stored[1].time, kT0 + 181);
}

TEST_F(CollectorServerTest, RestartGivesGraceAndDoesNotRealert) {
    EXPECT_EQ(send(report_of("nas-1", 0, {}), token_).status, 200);
    ASSERT_TRUE(server_->store().create_token("nas-3", kT0).ok());
    // nas-3 reports and goes offline before the restart.
    auto t3 = server_->store().create_token("nas-4", kT0).take();
    EXPECT_EQ(send(report_of("nas-4", 0, {}), t3).status, 200);
    clock_ = kT0 + 200;
    ASSERT_TRUE(server_->check_offline().ok());
    EXPECT_EQ(queue_.take().size(), 2u);  // nas-1 and nas-4

    // nas-1 reports again, then the collector is down for an hour.
    EXPECT_EQ(send(report_of("nas-1", 0, {}, kT0 + 200), token_).status, 200);
    EXPECT_EQ(queue_.take().size(), 1u);  // its recovery
    clock_ = kT0 + 3800;
    start_server();
    ASSERT_TRUE(server_->check_offline().ok());
    clock_ = kT0 + 3800 + 180;
    ASSERT_TRUE(server_->check_offline().ok());
    EXPECT_TRUE(queue_.take().empty()) << "a full offline_after period of grace after a start";
    clock_ = kT0 + 3800 + 181;
    ASSERT_TRUE(server_->check_offline().ok());
    auto after = queue_.take();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].title, "nas-1 offline");
    EXPECT_EQ(server_->store().alerts().take().size(), 4u);
}

TEST_F(CollectorServerTest, AgentAlertsStoredOnceNotForwardedByDefault) {
    const std::string body =
        R"j({"kind":"alert","period":"runaway:4242","title":"runaway process spin","text":"pid 4242","node":"beijing-1","host":"nas-1"})j";
    auto auth = std::vector<std::string>{"Authorization: Bearer " + token_};
    auto r = post("/api/v1/agents/alert", body, auth);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"j({"status":"ok"})j");
    clock_ = kT0 + 5;
    auto again = post("/api/v1/agents/alert", body, auth);  // an outbox resend
    EXPECT_EQ(again.status, 200);
    auto stored = server_->store().alerts().take();
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(stored[0].agent, "nas-1");
    EXPECT_EQ(stored[0].origin, "agent");
    EXPECT_EQ(stored[0].kind, "alert");
    EXPECT_EQ(stored[0].key, "runaway:4242");
    EXPECT_EQ(stored[0].title, "runaway process spin");
    EXPECT_EQ(stored[0].time, kT0);
    EXPECT_TRUE(queue_.take().empty());
    EXPECT_EQ(alert_file(), "2026-11-30 00:53:20 alert nas-1: runaway process spin\n");

    auto bad = post("/api/v1/agents/alert", R"j({"kind":"panic","period":"x","title":"t"})j", auth);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body, R"j({"status":"error","message":"field 'kind' must be \"alert\" or \"recovery\""})j");
    auto anon = post("/api/v1/agents/alert", body, {});
    EXPECT_EQ(anon.status, 401);
    EXPECT_EQ(server_->store().alerts().take().size(), 1u);
}

TEST_F(CollectorServerTest, AgentAlertsForwardedWhenAsked) {
    start_server(true);
    const std::string body = R"j({"kind":"recovery","period":"host:cpu","title":"cpu normal","text":"ok"})j";
    EXPECT_EQ(post("/api/v1/agents/alert", body, {"Authorization: Bearer " + token_}).status, 200);
    auto q = queue_.take();
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].kind, "recovery");
    EXPECT_EQ(q[0].period, "host:cpu");
    EXPECT_EQ(q[0].title, "nas-1: cpu normal");
    EXPECT_EQ(q[0].text, "ok");
}

// The CLI over the same database: `agents --json` in its documented shape, `alerts`,
// `token list` without hashes, `report --agent` as the agent's own report renders.
TEST_F(CollectorServerTest, CliReadsTheStore) {
    EXPECT_EQ(send(report_of("nas-1", 1, {{"eth0", "", kTs, false, 1000, 10, 500, 5}}), token_).status, 200);
    clock_ = kT0 + 181;
    ASSERT_TRUE(server_->check_offline().ok());
    const std::string cfg = dir_ + "/collector.yaml";
    std::ofstream(cfg) << "database: " << collector_database(dir_) << "\ntimezone: UTC\n";
    auto run = [&](std::vector<std::string> args, int want_rc) {
        args.insert(args.begin(), "peakflow-collector");
        args.push_back("-f");
        args.push_back(cfg);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        ::testing::internal::CaptureStdout();
        int rc = run_collector_cli(static_cast<int>(argv.size()), argv.data());
        std::string out = ::testing::internal::GetCapturedStdout();
        EXPECT_EQ(rc, want_rc) << args[1];
        return out;
    };
    json agents = json::parse(run({"agents", "--json"}, 0));
    EXPECT_EQ(agents, json::parse(R"j({"agents":[
        {"name":"nas-1","node":"beijing-1","host":"nas-1.lan","iface":"eth0","mac":"02:00:00:00:00:01",
         "version":"0.1.0","last_seen":"2026-11-30 00:53:20","last_seen_epoch":1796000000,"state":"offline",
         "backlog":42},
        {"name":"nas-2","node":"","host":"","iface":"","mac":"","version":"","last_seen":null,
         "last_seen_epoch":null,"state":"never","backlog":0}]})j"));
    EXPECT_EQ(run({"alerts"}, 0),
              "TIME                 AGENT  ORIGIN     KIND   TITLE\n"
              "2026-11-30 00:56:21  nas-1  collector  alert  nas-1 offline\n");
    const std::string tokens = run({"token", "list", "--json"}, 0);
    EXPECT_EQ(tokens.find(sha256_hex(token_)), std::string::npos);
    EXPECT_EQ(json::parse(tokens)["tokens"][0]["name"], "nas-1");

    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 30};
    o.json = true;
    std::ostringstream want;
    Calendar cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto src = server_->store().usage(FleetStore::Selection{std::string("nas-1"), std::nullopt});
    ASSERT_TRUE(run_report(*src, cal, {}, o, kT0, want).ok());
    json got = json::parse(run({"report", "--agent", "nas-1", "--day", "2026-11-30", "--json"}, 0));
    json expect = json::parse(want.str());
    for (const char* k : {"generated_at", "generated_at_epoch"}) {  // the CLI's now
        got.erase(k);
        expect.erase(k);
    }
    EXPECT_EQ(got, expect);
    EXPECT_EQ(got["reports"][0]["interfaces"][0]["total_bytes"], 1500);
    run({"report", "--agent", "nobody"}, 1);
    run({"report", "--month", "2026-11", "--hours"}, 2);
}

}  // namespace
}  // namespace pf
