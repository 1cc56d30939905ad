// The customer's hourly report on real SQLite files: the exact body of an hour (its 12
// points are the stored 5-minute buckets and add up to the hour), when an hour is due,
// no resend after a restart, catch-up, a MAC change at the hour, the acceptance switch,
// and verification against a real HTTP server on 127.0.0.1 that holds the customer's data.

#include "peakflow/push/customer_report.hpp"
#include "peakflow/app/config.hpp"
#include "peakflow/push/outbox.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <atomic>
#include <chrono>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "report_test_support.hpp"

namespace pf {
namespace {

using nlohmann::json;
using testing::HistoryFile;
using testing::Put;
using testing::RecordingQueue;

// Asia/Shanghai (UTC+8)
constexpr int64_t kSh1455 = 1795244100;  // 2026-11-21 14:55
constexpr int64_t kSh1500 = 1795244400;  // 2026-11-21 15:00
constexpr int64_t kSh1600 = 1795248000;  // 2026-11-21 16:00
constexpr int64_t kSh1700 = 1795251600;  // 2026-11-21 17:00
constexpr int64_t kHour = 3600;

const MacAddr kPeer{0x02, 0x00, 0x00, 0x00, 0x00, 0x07};

Calendar shanghai() {
    return Calendar::create("Asia/Shanghai", {parse_peak_window("18:00-24:00").take()}, 1).take();
}

CustomerReportConfig customer_config() {
    CustomerReportConfig c;
    c.enabled = true;
    c.sink = "customer";
    c.provider_id = {"provider_id", "P-100", false};
    c.provider_uiid = {"provider_uiid", "9f3c", false};
    c.isp_id = {"isp_id", "3", true};
    c.device_type = {"device_type", "12", true};
    c.fields = {{"region", "sh", false}};
    return c;
}

class CustomerReport : public HistoryFile {
  protected:
    void SetUp() override {
        HistoryFile::SetUp();
        std::filesystem::create_directories(dir_ + "/sys/class/net/eth0");
        set_mac("02:aa:bb:cc:dd:01");
    }
    void set_mac(const std::string& mac) { std::ofstream(dir_ + "/sys/class/net/eth0/address") << mac << "\n"; }

    // Hour 15 of 2026-11-21: bucket i sends 1000 * (i + 1) and receives 7 * i bytes; the
    // buckets on either side must not count. kPeer's rows are a tenth of it.
    // A second hour (scale 2) comes without the rows on either side.
    void fill_hour(int64_t hour = kSh1500, uint64_t scale = 1) {
        const Calendar cal = shanghai();
        std::vector<Put> puts;
        if (scale == 1) puts = {{"eth0", hour - 300, kIfaceTotal, 5, 5}, {"eth0", hour + kHour, kIfaceTotal, 9, 9}};
        for (uint64_t i = 0; i < 12; i++) {
            puts.push_back({"eth0", hour + static_cast<int64_t>(i) * 300, kIfaceTotal, 7 * i, 1000 * (i + 1) * scale});
            puts.push_back({"eth0", hour + static_cast<int64_t>(i) * 300, mac_to_int(kPeer), i, 100 * (i + 1)});
        }
        commit(cal, puts);
    }

    CustomerReportService::Options options() {
        CustomerReportService::Options o;
        o.cfg = customer_config();
        o.database = db_;
        o.sysfs = dir_ + "/sys";
        o.iface = "eth0";
        o.timezone = "Asia/Shanghai";
        o.drain_interval = 10;
        o.clock = [this] { return clock_; };
        return o;
    }

