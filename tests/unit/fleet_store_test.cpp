// The collector's store on real SQLite files: tokens, one transaction per report with its
// sequence checks, the offline transitions, alerts, and the usage views `report` renders
// (the same output as over the agent's own Store with the same rows).

#include "peakflow/fleet/fleet_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "fleet_test_support.hpp"
#include "peakflow/accounting/report.hpp"
#include "peakflow/kernel/maps.hpp"
#include "report_test_support.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

using pf::testing::collector_database;
using pf::testing::store_on_postgres;

constexpr int64_t kNow = 1796000000;  // 2026-11-30 00:53:20 UTC
constexpr int64_t kTs = 1795999800;   // 2026-11-30 00:50:00 UTC
const std::string kSpool = "0123456789abcdef0123456789abcdef";

WireReport report_of(const std::string& agent, std::vector<WireBatch> batches, const std::string& spool = kSpool) {
    WireReport r = testing::agent_report(agent, kNow, std::move(batches), spool);
    r.backlog_buckets = 4;
    return r;
}

WireBatch buckets(int64_t seq, std::vector<WireBucket> rows) {
    return testing::bucket_batch(seq, std::move(rows));
}

WireBucket bucket(int64_t ts, uint64_t rx, uint64_t tx, const std::string& mac = "",
                  const std::string& iface = "eth0") {
    return WireBucket{iface, mac, ts, false, rx, 1, tx, 1};
}

class FleetStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_fleet_store_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = collector_database(dir_ + "/state");
        store_ = FleetStore::open(path_).take();
    }
    void TearDown() override {
        store_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    // One value, read through the store's connection (SQLite or PostgreSQL).
    int64_t scalar(const std::string& sql) {
        return store_->with_db([&](StoreDb& db) {
            auto q = db.prepare(sql).take();
            EXPECT_EQ(q.step(), SQLITE_ROW) << sql;
            return q.i64(0);
        });
    }
    IngestResult ingest(const std::string& agent, const WireReport& r, int64_t now = kNow) {
        auto res = store_->ingest(agent, r, now);
        EXPECT_TRUE(res.ok()) << res.error().message();
        return res.ok() ? *res : IngestResult{};
    }
    std::string dir_, path_;
    std::unique_ptr<FleetStore> store_;
};

TEST_F(FleetStoreTest, FileIsPrivate) {
    if (store_on_postgres()) GTEST_SKIP() << "a SQLite file's mode; PostgreSQL keeps its own files";
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir_ + "/state").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(FleetStoreTest, TokensAreRandomHashedAndRevocable) {
    auto t = store_->create_token("nas-1", kNow);
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_TRUE(std::regex_match(*t, std::regex("pfc_[0-9a-f]{64}"))) << *t;
    // Only the hash is stored.
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_agents WHERE token_hash = '" + sha256_hex(*t) + "'"), 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_agents WHERE token_hash LIKE 'pfc_%'"), 0);

    auto again = store_->create_token("nas-1", kNow);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message(),
              "agent 'nas-1' already has a token (revoke it first: peakflow-collector token revoke nas-1)");
    auto bad = store_->create_token("a/b", kNow);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(), "agent name 'a/b': use 1 to 64 of A-Z a-z 0-9 . _ -");
    EXPECT_FALSE(store_->create_token(std::string(65, 'a'), kNow).ok());
    EXPECT_TRUE(store_->create_token(std::string(64, 'a'), kNow).ok());

    auto who = store_->authenticate(*t).take();
    ASSERT_TRUE(who.has_value());
    EXPECT_EQ(who->agent, "nas-1");
    EXPECT_FALSE(who->revoked);
    EXPECT_FALSE(store_->authenticate("pfc_" + std::string(64, '0')).take().has_value());

    ASSERT_TRUE(store_->revoke_token("nas-1").ok());
    who = store_->authenticate(*t).take();
    ASSERT_TRUE(who.has_value());
    EXPECT_TRUE(who->revoked);
    auto none = store_->revoke_token("nobody");
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().message(), "no agent named 'nobody'");

    // A new token after a revoke: the old one stays refused.
    auto t2 = store_->create_token("nas-1", kNow + 1).take();
    EXPECT_NE(t2, *t);
    EXPECT_FALSE(store_->authenticate(*t).take().has_value());
    EXPECT_EQ(store_->authenticate(t2).take()->agent, "nas-1");
}

