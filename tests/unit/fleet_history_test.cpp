// The fleet's push history (docs/fleet.md, "Fleet push history"): the times people give,
// the endpoints' query and answer, the store's query and its schema 2, the collector's own
// alert for an agent's failing sink (exact counts, resends), and the whole way from real
// agent outboxes through real uplinks to a real collector: `peakflow-collector history
// --json` equal to each agent's `peakflow-bpf history --json`, row for row.

#include "peakflow/fleet/fleet_history.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "collector_test_client.hpp"
#include "fleet_test_support.hpp"
#include "peakflow/app/cli.hpp"
#include "peakflow/collector/collector_cli.hpp"
#include "peakflow/collector/collector_config.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/fleet/fleet_users.hpp"
#include "peakflow/fleet/uplink.hpp"
#include "peakflow/push/outbox.hpp"
#include "report_test_support.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

using pf::testing::collector_database;
using pf::testing::store_on_postgres;

using nlohmann::json;

constexpr int64_t kNow = 1796000000;  // 2026-11-30 00:53:20 UTC, 08:53:20 in Shanghai

Calendar shanghai() {
    return Calendar::create("Asia/Shanghai", {PeakWindow{}}, 1).take();
}

std::string time_error(const Calendar& cal, const std::string& text) {
    auto r = parse_history_time(cal, text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? "" : r.error().message();
}

TEST(FleetHistoryTime, LocalTimesAndUnixSeconds) {
    const Calendar cal = shanghai();
    EXPECT_EQ(parse_history_time(cal, "2026-11-30").take(), 1795968000);
    EXPECT_EQ(parse_history_time(cal, "2026-11-30 08:53").take(), 1795999980);
    EXPECT_EQ(parse_history_time(cal, "2026-11-30 08:53:20").take(), kNow);
    EXPECT_EQ(parse_history_time(cal, "2026-11-30T08:53:20").take(), kNow);
    EXPECT_EQ(parse_history_time(cal, "1796000000").take(), kNow);
    EXPECT_EQ(parse_history_time(cal, "0").take(), 0);
    const std::string use = " is not a time: use YYYY-MM-DD[ HH:MM[:SS]] (local time, Asia/Shanghai) or unix seconds";
    for (const char* bad : {"", "yesterday", "2026-11-31", "2026-11-30 24:00", "2026-11-30 08:60", "2026-11-30 8:53",
                            "2026-11-30 08:53:20Z", "-5", "1796000000000"})
        EXPECT_EQ(time_error(cal, bad), "'" + std::string(bad) + "'" + use);
    // Daylight saving time: a wall time the clocks skip is an error, one they repeat is
    // its first occurrence.
    const Calendar ny = Calendar::create("America/New_York", {PeakWindow{}}, 1).take();
    EXPECT_EQ(time_error(ny, "2026-03-08 02:30"),
              "local time 2026-03-08 02:30:00 does not exist in America/New_York (the clocks skip it for "
              "daylight saving time)");
    EXPECT_EQ(parse_history_time(ny, "2026-03-08 03:30").take(), 1772955000);
    EXPECT_EQ(parse_history_time(ny, "2026-11-01 01:30").take(), 1793511000);
}

std::string params_error(const std::multimap<std::string, std::string>& p) {
    auto r = parse_history_params(shanghai(), p);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.error().message();
}

TEST(FleetHistoryParams, EveryParameterAndEveryRefusal) {
    auto q = parse_history_params(shanghai(), {}).take();
    EXPECT_FALSE(q.node || q.host || q.agent || q.status || q.from || q.to || q.failed_only);
    EXPECT_EQ(q.page, 1);
    EXPECT_EQ(q.limit, kHistoryPageSize);
    q = parse_history_params(shanghai(), {{"node", "beijing-1"},
                                          {"host", "nas-1"},
                                          {"agent", "nas-1"},
                                          {"status", "failed"},
                                          {"failed", "true"},
                                          {"from", "2026-11-30"},
                                          {"to", "1796000000"},
                                          {"page", "3"},
                                          {"page_size", "1000"}})
            .take();
    EXPECT_EQ(q.node, std::optional<std::string>("beijing-1"));
    EXPECT_EQ(q.host, std::optional<std::string>("nas-1"));
    EXPECT_EQ(q.agent, std::optional<std::string>("nas-1"));
    EXPECT_EQ(q.status, std::optional<std::string>("failed"));
    EXPECT_TRUE(q.failed_only);
    EXPECT_EQ(q.from, std::optional<int64_t>(1795968000));
    EXPECT_EQ(q.to, std::optional<int64_t>(kNow));
    EXPECT_EQ(q.page, 3);
    EXPECT_EQ(q.limit, 1000);
    // Empty values filter nothing (the requirements' form sends every field).
    q = parse_history_params(shanghai(), {{"node", ""}, {"host", ""}, {"status", ""}, {"from", ""}, {"page", ""}})
            .take();
    EXPECT_FALSE(q.node || q.host || q.status || q.from);
    EXPECT_EQ(q.page, 1);

    EXPECT_EQ(params_error({{"nodes", "x"}}),
              "unknown parameter 'nodes': use node, host, agent, status, failed, from, to, page, page_size");
    EXPECT_EQ(params_error({{"node", "a"}, {"node", "b"}}), "parameter 'node' given more than once");
    EXPECT_EQ(params_error({{"status", "ok"}}), "status must be pending, failed, sent or skipped, got 'ok'");
    EXPECT_EQ(params_error({{"failed", "yes"}}), "failed must be true, false, 1 or 0, got 'yes'");
    EXPECT_EQ(params_error({{"from", "soon"}}),
              "from: 'soon' is not a time: use YYYY-MM-DD[ HH:MM[:SS]] (local time, Asia/Shanghai) or unix seconds");
    EXPECT_EQ(params_error({{"from", "2026-11-30"}, {"to", "2026-11-30"}}), "from must be before to");
    EXPECT_EQ(params_error({{"page", "0"}}), "page must be a whole number from 1 to 999999999, got '0'");
    EXPECT_EQ(params_error({{"page", "-1"}}), "page must be a whole number from 1 to 999999999, got '-1'");
    EXPECT_EQ(params_error({{"page_size", "1001"}}), "page_size must be a whole number from 1 to 1000, got '1001'");
}

// ---- the store ------------------------------------------------------------------------------

WirePush push_row(int64_t id, int64_t time, const std::string& sink, const std::string& status, int64_t attempts,
                  std::optional<int64_t> value = std::nullopt, const std::string& node = "beijing-1",
                  const std::string& host = "nas-1") {
    return WirePush{id,
                    time,
                    node,
                    host,
                    sink,
                    "daily",
                    "2026-11-29",
                    812,
                    status,
                    attempts,
                    status == "failed" ? "HTTP 500" : "",
                    value};
}

WireReport push_report(const std::string& agent, int64_t seq, std::vector<WirePush> rows) {
    WireReport r = testing::agent_report(agent, kNow);
    r.agent.interfaces.clear();
    r.batches.push_back(testing::push_batch(seq, std::move(rows)));
    return r;
}

class FleetHistoryStore : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_fleet_history_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = collector_database(dir_);
        open();
    }
    void TearDown() override {
        store_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    void open() {
        store_.reset();
        store_ = FleetStore::open(path_).take();
        store_->set_push_alerts(3, push_failure_notice);
        for (const char* a : {"nas-1", "nas-2"})
            if (!store_->agent(a).take()) store_->create_token(a, kNow).take();
    }
    IngestResult ingest(const std::string& agent, int64_t seq, std::vector<WirePush> rows) {
        auto r = store_->ingest(agent, push_report(agent, seq, std::move(rows)), kNow + seq);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? *r : IngestResult{};
    }
    // "kind key" of each notice.
    static std::vector<std::string> notices(const IngestResult& r) {
        std::vector<std::string> out;
        for (const auto& n : r.push_notices) out.push_back(n.kind + " " + n.key);
        return out;
    }
    std::vector<std::string> stored_alerts() {
        std::vector<std::string> out;
        auto alerts = store_->alerts().take();
        std::sort(alerts.begin(), alerts.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
        for (const auto& a : alerts) out.push_back(a.origin + " " + a.kind + " " + a.key);
        return out;
    }
    std::vector<int64_t> ids(const PushPage& p) {
        std::vector<int64_t> out;
        for (const auto& r : p.rows) out.push_back(r.id);
        return out;
    }

    std::string dir_, path_;
    std::unique_ptr<FleetStore> store_;
};

TEST_F(FleetHistoryStore, QueryFiltersPagesNewestFirst) {
    ingest("nas-1", 1,
           {push_row(1, kNow - 50, "ding", "sent", 1, 1054720), push_row(2, kNow - 40, "ding", "failed", 1),
            push_row(3, kNow - 30, "mail", "sent", 1, 0)});
    ingest("nas-2", 1,
           {push_row(1, kNow - 45, "ding", "sent", 1, 7, "shanghai-2", "nas-2"),
            push_row(2, kNow - 30, "ding", "skipped", 0, std::nullopt, "shanghai-2", "nas-2")});
    PushPage all = store_->push_history({}).take();
    EXPECT_EQ(all.total, 5);
    std::vector<std::string> order;
    for (const auto& r : all.rows) order.push_back(r.agent + "/" + std::to_string(r.id));
    // time descending, then id descending, then agent.
    EXPECT_EQ(order, (std::vector<std::string>{"nas-1/3", "nas-2/2", "nas-1/2", "nas-2/1", "nas-1/1"}));
    const HistoryRow& first = all.rows.back();
    EXPECT_EQ(first.value, std::optional<int64_t>(1054720));
    EXPECT_EQ(first.bytes, 812);
    EXPECT_EQ(first.node, "beijing-1");
    EXPECT_EQ(first.host, "nas-1");
    EXPECT_EQ(first.time, kNow - 50);
    EXPECT_FALSE(all.rows[2].value.has_value());
    EXPECT_EQ(all.rows[2].last_error, "HTTP 500");

    PushQuery q;
    q.node = "shanghai-2";
    EXPECT_EQ(ids(store_->push_history(q).take()), (std::vector<int64_t>{2, 1}));
    q = {};
    q.host = "nas-1";
    q.failed_only = true;
    PushPage f = store_->push_history(q).take();
    EXPECT_EQ(f.total, 1);
    EXPECT_EQ(ids(f), std::vector<int64_t>{2});
    q = {};
    q.agent = "nas-2";
    q.status = "skipped";
    EXPECT_EQ(ids(store_->push_history(q).take()), std::vector<int64_t>{2});
    q = {};
    q.from = kNow - 45;  // from <= time < to
    q.to = kNow - 30;
    EXPECT_EQ(ids(store_->push_history(q).take()), (std::vector<int64_t>{2, 1}));
    q = {};
    q.limit = 2;
    q.page = 2;
    PushPage p2 = store_->push_history(q).take();
    EXPECT_EQ(p2.total, 5);
    EXPECT_EQ(ids(p2), (std::vector<int64_t>{2, 1}));
    q.page = 4;
    PushPage past = store_->push_history(q).take();
    EXPECT_EQ(past.total, 5);
    EXPECT_TRUE(past.rows.empty());
    // A row sent again (its status changed) replaces the one held.
    ingest("nas-1", 2, {push_row(2, kNow - 20, "ding", "sent", 2, 99)});
    q = {};
    q.agent = "nas-1";
    PushPage again = store_->push_history(q).take();
    EXPECT_EQ(again.total, 3);
    EXPECT_EQ(again.rows[0].id, 2);
    EXPECT_EQ(again.rows[0].status, "sent");
    EXPECT_EQ(again.rows[0].value, std::optional<int64_t>(99));
}

// A store from before schema 2: read-only commands read it (rows without values) and the
// collector brings it up with ALTER TABLE, keeping its rows.
TEST_F(FleetHistoryStore, SchemaOneIsReadAndMigrated) {
    if (store_on_postgres()) GTEST_SKIP() << "a SQLite file from before schema 2; PostgreSQL stores began at 3";
    ingest("nas-1", 1, {push_row(1, kNow - 50, "ding", "sent", 1, 5)});
    store_.reset();
    {
        auto db = SqliteDb::open(path_).take();
        ASSERT_TRUE(db.exec("DROP INDEX fleet_push_time; ALTER TABLE fleet_push DROP COLUMN value; "
                            "DROP TABLE fleet_push_sinks; "
                            "UPDATE meta SET value = 1 WHERE key = 'schema_version.fleet';")
                        .ok());
    }
    {
        auto ro = FleetStore::open(path_, true).take();
        PushPage p = ro->push_history({}).take();
        ASSERT_EQ(p.rows.size(), 1u);
        EXPECT_FALSE(p.rows[0].value.has_value());
    }
    open();
    ingest("nas-1", 2, {push_row(2, kNow - 40, "ding", "sent", 1, 6)});
    PushPage p = store_->push_history({}).take();
    ASSERT_EQ(p.rows.size(), 2u);
    EXPECT_EQ(p.rows[0].value, std::optional<int64_t>(6));
    EXPECT_FALSE(p.rows[1].value.has_value());
    auto db = SqliteDb::open(path_).take();
    EXPECT_EQ(read_schema_version(db, "fleet").take(), std::optional<int>(6));
}

TEST_F(FleetHistoryStore, ThreeFailuresInARowRaiseOneAlertAndTheNextDeliveryOneRecovery) {
    EXPECT_TRUE(notices(ingest("nas-1", 1, {push_row(41, kNow - 60, "ding", "failed", 1)})).empty());
    EXPECT_TRUE(notices(ingest("nas-1", 2, {push_row(41, kNow - 50, "ding", "failed", 2)})).empty());
    IngestResult third = ingest(
        "nas-1", 3, {push_row(41, kNow - 40, "ding", "failed", 3), push_row(42, kNow - 40, "mail", "pending", 0)});
    EXPECT_EQ(notices(third), std::vector<std::string>{"alert push-failed:nas-1:ding"});
    ASSERT_EQ(third.push_notices.size(), 1u);
    const StoredAlert& a = third.push_notices[0];
    EXPECT_EQ(a.origin, "collector");
    EXPECT_EQ(a.agent, "nas-1");
    EXPECT_EQ(a.node, "beijing-1");
    EXPECT_EQ(a.host, "nas-1");
    EXPECT_EQ(a.time, kNow + 3);
    EXPECT_EQ(a.title, "nas-1: push to ding failing");
    EXPECT_EQ(a.text,
              "Delivery to sink **ding** of agent **nas-1** (node beijing-1, host nas-1) failed 3 times in a row "
              "(alert after 3), message 41 (daily 2026-11-29). Last error: HTTP 500");
    // The same batch again (its answer was lost): acknowledged, nothing raised.
    IngestResult resent = ingest("nas-1", 3, {push_row(41, kNow - 40, "ding", "failed", 3)});
    EXPECT_EQ(resent.duplicates, 1u);
    EXPECT_TRUE(notices(resent).empty());
    // Still failing: nothing more.
    EXPECT_TRUE(notices(ingest("nas-1", 4, {push_row(41, kNow - 30, "ding", "failed", 4)})).empty());
    IngestResult back = ingest("nas-1", 5, {push_row(41, kNow - 20, "ding", "sent", 5, 1054720)});
    EXPECT_EQ(notices(back), std::vector<std::string>{"recovery push-failed:nas-1:ding"});
    EXPECT_EQ(back.push_notices[0].title, "nas-1: push to ding works again");
    EXPECT_EQ(back.push_notices[0].text,
              "Delivery to sink **ding** of agent **nas-1** (node beijing-1, host nas-1) works again: message 41 "
              "(daily 2026-11-29) delivered at attempt 5.");
    // A later copy of the delivered row, and the next messages delivered: nothing.
    EXPECT_TRUE(notices(ingest("nas-1", 6,
                               {push_row(41, kNow - 20, "ding", "sent", 5, 1054720),
                                push_row(43, kNow - 10, "ding", "sent", 1)}))
                    .empty());
    // Two failures are not three.
    EXPECT_TRUE(notices(ingest("nas-1", 7, {push_row(44, kNow - 9, "ding", "failed", 2)})).empty());
    EXPECT_TRUE(notices(ingest("nas-1", 8, {push_row(44, kNow - 8, "ding", "sent", 3)})).empty());
    // Failed 3 times and delivered before any failed copy reached the collector: the rows
    // still show the streak, so the alert and the recovery come together, once.
    EXPECT_EQ(notices(ingest("nas-1", 9, {push_row(45, kNow - 7, "mail", "sent", 4)})),
              (std::vector<std::string>{"alert push-failed:nas-1:mail", "recovery push-failed:nas-1:mail"}));
    EXPECT_TRUE(notices(ingest("nas-1", 10, {push_row(45, kNow - 7, "mail", "sent", 4)})).empty());
    // Another agent's sink of the same name is its own.
    EXPECT_EQ(notices(ingest("nas-2", 1, {push_row(1, kNow - 5, "ding", "failed", 3)})),
              std::vector<std::string>{"alert push-failed:nas-2:ding"});
    EXPECT_EQ(
        stored_alerts(),
        (std::vector<std::string>{"collector alert push-failed:nas-1:ding", "collector recovery push-failed:nas-1:ding",
                                  "collector alert push-failed:nas-1:mail", "collector recovery push-failed:nas-1:mail",
                                  "collector alert push-failed:nas-2:ding"}));
    // Across a restart of the collector the raised alert is remembered.
    open();
    EXPECT_TRUE(notices(ingest("nas-2", 2, {push_row(1, kNow - 4, "ding", "failed", 4)})).empty());
    EXPECT_EQ(notices(ingest("nas-2", 3, {push_row(1, kNow - 3, "ding", "sent", 5)})),
              std::vector<std::string>{"recovery push-failed:nas-2:ding"});
}

TEST_F(FleetHistoryStore, ThresholdIsConfigurableAndZeroIsOff) {
    store_->set_push_alerts(5, push_failure_notice);
    EXPECT_TRUE(notices(ingest("nas-1", 1, {push_row(1, kNow - 60, "ding", "failed", 4)})).empty());
    EXPECT_EQ(notices(ingest("nas-1", 2, {push_row(1, kNow - 50, "ding", "failed", 5)})),
              std::vector<std::string>{"alert push-failed:nas-1:ding"});
    store_->set_push_alerts(0, push_failure_notice);
    EXPECT_TRUE(notices(ingest("nas-2", 1, {push_row(1, kNow - 60, "ding", "failed", 100)})).empty());
    EXPECT_EQ(store_->count("fleet_alerts").take(), 1);
}

// A report refused for a sequence gap stores nothing and raises nothing.
TEST_F(FleetHistoryStore, AGapRaisesNothing) {
    WireReport r = push_report("nas-1", 1, {push_row(1, kNow - 60, "ding", "failed", 3)});
    WireBatch host;
    host.stream = "host";
    host.seq = 5;  // a gap
    r.batches.push_back(host);
    IngestResult res = store_->ingest("nas-1", r, kNow).take();
    EXPECT_FALSE(res.gap.empty());
    EXPECT_TRUE(res.push_notices.empty());
    EXPECT_EQ(store_->count("fleet_alerts").take(), 0);
    EXPECT_EQ(store_->count("fleet_push_sinks").take(), 0);
    EXPECT_EQ(store_->count("fleet_push").take(), 0);
}

// ---- the server: the alert's way out, the endpoints ------------------------------------------

class FleetHistoryServer : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_fleet_history_srv_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        CollectorOptions o = testing::local_collector(dir_, clock_, "Asia/Shanghai");
        o.alert_file = dir_ + "/alerts.log";
        o.queue = &queue_;
        o.password_hash = Argon2Params{1, 8, 1};
        server_ = CollectorServer::start(o).take();
        token_ = server_->store().create_token("nas-1", kNow).take();
        other_ = server_->store().create_token("nas-2", kNow).take();
    }
    void TearDown() override {
        server_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    }
    HttpResponse send(const WireReport& r, const std::string& token) {
        HttpRequest rq;
        rq.method = HttpMethod::Post;
        rq.url = url("/api/v1/agents/report");
        rq.body = gzip_compress(render_report(r));
        rq.headers = {"Authorization: Bearer " + token, "Content-Encoding: gzip", "Content-Type: application/json"};
        return http_request(rq).take();
    }
    HttpResponse get(const std::string& path, const std::string& bearer = "") {
        HttpRequest rq;
        rq.url = url(path);
        if (!bearer.empty()) rq.headers = {"Authorization: Bearer " + bearer};
        return http_request(rq).take();
    }
    // A user's API token (the users' part of the store).
    std::string user_token(const std::string& name, const std::string& role) {
        auto users = FleetUsers::open(server_->store(), Argon2Params{1, 8, 1}).take();
        if (auto st = users->add(name, role, "correct horse battery", kNow); !st) ADD_FAILURE() << st.error().message();
        return users->create_token(name, kNow, std::nullopt).take();
    }
    std::string alert_file() {
        std::ifstream in(dir_ + "/alerts.log");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    std::string dir_, token_, other_;
    std::atomic<int64_t> clock_{kNow};
    testing::RecordingQueue queue_;
    std::unique_ptr<CollectorServer> server_;
};