    int64_t clock_ = kSh1455;
};

std::string expected_body(const std::string& mac, const std::string& hour, const std::vector<uint64_t>& v,
                          int version) {
    std::string s = "{\"flux_dat\":\"2026-11-21\",\"flux_hour\":\"2026-11-21 " + hour +
                    "\",\"provider_id\":\"P-100\",\"provider_uiid\":\"9f3c\",\"isp_id\":3,\"mac\":\"" + mac + "\"";
    for (size_t i = 0; i < v.size(); i++) s += ",\"v" + std::to_string(i) + "\":" + std::to_string(v[i]);
    return s + ",\"version\":" + std::to_string(version) + ",\"device_type\":12,\"region\":\"sh\"}";
}

const std::vector<uint64_t> kTx15 = {1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000};

TEST_F(CustomerReport, BodyOfAnHourIsTheStoredBucketsAndAddsUpToTheHour) {
    fill_hour();
    const Calendar cal = shanghai();
    auto v = hour_points(*store_, {}, "eth0", std::nullopt, "tx", kSh1500).take();
    EXPECT_EQ(std::vector<uint64_t>(v.begin(), v.end()), kTx15);
    EXPECT_EQ(customer_body(customer_config(), cal, "02:aa:bb:cc:dd:01", kSh1500, v, 1),
              expected_body("02:aa:bb:cc:dd:01", "15", kTx15, 1));
    // The points add up to the store's own hour total, and equal its 5-minute rows.
    auto hours = store_->hours(Filter{"eth0", kIfaceTotal}, cal, kSh1500, kSh1600).take();
    uint64_t hour_tx = 0, sum = 0;
    for (const auto& r : hours) hour_tx += r.dir[PF_DIR_TX].bytes;
    for (auto x : v) sum += x;
    EXPECT_EQ(sum, 78000u);
    EXPECT_EQ(sum, hour_tx);
    auto buckets = store_->buckets(Filter{"eth0", kIfaceTotal}, kSh1500, kSh1600).take();
    ASSERT_EQ(buckets.size(), 12u);
    for (const auto& b : buckets) EXPECT_EQ(v[static_cast<size_t>((b.ts - kSh1500) / 300)], b.dir[PF_DIR_TX].bytes);
    // Both directions, and rx alone.
    auto both = hour_points(*store_, {}, "eth0", std::nullopt, "both", kSh1500).take();
    auto rx = hour_points(*store_, {}, "eth0", std::nullopt, "rx", kSh1500).take();
    for (size_t i = 0; i < 12; i++) {
        EXPECT_EQ(rx[i], 7 * i);
        EXPECT_EQ(both[i], 7 * i + 1000 * (i + 1));
    }
    // A peer MAC's own rows; adjustments as billing applies them (per point, like
    // `report --five-minutes`).
    Adjustment a;
    a.iface = "eth0";
    a.direction = "tx";
    a.factor = 1.5;
    auto peer = hour_points(*store_, {a}, "eth0", mac_to_int(kPeer), "tx", kSh1500).take();
    for (size_t i = 0; i < 12; i++) EXPECT_EQ(peer[i], 150 * (i + 1));
}

TEST_F(CustomerReport, LocalHourParsing) {
    const Calendar cal = shanghai();
    EXPECT_EQ(parse_local_hour(cal, "2026-11-21T15").take(), kSh1500);
    EXPECT_FALSE(parse_local_hour(cal, "2026-11-21 15").ok());
    EXPECT_FALSE(parse_local_hour(cal, "2026-11-21T24").ok());
    const Calendar ny = Calendar::create("America/New_York", {}, 1).take();
    auto skipped = parse_local_hour(ny, "2026-03-08T02");
    ASSERT_FALSE(skipped.ok());
    EXPECT_EQ(skipped.error().message(),
              "hour 02 does not exist on 2026-03-08 in America/New_York (the clocks skip it for daylight saving time)");
}

TEST_F(CustomerReport, HourIsDueOneDrainIntervalAfterItEndsOnceAcrossRestarts) {
    fill_hour();
    RecordingQueue q;
    {
        auto s = CustomerReportService::create(options(), q).take();  // first started 14:55
        ASSERT_TRUE(s->tick(kSh1500 + 9).ok());
        EXPECT_TRUE(q.take().empty());
        ASSERT_TRUE(s->tick(kSh1500 + 10).ok());  // 14:xx, the hour of the first start
        auto m = q.take();
        ASSERT_EQ(m.size(), 1u);
        EXPECT_EQ(m[0].period, "2026-11-21T14");
        std::vector<uint64_t> v14(12, 0);
        v14[11] = 5;  // 14:55
        EXPECT_EQ(m[0].body, expected_body("02:aa:bb:cc:dd:01", "14", v14, 1));
        EXPECT_EQ(m[0].value, std::optional<int64_t>(5));
        ASSERT_TRUE(s->tick(kSh1600 + 9).ok());
        EXPECT_TRUE(q.take().empty());
        ASSERT_TRUE(s->tick(kSh1600 + 10).ok());
        m = q.take();
        ASSERT_EQ(m.size(), 1u);
        EXPECT_EQ(m[0].sink, "customer");
        EXPECT_EQ(m[0].kind, "hourly");
        EXPECT_EQ(m[0].period, "2026-11-21T15");
        EXPECT_EQ(m[0].body, expected_body("02:aa:bb:cc:dd:01", "15", kTx15, 1));
        // The push history's value: v0..v11 of the body, summed.
        EXPECT_EQ(m[0].value, std::optional<int64_t>(78000));
        ASSERT_TRUE(s->tick(kSh1600 + 20).ok());
        EXPECT_TRUE(q.take().empty());
    }
    clock_ = kSh1600 + 30;
    auto s = CustomerReportService::create(options(), q).take();  // restart
    ASSERT_TRUE(s->tick(kSh1600 + 40).ok());
    EXPECT_TRUE(q.take().empty());
    auto sent = s->sent().take();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[1].values, "[1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,11000,12000]");
    EXPECT_EQ(sent[1].version, 1);
    EXPECT_EQ(sent[1].outcome, "sent");
}

TEST_F(CustomerReport, MissedHoursAreCaughtUpInOrder) {
    fill_hour();
    RecordingQueue q;
    auto s = CustomerReportService::create(options(), q).take();
    ASSERT_TRUE(s->tick(kSh1700 + 2 * kHour + 600).ok());  // 19:10: hours 14 to 18
    auto m = q.take();
    ASSERT_EQ(m.size(), 5u);
    for (size_t i = 0; i < m.size(); i++) EXPECT_EQ(m[i].period, "2026-11-21T" + std::to_string(14 + i));
    std::vector<uint64_t> v16(12, 0);
    v16[0] = 9;  // the one row at 16:00
    EXPECT_EQ(m[2].body, expected_body("02:aa:bb:cc:dd:01", "16", v16, 1));
    EXPECT_EQ(m[4].body, expected_body("02:aa:bb:cc:dd:01", "18", std::vector<uint64_t>(12, 0), 1));
}

TEST_F(CustomerReport, MacChangeIsReportedUnderTheNewMacFromTheNextHour) {
    fill_hour();
    fill_hour(kSh1600, 2);
    RecordingQueue q;
    auto s = CustomerReportService::create(options(), q).take();
    ASSERT_TRUE(s->tick(kSh1600 + 10).ok());
    q.take();
    set_mac("02:aa:bb:cc:dd:02");  // changed during 16:xx
    ASSERT_TRUE(s->tick(kSh1600 + 1200).ok());
    ASSERT_TRUE(s->tick(kSh1700 + 10).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_NE(m[0].body.find("\"flux_hour\":\"2026-11-21 16\""), std::string::npos);
    EXPECT_NE(m[0].body.find("\"mac\":\"02:aa:bb:cc:dd:01\""), std::string::npos) << m[0].body;
    ASSERT_TRUE(s->tick(kSh1700 + kHour + 10).ok());
    m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_NE(m[0].body.find("\"flux_hour\":\"2026-11-21 17\""), std::string::npos);
    EXPECT_NE(m[0].body.find("\"mac\":\"02:aa:bb:cc:dd:02\""), std::string::npos) << m[0].body;
}

TEST_F(CustomerReport, ListedPeerMacsAreReportedFromTheirOwnRows) {
    fill_hour();
    RecordingQueue q;
    auto o = options();
    o.cfg.macs = {kPeer};
    auto s = CustomerReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh1600 + 10).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 2u);
    std::vector<uint64_t> v;
    for (uint64_t i = 0; i < 12; i++) v.push_back(100 * (i + 1));
    EXPECT_EQ(m[1].body, expected_body("02:00:00:00:00:07", "15", v, 1));
}