// Day roll-ups (Asia/Shanghai): sums over a range with whole past days equal the sums of
// the buckets, row for row per interface and MAC, with the partial first day and today read
// from the buckets; the whole day in the range is marked clean once rolled up; a late row
// into it takes it off the list and the next read has it.
TEST_F(FleetStoreTest, DayRollupsGiveTheBucketsSums) {
    store_->create_token("nas-1", kNow).take();
    store_->create_token("nas-2", kNow).take();
    Calendar cal = Calendar::create("Asia/Shanghai", {PeakWindow{}}, 1).take();
    ASSERT_TRUE(store_->use_day_rollups(cal, [] { return kNow; }).ok());
    const int64_t today = cal.day_start(cal.local_date(kNow));  // 2026-11-30 00:00 +08
    struct Row {
        std::string agent, mac;
        int64_t ts;
        uint64_t rx, tx;
    };
    std::vector<Row> rows;
    for (int d = 3; d >= 0; d--)
        for (int h : {0, 5, 13, 23})
            for (const char* agent : {"nas-1", "nas-2"})
                for (const char* mac : {"", "02:00:00:00:00:07"}) {
                    const int64_t ts = today - d * 86400 + h * 3600 + 300 * d;
                    if (ts > kTs) continue;
                    rows.push_back({agent, mac, ts, uint64_t(1000 * d + h + 1), uint64_t(10 * d + h + 7)});
                }
    int64_t seq[2] = {0, 0};
    for (const char* agent : {"nas-1", "nas-2"}) {
        std::vector<WireBucket> b;
        for (const auto& r : rows)
            if (r.agent == agent) b.push_back(bucket(r.ts, r.rx, r.tx, r.mac));
        ingest(agent, report_of(agent, {buckets(++seq[agent[4] - '1'], b)}));
    }
    // From 12:00 of the 28th (a partial day) to now: the 29th is the one whole past day.
    const int64_t from = today - 2 * 86400 + 12 * 3600;
    auto expect = [&](const std::vector<Row>& all) {
        std::map<std::pair<std::string, int64_t>, std::pair<uint64_t, uint64_t>> want;
        for (const auto& r : all)
            if (r.ts >= from && r.ts < kNow) {
                auto& w = want[{r.agent + "/eth0", r.mac.empty() ? kIfaceTotal : mac_to_int(*parse_mac(r.mac))}];
                w.first += r.rx;
                w.second += r.tx;
            }
        auto got = store_->usage({})->totals(Filter{}, from, kNow).take();
        std::map<std::pair<std::string, int64_t>, std::pair<uint64_t, uint64_t>> have;
        for (const auto& g : got) {
            auto& h = have[{g.iface, g.mac}];
            h.first += g.dir[PF_DIR_RX].bytes;
            h.second += g.dir[PF_DIR_TX].bytes;
        }
        EXPECT_EQ(have, want);
        EXPECT_EQ(want.size(), 4u);
    };
    expect(rows);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_days_clean"), 1);
    EXPECT_EQ(scalar("SELECT day FROM fleet_days_clean"), today - 86400);
    // nas-1's total of the 29th: 4 hours' rows of day offset 1.
    EXPECT_EQ(scalar("SELECT rx_bytes FROM fleet_days WHERE agent = 'nas-1' AND mac = " + std::to_string(kIfaceTotal)),
              1001 + 1006 + 1014 + 1024);

    // A late row into the 29th (an agent's backlog): the day is rolled up again.
    rows.push_back({"nas-2", "", today - 86400 + 7 * 3600, 555, 444});
    ingest("nas-2", report_of("nas-2", {buckets(2, {bucket(rows.back().ts, 555, 444)})}));
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_days_clean"), 0);
    expect(rows);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_days_clean"), 1);
    // Interface totals, today's whole day too, from the day totals kept as rows arrive; the
    // same after they are made again from the buckets for another zone.
    auto iface_totals = [&](int64_t a, int64_t z) {
        std::map<std::string, uint64_t> out;
        for (const auto& g : store_->usage({})->totals(Filter{std::nullopt, kIfaceTotal}, a, z).take())
            out[g.iface] += g.dir[PF_DIR_RX].bytes + g.dir[PF_DIR_TX].bytes;
        return out;
    };
    std::map<std::string, uint64_t> want_totals;
    for (const auto& r : rows)
        if (r.mac.empty() && r.ts >= from) want_totals[r.agent + "/eth0"] += r.rx + r.tx;
    EXPECT_EQ(iface_totals(from, today + 86400), want_totals);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_iface_days WHERE zone = 'Asia/Shanghai'"), 2 * 4 * 1);
    ASSERT_TRUE(store_->use_day_rollups(Calendar::create("UTC", {PeakWindow{}}, 1).take(), [] { return kNow; }).ok());
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_iface_days WHERE zone <> 'UTC'"), 0);
    EXPECT_EQ(iface_totals(from, today + 86400), want_totals);
    ASSERT_TRUE(store_->use_day_rollups(cal, [] { return kNow; }).ok());

    // Nothing left to do; the days before are rolled up when asked: the 25th to the 28th
    // (the 29th is clean, today has not ended).
    EXPECT_EQ(store_->settle_days(from, kNow).take(), 0);
    EXPECT_EQ(store_->settle_days(today - 5 * 86400, kNow).take(), 4);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_days_clean"), 5);
}