// The push-failed alert goes where the offline alert goes: the store, the alert file and
// the collector's push sinks, once; and its recovery too.
TEST_F(FleetHistoryServer, PushFailedAlertReachesTheAlertFileAndTheSinksOnce) {
    ASSERT_EQ(send(push_report("nas-1", 1, {push_row(41, kNow - 60, "ding", "failed", 3)}), token_).status, 200);
    ASSERT_EQ(send(push_report("nas-1", 1, {push_row(41, kNow - 60, "ding", "failed", 3)}), token_).status, 200);
    ASSERT_EQ(send(push_report("nas-1", 2, {push_row(41, kNow - 50, "ding", "failed", 4)}), token_).status, 200);
    clock_ = kNow + 60;
    ASSERT_EQ(send(push_report("nas-1", 3, {push_row(41, kNow - 40, "ding", "sent", 5)}), token_).status, 200);
    auto m = queue_.take();
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].kind, "alert");
    EXPECT_EQ(m[0].period, "push-failed:nas-1:ding");
    EXPECT_EQ(m[0].title, "nas-1: push to ding failing");
    EXPECT_TRUE(m[0].sink.empty());  // every sink that takes alerts
    EXPECT_EQ(m[1].kind, "recovery");
    EXPECT_EQ(m[1].period, "push-failed:nas-1:ding");
    EXPECT_EQ(alert_file(),
              "2026-11-30 08:53:20 alert nas-1: nas-1: push to ding failing\n"
              "2026-11-30 08:54:20 recovery nas-1: nas-1: push to ding works again\n");
    EXPECT_EQ(server_->store().count("fleet_alerts").take(), 2);
}