// The real outbox on the same file: an hour (two MACs) is queued, then recording it fails
// (a trigger stands in for a full disk or a lock); the next tick queues nothing new.
TEST_F(CustomerReport, QueuedButNotRecordedIsNotQueuedAgain) {
    fill_hour();
    OutboxOptions oo;
    oo.database = db_;
    oo.push.configured = true;
    SinkConfig sc;
    sc.name = "customer";
    sc.type = "http";
    sc.url = "http://127.0.0.1:9/";
    sc.reports = {"hourly"};
    oo.push.sinks = {sc};
    auto ob = Outbox::open(oo).take();
    auto o = options();
    o.cfg.macs = {kPeer, MacAddr{0x02, 0, 0, 0, 0, 0x08}};
    auto s = CustomerReportService::create(o, *ob).take();
    SqliteOptions so;
    auto db = SqliteDb::open(db_, so).take();
    ASSERT_TRUE(
        db.exec("CREATE TRIGGER no_room BEFORE INSERT ON customer_report BEGIN SELECT RAISE(ABORT, 'no room'); END"));
    auto failed = s->tick(kSh1600 + 10);  // hour 14 of the first MAC is queued, its record fails
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().message(), "record customer report: no room");
    EXPECT_EQ(ob->queued_ids("customer").take().size(), 1u);
    ASSERT_TRUE(db.exec("DROP TRIGGER no_room"));
    ASSERT_TRUE(s->tick(kSh1600 + 20).ok());
    ASSERT_TRUE(s->tick(kSh1600 + 30).ok());
    auto h = ob->history(false).take();
    std::vector<std::string> rows;
    for (const auto& r : h) rows.push_back(r.period + " " + std::to_string(*r.value));
    // Hours 14 and 15 of both MACs, once each (kPeer sends 100 * (i + 1) in bucket i of 15).
    EXPECT_EQ(rows, (std::vector<std::string>{"2026-11-21T14 0", "2026-11-21T14 0", "2026-11-21T15 7800",
                                              "2026-11-21T15 0"}));
    EXPECT_EQ(s->sent().take().size(), 4u);
}