// The fleet's 5-minute totals kept as reports arrive equal the interface-total rows summed
// per bucket and peak flag: open buckets sent again with grown values, then closed; a row
// whose peak flag changed; a MAC row (not counted); two agents in one bucket.
TEST_F(FleetStoreTest, FleetPointsEqualTheSumOfTheAgentsRows) {
    store_->create_token("nas-1", kNow).take();
    store_->create_token("nas-2", kNow).take();
    auto live = [&](const char* agent, std::vector<WireBucket> rows) {
        WireReport r = report_of(agent, {});
        r.live = std::move(rows);
        ingest(agent, r);
    };
    live("nas-1", {bucket(kTs, 100, 10), bucket(kTs, 70, 7, "02:00:00:00:00:05")});
    live("nas-1", {bucket(kTs, 250, 30)});
    live("nas-2", {bucket(kTs, 1000, 1)});
    ingest("nas-1", report_of("nas-1", {buckets(1, {bucket(kTs, 300, 40), bucket(kTs - 300, 5, 5)})}));
    // An older copy arriving late changes nothing; a peak flag that changed moves the row.
    live("nas-1", {bucket(kTs, 200, 20)});
    WireBucket peak = bucket(kTs - 300, 9, 5);
    peak.peak = true;
    ingest("nas-1", report_of("nas-1", {buckets(2, {peak})}));
    auto points = store_->fleet_points(kTs - 600, kTs + 300).take();
    std::vector<std::string> got;
    for (const auto& p : points)
        got.push_back(std::to_string(p.ts - kTs) + (p.peak ? " peak " : " off ") +
                      std::to_string(p.dir[PF_DIR_RX].bytes) + "/" + std::to_string(p.dir[PF_DIR_TX].bytes));
    EXPECT_EQ(got, (std::vector<std::string>{"-300 off 0/0", "-300 peak 9/5", "0 off 1300/41"}));
    EXPECT_EQ(scalar("SELECT SUM(rx_bytes) FROM fleet_buckets WHERE mac = -1"), 1309);
}

