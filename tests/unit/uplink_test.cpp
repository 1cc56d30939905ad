// The agent side of the fleet: the collector: section, the collector alert sink, and the
// uplink that reports the history to a collector. The collector here is a local HTTP
// server that records every request and acknowledges as docs/fleet.md says; the history is
// a real SQLite file per test, written through the Store and read back with plain SQL.

#include "peakflow/fleet/uplink.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "local_http_server.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/app/config.hpp"
#include "peakflow/daemon/metrics.hpp"
#include "peakflow/export/flow_pairs.hpp"
#include "peakflow/fleet/uplink_config.hpp"
#include "peakflow/fleet/wire.hpp"
#include "peakflow/push/outbox.hpp"
#include "peakflow/push/sinks.hpp"
#include "peakflow/watch/hosthealth.hpp"

namespace pf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kToken = "pfc_" + std::string(60, 'a') + "0123";
constexpr int64_t kT0 = 1767225600;  // 2026-01-01 00:00:00 UTC, a bucket start
constexpr int64_t kMacB = 0x02706600000b;
constexpr int64_t kMacC = 0x02706600000c;

// ---- config --------------------------------------------------------------------------------

std::string config_error(const std::string& yaml) {
    auto r = parse_config(yaml, "config.yaml");
    if (r) return "(parsed)";
    return r.error().message();
}

std::string section(const std::string& body) {
    return "collector:\n" + body;
}

TEST(UplinkConfig, ParsesEverySettingAndDumpsTheTokenMasked) {
    auto r = parse_config(section("  url: https://collector.example:8999/\n  token: " + kToken +
                                  "\n  interval: 30\n  ca_file: /etc/peakflow/ca.pem\n  name: nas-1\n"
                                  "  node: beijing-1\n  batch: 200\n"),
                          "config.yaml");
    ASSERT_TRUE(r) << r.error().message();
    const UplinkConfig& c = r->collector;
    EXPECT_TRUE(c.configured);
    EXPECT_EQ(c.url, "https://collector.example:8999");  // the API paths are appended to it
    EXPECT_EQ(c.token, kToken);
    EXPECT_EQ(c.token_file, "");
    EXPECT_EQ(c.interval, 30);
    EXPECT_EQ(c.ca_file, "/etc/peakflow/ca.pem");
    EXPECT_EQ(c.name, "nas-1");
    EXPECT_EQ(c.node, "beijing-1");
    EXPECT_EQ(c.batch, 200);
    std::string dump = dump_config(*r);
    EXPECT_NE(dump.find("collector:\n  url: https://collector.example:8999\n  token: \"********\"\n  interval: 30\n"
                        "  ca_file: /etc/peakflow/ca.pem\n  name: nas-1\n  node: beijing-1\n  batch: 200\n"),
              std::string::npos)
        << dump;
    EXPECT_EQ(dump.find(kToken), std::string::npos) << dump;
}

TEST(UplinkConfig, DefaultsAreTheHostNameAnIntervalOf60AndBatchesOf5000) {
    auto r = parse_config(section("  url: http://10.0.0.1:8999\n  token: " + kToken + "\n"), "config.yaml");
    ASSERT_TRUE(r) << r.error().message();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    EXPECT_EQ(r->collector.name, host);
    EXPECT_EQ(r->collector.node, "");
    EXPECT_EQ(r->collector.interval, 60);
    EXPECT_EQ(r->collector.batch, 5000);
    EXPECT_EQ(r->collector.ca_file, "");
    EXPECT_FALSE(parse_config("interfaces: [eth0]\n", "config.yaml")->collector.configured);
}

TEST(UplinkConfig, ErrorsNameFileLineColumnAndKey) {
    const std::string tok = "  token: " + kToken + "\n";
    EXPECT_EQ(config_error(section(tok)), "config.yaml:2:3: key 'collector.url': the collector needs a url");
    EXPECT_EQ(config_error(section("  url: ftp://x\n" + tok)),
              "config.yaml:2:8: key 'collector.url': expected an http:// or https:// URL");
    EXPECT_EQ(config_error(section("  url: http://c\n")),
              "config.yaml:2:3: key 'collector.token': the collector needs a token or a token_file");
    EXPECT_EQ(config_error(section("  url: http://c\n" + tok + "  token_file: /t\n")),
              "config.yaml:4:15: key 'collector.token_file': give token or token_file, not both");
    EXPECT_EQ(config_error(section("  url: http://c\n  token: pfc_ABC\n")),
              "config.yaml:3:10: key 'collector.token': expected pfc_ followed by 64 lowercase hex digits "
              "(peakflow-collector token create NAME)");
    EXPECT_EQ(config_error(section("  url: http://c\n" + tok + "  interval: 4\n")),
              "config.yaml:4:13: key 'collector.interval': must be between 5 and 3600, got 4");
    EXPECT_EQ(config_error(section("  url: http://c\n" + tok + "  batch: 20001\n")),
              "config.yaml:4:10: key 'collector.batch': must be between 100 and 20000, got 20001");
    EXPECT_EQ(config_error(section("  url: http://c\n" + tok + "  name: nas 1\n")),
              "config.yaml:4:9: key 'collector.name': must be 1 to 64 of A-Z a-z 0-9 . _ -");
    EXPECT_EQ(config_error(section("  url: http://c\n" + tok + "  bacth: 100\n")),
              "config.yaml:4:3: key 'collector.bacth': unknown key");
    EXPECT_EQ(config_error("collector: http://c\n"), "config.yaml:1:12: key 'collector': expected a mapping");
    EXPECT_EQ(config_error("push:\n  sinks:\n    - name: collector\n      type: webhook\n      url: http://h\n" +
                           section("  url: http://c\n" + tok)),
              "config.yaml:3:13: key 'push.sinks[0].name': the sink name 'collector' is taken by the collector: "
              "section's alert sink");
}