TEST_F(CustomerReport, AcceptanceSwitchOffReportsNothing) {
    fill_hour();
    RecordingQueue q;
    auto o = options();
    o.cfg.enabled = false;
    auto s = CustomerReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh1700 + 10).ok());
    EXPECT_TRUE(q.take().empty());
    EXPECT_TRUE(s->sent().take().empty());
    // Switched on by a reload during 17:xx: hours from 17:00 on are reported, the ones
    // while it was off never.
    ServiceContext next;
    next.accounting.timezone = "Asia/Shanghai";
    next.sections.set(customer_config());
    s->reload(next);
    ASSERT_TRUE(s->tick(kSh1700 + kHour + 10).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].period, "2026-11-21T17");
}

// The customer's query API: holds what the test puts in `held`, answers GET /flux with
// {"data": [...]} and checks the auth header.
class QueryServer {
  public:
    QueryServer() {
        srv_.Get("/flux", [this](const httplib::Request& req, httplib::Response& res) {
            std::unique_lock<std::mutex> l(mu_);
            queries.push_back(req.get_param_value("mac") + " " + req.get_param_value("start") + " " +
                              req.get_param_value("end"));
            if (hold_) {  // a slow API: answers once the test releases it
                holding_ = true;
                cv_.notify_all();
                cv_.wait(l, [this] { return !hold_; });
            }
            answered_++;
            if (req.get_header_value("Authorization") != "Bearer t0ken") {
                res.status = 401;
                return;
            }
            if (!raw.empty()) {  // a hostile or broken API: exactly these bytes
                res.set_content(raw, "application/json");
                return;
            }
            if (stream_bytes > 0) {  // that many bytes of '[', made as they are sent, never held
                res.set_content_provider(stream_bytes, "application/json",
                                         [](size_t, size_t length, httplib::DataSink& sink) {
                                             static const std::string chunk(64 * 1024, '[');
                                             return sink.write(chunk.data(), std::min(length, chunk.size()));
                                         });
                return;
            }
            if (trickle) {  // one byte a second, for ever
                res.set_chunked_content_provider("application/json", [this](size_t, httplib::DataSink& sink) {
                    for (int i = 0; i < 10 && !stopping; i++)
                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    return !stopping && sink.write("[", 1);
                });
                return;
            }
            json data = json::array();
            for (const auto& r : held)
                if (r["mac"] == req.get_param_value("mac")) data.push_back(r);
            res.set_content(json{{"code", 0}, {"data", data}}.dump(), "application/json");
        });
        port_ = srv_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { srv_.listen_after_bind(); });
        // Bound and listening already: a connection made before the thread accepts waits.
    }
    ~QueryServer() {
        stopping = true;
        srv_.stop();
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/flux"; }
    // Hold every request until release(); wait_holding() returns once one is held.
    void hold() {
        std::lock_guard<std::mutex> l(mu_);
        hold_ = true;
    }
    void wait_holding() {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return holding_; });
    }
    void release() {
        {
            std::lock_guard<std::mutex> l(mu_);
            hold_ = false;
        }
        cv_.notify_all();
    }
    int answered() {
        std::lock_guard<std::mutex> l(mu_);
        return answered_;
    }
    std::vector<json> held;
    std::string raw;                   // when set, the answer instead of `held`
    size_t stream_bytes = 0;           // when set, an answer of this many bytes instead
    std::atomic<bool> trickle{false};  // when set, an answer of one byte a second instead
    std::atomic<bool> stopping{false};
    std::vector<std::string> queries;

  private:
    httplib::Server srv_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool hold_ = false, holding_ = false;
    int answered_ = 0;
};