TEST_F(FleetStoreTest, DuplicateBatchIsAcknowledgedNotStoredTwice) {
    store_->create_token("nas-1", kNow).take();
    auto r = report_of("nas-1", {buckets(1, {bucket(kTs, 1000, 500), bucket(kTs, 300, 200, "02:00:00:00:00:09")})});
    IngestResult a = ingest("nas-1", r);
    EXPECT_EQ(a.gap, "");
    EXPECT_EQ(a.batches, 1u);
    EXPECT_EQ(a.records, 2u);
    EXPECT_EQ(a.duplicates, 0u);
    EXPECT_EQ(a.ack.buckets, 1);
    EXPECT_EQ(a.ack.push, 0);
    EXPECT_EQ(a.ack.time, kNow);
    IngestResult b = ingest("nas-1", r, kNow + 60);
    EXPECT_EQ(b.batches, 0u);
    EXPECT_EQ(b.duplicates, 1u);
    EXPECT_EQ(b.ack.buckets, 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_buckets"), 2);
    EXPECT_EQ(scalar("SELECT SUM(rx_bytes) FROM fleet_buckets"), 1300);
    EXPECT_EQ(scalar("SELECT SUM(tx_bytes) FROM fleet_buckets"), 700);

    // A changed row sent again replaces what is held: absolute values, never added.
    IngestResult c = ingest("nas-1", report_of("nas-1", {buckets(2, {bucket(kTs, 1500, 600)})}));
    EXPECT_EQ(c.batches, 1u);
    EXPECT_EQ(c.ack.buckets, 2);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_buckets"), 2);
    EXPECT_EQ(scalar("SELECT SUM(rx_bytes) FROM fleet_buckets"), 1800);
    EXPECT_EQ(scalar("SELECT SUM(tx_bytes) FROM fleet_buckets"), 800);

    auto ag = store_->agent("nas-1").take();
    ASSERT_TRUE(ag.has_value());
    EXPECT_EQ(ag->last_seen, kNow);
    EXPECT_EQ(ag->first_seen, kNow);
    EXPECT_EQ(ag->state, "online");
    EXPECT_EQ(ag->backlog, 4);
    EXPECT_EQ(ag->iface, "eth0");
    EXPECT_EQ(ag->mac, "02:00:00:00:00:01");
    EXPECT_EQ(ag->node, "beijing-1");
}

TEST_F(FleetStoreTest, GapRefusesTheWholeReport) {
    store_->create_token("nas-1", kNow).take();
    ingest("nas-1", report_of("nas-1", {buckets(1, {bucket(kTs, 1, 1)})}));
    WireBatch push;
    push.stream = "push";
    push.seq = 1;
    push.push = {{41, kNow, "n", "h", "ding", "daily", "2026-11-29", 812, "sent", 1, ""}};
    IngestResult g = ingest("nas-1", report_of("nas-1", {push, buckets(3, {bucket(kTs + 300, 5, 5)})}), kNow + 60);
    EXPECT_EQ(g.gap, "stream buckets: sequence gap: holds 1, got 3");
    EXPECT_EQ(g.ack.buckets, 1);
    EXPECT_EQ(g.ack.push, 0);
    EXPECT_EQ(g.batches, 0u);
    // Nothing of it: not the push batch before the gap, not its sequence, not last_seen.
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_push"), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_buckets"), 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_stream_seq WHERE stream = 'push'"), 0);
    EXPECT_EQ(store_->agent("nas-1").take()->last_seen, kNow);

    // A new spool (the agent's database was replaced) starts again at 1.
    IngestResult n = ingest("nas-1", report_of("nas-1", {buckets(1, {bucket(kTs + 300, 7, 7)})}, std::string(32, 'a')));
    EXPECT_EQ(n.gap, "");
    EXPECT_EQ(n.ack.buckets, 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_buckets"), 2);
}

TEST_F(FleetStoreTest, PushHostAndEpisodes) {
    store_->create_token("nas-1", kNow).take();
    WireBatch push;
    push.stream = "push";
    push.seq = 1;
    push.push = {{41, kNow, "n", "h", "ding", "daily", "2026-11-29", 812, "failed", 1, "timeout"}};
    WireBatch host;
    host.stream = "host";
    host.seq = 1;
    WireHost sys;
    sys.type = "sys";
    sys.time = kNow;
    sys.cpu = 3.5;
    WireHost ep;
    ep.type = "episode";
    ep.id = 7;
    ep.ended = kNow;
    host.host = {sys, ep};
    ingest("nas-1", report_of("nas-1", {push, host}));
    // The same push row and episode changed, in the next batches: replaced, the sample appended.
    push.seq = 2;
    push.push[0].status = "sent";
    push.push[0].attempts = 2;
    host.seq = 2;
    host.host[1].pid = 99;
    ingest("nas-1", report_of("nas-1", {push, host}));
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_push"), 1);
    EXPECT_EQ(scalar("SELECT attempts FROM fleet_push WHERE status = 'sent'"), 2);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_host"), 2);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_episodes"), 1);
    EXPECT_EQ(scalar("SELECT pid FROM fleet_episodes"), 99);
}