TEST_F(FleetHistoryServer, EndpointsNeedAUserAndAnswerTheDocumentedShape) {
    ASSERT_EQ(send(push_report("nas-1", 1,
                               {push_row(1, kNow - 3600, "ding", "sent", 1, 1054720),
                                push_row(2, kNow - 60, "customer", "failed", 2)}),
                   token_)
                  .status,
              200);
    for (const char* path : {"/agent/history/", "/api/v1/history"}) {
        HttpResponse none = get(path);
        EXPECT_EQ(none.status, 401) << path;
        EXPECT_EQ(json::parse(none.body)["status"], "error");
        // An agent's token reads nothing here.
        EXPECT_EQ(get(path, token_).status, 401) << path;
    }
    const std::string admin = user_token("ann", "admin");
    const std::string viewer = user_token("vic", "viewer");
    const std::string want =
        R"({"total":2,"page":1,"page_size":50,"items":[)"
        R"({"node_name":"beijing-1","host_name":"nas-1","sink":"customer","kind":"daily","period":"2026-11-29",)"
        R"("push_data_bytes":null,"status":"failed","attempts":2,"error":"HTTP 500",)"
        R"("update_time":"2026-11-30 08:52:20","update_time_epoch":1795999940,"agent":"nas-1","id":2,)"
        R"("request_bytes":812},)"
        R"({"node_name":"beijing-1","host_name":"nas-1","sink":"ding","kind":"daily","period":"2026-11-29",)"
        R"("push_data_bytes":1054720,"status":"sent","attempts":1,"error":"",)"
        R"("update_time":"2026-11-30 07:53:20","update_time_epoch":1795996400,"agent":"nas-1","id":1,)"
        R"("request_bytes":812}]})";
    for (const std::string& t : {admin, viewer})
        for (const char* path : {"/agent/history/", "/api/v1/history"}) {
            HttpResponse r = get(path, t);
            EXPECT_EQ(r.status, 200) << path;
            EXPECT_EQ(r.body, want) << path;
        }
    HttpResponse failed = get("/agent/history/?node=beijing-1&host=nas-1&status=failed&from=2026-11-30%2008:00&to=" +
                                  std::to_string(kNow) + "&page=1",
                              admin);
    EXPECT_EQ(failed.status, 200);
    json f = json::parse(failed.body);
    EXPECT_EQ(f["total"], 1);
    ASSERT_EQ(f["items"].size(), 1u);
    EXPECT_EQ(f["items"][0]["sink"], "customer");
    json p2 = json::parse(get("/api/v1/history?page=2&page_size=1", viewer).body);
    EXPECT_EQ(p2["total"], 2);
    EXPECT_EQ(p2["page"], 2);
    EXPECT_EQ(p2["page_size"], 1);
    ASSERT_EQ(p2["items"].size(), 1u);
    EXPECT_EQ(p2["items"][0]["sink"], "ding");
    EXPECT_EQ(get("/agent/history/?node=nowhere", admin).body, R"({"total":0,"page":1,"page_size":50,"items":[]})");

    HttpResponse bad = get("/agent/history/?status=ok", admin);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body, R"({"status":"error","message":"status must be pending, failed, sent or skipped, got 'ok'"})");
    bad = get("/api/v1/history?from=tomorrow", admin);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body,
              R"({"status":"error","message":"from: 'tomorrow' is not a time: use YYYY-MM-DD[ HH:MM[:SS]] (local )"
              R"(time, Asia/Shanghai) or unix seconds"})");
    bad = get("/api/v1/history?page=0", viewer);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body, R"({"status":"error","message":"page must be a whole number from 1 to 999999999, got '0'"})");
}