// Options that verify the last 6 hours against `server`, with the token it accepts.
CustomerReportService::Options verifying(CustomerReportService::Options o, const QueryServer& server) {
    o.cfg.query_url = server.url();
    o.cfg.query_headers = {{"Authorization", "Bearer t0ken"}};
    o.cfg.verify_hours = 6;
    return o;
}

TEST_F(CustomerReport, VerificationResendsMismatchesWithTheNextVersion) {
    fill_hour();
    fill_hour(kSh1600, 2);
    QueryServer server;
    RecordingQueue q;
    auto o = verifying(options(), server);
    auto s = CustomerReportService::create(o, q).take();
    // The customer holds hour 15 as sent, hour 16 with one point wrong, hour 14 not at all.
    auto record = [](const std::string& hour, std::vector<uint64_t> v, int version) {
        json r = json::parse(expected_body("02:aa:bb:cc:dd:01", hour, v, version));
        return r;
    };
    std::vector<uint64_t> v16;
    for (uint64_t i = 0; i < 12; i++) v16.push_back(2000 * (i + 1) + (i == 0 ? 9 : 0));
    std::vector<uint64_t> wrong = v16;
    wrong[3] = 1;
    server.held = {record("15", kTx15, 1), record("16", wrong, 1)};
    // Queues 14, 15 and 16; verification leaves alone what was queued less than 5 minutes ago.
    ASSERT_TRUE(s->tick(kSh1700 + 10).ok());
    EXPECT_EQ(q.take().size(), 3u);
    EXPECT_TRUE(server.queries.empty());
    ASSERT_TRUE(s->verify(kSh1700 + 600).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].body, expected_body("02:aa:bb:cc:dd:01", "16", v16, 2));
    ASSERT_EQ(server.queries.size(), 1u);
    EXPECT_EQ(server.queries[0], "02:aa:bb:cc:dd:01 2026-11-21 14 2026-11-21 16");
    const Calendar cal = shanghai();
    auto log = customer_verify_log(db_, cal, 10).take();
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0],
              "2026-11-21 17:10:00  02:aa:bb:cc:dd:01  2026-11-21 16  mismatch  v3: held 1, ours 8000; "
              "resent as version 2");
    EXPECT_EQ(log[1], "2026-11-21 17:10:00  02:aa:bb:cc:dd:01  2026-11-21 15  matched  version 1");
    EXPECT_EQ(log[2],
              "2026-11-21 17:10:00  02:aa:bb:cc:dd:01  2026-11-21 14  missing  the customer holds no record "
              "of this hour");
    auto sent = s->sent().take();
    ASSERT_EQ(sent.size(), 4u);
    EXPECT_EQ(sent[1].outcome, "matched");
    EXPECT_EQ(sent[2].version, 1);
    EXPECT_EQ(sent[2].outcome, "mismatch");
    EXPECT_EQ(sent[3].version, 2);
    EXPECT_EQ(sent[3].outcome, "resent");

    // Next pass: the customer now holds version 2 with our figures: matched, nothing sent.
    server.held = {record("15", kTx15, 1), record("16", wrong, 1), record("16", v16, 2)};
    ASSERT_TRUE(s->verify(kSh1700 + 1200).ok());
    EXPECT_TRUE(q.take().empty());
    log = customer_verify_log(db_, cal, 10).take();
    EXPECT_EQ(log[0], "2026-11-21 17:20:00  02:aa:bb:cc:dd:01  2026-11-21 16  matched  version 2");

    // A wrong token: every hour of the pass is recorded as an error, nothing resent.
    o.cfg.query_headers = {{"Authorization", "Bearer wrong"}};
    clock_ = kSh1700 + 1300;
    auto s2 = CustomerReportService::create(o, q).take();
    ASSERT_TRUE(s2->verify(kSh1700 + 1300).ok());
    EXPECT_TRUE(q.take().empty());
    log = customer_verify_log(db_, cal, 10).take();
    EXPECT_EQ(log[0],
              "2026-11-21 17:21:40  02:aa:bb:cc:dd:01  2026-11-21 16  error  query " + server.url() + ": HTTP 401");
}