TEST_F(FleetStoreTest, LargeBatchIsOneQuickTransaction) {
    store_->create_token("nas-1", kNow).take();
    std::vector<WireBucket> rows;
    for (int i = 0; i < 20000; i++) {
        char mac[18];
        snprintf(mac, sizeof mac, "02:00:00:00:%02x:%02x", (i / 2000) & 0xff, 0);
        rows.push_back(bucket(kTs - 300 * (i % 2000), 1000 + i, i, i < 2000 ? "" : mac));
    }
    auto t0 = std::chrono::steady_clock::now();
    IngestResult r = ingest("nas-1", report_of("nas-1", {buckets(1, rows)}));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.records, 20000u);
    EXPECT_EQ(scalar("SELECT count(*) FROM fleet_buckets"), 20000);
    EXPECT_EQ(scalar("SELECT SUM(tx_bytes) FROM fleet_buckets"), 19999LL * 20000 / 2);
    EXPECT_LT(ms, 5000) << "20000 rows took " << ms << " ms";
}

TEST_F(FleetStoreTest, OfflineOnceThenRecoveryWithGrace) {
    store_->create_token("nas-1", kNow).take();
    store_->create_token("quiet", kNow).take();  // never reports: never offline
    ingest("nas-1", report_of("nas-1", {}));
    auto notice = [](const char* kind) {
        return [kind](const AgentRow& a, int64_t now) {
            StoredAlert n;
            n.time = now;
            n.agent = a.name;
            n.origin = "collector";
            n.kind = kind;
            n.key = "agent-offline:" + a.name;
            n.title = a.name + " " + kind;
            return n;
        };
    };
    // 3 x 60 s: quiet for 180 s is still online, 181 s is offline.
    EXPECT_TRUE(store_->mark_offline(kNow + 180, kNow, 3, notice("alert")).take().empty());
    auto moved = store_->mark_offline(kNow + 181, kNow, 3, notice("alert")).take();
    ASSERT_EQ(moved.size(), 1u);
    EXPECT_EQ(moved[0].agent.name, "nas-1");
    EXPECT_EQ(moved[0].notice.title, "nas-1 alert");
    EXPECT_TRUE(store_->mark_offline(kNow + 500, kNow, 3, notice("alert")).take().empty());
    EXPECT_EQ(store_->agent("nas-1").take()->state, "offline");
    EXPECT_EQ(store_->agent("nas-1").take()->offline_since, kNow + 181);
    EXPECT_EQ(store_->agent("quiet").take()->state, "never");

    auto back = store_->ingest("nas-1", report_of("nas-1", {}), kNow + 600, notice("recovery")).take();
    ASSERT_TRUE(back.notice.has_value());
    EXPECT_EQ(back.notice->title, "nas-1 recovery");
    auto again = store_->ingest("nas-1", report_of("nas-1", {}), kNow + 660, notice("recovery")).take();
    EXPECT_FALSE(again.notice.has_value());

    // Grace: an agent quiet since long before the collector started waits a full period
    // from the start.
    const int64_t start = kNow + 10000;
    EXPECT_TRUE(store_->mark_offline(start + 180, start, 3, notice("alert")).take().empty());
    EXPECT_EQ(store_->mark_offline(start + 181, start, 3, notice("alert")).take().size(), 1u);

    auto alerts = store_->alerts().take();
    ASSERT_EQ(alerts.size(), 3u);
    EXPECT_EQ(alerts[0].time, start + 181);
    EXPECT_EQ(alerts[0].kind, "alert");
    EXPECT_EQ(alerts[1].time, kNow + 600);
    EXPECT_EQ(alerts[1].kind, "recovery");
    EXPECT_EQ(alerts[2].time, kNow + 181);
    EXPECT_EQ(alerts[2].origin, "collector");
}