class TempDir : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf-uplink-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
        std::string p = dir_ + "/" + name;
        fs::create_directories(fs::path(p).parent_path());
        std::ofstream(p) << content;
        ::chmod(p.c_str(), mode);
        return p;
    }
    std::string dir_;
};

using UplinkTokenFile = TempDir;

TEST_F(UplinkTokenFile, IsReadAtParseTimeAndTheDumpNamesTheFileNotTheToken) {
    std::string path = write("collector.token", kToken + "\n");
    auto r = parse_config(section("  url: http://c\n  token_file: " + path + "\n"), "config.yaml");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->collector.token, kToken);
    EXPECT_EQ(r->collector.token_file, path);
    std::string dump = dump_config(*r);
    EXPECT_NE(dump.find("  token_file: " + path + "\n"), std::string::npos) << dump;
    EXPECT_EQ(dump.find(kToken), std::string::npos) << dump;
}

TEST_F(UplinkTokenFile, AMissingFileOrOneWithoutATokenIsAnErrorThatNeverQuotesTheContent) {
    std::string missing = dir_ + "/none";
    EXPECT_EQ(config_error(section("  url: http://c\n  token_file: " + missing + "\n")),
              "config.yaml:3:15: key 'collector.token_file': cannot read " + missing + ": No such file or directory");
    std::string bad = write("bad.token", "pfc_secret-but-mistyped\n");
    EXPECT_EQ(config_error(section("  url: http://c\n  token_file: " + bad + "\n")),
              "config.yaml:3:15: key 'collector.token_file': " + bad +
                  " does not hold a collector token (pfc_ followed by 64 hex digits)");
}

// ---- the automatic alert sink --------------------------------------------------------------

TEST(CollectorSink, TheSectionAddsAnAlertsOnlySinkAndTurnsPushOnWithNothingElse) {
    auto r = parse_config(section("  url: http://c.example:8999\n  token: " + kToken + "\n  node: beijing-1\n"),
                          "config.yaml");
    ASSERT_TRUE(r) << r.error().message();
    const PushConfig& p = r->push;
    EXPECT_TRUE(p.configured);
    ASSERT_EQ(p.sinks.size(), 1u);
    const SinkConfig& s = p.sinks[0];
    EXPECT_EQ(s.name, "collector");
    EXPECT_EQ(s.type, "collector");
    EXPECT_EQ(s.url, "http://c.example:8999");
    EXPECT_EQ(s.token, kToken);
    EXPECT_TRUE(s.alerts);
    EXPECT_TRUE(s.reports.empty());
    EXPECT_EQ(p.node_name, "beijing-1");
    // Reports are on by default: with push on now, none of them may reach this sink.
    EXPECT_TRUE(r->reports.enabled);
    for (const char* kind : {"daily", "monthly", "startup", "hourly", "verify"}) EXPECT_FALSE(s.takes(kind)) << kind;
    EXPECT_TRUE(s.takes("alert"));
    EXPECT_TRUE(s.takes("recovery"));
    EXPECT_FALSE(r->customer_report.enabled);
    std::string dump = dump_config(*r);
    EXPECT_NE(dump.find("    - name: collector\n      type: collector\n      enabled: true\n"
                        "      url: http://c.example:8999\n      token: \"********\"\n      alerts: true\n"
                        "      reports: []\n"),
              std::string::npos)
        << dump;
}

TEST(CollectorSink, ExistingPushSinksKeepTheirSettingsAndGainTheCollector) {
    auto r =
        parse_config("push:\n  node_name: dc-2\n  sinks:\n    - name: ding\n      type: dingtalk\n      token: t\n" +
                         section("  url: http://c\n  token: " + kToken + "\n  node: other\n"),
                     "config.yaml");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->push.sinks.size(), 2u);
    EXPECT_EQ(r->push.sinks[0].name, "ding");
    EXPECT_EQ(r->push.sinks[0].reports, (std::vector<std::string>{"daily", "monthly", "startup"}));
    EXPECT_EQ(r->push.sinks[1].name, "collector");
    EXPECT_EQ(r->push.node_name, "dc-2");
}

TEST(CollectorSink, RequestIsAnAuthorizedJsonPostToTheAlertEndpoint) {
    SinkConfig s;
    s.name = "collector";
    s.type = "collector";
    s.url = "http://c.example:8999/";
    s.token = kToken;
    s.ca_file = "/etc/peakflow/ca.pem";
    OutboundMessage m{"collector", "alert", "host.cpu", "CPU high on nas-1", "cpu at 99% \"now\"", ""};
    HttpRequest r = render_request(s, m, MessageMeta{"beijing-1", "nas-1"}, 1700000000000);
    EXPECT_EQ(r.method, HttpMethod::Post);
    EXPECT_EQ(r.url, "http://c.example:8999/api/v1/agents/alert");
    EXPECT_EQ(r.headers,
              (std::vector<std::string>{"Authorization: Bearer " + kToken, "Content-Type: application/json"}));
    EXPECT_EQ(r.body, R"({"kind":"alert","period":"host.cpu","title":"CPU high on nas-1","text":"cpu at 99% \"now\"",)"
                      R"("node":"beijing-1","host":"nas-1"})");
    EXPECT_EQ(r.ca_file, "/etc/peakflow/ca.pem");
    EXPECT_FALSE(r.form);
}