// A reload (SIGHUP on the daemon's main thread) while a verification pass waits on a slow
// customer API completes at once: the query holds no lock the reload needs. The stand-in
// holds the query until the reload has returned, so this cannot pass by timing.
TEST_F(CustomerReport, ReloadDoesNotWaitForTheCustomerApi) {
    fill_hour();
    QueryServer server;
    RecordingQueue q;
    auto o = verifying(options(), server);
    auto s = CustomerReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh1700 + 10).ok());
    ASSERT_EQ(q.take().size(), 3u);  // hours 14, 15 and 16
    server.hold();
    // The next hour's drain queues hour 17 and verifies 14 to 16, as the ticker thread does.
    Status pass = Ok{};
    std::thread verifier([&] { pass = s->tick(kSh1700 + kHour + 10); });
    server.wait_holding();

    ServiceContext next;
    next.accounting.timezone = "Asia/Shanghai";
    next.sections.set(o.cfg);
    auto reload = std::async(std::launch::async, [&] { s->reload(next); });
    // The bound only keeps a failing run from hanging: before the fix the reload waited for
    // the query, which the stand-in never answers until released below.
    const bool reloaded = reload.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    const int answered_at_reload = server.answered();
    server.release();
    verifier.join();
    reload.wait();
    EXPECT_TRUE(reloaded);
    EXPECT_EQ(answered_at_reload, 0);
    // The pass went on after the reload and judged the answer (nothing held: all missing).
    ASSERT_TRUE(pass.ok());
    EXPECT_EQ(server.answered(), 1);
    EXPECT_EQ(q.take().size(), 1u);
    const Calendar cal = shanghai();
    auto log = customer_verify_log(db_, cal, 10).take();
    ASSERT_EQ(log.size(), 3u);
    for (const auto& line : log) EXPECT_NE(line.find("  missing  "), std::string::npos) << line;
}