TEST_F(FleetStoreTest, AgentAlertsDedupeByDigest) {
    StoredAlert a;
    a.time = kNow;
    a.agent = "nas-1";
    a.origin = "agent";
    a.kind = "alert";
    a.key = "runaway:1";
    a.title = "runaway";
    EXPECT_TRUE(store_->add_alert(a, "d1").take());
    EXPECT_FALSE(store_->add_alert(a, "d1").take());
    EXPECT_TRUE(store_->add_alert(a, "d2").take());
    a.agent = "nas-2";
    EXPECT_TRUE(store_->add_alert(a, "d1").take());
    EXPECT_EQ(store_->count("fleet_alerts").take(), 3);
}

TEST(FleetStoreState, NeverOnlineOffline) {
    AgentRow a;
    a.interval = 60;
    EXPECT_EQ(agent_state(a, kNow, 3), "never");
    a.last_seen = kNow - 180;
    EXPECT_EQ(agent_state(a, kNow, 3), "online");
    a.last_seen = kNow - 181;
    EXPECT_EQ(agent_state(a, kNow, 3), "offline");
}

// ---- report views ----------------------------------------------------------------------

// Asia/Shanghai (UTC+8), peak 18:00-24:00.
constexpr int64_t kSh21_0000 = 1795190400;  // 2026-11-21 00:00
constexpr int64_t kSh21_0905 = 1795223100;  // 2026-11-21 09:05
constexpr int64_t kSh21_2000 = 1795262400;  // 2026-11-21 20:00
constexpr int64_t kSh22_0100 = 1795280400;  // 2026-11-22 01:00

class FleetReportTest : public testing::HistoryFile {
  protected:
    void SetUp() override {
        HistoryFile::SetUp();
        fleet_ = FleetStore::open(collector_database(dir_)).take();
    }
    void TearDown() override {
        fleet_.reset();
        HistoryFile::TearDown();
    }
    // The agent's rows, as its uplink would read and send them.
    void send_store_rows(const std::string& agent, const std::string& node) {
        fleet_->create_token(agent, kSh21_0000).take();
        auto rows = store_->buckets(Filter{}, 0, INT64_MAX).take();
        WireBatch b;
        b.stream = "buckets";
        b.seq = 1;
        for (const auto& r : rows)
            b.buckets.push_back(WireBucket{r.iface, r.mac == kIfaceTotal ? "" : format_mac(mac_from_int(r.mac)), r.ts,
                                           r.peak, r.dir[PF_DIR_RX].bytes, r.dir[PF_DIR_RX].packets,
                                           r.dir[PF_DIR_TX].bytes, r.dir[PF_DIR_TX].packets});
        WireReport rep = report_of(agent, {b});
        rep.agent.node = node;
        auto res = fleet_->ingest(agent, rep, kSh22_0100).take();
        ASSERT_EQ(res.records, rows.size());
    }
    std::string render(UsageSource& src, const Calendar& cal, ReportOptions o) {
        std::ostringstream out;
        auto st = run_report(src, cal, {}, o, kSh22_0100, out);
        EXPECT_TRUE(st.ok()) << st.error().message();
        return out.str();
    }
    std::unique_ptr<FleetStore> fleet_;
};