// ---- real agents, real uplinks, a real collector ------------------------------------------

struct Script {
    std::deque<bool> answers;  // empty: ok
};

class ScriptedSink : public Sink {
  public:
    explicit ScriptedSink(Script& s) : s_(s) {}
    SendResult send(const OutboundMessage&, const MessageMeta&) override {
        bool ok = true;
        if (!s_.answers.empty()) {
            ok = s_.answers.front();
            s_.answers.pop_front();
        }
        return ok ? SendResult{true, 200, R"({"errcode":0})", ""} : SendResult{false, 500, "down", "HTTP 500: down"};
    }

  private:
    Script& s_;
};

// One agent: its history database with a real outbox (scripted sinks) and a real uplink.
struct Agent {
    Agent(std::string n, std::string nd, std::string d) : name(std::move(n)), node(std::move(nd)), dir(std::move(d)) {}
    std::string name, node, dir, db, config;
    std::atomic<int64_t>* clock = nullptr;  // seconds, shared with the collector
    std::map<std::string, Script> scripts;
    std::unique_ptr<Outbox> outbox;
    std::unique_ptr<Uplink> uplink;

    void open(const std::string& url, const std::string& token) {
        std::filesystem::create_directories(dir + "/sys/class/net/pf0");
        std::ofstream(dir + "/sys/class/net/pf0/address") << "02:00:00:00:00:01\n";
        db = dir + "/peakflow.db";
        config = dir + "/config.yaml";
        std::ofstream(config) << "timezone: Asia/Shanghai\ndatabase: " << db << "\n";
        PushConfig push;
        push.configured = true;
        push.node_name = node;
        push.initial_backoff = 1.0;
        push.max_backoff = 8.0;
        SinkConfig ding;
        ding.name = "ding";
        ding.type = "dingtalk";
        ding.token = "t";
        ding.msgtype = "markdown";
        SinkConfig sc;
        sc.name = "sc";
        sc.type = "serverchan";
        sc.sendkey = "k";
        push.sinks = {ding, sc};
        OutboxOptions oo;
        oo.database = db;
        oo.push = push;
        oo.host = name + "-host";
        oo.now_ms = [this] { return clock->load() * 1000; };
        oo.mono_ms = oo.now_ms;  // the backoff follows the test's clock too
        oo.seed = 42;
        oo.make_sink = [this](const SinkConfig& s) { return std::make_unique<ScriptedSink>(scripts[s.name]); };
        outbox = Outbox::open(oo).take();
        UplinkOptions uo;
        uo.database = db;
        uo.cfg.configured = true;
        uo.cfg.url = url;
        uo.cfg.token = token;
        uo.cfg.name = name;
        uo.cfg.node = node;
        uo.clock = [this] { return clock->load(); };
        uo.ifaces = {"pf0"};
        uo.paths.sysfs = dir + "/sys";
        uo.host = name + ".lan";
        uo.boot_id = "6f1c0ad2-0000-4000-8000-000000000001";
        uplink = Uplink::open(uo).take();
    }
    void enqueue(const std::string& sink, const std::string& kind, const std::string& period,
                 std::optional<int64_t> value) {
        OutboundMessage m{sink, kind, period, kind + " " + period, "text of " + period, "", value};
        ASSERT_TRUE(outbox->enqueue(m).ok());
    }
    void step(const std::string& sink) { ASSERT_TRUE(outbox->step(sink).ok()); }
    void report() {
        auto o = uplink->report_once();
        ASSERT_TRUE(o.ok()) << o.error().message();
        EXPECT_TRUE(o->acked) << o->error;
    }
};