TEST(CollectorSink, DeliveredOnlyOn2xxWithStatusOk) {
    SinkConfig s;
    s.type = "collector";
    EXPECT_TRUE(judge_answer(s, 200, R"({"status":"ok"})").ok);
    auto bad = judge_answer(s, 200, R"({"status":"error","message":"x"})");
    EXPECT_FALSE(bad.ok);
    EXPECT_EQ(bad.error, R"(answer has no "status":"ok": {"status":"error","message":"x"})");
    EXPECT_EQ(judge_answer(s, 200, "ok").error, "answer is not a JSON object: ok");
    auto refused = judge_answer(s, 401, R"({"status":"error","message":"unknown or revoked token"})");
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error, R"(HTTP 401: {"status":"error","message":"unknown or revoked token"})");
}

TEST(CollectorSink, SendsThroughLibcurlToALocalCollector) {
    std::mutex mu;
    std::string path, auth, body;
    testing::LocalServer srv([&](const httplib::Request& rq, httplib::Response& rs) {
        std::lock_guard l(mu);
        path = rq.path;
        auth = rq.get_header_value("Authorization");
        body = rq.body;
        rs.set_content(R"({"status":"ok"})", "application/json");
    });
    SinkConfig s;
    s.name = "collector";
    s.type = "collector";
    s.url = srv.url("");
    s.token = kToken;
    OutboundMessage m{"collector", "recovery", "sink.ding", "ding works again", "", ""};
    SendResult r = make_sink(s, 5)->send(m, MessageMeta{"", "nas-1"});
    EXPECT_TRUE(r.ok) << r.error;
    std::lock_guard l(mu);
    EXPECT_EQ(path, "/api/v1/agents/alert");
    EXPECT_EQ(auth, "Bearer " + kToken);
    EXPECT_EQ(body, R"({"kind":"recovery","period":"sink.ding","title":"ding works again","text":"","node":"",)"
                    R"("host":"nas-1"})");
}

// ---- the uplink ----------------------------------------------------------------------------

// Plain SQL on a second connection: what the uplink and the store really committed.
class Sql {
  public:
    explicit Sql(const std::string& path) {
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
        sqlite3_busy_timeout(db_, 5000);
    }
    ~Sql() { sqlite3_close(db_); }
    void exec(const std::string& sql) {
        char* msg = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) ADD_FAILURE() << sql << ": " << msg;
        sqlite3_free(msg);
    }
    std::vector<std::string> rows(const std::string& sql) {
        std::vector<std::string> out;
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
            return out;
        }
        while (sqlite3_step(s) == SQLITE_ROW) {
            std::string row;
            for (int c = 0; c < sqlite3_column_count(s); c++) {
                const auto* t = sqlite3_column_text(s, c);
                row += (c ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "NULL");
            }
            out.push_back(row);
        }
        sqlite3_finalize(s);
        return out;
    }

  private:
    sqlite3* db_ = nullptr;
};

BucketUpdate upd(int64_t ts, int64_t mac, bool peak, Counter rx, Counter tx) {
    BucketUpdate u;
    u.ts = ts;
    u.mac = mac;
    u.peak = peak;
    u.delta[PF_DIR_RX] = rx;
    u.delta[PF_DIR_TX] = tx;
    u.snap[PF_DIR_RX] = rx;
    u.snap[PF_DIR_TX] = tx;
    return u;
}

DrainRows drain(const std::string& iface, std::vector<BucketUpdate> rows) {
    DrainRows d;
    d.iface = iface;
    d.map_id = 7;
    d.boot_id = "boot-1";
    d.rows = std::move(rows);
    return d;
}

// A collector stand-in: records each report (decompressed) and acknowledges every batch,
// unless told to answer something else.
struct FakeCollector {
    struct Request {
        std::string path, authorization, content_type, content_encoding;
        json report;
    };
    std::mutex mu;
    std::vector<Request> requests;
    int status = 200;                         // anything but 200: refuse with it
    std::function<void(const json&)> before;  // runs before the answer (a drain "meanwhile")
    std::map<std::string, int64_t> held;

    void handle(const httplib::Request& rq, httplib::Response& rs) {
        Request r{rq.path, rq.get_header_value("Authorization"), rq.get_header_value("Content-Type"),
                  rq.get_header_value("Content-Encoding"), json()};
        std::string body = rq.body;
        // httplib inflates gzip request bodies itself; do it here when it did not.
        if (body.size() >= 2 && static_cast<unsigned char>(body[0]) == 0x1f &&
            static_cast<unsigned char>(body[1]) == 0x8b) {
            auto d = gzip_decompress(body, kWireMaxDecompressed);
            if (d) body = *d;
        }
        r.report = json::parse(body, nullptr, false);
        std::function<void(const json&)> hook;
        int answer;
        {
            std::lock_guard l(mu);
            requests.push_back(r);
            hook = before;
            answer = status;
        }
        if (hook) hook(r.report);
        if (answer != 200) {
            rs.status = answer;
            rs.set_content(R"({"status":"error","message":"collector says no"})", "application/json");
            return;
        }
        std::lock_guard l(mu);
        for (const auto& b : r.report["batches"]) {
            int64_t& h = held[b["stream"].get<std::string>()];
            h = std::max(h, b["seq"].get<int64_t>());
        }
        rs.set_content(json{{"status", "ok"},
                            {"acked",
                             {{"buckets", held["buckets"]},
                              {"push", held["push"]},
                              {"host", held["host"]},
                              {"heartbeat", held["heartbeat"]},
                              {"flows", held["flows"]}}},
                            {"time", 1}}
                           .dump(),
                       "application/json");
    }
    size_t count() {
        std::lock_guard l(mu);
        return requests.size();
    }
    Request last() {
        std::lock_guard l(mu);
        return requests.back();
    }
};