TEST_F(FleetReportTest, OneAgentRendersAsTheAgentsOwnStore) {
    Calendar cal = Calendar::create("Asia/Shanghai", {parse_peak_window("18:00-24:00").take()}, 1).take();
    const int64_t a = mac_to_int(MacAddr{0x02, 0, 0, 0, 0, 0x01});
    const int64_t b = mac_to_int(MacAddr{0x02, 0, 0, 0, 0, 0x02});
    commit(cal, {{"eth0", kSh21_0905, kIfaceTotal, 1000, 400},
                 {"eth0", kSh21_0905, a, 600, 300},
                 {"eth0", kSh21_0905, b, 400, 100},
                 {"eth0", kSh21_2000, kIfaceTotal, 5000, 2000},
                 {"eth0", kSh21_2000, a, 5000, 2000},
                 {"eth1", kSh21_2000 + 600, kIfaceTotal, 77, 33},
                 {"eth0", kSh22_0100 - 300, kIfaceTotal, 9, 9}});
    send_store_rows("nas-1", "beijing-1");
    auto fleet_view = fleet_->usage(FleetStore::Selection{std::string("nas-1"), std::nullopt});

    std::vector<ReportOptions> views;
    for (bool json : {false, true}) {
        ReportOptions o;
        o.json = json;
        views.push_back(o);  // summary
        o.kind = ReportOptions::Day;
        o.day = LocalDate{2026, 11, 21};
        views.push_back(o);
        o.kind = ReportOptions::Hours;
        views.push_back(o);
        o.kind = ReportOptions::FiveMinutes;
        views.push_back(o);
        o.kind = ReportOptions::Month;
        o.day.reset();
        o.month = BillingMonth{2026, 11};
        views.push_back(o);
    }
    for (size_t i = 0; i < views.size(); i++) {
        const std::string want = render(*store_, cal, views[i]);
        const std::string got = render(*fleet_view, cal, views[i]);
        EXPECT_EQ(got, want) << "view " << i;
        EXPECT_FALSE(want.empty());
    }
}

TEST_F(FleetReportTest, NodeAndFleetNameInterfacesByAgent) {
    Calendar cal = Calendar::create("Asia/Shanghai", {parse_peak_window("18:00-24:00").take()}, 1).take();
    commit(cal, {{"eth0", kSh21_0905, kIfaceTotal, 1000, 400}});
    send_store_rows("nas-1", "beijing-1");
    send_store_rows("nas-2", "shanghai-1");
    auto node = fleet_->usage(FleetStore::Selection{std::nullopt, std::string("beijing-1")});
    EXPECT_EQ(node->interfaces().take(), std::vector<std::string>{"nas-1/eth0"});
    auto all = fleet_->usage(FleetStore::Selection{});
    EXPECT_EQ(all->interfaces().take(), (std::vector<std::string>{"nas-1/eth0", "nas-2/eth0"}));
    auto sums = all->totals(Filter{std::string("nas-2/eth0"), kIfaceTotal}, 0, INT64_MAX).take();
    ASSERT_EQ(sums.size(), 1u);
    EXPECT_EQ(sums[0].iface, "nas-2/eth0");
    EXPECT_EQ(sums[0].dir[PF_DIR_RX].bytes, 1000u);
    EXPECT_EQ(sums[0].dir[PF_DIR_TX].bytes, 400u);

    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 21};
    o.json = true;
    auto j = nlohmann::json::parse(render(*all, cal, o));
    ASSERT_EQ(j["reports"][0]["interfaces"].size(), 2u) << j.dump();
    EXPECT_EQ(j["reports"][0]["interfaces"][1]["name"], "nas-2/eth0");
    EXPECT_EQ(j["reports"][0]["interfaces"][1]["total_bytes"], 1400);

    auto empty = fleet_->usage(FleetStore::Selection{std::nullopt, std::string("nowhere")});
    std::ostringstream out;
    o.json = false;
    auto st = run_report(*empty, cal, {}, o, kSh22_0100, out);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message(), "no traffic recorded yet in " + redact_database(collector_database(dir_)) +
                                        " (node nowhere) (agents send their 5-minute rows with each "
                                        "report ('peakflow-collector agents' shows who reported))");
}

}  // namespace
}  // namespace pf