std::string run_captured(const std::function<int(int, char**)>& run, std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    const int rc = run(static_cast<int>(argv.size()), argv.data());
    std::string out = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 0) << args[1];
    return out;
}

// The rows of a `history --json`, by id, without the collector's "agent" key.
json rows_by_id(const std::string& out, const std::string& agent) {
    json rows = json::array();
    const json all = json::parse(out);
    for (auto r : all["history"]) {
        if (r.contains("agent")) {
            if (r["agent"] != agent) continue;
            r.erase("agent");
        }
        rows.push_back(r);
    }
    std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) { return a["id"] < b["id"]; });
    return rows;
}

TEST_F(FleetHistoryServer, CollectorHistoryEqualsEachAgentsHistoryRowForRow) {
    Agent a1{"nas-1", "beijing-1", dir_ + "/nas-1"};
    Agent a2{"nas-2", "shanghai-2", dir_ + "/nas-2"};
    a1.clock = a2.clock = &clock_;
    a1.open(url(""), token_);
    a2.open(url(""), other_);

    a1.enqueue("ding", "daily", "2026-11-29", 1054720);
    a1.enqueue("sc", "hourly", "2026-11-30T07", 78000);
    a1.enqueue("sc", "test", "", std::nullopt);
    a2.enqueue("", "monthly", "2026-10", 123456789);  // both sinks
    a1.scripts["ding"].answers = {false, false, false};
    for (int i = 0; i < 3; i++) {
        a1.step("ding");
        clock_ += 20;  // past the backoff
    }
    a1.step("sc");
    a1.step("sc");
    a2.step("ding");
    clock_ += 10;  // the rows settle
    a1.report();
    a2.report();
    // nas-1's ding failed 3 times in a row: one alert at the collector, whatever the
    // agent's own alert did.
    auto m = queue_.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].period, "push-failed:nas-1:ding");
    EXPECT_EQ(m[0].kind, "alert");
    a1.report();  // nothing new
    a1.step("ding");
    a1.step("sc");  // the agent's own alert about ding, queued for sc
    clock_ += 10;
    a1.report();
    m = queue_.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].kind, "recovery");
    EXPECT_EQ(m[0].period, "push-failed:nas-1:ding");

    const std::string cfg = dir_ + "/collector.yaml";
    std::ofstream(cfg) << "database: " << collector_database(dir_) << "\ntimezone: Asia/Shanghai\n";
    const std::string fleet = run_captured(run_collector_cli, {"peakflow-collector", "history", "--json", "-f", cfg});
    for (Agent* a : {&a1, &a2}) {
        const std::string own = run_captured(run_cli, {"peakflow-bpf", "history", "--json", "-f", a->config});
        const json want = rows_by_id(own, a->name);
        ASSERT_FALSE(want.empty()) << own;
        EXPECT_EQ(rows_by_id(fleet, a->name), want) << a->name;
        // --agent, --node and --host select the same rows.
        const std::string one =
            run_captured(run_collector_cli, {"peakflow-collector", "history", "--json", "--agent", a->name, "-f", cfg});
        EXPECT_EQ(rows_by_id(one, a->name), want);
        const std::string by_node =
            run_captured(run_collector_cli, {"peakflow-collector", "history", "--json", "--node", a->node, "-f", cfg});
        EXPECT_EQ(json::parse(by_node)["history"].size(), want.size());
        const std::string by_host = run_captured(
            run_collector_cli, {"peakflow-collector", "history", "--json", "--host", a->name + "-host", "-f", cfg});
        EXPECT_EQ(json::parse(by_host)["history"].size(), want.size());
    }
    json own1 = rows_by_id(run_captured(run_cli, {"peakflow-bpf", "history", "--json", "-f", a1.config}), "nas-1");
    // What the agent recorded: the value beside the request size, null for the test and the alert.
    // Then the agent's own alert about ding and its recovery, both for sc.
    ASSERT_EQ(own1.size(), 5u);
    EXPECT_EQ(own1[0]["value"], 1054720);
    EXPECT_GT(own1[0]["bytes"].get<int64_t>(), 0);
    EXPECT_EQ(own1[0]["status"], "sent");
    EXPECT_EQ(own1[0]["attempts"], 4);
    EXPECT_EQ(own1[1]["value"], 78000);
    EXPECT_TRUE(own1[2]["value"].is_null());
    EXPECT_EQ(own1[3]["kind"], "alert");
    EXPECT_EQ(own1[3]["status"], "sent");
    EXPECT_TRUE(own1[3]["value"].is_null());
    EXPECT_EQ(own1[4]["kind"], "recovery");
    EXPECT_EQ(own1[4]["status"], "pending");
    // The table: the agent's columns with AGENT in front; newest first.
    const std::string table = run_captured(run_collector_cli, {"peakflow-collector", "history", "-f", cfg});
    EXPECT_EQ(
        table.substr(0, table.find('\n')),
        "AGENT  ID  TIME                 NODE        HOST        SINK  KIND      PERIOD         BYTES      VALUE  "
        "STATUS   ATTEMPTS  LAST ERROR");
    const std::string failed =
        run_captured(run_collector_cli, {"peakflow-collector", "history", "--failed", "-f", cfg});
    EXPECT_EQ(failed.substr(failed.find('\n') + 1), "(no messages yet)\n");
}