// The answer is the customer's: wrong types and absurd numbers are an `error` outcome for
// the hours asked about, never an exception out of the service's thread, an overflowed
// version or a resend.
TEST_F(CustomerReport, HostileVerificationAnswersAreRecordedAsErrors) {
    fill_hour();
    QueryServer server;
    RecordingQueue q;
    auto o = verifying(options(), server);
    auto s = CustomerReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh1700 + 10).ok());
    ASSERT_EQ(q.take().size(), 3u);  // hours 14, 15 and 16
    const std::string mac = "02:aa:bb:cc:dd:01";
    const std::string v = "\"v0\":1,\"v1\":2";
    const std::pair<std::string, std::string> answers[] = {
        {R"([{"mac":5}])", "record 0: field 'mac' is not a string"},
        {R"({"data":[7]})", "record 0: not an object"},
        {R"([{"mac":")" + mac + R"(","flux_hour":["x"]}])", "record 0: field 'flux_hour' is not a string"},
        {R"([{"mac":")" + mac + R"(","flux_hour":"2026-11-21 15","version":2147483647,)" + v + "}]",
         "record 0: field 'version' is not an integer between 0 and 1000000"},
        {R"([{"mac":")" + mac + R"(","flux_hour":"2026-11-21 15","version":1e30}])",
         "record 0: field 'version' is not an integer between 0 and 1000000"},
        {R"([{"mac":")" + mac + R"(","flux_hour":"2026-11-21 15","version":-1}])",
         "record 0: field 'version' is not an integer between 0 and 1000000"},
        {R"([{"mac":")" + mac + R"(","flux_hour":"2026-11-21 15","version":1,"v3":"8000"}])",
         "record 0: field 'v3' is not an integer"},
        {R"([{"mac":")" + mac + R"(","flux_hour":"2026-11-21 15","version":1,"v3":1.5}])",
         "record 0: field 'v3' is not an integer"},
        {"[{\"mac\":", "not JSON"},
        // Found by tests/fuzz/customer_answer_fuzz.cpp: the parser stopped at the NUL and took
        // "[]" (every hour recorded as missing).
        {std::string("[]") + '\0' + R"([{"mac":5}])", "not JSON"},
    };
    const Calendar cal = shanghai();
    int64_t now = kSh1700 + 600;
    for (const auto& [answer, why] : answers) {
        server.raw = answer;
        ASSERT_TRUE(s->verify(now).ok()) << answer;
        EXPECT_TRUE(q.take().empty()) << answer;
        auto log = customer_verify_log(db_, cal, 3).take();
        ASSERT_EQ(log.size(), 3u);
        for (int i = 0; i < 3; i++)
            EXPECT_EQ(log[static_cast<size_t>(i)], cal.format_local(now) + "  " + mac + "  2026-11-21 1" +
                                                       std::to_string(6 - i) + "  error  query " + server.url() + ": " +
                                                       why)
                << answer;
        now += 60;
    }
    for (const auto& sent : s->sent().take()) EXPECT_EQ(sent.version, 1);
}