// The batch of `stream` in a report (null json when it has none).
json batch_of(const json& report, const std::string& stream) {
    for (const auto& b : report["batches"])
        if (b["stream"] == stream) return b;
    return json();
}

json bucket(const std::string& iface, const std::string& mac, int64_t ts, bool peak, uint64_t rxb, uint64_t rxp,
            uint64_t txb, uint64_t txp) {
    return json{{"iface", iface},  {"mac", mac},        {"ts", ts},        {"peak", peak},
                {"rx_bytes", rxb}, {"rx_packets", rxp}, {"tx_bytes", txb}, {"tx_packets", txp}};
}

class UplinkTest : public TempDir {
  protected:
    void SetUp() override {
        TempDir::SetUp();
        db_ = dir_ + "/peakflow.db";
        write("sys/class/net/pf0/address", "02:00:00:00:00:01\n");
        auto st = Store::open(db_);
        ASSERT_TRUE(st) << st.error().message();
        store_ = std::move(*st);
        server_ = std::make_unique<testing::LocalServer>(
            [this](const httplib::Request& rq, httplib::Response& rs) { fake_.handle(rq, rs); });
    }
    void TearDown() override {
        uplink_.reset();
        server_.reset();
        store_.reset();
        TempDir::TearDown();
    }
    UplinkConfig config(int batch = 5000) {
        UplinkConfig c;
        c.configured = true;
        c.url = server_->url("");
        c.token = kToken;
        c.name = "nas-1";
        c.node = "beijing-1";
        c.interval = 60;
        c.batch = batch;
        return c;
    }
    UplinkOptions options(int batch = 5000) {
        UplinkOptions o;
        o.database = db_;
        o.cfg = config(batch);
        o.clock = [this] { return now_.load(); };
        o.ifaces = {"pf0"};
        o.paths.sysfs = dir_ + "/sys";
        o.host = "nas-1.lan";
        o.boot_id = "6f1c0ad2-0000-4000-8000-000000000001";
        return o;
    }
    void open_uplink(int batch = 5000) {
        auto u = Uplink::open(options(batch));
        ASSERT_TRUE(u) << u.error().message();
        uplink_ = std::move(*u);
    }
    void commit(const std::vector<DrainRows>& d) {
        auto s = store_->commit_drain(d);
        ASSERT_TRUE(s) << s.error().message();
    }
    UplinkOutcome report() {
        auto o = uplink_->report_once();
        EXPECT_TRUE(o) << o.error().message();
        return o ? *o : UplinkOutcome{};
    }
    // Three sealed buckets' worth of rows and one in the bucket still open at now_.
    void standard_history() {
        commit({drain(
            "pf0", {upd(kT0, kIfaceTotal, false, {1000, 10}, {500, 5}), upd(kT0, kMacB, false, {400, 4}, {200, 2})})});
        commit({drain("pf0", {upd(kT0 + 300, kIfaceTotal, true, {2000, 20}, {800, 8}),
                              upd(kT0 + 300, kMacC, true, {100, 1}, {50, 1})})});
        commit({drain("pf0", {upd(kT0 + 900, kIfaceTotal, false, {7, 1}, {7, 1})})});
    }

    std::string db_;
    std::atomic<int64_t> now_{kT0 + 917};  // in the bucket kT0 + 900
    std::unique_ptr<Store> store_;
    FakeCollector fake_;
    std::unique_ptr<testing::LocalServer> server_;
    std::unique_ptr<Uplink> uplink_;
};