// No server here: its log lines (the database probe's, on its own thread) would land in the
// captured stderr.
TEST(FleetHistoryCli, CollectorHistoryRefusesBadTimesClearly) {
    char tmpl[] = "/tmp/pf_fleet_history_cli_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    const std::string cfg = dir + "/collector.yaml";
    std::ofstream(cfg) << "database: " << collector_database(dir) << "\ntimezone: Asia/Shanghai\n";
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "peakflow-collector");
        args.push_back("-f");
        args.push_back(cfg);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        ::testing::internal::CaptureStderr();
        const int rc = run_collector_cli(static_cast<int>(argv.size()), argv.data());
        return std::to_string(rc) + " " + ::testing::internal::GetCapturedStderr();
    };
    EXPECT_EQ(run({"history", "--from", "2026-13-01"}),
              "1 peakflow-collector: error: --from: '2026-13-01' is not a time: use YYYY-MM-DD[ HH:MM[:SS]] (local "
              "time, Asia/Shanghai) or unix seconds\n");
    EXPECT_EQ(run({"history", "--from", "2026-11-30 10:00", "--to", "2026-11-30 09:00"}),
              "1 peakflow-collector: error: --from must be before --to\n");
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

TEST(CollectorConfigHistory, PushFailureAlertAfterIsParsedWithItsPlace) {
    auto c = parse_collector_config("push_failure_alert_after: 5\n", "collector.yaml").take();
    EXPECT_EQ(c.push_failure_alert_after, 5);
    EXPECT_EQ(c.server_options().push_failure_alert_after, 5);
    EXPECT_EQ(parse_collector_config("", "collector.yaml").take().push_failure_alert_after, 3);
    EXPECT_EQ(parse_collector_config("push_failure_alert_after: 0\n", "c.yaml").take().push_failure_alert_after, 0);
    auto bad = parse_collector_config("offline_after: 3\npush_failure_alert_after: 1001\n", "collector.yaml");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message().substr(0, 18), "collector.yaml:2:2");
    EXPECT_NE(bad.error().message().find("push_failure_alert_after"), std::string::npos) << bad.error().message();
}

}  // namespace
}  // namespace pf