// The process's peak resident memory so far (VmHWM), in KiB.
long vm_hwm_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// Answers hostile by size and speed: 1 GB (the stand-in makes it as it sends it) and one
// byte a second. Each is an `error` for the hours asked about, within the query's timeout,
// and the 1 GB answer is never held: the process's peak memory grows by less than 64 MiB
// (the answer is cut at 8 MiB).
TEST_F(CustomerReport, HugeAndTricklingAnswersAreErrorsInBoundedTimeAndMemory) {
    fill_hour();
    QueryServer server;
    RecordingQueue q;
    auto o = verifying(options(), server);
    o.query_timeout = std::chrono::seconds(2);
    auto s = CustomerReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh1700 + 10).ok());
    ASSERT_EQ(q.take().size(), 3u);  // hours 14, 15 and 16
    const std::string mac = "02:aa:bb:cc:dd:01";
    const Calendar cal = shanghai();
    auto expect_errors = [&](int64_t now, const std::string& why) {
        auto log = customer_verify_log(db_, cal, 3).take();
        ASSERT_EQ(log.size(), 3u);
        for (int i = 0; i < 3; i++)
            EXPECT_EQ(log[static_cast<size_t>(i)], cal.format_local(now) + "  " + mac + "  2026-11-21 1" +
                                                       std::to_string(6 - i) + "  error  query " + server.url() + ": " +
                                                       why);
    };

    server.stream_bytes = size_t{1} << 30;
    const long hwm_before = vm_hwm_kib();
    ASSERT_GT(hwm_before, 0);
    int64_t now = kSh1700 + 600;
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(s->verify(now).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_LT(vm_hwm_kib() - hwm_before, 64 * 1024);
    expect_errors(now, "answer larger than 8388608 bytes");
    EXPECT_TRUE(q.take().empty());

    server.stream_bytes = 0;
    server.trickle = true;
    now += 60;
    t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(s->verify(now).ok());
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(1900));
    EXPECT_LT(took, std::chrono::seconds(5));
    expect_errors(now, "Timeout was reached");
    EXPECT_TRUE(q.take().empty());
    for (const auto& sent : s->sent().take()) EXPECT_EQ(sent.version, 1);
}

TEST_F(CustomerReport, CliBodiesUseTheRecordedMacAndVersion) {
    fill_hour();
    Config cfg;
    cfg.customer_report = customer_config();
    cfg.accounting.timezone = "Asia/Shanghai";
    const Calendar cal = shanghai();
    CustomerHourRequest r{db_, dir_ + "/sys", "eth0", kSh1500, std::nullopt};
    auto bodies = customer_hour_bodies(cfg.customer_report, cfg.accounting.adjustments, cal, r).take();
    ASSERT_EQ(bodies.size(), 1u);
    EXPECT_EQ(bodies[0], expected_body("02:aa:bb:cc:dd:01", "15", kTx15, 1));
    r.mac = kPeer;
    auto none = customer_hour_bodies(cfg.customer_report, cfg.accounting.adjustments, cal, r);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().message(), "MAC 02:00:00:00:00:07 is not reported on eth0");
}

TEST(CustomerReportConfigParse, FieldsKeepTheirTypes) {
    Parser p("c.yaml");
    CustomerReportConfig c;
    auto st = parse_customer_report_config(
        p,
        YAML::Load("{enabled: true, sink: cust, provider_id: \"007\", isp_id: 3, device_type: 12, fields: {zone: 5, "
                   "tag: x}, macs: ['02:00:00:00:00:07'], direction: both}"),
        "customer_report", c);
    ASSERT_TRUE(st.ok()) << st.error().message();
    EXPECT_EQ(c.provider_id.value, "007");
    EXPECT_FALSE(c.provider_id.number);
    EXPECT_TRUE(c.isp_id.number);
    ASSERT_EQ(c.fields.size(), 2u);
    EXPECT_TRUE(c.fields[0].number);
    EXPECT_FALSE(c.fields[1].number);
    EXPECT_EQ(c.direction, "both");
    CustomerReportConfig d;
    auto bad = parse_customer_report_config(p, YAML::Load("{enabled: true}"), "customer_report", d);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(),
              "c.yaml:1:1: key 'customer_report.sink': an enabled customer report needs the name of a push sink of "
              "type http");
    auto reserved = parse_customer_report_config(p, YAML::Load("fields: {v3: 1}"), "customer_report", d);
    ASSERT_FALSE(reserved.ok());
    EXPECT_EQ(reserved.error().message(),
              "c.yaml:1:10: key 'customer_report.fields.v3': is a field the report sets itself");
}

}  // namespace
}  // namespace pf