TEST_F(UplinkTest, FirstReportCarriesTheSealedBucketsAsAbsoluteRowsInKeyOrder) {
    standard_history();
    open_uplink();
    UplinkOutcome o = report();
    EXPECT_TRUE(o.acked) << o.error;
    EXPECT_EQ(o.sent, 4u);
    EXPECT_EQ(o.backlog, 0);
    ASSERT_EQ(fake_.count(), 1u);
    auto rq = fake_.last();
    EXPECT_EQ(rq.path, "/api/v1/agents/report");
    EXPECT_EQ(rq.authorization, "Bearer " + kToken);
    EXPECT_EQ(rq.content_type, "application/json");
    EXPECT_EQ(rq.content_encoding, "gzip");
    const json& r = rq.report;
    ASSERT_TRUE(r.is_object());
    EXPECT_EQ(r["protocol"], 1);
    const std::string spool = r["spool"];
    EXPECT_EQ(spool.size(), 32u);
    EXPECT_EQ(spool.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(spool, uplink_->spool());
    EXPECT_EQ(Sql(db_).rows("SELECT value FROM meta WHERE key = 'uplink.spool'"), std::vector<std::string>{spool});
    json agent = r["agent"];
    EXPECT_EQ(agent["name"], "nas-1");
    EXPECT_EQ(agent["host"], "nas-1.lan");
    EXPECT_EQ(agent["node"], "beijing-1");
    EXPECT_EQ(agent["boot_id"], "6f1c0ad2-0000-4000-8000-000000000001");
    EXPECT_EQ(agent["interval"], 60);
    EXPECT_EQ(agent["time"], kT0 + 917);
    EXPECT_EQ(agent["interfaces"], json::parse(R"([{"name":"pf0","mac":"02:00:00:00:00:01","counted":true}])"));
    EXPECT_EQ(r["backlog"], json::parse(R"({"buckets":0,"push":0,"host":0,"heartbeat":0,"flows":0})"));
    ASSERT_EQ(r["batches"].size(), 1u);  // no push history, no host watch: no such batches
    json b = batch_of(r, "buckets");
    EXPECT_EQ(b["seq"], 1);
    EXPECT_EQ(b["records"], json::array({bucket("pf0", "", kT0, false, 1000, 10, 500, 5),
                                         bucket("pf0", "02:70:66:00:00:0b", kT0, false, 400, 4, 200, 2),
                                         bucket("pf0", "", kT0 + 300, true, 2000, 20, 800, 8),
                                         bucket("pf0", "02:70:66:00:00:0c", kT0 + 300, true, 100, 1, 50, 1)}));
    Sql sql(db_);
    EXPECT_EQ(sql.rows("SELECT stream, seq, c1, c2, c3 FROM uplink_cursor"),
              std::vector<std::string>{"buckets|1|" + std::to_string(kT0 + 300) + "|1|" + std::to_string(kMacC)});
    EXPECT_EQ(sql.rows("SELECT value FROM meta WHERE key = 'uplink.sealed_until'"),
              std::vector<std::string>{std::to_string(kT0 + 900)});
    CollectorFigures f = uplink_->figures();
    EXPECT_EQ(f.backlog, 0u);
    EXPECT_EQ(f.last_ack, kT0 + 917);
    EXPECT_EQ(f.errors, 0u);

    // Nothing new: a heartbeat with no batches; the open bucket follows once it is closed.
    o = report();
    EXPECT_TRUE(o.acked);
    EXPECT_EQ(o.sent, 0u);
    EXPECT_EQ(fake_.last().report["batches"], json::array());
    now_ = kT0 + 1200;
    o = report();
    json b3 = batch_of(fake_.last().report, "buckets");
    EXPECT_EQ(b3["seq"], 2);
    EXPECT_EQ(b3["records"], json::array({bucket("pf0", "", kT0 + 900, false, 7, 1, 7, 1)}));
}

TEST_F(UplinkTest, WithoutAnAckTheSameBatchGoesAgainWithTheSameSeq) {
    standard_history();
    open_uplink();
    fake_.status = 500;
    UplinkOutcome o = report();
    EXPECT_FALSE(o.acked);
    EXPECT_EQ(o.error, "HTTP 500: collector says no");
    EXPECT_EQ(o.backlog, 4);
    json first = fake_.last().report["batches"];
    Sql sql(db_);
    EXPECT_TRUE(sql.rows("SELECT * FROM uplink_cursor").empty());
    EXPECT_EQ(uplink_->figures().errors, 1u);
    EXPECT_EQ(uplink_->figures().backlog, 4u);
    EXPECT_EQ(uplink_->figures().last_ack, 0);

    // Nobody listening: the connection fails, the cursor stays.
    UplinkConfig gone = config();
    gone.url = "http://127.0.0.1:1";
    uplink_->set_config(gone);
    o = report();
    EXPECT_FALSE(o.acked);
    EXPECT_EQ(o.error, "Couldn't connect to server");
    EXPECT_EQ(uplink_->figures().errors, 2u);
    EXPECT_TRUE(sql.rows("SELECT * FROM uplink_cursor").empty());
    // The link's state for `peakflow-bpf status`: never acknowledged, 4 waiting.
    const std::string link =
        "SELECT key || '=' || value FROM meta WHERE key LIKE 'uplink.%' AND key NOT IN "
        "('uplink.spool', 'uplink.sealed_until') ORDER BY key";
    EXPECT_EQ(sql.rows(link),
              (std::vector<std::string>{"uplink.backlog=4", "uplink.last_attempt=" + std::to_string(kT0 + 917),
                                        "uplink.last_error=Couldn't connect to server"}));

    // Back: exactly the batch refused before, then nothing.
    uplink_->set_config(config());
    fake_.status = 200;
    o = report();
    EXPECT_TRUE(o.acked) << o.error;
    EXPECT_EQ(fake_.last().report["batches"], first);
    EXPECT_EQ(first[0]["seq"], 1);
    EXPECT_EQ(uplink_->figures().backlog, 0u);
    const std::string t = std::to_string(kT0 + 917);
    EXPECT_EQ(sql.rows(link), (std::vector<std::string>{"uplink.backlog=0", "uplink.last_ack=" + t,
                                                        "uplink.last_attempt=" + t, "uplink.last_error="}));
    o = report();
    EXPECT_EQ(o.sent, 0u);
}

TEST_F(UplinkTest, AnAnswerLostAfterTheCollectorStoredItIsAcknowledgedAsADuplicate) {
    standard_history();
    open_uplink();
    // The collector holds seq 1 already (it stored the batch, its answer was lost).
    fake_.held["buckets"] = 1;
    fake_.status = 200;
    UplinkOutcome o = report();
    EXPECT_TRUE(o.acked);
    EXPECT_EQ(batch_of(fake_.last().report, "buckets")["seq"], 1);
    EXPECT_EQ(Sql(db_).rows("SELECT seq FROM uplink_cursor WHERE stream = 'buckets'"), std::vector<std::string>{"1"});
}

TEST_F(UplinkTest, ALateDrainIntoASealedBucketIsSentAgainWithItsNewTotals) {
    standard_history();
    open_uplink();
    ASSERT_TRUE(report().acked);
    // The clock is still in kT0 + 900: kT0 + 300 is sealed and was sent; kT0 + 900 is open.
    commit(
        {drain("pf0", {upd(kT0 + 300, kMacC, true, {10, 1}, {5, 1}), upd(kT0 + 900, kMacB, false, {3, 1}, {3, 1})})});
    Sql sql(db_);
    EXPECT_EQ(sql.rows("SELECT iface_id, ts, mac FROM uplink_resend"),
              std::vector<std::string>{"1|" + std::to_string(kT0 + 300) + "|" + std::to_string(kMacC)});
    UplinkOutcome o = report();
    EXPECT_TRUE(o.acked);
    json b = batch_of(fake_.last().report, "buckets");
    EXPECT_EQ(b["seq"], 2);
    EXPECT_EQ(b["records"], json::array({bucket("pf0", "02:70:66:00:00:0c", kT0 + 300, true, 110, 2, 55, 2)}));
    EXPECT_TRUE(sql.rows("SELECT * FROM uplink_resend").empty());
    // The cursor did not move for a resent row.
    EXPECT_EQ(sql.rows("SELECT seq, c1, c2, c3 FROM uplink_cursor"),
              std::vector<std::string>{"2|" + std::to_string(kT0 + 300) + "|1|" + std::to_string(kMacC)});
}

TEST_F(UplinkTest, ARowChangedWhileItsReportWasInFlightStaysListedAndGoesAgain) {
    standard_history();
    open_uplink();
    ASSERT_TRUE(report().acked);
    commit({drain("pf0", {upd(kT0, kMacB, false, {1, 1}, {1, 1})})});
    // While the collector handles the resend, another drain adds to the same row.
    fake_.before = [this](const json&) { commit({drain("pf0", {upd(kT0, kMacB, false, {2, 1}, {2, 1})})}); };
    ASSERT_TRUE(report().acked);
    EXPECT_EQ(batch_of(fake_.last().report, "buckets")["records"],
              json::array({bucket("pf0", "02:70:66:00:00:0b", kT0, false, 401, 5, 201, 3)}));
    fake_.before = nullptr;
    EXPECT_EQ(Sql(db_).rows("SELECT COUNT(*) FROM uplink_resend"), std::vector<std::string>{"1"});
    ASSERT_TRUE(report().acked);
    EXPECT_EQ(batch_of(fake_.last().report, "buckets")["records"],
              json::array({bucket("pf0", "02:70:66:00:00:0b", kT0, false, 403, 6, 203, 4)}));
    EXPECT_EQ(Sql(db_).rows("SELECT COUNT(*) FROM uplink_resend"), std::vector<std::string>{"0"});
}

int64_t mac_value(const std::string& s) {
    if (s.empty()) return kIfaceTotal;
    std::string hex;
    for (char c : s)
        if (c != ':') hex += c;
    return std::stoll(hex, nullptr, 16);
}

TEST_F(UplinkTest, ABacklogLargerThanABatchGoesInOrderedBatchesEachRowOnce) {
    // Two interfaces, five buckets, 25 keys each: 250 rows; batches of 100.
    for (int k = 0; k < 5; k++) {
        std::vector<DrainRows> d;
        for (const char* iface : {"pf0", "pf1"}) {
            std::vector<BucketUpdate> rows;
            rows.push_back(upd(kT0 + k * 300, kIfaceTotal, false, {100, 1}, {100, 1}));
            for (int m = 1; m < 25; m++) rows.push_back(upd(kT0 + k * 300, kMacB + m, false, {uint64_t(m), 1}, {1, 1}));
            d.push_back(drain(iface, rows));
        }
        commit(d);
    }
    now_ = kT0 + 1500 + 1;
    open_uplink(100);
    std::vector<int64_t> backlogs;
    std::vector<std::tuple<int64_t, int, int64_t>> seen;
    for (int i = 0; i < 6; i++) {
        UplinkOutcome o = report();
        ASSERT_TRUE(o.acked) << o.error;
        if (o.sent == 0) break;
        backlogs.push_back(o.backlog);
        json b = batch_of(fake_.last().report, "buckets");
        EXPECT_EQ(b["seq"], i + 1);
        EXPECT_EQ(fake_.last().report["backlog"]["buckets"], o.backlog);
        for (const auto& rec : b["records"])
            seen.emplace_back(rec["ts"].get<int64_t>(), rec["iface"] == "pf0" ? 0 : 1,
                              mac_value(rec["mac"].get<std::string>()));
    }
    EXPECT_EQ(backlogs, (std::vector<int64_t>{150, 50, 0}));
    ASSERT_EQ(seen.size(), 250u);
    for (size_t i = 1; i < seen.size(); i++) EXPECT_LT(seen[i - 1], seen[i]) << i;  // strictly: each once, in order
    EXPECT_EQ(std::get<0>(seen.front()), kT0);
    EXPECT_EQ(std::get<0>(seen.back()), kT0 + 1200);
}

TEST_F(UplinkTest, PushHistoryGoesOnceSettledAndAgainWhenARowChanges) {
    {
        OutboxOptions oo;
        oo.database = db_;
        auto ob = Outbox::open(oo);
        ASSERT_TRUE(ob) << ob.error().message();
    }
    const int64_t now = kT0 + 917;
    Sql sql(db_);
    sql.exec(
        "INSERT INTO push_history(id, created, time, node, host, sink, kind, period, bytes, status, attempts, "
        "last_error) VALUES(41, " +
        std::to_string(now - 200) + ", " + std::to_string(now - 100) +
        ", 'beijing-1', 'nas-1', 'ding', 'daily', '2025-12-31', 812, 'sent', 1, ''), (42, " + std::to_string(now - 1) +
        ", " + std::to_string(now - 1) + ", 'beijing-1', 'nas-1', 'ding', 'alert', 'cpu', 90, 'pending', 0, '')");
    open_uplink();
    ASSERT_TRUE(report().acked);
    json b = batch_of(fake_.last().report, "push");
    EXPECT_EQ(b["seq"], 1);
    EXPECT_EQ(b["records"],
              json::parse(R"([{"id":41,"time":)" + std::to_string(now - 100) +
                          R"(,"node":"beijing-1","host":"nas-1","sink":"ding","kind":"daily",)"
                          R"("period":"2025-12-31","bytes":812,"status":"sent","attempts":1,"error":""}])"));
    EXPECT_EQ(fake_.last().report["backlog"]["push"], 0);  // 42 is not settled yet: not counted either
    EXPECT_EQ(sql.rows("SELECT seq, c1, c2 FROM uplink_cursor WHERE stream = 'push'"),
              std::vector<std::string>{"1|" + std::to_string(now - 100) + "|41"});
    // 42 failed meanwhile (its time moves), 41 unchanged.
    sql.exec("UPDATE push_history SET status = 'failed', attempts = 1, last_error = 'HTTP 500', time = " +
             std::to_string(now + 5) + " WHERE id = 42");
    now_ = now + 10;
    ASSERT_TRUE(report().acked);
    b = batch_of(fake_.last().report, "push");
    EXPECT_EQ(b["seq"], 2);
    ASSERT_EQ(b["records"].size(), 1u);
    EXPECT_EQ(b["records"][0]["id"], 42);
    EXPECT_EQ(b["records"][0]["status"], "failed");
    EXPECT_EQ(b["records"][0]["error"], "HTTP 500");
}

// The flows stream: a settled bucket's top pairs and one `other` row; a batch without an
// answer goes again unchanged (a scan's addition meanwhile is not in it), and once
// acknowledged exactly what was sent comes off the table, the addition going next.
TEST_F(UplinkTest, FlowPairsGoOnceTopNWithOtherAndAnUnansweredBatchGoesAgainUnchanged) {
    open_uplink();
    ASSERT_TRUE(FlowPairLog::open(db_));
    Sql sql(db_);
    sql.exec("INSERT INTO flow_pairs VALUES (" + std::to_string(kT0) +
             ", 'pf0', '198.18.0.1', '198.18.0.2', 6, 6379, 5000, 50, 2), (" + std::to_string(kT0) +
             ", 'pf0', '198.18.0.1', '198.18.0.3', 17, 53, 300, 3, 1), (" + std::to_string(kT0) +
             ", 'pf0', '198.18.0.4', '198.18.0.2', 6, 6379, 200, 2, 1), (" + std::to_string(kT0 + 900) +
             ", 'pf0', '198.18.0.1', '198.18.0.2', 6, 6379, 9, 1, 1)");  // the open bucket: not yet
    UplinkConfig c = config();
    c.flow_pairs = 2;
    uplink_->set_config(c);
    const json want = json::parse(R"([
        {"ts":1767225600,"iface":"pf0","other":false,"src":"198.18.0.1","dst":"198.18.0.2","proto":6,"port":6379,
         "bytes":5000,"packets":50,"flows":2},
        {"ts":1767225600,"iface":"pf0","other":false,"src":"198.18.0.1","dst":"198.18.0.3","proto":17,"port":53,
         "bytes":300,"packets":3,"flows":1},
        {"ts":1767225600,"iface":"pf0","other":true,"src":"","dst":"","proto":0,"port":0,
         "bytes":200,"packets":2,"flows":1}])");
    fake_.status = 500;
    UplinkOutcome o = report();
    EXPECT_FALSE(o.acked);
    json b = batch_of(json::parse(o.body), "flows");
    EXPECT_EQ(b["seq"], 1);
    EXPECT_EQ(b["records"], want);
    // A scan adds to a row meanwhile: the batch goes again as it was.
    sql.exec(
        "UPDATE flow_pairs SET bytes = bytes + 100, packets = packets + 1 WHERE client = '198.18.0.1' AND "
        "server = '198.18.0.2' AND ts = " +
        std::to_string(kT0));
    fake_.status = 200;
    o = report();
    ASSERT_TRUE(o.acked) << o.error;
    b = batch_of(json::parse(o.body), "flows");
    EXPECT_EQ(b["seq"], 1);
    EXPECT_EQ(b["records"], want);
    EXPECT_EQ(sql.rows("SELECT ts, client, server, bytes, packets, flows FROM flow_pairs ORDER BY ts"),
              (std::vector<std::string>{std::to_string(kT0) + "|198.18.0.1|198.18.0.2|100|1|0",
                                        std::to_string(kT0 + 900) + "|198.18.0.1|198.18.0.2|9|1|1"}));
    EXPECT_TRUE(sql.rows("SELECT value FROM meta WHERE key = 'uplink.flows_inflight'").empty());
    o = report();
    ASSERT_TRUE(o.acked) << o.error;
    b = batch_of(json::parse(o.body), "flows");
    EXPECT_EQ(b["seq"], 2);
    EXPECT_EQ(b["records"], json::parse(R"([{"ts":1767225600,"iface":"pf0","other":false,"src":"198.18.0.1",
        "dst":"198.18.0.2","proto":6,"port":6379,"bytes":100,"packets":1,"flows":0}])"));
    EXPECT_EQ(sql.rows("SELECT ts FROM flow_pairs"), (std::vector<std::string>{std::to_string(kT0 + 900)}));
}

TEST_F(UplinkTest, HostSamplesAndEndedEpisodesGoMergedByTime) {
    {
        auto h = HostHistory::open(db_);
        ASSERT_TRUE(h) << h.error().message();
    }
    Sql sql(db_);
    const int64_t now = kT0 + 917;
    const std::string t60 = std::to_string(now - 60), t30 = std::to_string(now - 30), t10 = std::to_string(now - 10);
    sql.exec("INSERT INTO host_sys(time, load1, mem_total, mem_used, disk_total, disk_used, temperature) VALUES(" +
             t60 + ", 0.5, 1024, 40.5, 1000, 12.5, NULL), (" + t10 + ", 0.25, 1024, 41.0, 1000, 12.5, 48.5)");
    sql.exec("INSERT INTO host_cpu(time, usage) VALUES(" + t60 + ", 3.5)");
    sql.exec(
        "INSERT INTO proc_episodes(id, pid, starttime, name, user, since, detected, ended, end_reason, peak_cpu, "
        "peak_mem) VALUES(1, 100, 1, 'busy', 'root', 5, 6, NULL, NULL, 50.0, 1.0), (7, 4242, 2, 'spin', 'bob', " +
        std::to_string(now - 900) + ", " + std::to_string(now - 895) + ", " + t30 + ", 'exited', 99.0, 1.0)");
    open_uplink();
    ASSERT_TRUE(report().acked);
    json b = batch_of(fake_.last().report, "host");
    EXPECT_EQ(b["seq"], 1);
    EXPECT_EQ(
        b["records"],
        json::parse(R"([{"type":"sys","time":)" + t60 +
                    R"(,"load1":0.5,"cpu":3.5,"mem_total":1024,"mem_used":40.5,"disk_total":1000,)"
                    R"("disk_used":12.5,"temperature":null},)"
                    R"({"type":"episode","id":7,"pid":4242,"name":"spin","user":"bob","since":)" +
                    std::to_string(now - 900) + R"(,"detected":)" + std::to_string(now - 895) + R"(,"ended":)" + t30 +
                    R"(,"end_reason":"exited","peak_cpu":99.0,"peak_mem":1.0},)"
                    R"({"type":"sys","time":)" +
                    t10 +
                    R"(,"load1":0.25,"cpu":null,"mem_total":1024,"mem_used":41.0,"disk_total":1000,)"
                    R"("disk_used":12.5,"temperature":48.5}])"));
    EXPECT_EQ(sql.rows("SELECT seq, c1, c2, c3 FROM uplink_cursor WHERE stream = 'host'"),
              std::vector<std::string>{"1|2|" + t30 + "|7"});
    // The running episode ends: it follows, alone.
    sql.exec("UPDATE proc_episodes SET ended = " + std::to_string(now) + ", end_reason = 'calmed' WHERE id = 1");
    ASSERT_TRUE(report().acked);
    b = batch_of(fake_.last().report, "host");
    EXPECT_EQ(b["seq"], 2);
    ASSERT_EQ(b["records"].size(), 1u);
    EXPECT_EQ(b["records"][0]["id"], 1);
    EXPECT_EQ(b["records"][0]["end_reason"], "calmed");
}

TEST_F(UplinkTest, TheServiceReportsOnItsOwnThreadAndShowsItsFigures) {
    standard_history();
    ServiceContext ctx;
    ctx.accounting.database = db_;
    EXPECT_EQ(make_uplink_service(ctx).value(), nullptr);  // no collector: section, no service
    ctx.sections.set(config());
    ctx.clock = [this] { return now_.load(); };
    ctx.ifaces = {"pf0"};
    ctx.paths.sysfs = dir_ + "/sys";
    auto s = make_uplink_service(ctx);
    ASSERT_TRUE(s) << s.error().message();
    ASSERT_NE(*s, nullptr);
    for (int i = 0; i < 500 && fake_.count() == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_GE(fake_.count(), 1u);
    DaemonStats st;
    for (int i = 0; i < 500; i++) {
        (*s)->stats(st);
        if (st.collector && st.collector->last_ack) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(st.collector);
    EXPECT_EQ(st.collector->last_ack, kT0 + 917);
    EXPECT_EQ(st.collector->backlog, 0u);
    (*s)->stop();
    EXPECT_EQ(batch_of(fake_.requests.front().report, "buckets")["records"].size(), 4u);
}

TEST(UplinkMetrics, TheLinkFiguresAppearOnlyWithACollector) {
    DaemonStats st;
    EXPECT_EQ(render_metrics({}, st, 10).find("peakflow_collector"), std::string::npos);
    st.collector = CollectorFigures{12, 1796000000, 3};
    EXPECT_NE(render_metrics({}, st, 10)
                  .find("# HELP peakflow_collector_backlog Records waiting to be acknowledged by the collector.\n"
                        "# TYPE peakflow_collector_backlog gauge\npeakflow_collector_backlog 12\n"
                        "# HELP peakflow_collector_last_ack_timestamp_seconds When the collector last acknowledged a "
                        "report (0: not yet).\n# TYPE peakflow_collector_last_ack_timestamp_seconds gauge\n"
                        "peakflow_collector_last_ack_timestamp_seconds 1796000000\n"
                        "# HELP peakflow_collector_errors_total Reports to the collector that failed.\n"
                        "# TYPE peakflow_collector_errors_total counter\npeakflow_collector_errors_total 3\n"),
              std::string::npos);
}

}  // namespace
}  // namespace pf
