// The heartbeat service against a real collector on 127.0.0.1: the requirements' requests
// and answers field by field, an admin's and a viewer's view, every refusal with its exact
// answer and nothing stored, who may report (heartbeat tokens, allow_from), the types'
// timeouts on an injected clock, the `heartbeat:` config section, the token commands, and
// the database probe: the collector's SQLite, a socket that never answers (the timeout), a
// closed port, and (as root) a real PostgreSQL started and stopped by the test.

#include "peakflow/fleet/heartbeat.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fleet_test_support.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/app/config.hpp"
#include "peakflow/collector/collector_cli.hpp"
#include "peakflow/collector/collector_config.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/fleet/fleet_users.hpp"
#include "peakflow/fleet/heartbeat_checks.hpp"
#include "peakflow/fleet/uplink.hpp"
#include "report_test_support.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

using pf::testing::collector_database;
using pf::testing::store_on_postgres;

using nlohmann::json;

// The requirements' status request: 2023-11-21 16:00:00 to 17:00:00 UTC.
constexpr int64_t kStart = 1700582400;
constexpr int64_t kEnd = 1700586000;
const std::string kHidden = kHiddenIp;

// The log lines written while it lives (to check that no password reaches the log).
class LogCapture {
  public:
    LogCapture() : saved_(spdlog::default_logger()) {
        auto l = std::make_shared<spdlog::logger>("hb", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
        l->set_level(spdlog::level::debug);
        spdlog::set_default_logger(l);
    }
    ~LogCapture() { spdlog::set_default_logger(saved_); }
    std::string text() const { return out_.str(); }

  private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::logger> saved_;
};

// A TCP port on 127.0.0.1: listening but never accepting (a database that does not answer),
// or closed (nothing listens).
struct Port {
    int fd = -1;
    int port = 0;
    explicit Port(bool listen_on) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t n = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
        port = ntohs(a.sin_port);
        if (listen_on) {
            EXPECT_EQ(::listen(fd, 4), 0);
        } else {
            ::close(fd);
            fd = -1;
        }
    }
    ~Port() {
        if (fd >= 0) ::close(fd);
    }
};

class HeartbeatTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_heartbeat_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        now_ms_ = kEnd * 1000;
        start_server({});
    }
    void TearDown() override {
        server_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    void start_server(HeartbeatConfig hb) {
        server_.reset();
        CollectorOptions o;
        o.port = 0;
        o.database = collector_database(dir_);
        o.timezone = "UTC";
        o.clock_ms = [this] { return now_ms_.load(); };
        o.clock = [this] { return now_ms_.load() / 1000; };
        o.queue = &queue_;
        o.watch = false;
        o.probe = false;
        o.threads = 2;
        o.password_hash = Argon2Params{1, 8, 1};  // cheap: not what is tested here
        o.heartbeat = std::move(hb);
        server_ = CollectorServer::start(o).take();
        if (!admin_.empty()) return;  // users and tokens are in the database already
        auto users = FleetUsers::open(server_->store(), Argon2Params{1, 8, 1}).take();
        ASSERT_TRUE(users->add("ann", "admin", "correct horse battery", kStart));
        ASSERT_TRUE(users->add("vic", "viewer", "correct horse battery", kStart));
        admin_ = users->create_token("ann", kStart, std::nullopt).take();
        viewer_ = users->create_token("vic", kStart, std::nullopt).take();
        hb_token_ = heartbeat_token_create(server_->store(), "probe-1", kStart).take();
        agent_token_ = server_->store().create_token("nas-1", kStart).take();
    }
    HttpResponse post(const std::string& path, const std::string& body, const std::string& token) {
        HttpRequest rq;
        rq.method = HttpMethod::Post;
        rq.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
        rq.body = body;
        if (!token.empty()) rq.headers.push_back("Authorization: Bearer " + token);
        rq.headers.push_back("Content-Type: application/json");
        auto r = http_request(rq);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? *r : HttpResponse{};
    }
    HttpResponse report(const std::string& ip, const std::string& name, const std::string& token) {
        return post("/heartbeat/report", json{{"ip_address", ip}, {"service_name", name}}.dump(), token);
    }
    // The status answer, each database's duration_ms (a measurement) checked and removed.
    json status(const std::string& token, int64_t start = kStart, int64_t end = kEnd) {
        auto r = post("/heartbeat/status", json{{"start_time", start}, {"end_time", end}}.dump(), token);
        EXPECT_EQ(r.status, 200) << r.body;
        json j = json::parse(r.body, nullptr, false);
        if (j.is_discarded()) return j;
        for (auto& d : j["service_status"]["database"]["databases"]) {
            EXPECT_TRUE(d["duration_ms"].is_null() || d["duration_ms"].is_number_integer()) << d;
            d.erase("duration_ms");
        }
        return j;
    }
    int64_t reports() { return server_->store().count("heartbeat_reports").take(); }
    // A backend (198.18.0.1), a redis (198.18.0.2) and a frontend (198.18.0.3) report, 60 s
    // before kEnd (the clock stays there).
    void three_services() {
        now_ms_ = (kEnd - 60) * 1000;
        for (auto [ip, name] : std::vector<std::pair<const char*, const char*>>{
                 {"198.18.0.1", "后端api"}, {"198.18.0.2", "redis-main"}, {"198.18.0.3", "前端web"}})
            ASSERT_EQ(report(ip, name, hb_token_).status, 200);
    }
    // The first batch of an agent's flows stream.
    static WireBatch flows_batch() {
        WireBatch b;
        b.stream = "flows";
        b.seq = 1;
        return b;
    }
    static std::string error(const std::string& m) {
        return nlohmann::ordered_json{{"status", "error"}, {"message", m}}.dump();
    }

    std::string dir_;
    std::atomic<int64_t> now_ms_{0};
    testing::RecordingQueue queue_;
    std::unique_ptr<CollectorServer> server_;
    std::string admin_, viewer_, hb_token_, agent_token_;
};

const json kNoTraffic = json::parse(R"({"data_collection_to_kafka":[],"kafka_to_database":[],
    "database_to_backend":[],"redis_to_backend":[],"backend_to_frontend":[]})");

TEST_F(HeartbeatTest, TheRequirementsRequestsAndAnswers) {
    now_ms_ = 1700585970250;  // 2023-11-21T16:59:30.250Z
    auto r = post("/heartbeat/report", R"({"ip_address": "192.168.1.10", "service_name": "数据采集服务1"})", hb_token_);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"status":"success","message":"探活报告已记录","data":{"id":1,"ip_address":"192.168.1.10",)"
                      R"("service_name":"数据采集服务1","report_time":"2023-11-21T16:59:30.250Z"}})");
    EXPECT_EQ(json::parse(report("10.0.0.7", "kafka进程", hb_token_).body)["data"]["id"], 2);
    EXPECT_EQ(reports(), 2);

    now_ms_ = kEnd * 1000;
    server_->heartbeat().probe_now();
    const std::string db = collector_database(dir_);
    json admin = status(admin_);
    EXPECT_EQ(admin, json::parse(R"({"service_status":{
        "data_collection":[{"service_name":"数据采集服务1","ip_address":"192.168.1.10","is_online":true,
                            "last_report_time":"2023-11-21T16:59:30.250Z"}],
        "kafka_process":[{"service_name":"kafka进程","ip_address":"10.0.0.7","is_online":true,
                          "last_report_time":"2023-11-21T16:59:30.250Z"}],
        "redis":[],"frontend":[],"backend":[],"other":[],
        "database":{"is_connected":true,"connection_time":"2023-11-21T17:00:00.000Z","error_message":null,
                    "databases":[{"name":"collector","target":")" +
                                 redact_database(db) +
                                 R"(","is_connected":true,
                                  "connection_time":"2023-11-21T17:00:00.000Z","error_message":null}]}},
        "traffic_status":{"data_collection_to_kafka":[],"kafka_to_database":[],"database_to_backend":[],
                          "redis_to_backend":[],"backend_to_frontend":[]}})"));
    // The keys in the requirements' order.
    std::vector<std::string> keys;
    auto raw = nlohmann::ordered_json::parse(
        post("/heartbeat/status", json{{"start_time", kStart}, {"end_time", kEnd}}.dump(), admin_).body);
    for (auto& [k, v] : raw["service_status"].items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"data_collection", "kafka_process", "redis", "frontend", "backend",
                                              "other", "database"}));

    // A viewer: every address as the placeholder, the same states, no traffic.
    json viewer = status(viewer_);
    EXPECT_EQ(viewer["service_status"]["data_collection"][0]["ip_address"], kHidden);
    EXPECT_EQ(viewer["service_status"]["kafka_process"][0]["ip_address"], kHidden);
    EXPECT_EQ(viewer["service_status"]["database"]["databases"][0]["target"], kHidden);
    json same = admin;
    same["service_status"]["data_collection"][0]["ip_address"] = kHidden;
    same["service_status"]["kafka_process"][0]["ip_address"] = kHidden;
    same["service_status"]["database"]["databases"][0]["target"] = kHidden;
    EXPECT_EQ(viewer, same);
    EXPECT_EQ(viewer["traffic_status"], kNoTraffic);
}

TEST_F(HeartbeatTest, TypesByPrefixAndTimeouts) {
    const int64_t t0 = kEnd - 600;
    now_ms_ = t0 * 1000;
    for (const char* n : {"redis-main", "Kafka-1", "后端api", "前端web", "数据采集2", "nginx"})
        EXPECT_EQ(report("10.1.0.1", n, hb_token_).status, 200) << n;
    auto online = [&](const json& s, const char* type) { return s["service_status"][type][0]["is_online"]; };

    now_ms_ = (t0 + 60) * 1000;  // exactly the 1 min timeout: still online
    json s = status(admin_, t0 - 10, t0 + 60);
    EXPECT_EQ(online(s, "redis"), true);
    EXPECT_EQ(s["service_status"]["other"][0]["service_name"], "nginx");

    now_ms_ = (t0 + 61) * 1000;  // silent for 61 s: redis (1 min) offline, kafka (2 min) online
    s = status(admin_, t0 - 10, t0 + 61);
    EXPECT_EQ(online(s, "redis"), false);
    EXPECT_EQ(online(s, "kafka_process"), true);
    EXPECT_EQ(online(s, "backend"), false);
    EXPECT_EQ(online(s, "frontend"), false);
    EXPECT_EQ(online(s, "data_collection"), true);
    EXPECT_EQ(online(s, "other"), true);  // other_timeout 2 min

    now_ms_ = (t0 + 121) * 1000;
    s = status(admin_, t0 - 10, t0 + 121);
    EXPECT_EQ(online(s, "kafka_process"), false);
    EXPECT_EQ(online(s, "data_collection"), false);
    EXPECT_EQ(online(s, "other"), false);
    // The last report of the range counts, the state at its end: a report after it is not seen.
    EXPECT_EQ(report("10.1.0.1", "redis-main", hb_token_).status, 200);
    s = status(admin_, t0 - 10, t0 + 30);
    EXPECT_EQ(s["service_status"]["redis"][0]["last_report_time"], iso8601_ms(t0 * 1000));
    EXPECT_EQ(online(s, "redis"), true);
    // Outside the range: not listed.
    EXPECT_EQ(status(admin_, t0 - 300, t0 - 100)["service_status"]["redis"], json::array());

    // Configured types: one of our own, the document's keys stay.
    HeartbeatConfig hb;
    hb.types = {{"redis", "cache", 300}};
    hb.other_timeout = 10;
    start_server(hb);
    s = status(admin_, t0 - 10, t0 + 121);
    EXPECT_EQ(online(s, "cache"), true);
    EXPECT_EQ(s["service_status"]["redis"], json::array());
    EXPECT_EQ(s["service_status"]["kafka_process"], json::array());
    EXPECT_EQ(s["service_status"]["other"].size(), 5u);
}

TEST_F(HeartbeatTest, ReportRefusalsStoreNothing) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "the body must be a JSON object {\"ip_address\", \"service_name\"}"},
        {"[1]", "the body must be a JSON object {\"ip_address\", \"service_name\"}"},
        {R"({"service_name":"redis"})", "missing field 'ip_address'"},
        {R"({"ip_address":"10.0.0.1"})", "missing field 'service_name'"},
        {R"({"ip_address":167772161,"service_name":"redis"})", "field 'ip_address' must be a string"},
        {R"({"ip_address":"10.0.0.1","service_name":7})", "field 'service_name' must be a string"},
        {R"({"ip_address":"999.0.0.1","service_name":"redis"})",
         "field 'ip_address' must be an IPv4 or IPv6 address, got '999.0.0.1'"},
        {R"({"ip_address":"10.0.0.1","service_name":""})", "field 'service_name' must not be empty"},
        {R"({"ip_address":"10.0.0.1","service_name":"a\nb"})",
         "field 'service_name' must not contain control characters"},
        {json{{"ip_address", "10.0.0.1"}, {"service_name", std::string(257, 'x')}}.dump(),
         "field 'service_name' is over 256 bytes"},
    };
    for (const auto& [body, message] : cases) {
        auto r = post("/heartbeat/report", body, hb_token_);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_EQ(r.body, error(message)) << body;
    }
    auto big = post("/heartbeat/report", std::string(20000, ' '), hb_token_);
    EXPECT_EQ(big.status, 413);
    EXPECT_EQ(reports(), 0);
    EXPECT_EQ(report("fd00::7", "redis", hb_token_).status, 200);  // IPv6 is an address too
    EXPECT_EQ(reports(), 1);
}

TEST_F(HeartbeatTest, StatusRefusals) {
    const std::string retention = "longer than the retention of 604800 s (heartbeat.retention)";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[]", "the body must be a JSON object {\"start_time\", \"end_time\"} (unix seconds)"},
        {R"({"end_time":1700586000})", "missing field 'start_time'"},
        {R"({"start_time":1700582400})", "missing field 'end_time'"},
        {R"({"start_time":"1700582400","end_time":1700586000})",
         "field 'start_time' must be unix seconds (an integer from 0)"},
        {R"({"start_time":1700582400,"end_time":1700586000.5})",
         "field 'end_time' must be unix seconds (an integer from 0)"},
        {R"({"start_time":-1,"end_time":1700586000})", "field 'start_time' must be unix seconds (an integer from 0)"},
        {R"({"start_time":1700586000,"end_time":1700582400})",
         "the time range is reversed: start_time 1700586000 must be before end_time 1700582400"},
        {R"({"start_time":1700586000,"end_time":1700586000})",
         "the time range is reversed: start_time 1700586000 must be before end_time 1700586000"},
        {R"({"start_time":1700586001,"end_time":1700586100})",
         "the time range is in the future: start_time 1700586001 is after the collector's clock (1700586000)"},
        {R"({"start_time":1700582400,"end_time":1700586301})",
         "the time range is in the future: end_time 1700586301 is after the collector's clock (1700586000)"},
        {R"({"start_time":1699981199,"end_time":1700586000})", "the time range is 604801 s, " + retention},
    };
    for (const auto& [body, message] : cases) {
        auto r = post("/heartbeat/status", body, admin_);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_EQ(r.body, error(message)) << body;
    }
    // 300 s ahead is a browser's clock, accepted; exactly the retention too.
    EXPECT_EQ(post("/heartbeat/status", R"({"start_time":1700582400,"end_time":1700586300})", admin_).status, 200);
    EXPECT_EQ(post("/heartbeat/status", R"({"start_time":1699981200,"end_time":1700586000})", admin_).status, 200);

    // Users only: no credentials, an agent's token, a heartbeat token.
    const std::string body = R"({"start_time":1700582400,"end_time":1700586000})";
    auto none = post("/heartbeat/status", body, "");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.body, error("missing credentials: log in, or send Authorization: Bearer with a user's API token"));
    EXPECT_EQ(post("/heartbeat/status", body, agent_token_).status, 401);
    EXPECT_EQ(post("/heartbeat/status", body, hb_token_).status, 401);
    EXPECT_EQ(post("/heartbeat/status", body, "pfu_" + std::string(64, '0')).body, error("unknown or revoked token"));
}

TEST_F(HeartbeatTest, WhoMayReport) {
    const std::string missing =
        "missing credentials: send Authorization: Bearer with a heartbeat token, or report from an address in "
        "heartbeat.allow_from";
    const std::string wrong =
        "not a heartbeat token: send Authorization: Bearer pfh_... (peakflow-collector heartbeat token create)";
    auto none = report("10.0.0.1", "redis", "");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.body, error(missing));
    EXPECT_EQ(report("10.0.0.1", "redis", admin_).body, error(wrong));        // a user's token
    EXPECT_EQ(report("10.0.0.1", "redis", agent_token_).body, error(wrong));  // an agent's
    EXPECT_EQ(report("10.0.0.1", "redis", "pfh_" + std::string(64, 'a')).body,
              error("unknown or revoked heartbeat token"));
    EXPECT_EQ(reports(), 0);

    // Revoked: 401 at once; a new token for the name works.
    ASSERT_TRUE(heartbeat_token_revoke(server_->store(), "probe-1"));
    EXPECT_EQ(report("10.0.0.1", "redis", hb_token_).body, error("unknown or revoked heartbeat token"));
    EXPECT_FALSE(heartbeat_token_create(server_->store(), "bad name", kStart).ok());
    const std::string again = heartbeat_token_create(server_->store(), "probe-1", kStart).take();
    EXPECT_FALSE(heartbeat_token_create(server_->store(), "probe-1", kStart).ok());  // not revoked
    EXPECT_EQ(report("10.0.0.1", "redis", again).status, 200);
    EXPECT_EQ(heartbeat_token_revoke(server_->store(), "nobody").error().message(),
              "no heartbeat token named 'nobody' (peakflow-collector heartbeat token list shows them)");
    auto tokens = heartbeat_tokens(server_->store()).take();
    ASSERT_EQ(tokens.size(), 1u);
    EXPECT_EQ(tokens[0].name, "probe-1");
    EXPECT_EQ(tokens[0].last_report_ms, kEnd * 1000);
    // Stored hashed: neither token is in the database file.
    const std::string file = pf::testing::collector_database_contents(dir_);
    EXPECT_EQ(file.find(again), std::string::npos);
    EXPECT_EQ(file.find(hb_token_), std::string::npos);

    // From an allowed address: no token needed; a token given is still checked.
    HeartbeatConfig hb;
    hb.allow_from = {"10.0.0.0/8", "127.0.0.0/8"};
    start_server(hb);
    EXPECT_EQ(report("10.0.0.1", "redis", "").status, 200);
    EXPECT_EQ(report("10.0.0.1", "redis", hb_token_).status, 401);
    hb.allow_from = {"127.0.0.2/32", "::1"};
    start_server(hb);
    EXPECT_EQ(report("10.0.0.1", "redis", "").status, 401);
    EXPECT_EQ(reports(), 2);
}

TEST(HeartbeatUnit, AddressBlocks) {
    auto c = Cidr::parse("10.1.0.0/16").take();
    EXPECT_TRUE(c.contains("10.1.200.3"));
    EXPECT_TRUE(c.contains("::ffff:10.1.0.9"));  // a dual-stack listener's view
    EXPECT_FALSE(c.contains("10.2.0.1"));
    EXPECT_FALSE(c.contains("not an address"));
    auto odd = Cidr::parse("192.168.1.128/25").take();
    EXPECT_TRUE(odd.contains("192.168.1.200"));
    EXPECT_FALSE(odd.contains("192.168.1.127"));
    auto v6 = Cidr::parse("fd00::/8").take();
    EXPECT_TRUE(v6.contains("fd12::1"));
    EXPECT_FALSE(v6.contains("fe80::1"));
    EXPECT_FALSE(v6.contains("10.0.0.1"));
    EXPECT_TRUE(Cidr::parse("0.0.0.0/0").take().contains("203.0.113.9"));
    EXPECT_TRUE(Cidr::parse("192.0.2.7").take().contains("192.0.2.7"));
    EXPECT_FALSE(Cidr::parse("192.0.2.7").take().contains("192.0.2.8"));
    EXPECT_EQ(Cidr::parse("10.0.0.0/33").error().message(), "'10.0.0.0/33': the prefix length must be 0 to 32");
    EXPECT_FALSE(Cidr::parse("10.0.0.0/").ok());
    EXPECT_FALSE(Cidr::parse("example.com/8").ok());
}

TEST(HeartbeatUnit, FormatsAndMasks) {
    EXPECT_EQ(iso8601_ms(1763721000000), "2025-11-21T10:30:00.000Z");
    EXPECT_EQ(iso8601_ms(1763721000007), "2025-11-21T10:30:00.007Z");
    EXPECT_EQ(mask_conninfo("host=db1 port=5432 dbname=app user=probe password=s3cret"),
              "user=probe password=*** dbname=app host=db1 port=5432");
    const std::string uri = mask_conninfo("postgresql://probe:s3cret@db1:5433/app?sslmode=require");
    EXPECT_EQ(uri.find("s3cret"), std::string::npos) << uri;
    EXPECT_NE(uri.find("password=***"), std::string::npos) << uri;
    EXPECT_EQ(mask_conninfo("host='a b' password='x y'"), "password=*** host='a b'");
    EXPECT_EQ(conninfo_problem("host=db1 dbname=app"), "");
    EXPECT_NE(conninfo_problem("password=s3cret bogus=1"), "");
    EXPECT_EQ(conninfo_problem("password=s3cret bogus=1").find("s3cret"), std::string::npos);
    EXPECT_EQ(mask_conninfo("password=s3cret bogus"), "(not a connection string)");
    auto hide = [](const std::string&) { return std::string("X"); };
    EXPECT_EQ(replace_addresses("connection to server at \"10.0.0.5\", port 5432 failed; also fd00::1.", hide),
              "connection to server at \"X\", port 5432 failed; also X.");
    EXPECT_EQ(replace_addresses("at 10:30:00 on abc1.2.3.4 failed", hide), "at 10:30:00 on abc1.2.3.4 failed");
}

WireFlowPair pair(int64_t ts, const std::string& client, const std::string& server, int64_t proto, int64_t port,
                  uint64_t bytes, uint64_t packets, uint64_t flows);

TEST_F(HeartbeatTest, RetentionPrunesOldReports) {
    now_ms_ = (kEnd - 604800 - 10) * 1000;
    EXPECT_EQ(report("10.0.0.1", "redis", hb_token_).status, 200);
    now_ms_ = (kEnd - 10) * 1000;
    EXPECT_EQ(report("10.0.0.1", "redis", hb_token_).status, 200);
    // Flow pairs: the bucket before the retention goes, the one at its start stays.
    WireBatch flows = flows_batch();
    flows.flows = {pair(kEnd - 604800 - 300, "10.0.0.2", "10.0.0.1", 6, 6379, 100, 1, 1),
                   pair(kEnd - 604800, "10.0.0.2", "10.0.0.1", 6, 6379, 200, 2, 1)};
    ASSERT_TRUE(server_->store().ingest("nas-1", testing::agent_report("nas-1", kEnd - 10, {flows}), kEnd - 10, {}));
    ASSERT_EQ(server_->store().count("fleet_flows").take(), 2);
    now_ms_ = kEnd * 1000;
    EXPECT_EQ(server_->heartbeat().prune_now().take(), 2);
    EXPECT_EQ(reports(), 1);
    EXPECT_EQ(server_->store().count("fleet_flows").take(), 1);
    // ids are not reused after a prune
    EXPECT_EQ(json::parse(report("10.0.0.1", "redis", hb_token_).body)["data"]["id"], 3);
}

TEST_F(HeartbeatTest, ProbeTimeoutRefusedAndMaskedPasswords) {
    Port silent(true), closed(false);
    HeartbeatConfig hb;
    hb.probe_timeout = 0.3;
    hb.databases = {
        "hostaddr=127.0.0.1 port=" + std::to_string(silent.port) +
            " dbname=app user=probe password=hunter2-secret sslmode=disable",
        "host=127.0.0.1 port=" + std::to_string(closed.port) + " dbname=app user=probe password=hunter2-secret"};
    LogCapture log;
    start_server(hb);
    server_->heartbeat().probe_now();
    auto p = server_->heartbeat().probes();
    ASSERT_EQ(p.size(), 3u);
    EXPECT_TRUE(p[0].connected) << p[0].error;
    EXPECT_FALSE(p[1].connected);
    EXPECT_EQ(p[1].error, "no connection within 300 ms (heartbeat.probe_timeout)");
    EXPECT_GE(p[1].duration_ms, 290);
    EXPECT_LT(p[1].duration_ms, 2000);
    EXPECT_FALSE(p[2].connected);
    EXPECT_NE(p[2].error.find("Connection refused"), std::string::npos) << p[2].error;

    json admin = status(admin_);
    const json& d = admin["service_status"]["database"];
    EXPECT_EQ(d["is_connected"], false);
    EXPECT_EQ(d["databases"][1]["target"], "user=probe password=*** dbname=app hostaddr=127.0.0.1 port=" +
                                               std::to_string(silent.port) + " sslmode=disable");
    EXPECT_EQ(d["databases"][1]["error_message"], "no connection within 300 ms (heartbeat.probe_timeout)");
    EXPECT_EQ(d["error_message"], "postgresql 1: " + p[1].error + "; postgresql 2: " + p[2].error);
    // A viewer: the server's address in the error text hidden too.
    json viewer = status(viewer_);
    const std::string verr = viewer["service_status"]["database"]["databases"][2]["error_message"];
    EXPECT_EQ(verr.find("127.0.0.1"), std::string::npos) << verr;
    EXPECT_NE(verr.find(kHidden), std::string::npos) << verr;
    EXPECT_EQ(viewer.dump().find("127.0.0.1"), std::string::npos);

    const std::string all = admin.dump() + viewer.dump() + log.text();
    EXPECT_EQ(all.find("hunter2"), std::string::npos);
    EXPECT_NE(log.text().find("heartbeat: database postgresql 2"), std::string::npos) << log.text();
}

TEST_F(HeartbeatTest, ProbeThreadNeverHoldsARequest) {
    Port silent(true);
    HeartbeatConfig hb;
    hb.probe_timeout = 1;
    hb.probe_interval = 1;
    hb.databases = {"hostaddr=127.0.0.1 port=" + std::to_string(silent.port) + " dbname=a user=b sslmode=disable"};
    server_.reset();
    CollectorOptions o;
    o.port = 0;
    o.database = collector_database(dir_);
    o.clock = [] { return kEnd; };
    o.watch = false;
    o.threads = 2;
    o.password_hash = Argon2Params{1, 8, 1};
    o.heartbeat = hb;  // the probe thread runs
    server_ = CollectorServer::start(o).take();
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(report("10.0.0.1", "redis", hb_token_).status, 200);  // while the probe waits for the silent one
    auto s = post("/heartbeat/status", json{{"start_time", kStart}, {"end_time", kEnd}}.dump(), admin_);
    EXPECT_EQ(s.status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(800));
    server_->stop();  // waits for the probe under way, at most its timeout
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
}

TEST(HeartbeatConfigSection, ParsedCheckedAndMasked) {
    auto c = parse_collector_config(R"(heartbeat:
  types:
    - {prefix: "数据采集", type: data_collection, timeout: 2m}
    - {prefix: nginx, type: proxy, timeout: 90}
  other_timeout: 5m
  retention: 30d
  allow_from: [10.0.0.0/8, "fd00::/8"]
  databases: ["host=db1 dbname=app user=probe password=s3cret"]
  probe_interval: 15
  probe_timeout: 2.5
)",
                                    "c.yaml")
                 .take();
    const HeartbeatConfig& h = c.heartbeat;
    ASSERT_EQ(h.types.size(), 2u);
    EXPECT_EQ(h.types[0].prefix, "数据采集");
    EXPECT_EQ(h.types[0].timeout, 120);
    EXPECT_EQ(h.types[1].type, "proxy");
    EXPECT_EQ(h.types[1].timeout, 90);
    EXPECT_EQ(h.other_timeout, 300);
    EXPECT_EQ(h.retention, 30 * 86400);
    EXPECT_EQ(h.allow_from, (std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}));
    EXPECT_EQ(h.probe_interval, 15);
    EXPECT_EQ(h.probe_timeout, 2.5);
    EXPECT_EQ(c.server_options().heartbeat.databases.size(), 1u);
    const std::string dumped = dump_collector_config(c);
    EXPECT_EQ(dumped.find("s3cret"), std::string::npos) << dumped;
    EXPECT_NE(dumped.find("password=***"), std::string::npos) << dumped;
    // The dump reads back.
    EXPECT_TRUE(parse_collector_config(dumped, "dump").ok()) << dumped;

    // Defaults: the requirements' table.
    auto d = parse_collector_config("", "c.yaml").take().heartbeat;
    ASSERT_EQ(d.types.size(), 5u);
    EXPECT_EQ(d.types[2].prefix, "redis");
    EXPECT_EQ(d.types[2].timeout, 60);
    EXPECT_EQ(d.retention, 7 * 86400);
    EXPECT_EQ(d.probe_interval, 30);

    auto err = [](const std::string& text) {
        auto r = parse_collector_config(text, "c.yaml");
        return r ? std::string("(accepted)") : r.error().message();
    };
    EXPECT_EQ(err("heartbeat:\n  retention: 10\n"),
              "c.yaml:2:14: key 'heartbeat.retention': must be between 3600 and 315360000 seconds, got 10");
    EXPECT_EQ(err("heartbeat:\n  retention: 1w\n"),
              "c.yaml:2:14: key 'heartbeat.retention': expected seconds, or a number with s, m, h or d (2m, 7d), got "
              "'1w'");
    EXPECT_EQ(err("heartbeat:\n  allow_from: [10.0.0.0/40]\n"),
              "c.yaml:2:16: key 'heartbeat.allow_from': '10.0.0.0/40': the prefix length must be 0 to 32");
    EXPECT_EQ(err("heartbeat:\n  databases: [\"password=s3cret nonsense\"]\n"),
              "c.yaml:2:15: key 'heartbeat.databases': is not a PostgreSQL connection string: use key=value pairs "
              "(host=db1 dbname=app user=probe) or a postgresql:// URI");
    EXPECT_EQ(err("heartbeat:\n  types:\n    - {prefix: redis, type: other, timeout: 60}\n"),
              "c.yaml:3:29: key 'heartbeat.types.type': 'other': use 1 to 64 of a-z 0-9 _, not 'other' or 'database'");
    EXPECT_EQ(err("heartbeat:\n  types:\n    - {prefix: redis, type: cache}\n"),
              "c.yaml:3:7: key 'heartbeat.types.timeout': missing");
    EXPECT_EQ(
        err("heartbeat:\n  types:\n    - {prefix: a, type: x, timeout: 1}\n    - {prefix: a, type: y, timeout: 1}\n"),
        "c.yaml:4:16: key 'heartbeat.types.prefix': 'a' is listed twice");
    EXPECT_EQ(err("heartbeat:\n  probe_timeout: 0\n"),
              "c.yaml:2:18: key 'heartbeat.probe_timeout': must be between 0.100000 and 60.000000");
    EXPECT_EQ(err("heartbeat:\n  colour: red\n"), "c.yaml:2:3: key 'heartbeat.colour': unknown key");
}

TEST_F(HeartbeatTest, TokenCommands) {
    server_.reset();
    const std::string cfg = dir_ + "/collector.yaml";
    std::ofstream(cfg) << "database: " << collector_database(dir_) << "\ntimezone: UTC\n";
    auto run = [&](std::vector<std::string> args, int want_rc) {
        args.insert(args.begin(), "peakflow-collector");
        args.push_back("-f");
        args.push_back(cfg);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        ::testing::internal::CaptureStdout();
        const int rc = run_collector_cli(static_cast<int>(argv.size()), argv.data());
        std::string out = ::testing::internal::GetCapturedStdout();
        EXPECT_EQ(rc, want_rc) << args[1];
        return out;
    };
    const std::string token = run({"heartbeat", "token", "create", "cron-checks"}, 0);
    ASSERT_EQ(token.size(), 4u + 64 + 1) << token;
    EXPECT_EQ(token.substr(0, 4), "pfh_");
    EXPECT_EQ(run({"heartbeat", "token", "create", "cron-checks"}, 1), "");  // exists
    json list = json::parse(run({"heartbeat", "token", "list", "--json"}, 0));
    ASSERT_EQ(list["tokens"].size(), 2u);
    EXPECT_EQ(list["tokens"][0]["name"], "cron-checks");
    EXPECT_EQ(list["tokens"][0]["revoked"], false);
    EXPECT_EQ(list["tokens"][0]["last_report"], nullptr);
    EXPECT_EQ(list["tokens"][1], json::parse(R"({"name":"probe-1","created":"2023-11-21 16:00:00",
        "created_epoch":1700582400,"revoked":false,"last_report":null,"last_report_epoch":null})"));
    EXPECT_EQ(list.dump().find(token.substr(0, 68)), std::string::npos);
    run({"heartbeat", "token", "revoke", "cron-checks"}, 0);
    EXPECT_EQ(json::parse(run({"heartbeat", "token", "list", "--json"}, 0))["tokens"][0]["revoked"], true);
    EXPECT_NE(run({"heartbeat", "token", "list"}, 0).find("NAME         CREATED"), std::string::npos);
    run({"heartbeat", "token", "revoke", "nobody"}, 1);
}

// ---- a real PostgreSQL ----------------------------------------------------------------

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

// initdb and pg_ctl as `nobody` in a temporary directory, the server on a unix socket in it
// only; stopped and removed when the test ends, whatever happened.
class RealPostgres : public HeartbeatTest {
  protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "needs root: runs PostgreSQL's initdb and pg_ctl as user nobody (CI runs as root)";
        ASSERT_TRUE(std::filesystem::exists(std::string(kPgBin) + "/initdb"))
            << kPgBin << "/initdb missing: apt-get install postgresql (scripts/install-deps.sh)";
        HeartbeatTest::SetUp();
        char tmpl[] = "/tmp/pf_pg_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        pg_ = tmpl;
        ASSERT_EQ(std::system(("chown nobody:nogroup " + pg_).c_str()), 0);
        Port free_port(false);
        port_ = free_port.port;
    }
    void TearDown() override {
        if (pg_.empty()) return;
        if (running_) stop("immediate");
        // A server pg_ctl could not stop: its postmaster, by the pid it wrote.
        std::ifstream pid(pg_ + "/data/postmaster.pid");
        if (long p = 0; pid >> p && p > 0 && ::kill(static_cast<pid_t>(p), 0) == 0)
            ::kill(static_cast<pid_t>(p), SIGKILL);
        std::error_code ec;
        std::filesystem::remove_all(pg_, ec);
        HeartbeatTest::TearDown();
    }
    // A command as nobody in the directory, its output appended to pg.log.
    int as_nobody(const std::string& cmd) {
        return std::system(("cd " + pg_ + " && setpriv --reuid=nobody --regid=nogroup --clear-groups -- " + kPgBin +
                            "/" + cmd + " >>" + pg_ + "/pg.log 2>&1")
                               .c_str());
    }
    void start() {
        ASSERT_EQ(as_nobody("initdb -D " + pg_ + "/data -U pf -A trust -N -E UTF8 --locale=C"), 0) << log();
        ASSERT_EQ(as_nobody("pg_ctl -D " + pg_ + "/data -w -t 30 -l " + pg_ + "/server.log -o \"-k " + pg_ + " -p " +
                            std::to_string(port_) + " -c listen_addresses= -c fsync=off\" start"),
                  0)
            << log();
        running_ = true;
    }
    void stop(const char* mode) {
        as_nobody("pg_ctl -D " + pg_ + "/data -w -m " + mode + " stop");
        running_ = false;
    }
    std::string log() const {
        std::ifstream in(pg_ + "/pg.log");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    std::string pg_;
    int port_ = 0;
    bool running_ = false;
};

TEST_F(RealPostgres, ProbeConnectsThenReportsTheErrorWhenStopped) {
    start();
    HeartbeatConfig hb;
    hb.databases = {"host=" + pg_ + " port=" + std::to_string(port_) +
                    " dbname=postgres user=pf password=pg-secret-9271"};
    LogCapture log;
    start_server(hb);
    server_->heartbeat().probe_now();
    json s = status(admin_);
    const json& d = s["service_status"]["database"];
    EXPECT_EQ(d["is_connected"], true) << d;
    EXPECT_EQ(d["error_message"], nullptr) << d;
    EXPECT_EQ(d["connection_time"], "2023-11-21T17:00:00.000Z");
    EXPECT_EQ(d["databases"][1]["name"], "postgresql 1");
    EXPECT_EQ(d["databases"][1]["is_connected"], true);
    EXPECT_EQ(d["databases"][1]["target"],
              "user=pf password=*** dbname=postgres host=" + pg_ + " port=" + std::to_string(port_));

    stop("fast");
    now_ms_ = now_ms_ + 30000;
    server_->heartbeat().probe_now();
    s = status(admin_);
    const json& e = s["service_status"]["database"];
    EXPECT_EQ(e["is_connected"], false);
    EXPECT_EQ(e["connection_time"], "2023-11-21T17:00:30.000Z");
    const std::string why = e["databases"][1]["error_message"];
    EXPECT_NE(why.find("connection to server on socket \"" + pg_ + "/.s.PGSQL." + std::to_string(port_) + "\" failed"),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("No such file or directory"), std::string::npos) << why;
    EXPECT_EQ(e["error_message"], "postgresql 1: " + why);
    EXPECT_EQ(e["databases"][0]["is_connected"], true);  // the collector's own is fine
    EXPECT_EQ((s.dump() + log.text()).find("pg-secret"), std::string::npos);
    EXPECT_NE(log.text().find("answered in"), std::string::npos) << log.text();
}

// traffic_source: tables (the requirements' 流量统计说明) against a real PostgreSQL: rows
// the test inserted, counted per edge in the range, the session's time zone applied to a
// column without one, a table's columns and time type set by config, a missing table named
// in traffic_errors while the other edges are counted, the agents' measured pairs listed
// beside the counted ones; then the server stopped: every edge says why.
TEST_F(RealPostgres, TrafficSourceTablesCountsTheRowsOfTheRange) {
    start();
    // The requirements' system stores CURRENT_TIMESTAMP in columns without a time zone:
    // local time of the server's zone. kStart..kEnd is 2023-11-22 00:00..01:00 in Shanghai.
    std::ofstream(pg_ + "/tables.sql") << R"(
ALTER DATABASE postgres SET timezone = 'Asia/Shanghai';
SET timezone = 'Asia/Shanghai';
CREATE TABLE node_monitor_metrics (id SERIAL PRIMARY KEY, ip_address VARCHAR(45) NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);
INSERT INTO node_monitor_metrics (ip_address, created_at) VALUES
  ('198.18.0.10', '2023-11-22 00:10:00'), ('198.18.0.10', '2023-11-22 00:20:00'),
  ('198.18.0.10', '2023-11-22 00:00:00'), ('198.18.0.11', '2023-11-22 00:59:59'),
  ('198.18.0.11', '2023-11-22 00:30:00'),
  ('198.18.0.10', '2023-11-22 01:00:00'),  -- the end: not in the range
  ('198.18.0.10', '2023-11-21 23:59:59'),  -- before it
  ('198.18.0.12', '2023-11-21 16:30:00');  -- in the range only if read as UTC
CREATE TABLE database_access_log (id SERIAL PRIMARY KEY, backend VARCHAR(45), at_unix BIGINT NOT NULL);
INSERT INTO database_access_log (backend, at_unix) VALUES ('198.18.0.1', 1700582500), ('198.18.0.1', 1700582501),
  ('198.18.0.1', 1700585999), ('198.18.0.6', 1700583000), ('198.18.0.1', 1700586000);
CREATE TABLE access_logs (id SERIAL PRIMARY KEY, client_ip VARCHAR(45) NOT NULL, server_ip VARCHAR(45) NOT NULL,
  endpoint VARCHAR(255) NOT NULL, method VARCHAR(10) NOT NULL,
  access_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL, response_time_ms INTEGER, status_code INTEGER,
  user_agent TEXT, request_size INTEGER, response_size INTEGER);
INSERT INTO access_logs (client_ip, server_ip, endpoint, method, access_time) VALUES
  ('198.18.0.3', '198.18.0.1', '/api/status', 'GET', '2023-11-22 00:05:00'),
  ('198.18.0.3', '198.18.0.1', '/api/status', 'GET', '2023-11-22 00:06:00'),
  ('198.18.0.5', '198.18.0.1', '/api/login', 'POST', '2023-11-22 00:07:00');
)";
    ASSERT_EQ(as_nobody("psql -X -q -v ON_ERROR_STOP=1 -h " + pg_ + " -p " + std::to_string(port_) +
                        " -U pf -d postgres -f " + pg_ + "/tables.sql"),
              0)
        << log();

    HeartbeatConfig hb;
    hb.traffic_source = "tables";
    hb.traffic_database =
        "host=" + pg_ + " port=" + std::to_string(port_) + " dbname=postgres user=pf password=pg-secret-9271";
    for (auto& t : hb.traffic_tables)
        if (t.edge == "database_to_backend") {
            t.target = "backend";
            t.time = "at_unix";
            t.time_type = "unix";
        }
    LogCapture log;
    start_server(hb);
    three_services();
    WireBatch flows = flows_batch();
    flows.flows = {pair(kStart + 600, "198.18.0.3", "198.18.0.1", 6, 8080, 300, 3, 1),
                   pair(kStart + 600, "198.18.0.1", "198.18.0.2", 6, 6379, 1000, 10, 2)};
    ASSERT_TRUE(server_->store().ingest("nas-1", testing::agent_report("nas-1", kEnd - 60, {flows}), kEnd - 60, {}));

    json s = status(admin_);
    EXPECT_EQ(s["traffic_status"], json::parse(R"({
        "data_collection_to_kafka":[
            {"source_ip":"198.18.0.10","target_ip":"kafka_server","data_count":3,"bytes":0,"packets":0,"flows":0},
            {"source_ip":"198.18.0.11","target_ip":"kafka_server","data_count":2,"bytes":0,"packets":0,"flows":0}],
        "kafka_to_database":[
            {"source_ip":"kafka_server","target_ip":"database","data_count":5,"bytes":0,"packets":0,"flows":0}],
        "database_to_backend":[
            {"source_ip":"database","target_ip":"198.18.0.1","data_count":3,"bytes":0,"packets":0,"flows":0},
            {"source_ip":"database","target_ip":"198.18.0.6","data_count":1,"bytes":0,"packets":0,"flows":0}],
        "redis_to_backend":[
            {"source_ip":"198.18.0.2","target_ip":"198.18.0.1","data_count":0,"bytes":1000,"packets":10,"flows":2}],
        "backend_to_frontend":[
            {"source_ip":"198.18.0.1","target_ip":"198.18.0.3","data_count":2,"bytes":300,"packets":3,"flows":1},
            {"source_ip":"198.18.0.1","target_ip":"198.18.0.5","data_count":1,"bytes":0,"packets":0,"flows":0}]})"))
        << s["traffic_status"];
    ASSERT_EQ(s["traffic_errors"].size(), 1u) << s;
    const std::string missing = s["traffic_errors"]["redis_to_backend"];
    EXPECT_EQ(missing.rfind("redis_access_log: ERROR: relation \"redis_access_log\" does not exist", 0), 0) << missing;
    // A viewer: no lists, no errors.
    json v = status(viewer_);
    EXPECT_EQ(v["traffic_status"], kNoTraffic);
    EXPECT_FALSE(v.contains("traffic_errors"));

    stop("fast");
    s = status(admin_);
    ASSERT_EQ(s["traffic_errors"].size(), 5u) << s;
    for (const auto& [edge, why] : s["traffic_errors"].items())
        EXPECT_NE(why.get<std::string>().find("connection to server on socket"), std::string::npos) << edge << why;
    EXPECT_EQ(s["traffic_status"]["backend_to_frontend"][0]["data_count"], 0);
    EXPECT_EQ(s["traffic_status"]["backend_to_frontend"][0]["bytes"], 300);
    EXPECT_EQ((s.dump() + log.text()).find("pg-secret"), std::string::npos);
    EXPECT_NE(log.text().find("heartbeat: data_count from the tables in user=pf password=*** dbname=postgres"),
              std::string::npos)
        << log.text();
}

// A database that accepts the connection and never answers holds the status query for
// traffic_timeout, not longer; every edge says so.
TEST_F(HeartbeatTest, TrafficSourceTablesGivesUpAtTheTimeout) {
    Port silent(true);
    HeartbeatConfig hb;
    hb.traffic_source = "tables";
    hb.traffic_timeout = 0.3;
    hb.databases = {"hostaddr=127.0.0.1 port=" + std::to_string(silent.port) +
                    " dbname=app user=probe password=hunter2-secret sslmode=disable"};
    start_server(hb);
    const auto t0 = std::chrono::steady_clock::now();
    json s = status(admin_);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(290));
    EXPECT_LT(took, std::chrono::milliseconds(2000));
    ASSERT_EQ(s["traffic_errors"].size(), 5u) << s;
    for (const char* edge : {"data_collection_to_kafka", "kafka_to_database", "database_to_backend", "redis_to_backend",
                             "backend_to_frontend"})
        EXPECT_EQ(s["traffic_errors"][edge], "no connection within 300 ms (heartbeat.traffic_timeout)") << edge;
    EXPECT_EQ(s["traffic_status"], kNoTraffic);
    EXPECT_EQ(s.dump().find("hunter2"), std::string::npos);
}

TEST(HeartbeatConfigSection, TrafficTables) {
    auto c = parse_collector_config(R"(heartbeat:
  databases: ["host=db1 dbname=app user=probe password=s3cret"]
  traffic_source: tables
  traffic_timeout: 2
  traffic_tables:
    database_to_backend: {table: logs.db_access, time: ts, time_type: unix_ms, target: Backend_IP}
    kafka_to_database: {source_label: kafka-1}
)",
                                    "c.yaml")
                 .take();
    const HeartbeatConfig& h = c.heartbeat;
    EXPECT_EQ(h.traffic_source, "tables");
    EXPECT_EQ(h.traffic_database, "host=db1 dbname=app user=probe password=s3cret");  // the first of databases
    EXPECT_EQ(h.traffic_timeout, 2);
    ASSERT_EQ(h.traffic_tables.size(), 5u);
    const TrafficTable& d = h.traffic_tables[2];
    EXPECT_EQ(d.edge, "database_to_backend");
    EXPECT_EQ(d.table, "logs.db_access");
    EXPECT_EQ(d.time, "ts");
    EXPECT_EQ(d.time_type, "unix_ms");
    EXPECT_EQ(d.target, "Backend_IP");
    EXPECT_EQ(d.source_label, "database");  // the default kept
    EXPECT_EQ(h.traffic_tables[1].source_label, "kafka-1");
    EXPECT_EQ(h.traffic_tables[1].table, "node_monitor_metrics");
    const std::string dumped = dump_collector_config(c);
    EXPECT_EQ(dumped.find("s3cret"), std::string::npos) << dumped;
    EXPECT_NE(dumped.find("database_to_backend: {table: logs.db_access, time: ts, time_type: unix_ms, "
                          "source_label: database, target: Backend_IP}"),
              std::string::npos)
        << dumped;
    auto back = parse_collector_config(dumped, "dump");
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << dumped;
    EXPECT_EQ(back->heartbeat.traffic_tables[2].target, "Backend_IP");

    auto err = [](const std::string& text) {
        auto r = parse_collector_config(text, "c.yaml");
        return r ? std::string("(accepted)") : r.error().message();
    };
    EXPECT_EQ(err("heartbeat:\n  traffic_source: tables\n"),
              "c.yaml:2:19: key 'heartbeat.traffic_source': tables needs heartbeat.traffic_database (or a "
              "heartbeat.databases entry): the PostgreSQL database that holds the tables");
    EXPECT_EQ(err("heartbeat:\n  traffic_source: logs\n"),
              "c.yaml:2:19: key 'heartbeat.traffic_source': expected flows or tables, got 'logs'");
    EXPECT_EQ(err("heartbeat:\n  traffic_tables:\n    redis_to_cache: {table: x}\n"),
              "c.yaml:3:5: key 'heartbeat.traffic_tables.redis_to_cache': not an edge of traffic_status: use "
              "data_collection_to_kafka, kafka_to_database, database_to_backend, redis_to_backend or "
              "backend_to_frontend");
    EXPECT_EQ(err("heartbeat:\n  traffic_tables:\n    redis_to_backend: {table: \"x; DROP TABLE y\"}\n"),
              "c.yaml:3:31: key 'heartbeat.traffic_tables.redis_to_backend.table': 'x; DROP TABLE y': use a name "
              "of A-Z a-z 0-9 _ (up to 63, not starting with a digit), optionally schema.table");
    EXPECT_EQ(err("heartbeat:\n  traffic_tables:\n    redis_to_backend: {time: a.b}\n"),
              "c.yaml:3:30: key 'heartbeat.traffic_tables.redis_to_backend.time': 'a.b': use a name of A-Z a-z "
              "0-9 _ (up to 63, not starting with a digit)");
    EXPECT_EQ(err("heartbeat:\n  traffic_tables:\n    redis_to_backend: {time_type: epoch}\n"),
              "c.yaml:3:35: key 'heartbeat.traffic_tables.redis_to_backend.time_type': expected timestamp, unix "
              "or unix_ms, got 'epoch'");
    EXPECT_EQ(err("heartbeat:\n  traffic_tables:\n    redis_to_backend: {colour: red}\n"),
              "c.yaml:3:24: key 'heartbeat.traffic_tables.redis_to_backend.colour': unknown key");
}

// ---- heartbeats from agents (the `heartbeats:` section, issue 16) -----------------------------

const std::string kAgentToken = "pfc_" + std::string(64, 'b');

std::string with_collector(const std::string& rest) {
    return "collector:\n  url: http://198.18.0.2:8999\n  token: " + kAgentToken + "\n" + rest;
}

TEST(HeartbeatChecksSection, ParsedWithDefaultsAndDumped) {
    auto c = parse_config(with_collector("heartbeats:\n"
                                         "  - service_name: redis-main\n    check: tcp://127.0.0.1:6379\n"
                                         "  - service_name: kafka-1\n    check: systemd:kafka\n    interval: 10\n"
                                         "    ip: 198.18.0.9\n"
                                         "  - service_name: 后端api\n    check: process:backend-server\n"
                                         "    timeout: 2.5\n"
                                         "  - service_name: pg\n    check: tcp://[::1]:5432\n"),
                          "config.yaml");
    ASSERT_TRUE(c) << c.error().message();
    const auto& h = c->collector.heartbeats;
    ASSERT_EQ(h.size(), 4u);
    EXPECT_EQ(h[0].kind, HeartbeatCheck::Kind::Tcp);
    EXPECT_EQ(h[0].target, "127.0.0.1");
    EXPECT_EQ(h[0].port, 6379);
    EXPECT_EQ(h[0].interval, 30);
    EXPECT_EQ(h[0].timeout, 5);
    EXPECT_EQ(h[1].kind, HeartbeatCheck::Kind::Systemd);
    EXPECT_EQ(h[1].target, "kafka.service");
    EXPECT_EQ(h[1].interval, 10);
    EXPECT_EQ(h[1].ip, "198.18.0.9");
    EXPECT_EQ(h[2].kind, HeartbeatCheck::Kind::Process);
    EXPECT_EQ(h[2].target, "backend-server");
    EXPECT_EQ(h[2].timeout, 2.5);
    EXPECT_EQ(h[3].target, "::1");
    EXPECT_EQ(h[3].port, 5432);
    const std::string dump = dump_config(*c);
    EXPECT_NE(dump.find("heartbeats:\n  - service_name: redis-main\n    check: tcp://127.0.0.1:6379\n    interval: 30\n"
                        "    timeout: 5\n"),
              std::string::npos)
        << dump;
    // The dump's section reads back as the same checks (its token is masked: the file's is used).
    auto again = parse_config(with_collector(dump.substr(dump.find("heartbeats:"))), "dump");
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->collector.heartbeats, h);
}

TEST(HeartbeatChecksSection, ErrorsNameTheFileLineAndKey) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"heartbeats:\n  - service_name: r\n    check: tcp://127.0.0.1:6379\n",
         "config.yaml:2:3: key 'heartbeats': heartbeats are sent through the collector link: add a collector: section"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: udp://1.2.3.4:5\n"),
         "config.yaml:6:12: key 'heartbeats[0].check': expected tcp://HOST:PORT, systemd:UNIT or process:NAME, got "
         "'udp://1.2.3.4:5'"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: tcp://127.0.0.1:70000\n"),
         "config.yaml:6:12: key 'heartbeats[0].check': the port of tcp://127.0.0.1:70000 must be 1 to 65535"},
        {with_collector("heartbeats:\n  - check: process:x\n"),
         "config.yaml:5:5: key 'heartbeats[0].service_name': missing (the name the service reports as)"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: systemd:a;b\n"),
         "config.yaml:6:12: key 'heartbeats[0].check': expected systemd:UNIT with a unit name of A-Z a-z 0-9 : - _ . "
         "\\ @"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: process:x\n  - service_name: r\n"
                        "    check: process:y\n"),
         "config.yaml:7:19: key 'heartbeats[1].service_name': 'r' is checked twice"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: process:x\n    interval: 1\n"),
         "config.yaml:7:15: key 'heartbeats[0].interval': must be between 5 and 3600, got 1"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: process:x\n    ip: box\n"),
         "config.yaml:7:9: key 'heartbeats[0].ip': expected an IPv4 or IPv6 address"},
        {with_collector("heartbeats:\n  - service_name: r\n    check: process:x\n    every: 5\n"),
         "config.yaml:7:5: key 'heartbeats[0].every': unknown key"},
    };
    for (const auto& [text, want] : cases) {
        auto c = parse_config(text, "config.yaml");
        ASSERT_FALSE(c) << text;
        EXPECT_EQ(c.error().message(), want) << text;
    }
}

// A listening socket on 127.0.0.1 and an ephemeral port nobody listens on.
TEST(HeartbeatChecks, TcpProcessAndSystemd) {
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(l, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    const int open_port = ntohs(a.sin_port);
    int c2 = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in b{};
    b.sin_family = AF_INET;
    b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(c2, reinterpret_cast<sockaddr*>(&b), sizeof b), 0);  // reserved, never listening
    len = sizeof b;
    ::getsockname(c2, reinterpret_cast<sockaddr*>(&b), &len);
    const int closed_port = ntohs(b.sin_port);

    HeartbeatCheck c;
    ASSERT_EQ(parse_check_target("tcp://127.0.0.1:" + std::to_string(open_port), c), "");
    CheckResult r = run_heartbeat_check(c, Paths{});
    EXPECT_TRUE(r.ok) << r.why;
    ASSERT_EQ(parse_check_target("tcp://127.0.0.1:" + std::to_string(closed_port), c), "");
    r = run_heartbeat_check(c, Paths{});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.why, "connect to 127.0.0.1:" + std::to_string(closed_port) + ": Connection refused");
    ::close(l);
    ::close(c2);

    // Processes from a /proc tree: comm holds 15 bytes of a name, argv[0] all of it.
    char tmpl[] = "/tmp/pf_hbproc_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string root = tmpl;
    auto proc = [&](const std::string& pid, const std::string& comm, const std::string& cmdline) {
        std::filesystem::create_directories(root + "/" + pid);
        std::ofstream(root + "/" + pid + "/comm") << comm << "\n";
        std::ofstream(root + "/" + pid + "/cmdline", std::ios::binary) << cmdline;
    };
    proc("1", "init", std::string("/sbin/init\0", 11));
    proc("4242", "redis-server", std::string("/usr/bin/redis-server\0*:6379\0", 29));
    proc("4343", "kafka-server-st", std::string("/opt/kafka/bin/kafka-server-start\0cfg\0", 38));
    std::filesystem::create_directories(root + "/self");
    Paths paths;
    paths.procfs = root;
    for (const auto& [name, ok] : std::vector<std::pair<std::string, bool>>{
             {"redis-server", true}, {"kafka-server-start", true}, {"kafka-server-stop", false}, {"redis", false}}) {
        ASSERT_EQ(parse_check_target("process:" + name, c), "");
        r = run_heartbeat_check(c, paths);
        EXPECT_EQ(r.ok, ok) << name;
        if (!ok) {
            EXPECT_EQ(r.why, "no process named " + name);
        }
    }
    std::filesystem::remove_all(root);

    // Without a system bus (this machine's PID 1 is not systemd): the reason, not a pass.
    if (!std::filesystem::exists("/run/systemd/system")) {
        ASSERT_EQ(parse_check_target("systemd:redis", c), "");
        r = run_heartbeat_check(c, Paths{});
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.why.rfind("cannot reach systemd on the system bus: ", 0), 0u) << r.why;
    }
}

TEST(HeartbeatChecks, TheAddressAHeartbeatCarries) {
    HeartbeatCheck c;
    ASSERT_EQ(parse_check_target("tcp://198.18.0.7:6379", c), "");
    EXPECT_EQ(heartbeat_ip(c, "198.18.0.1"), "198.18.0.7");
    ASSERT_EQ(parse_check_target("tcp://127.0.0.1:6379", c), "");
    EXPECT_EQ(heartbeat_ip(c, "198.18.0.1"), "198.18.0.1");
    c.ip = "198.18.0.3";
    EXPECT_EQ(heartbeat_ip(c, "198.18.0.1"), "198.18.0.3");
    HeartbeatCheck p;
    ASSERT_EQ(parse_check_target("process:redis-server", p), "");
    EXPECT_EQ(heartbeat_ip(p, "198.18.0.1"), "198.18.0.1");
    EXPECT_EQ(source_address_for("http://127.0.0.1:8999"), "127.0.0.1");
    EXPECT_EQ(source_address_for("https://user@127.0.0.1:8999/x"), "127.0.0.1");
    EXPECT_EQ(source_address_for("http://[::1]:8999"), "::1");
}

// An agent's uplink to this collector: heartbeats recorded by its checks go through the
// report's heartbeat stream, once; one that arrives late is listed but not online.
TEST_F(HeartbeatTest, AgentHeartbeatsGoThroughTheLinkAndLateOnesAreNeverLive) {
    const std::string agent_db = dir_ + "/agent.db";
    ASSERT_TRUE(Store::open(agent_db));
    UplinkOptions o;
    o.database = agent_db;
    o.cfg.configured = true;
    o.cfg.url = "http://127.0.0.1:" + std::to_string(server_->port());
    o.cfg.token = agent_token_;
    o.cfg.name = "nas-1";
    o.clock = [this] { return now_ms_.load() / 1000; };
    o.host = "nas-1.lan";
    o.boot_id = "6f1c0ad2-0000-4000-8000-000000000001";
    auto u = Uplink::open(o).take();

    const int64_t t = kEnd - 100;
    now_ms_ = t * 1000;
    // Live: checked now. Late: checked 40 s before the report reaches the collector.
    ASSERT_TRUE(u->record_heartbeat("redis-main", "198.18.0.2", t * 1000 - 1500));
    ASSERT_TRUE(u->record_heartbeat("后端api", "198.18.0.1", t * 1000 - 40000));
    auto out = u->report_once().take();
    ASSERT_TRUE(out.acked) << out.error;
    EXPECT_EQ(out.sent, 2u);
    EXPECT_EQ(out.backlog, 0);
    auto rows = server_->store().with_db([](StoreDb& db) -> Result<std::vector<std::string>> {
        auto q =
            db.prepare("SELECT time_ms, ip_address, service_name, reporter, late FROM heartbeat_reports ORDER BY id");
        if (!q) return q.error();
        std::vector<std::string> v;
        while (q->step() == SQLITE_ROW)
            v.push_back(std::to_string(q->i64(0)) + "|" + q->text(1) + "|" + q->text(2) + "|" + q->text(3) + "|" +
                        std::to_string(q->i64(4)));
        return v;
    });
    ASSERT_TRUE(rows) << rows.error().message();
    EXPECT_EQ(*rows,
              (std::vector<std::string>{std::to_string(t * 1000 - 1500) + "|198.18.0.2|redis-main|agent nas-1|0",
                                        std::to_string(t * 1000 - 40000) + "|198.18.0.1|后端api|agent nas-1|1"}));
    json s = status(admin_, kStart, kEnd);
    EXPECT_EQ(s["service_status"]["redis"],
              json::parse(R"([{"service_name":"redis-main","ip_address":"198.18.0.2","is_online":true,
                               "last_report_time":")" +
                          iso8601_ms(t * 1000 - 1500) + R"("}])"));
    EXPECT_EQ(s["service_status"]["backend"],
              json::parse(R"([{"service_name":"后端api","ip_address":"198.18.0.1","is_online":false,
                               "last_report_time":")" +
                          iso8601_ms(t * 1000 - 40000) + R"("}])"));

    // Acknowledged heartbeats are gone from the agent; the next report carries none.
    Store::open(agent_db).take();
    auto left = u->report_once().take();
    ASSERT_TRUE(left.acked);
    EXPECT_EQ(left.sent, 0u);
    EXPECT_EQ(reports(), 2);
    EXPECT_EQ(left.body.find("\"heartbeat\",\"seq\""), std::string::npos) << left.body;
}

TEST_F(HeartbeatTest, HeartbeatSendByHand) {
    now_ms_ = 1700585970250;
    const std::string base = "http://127.0.0.1:" + std::to_string(server_->port());
    std::ostringstream out, err;
    HeartbeatSendOptions o{base, "redis-main", "198.18.0.2", hb_token_, ""};
    EXPECT_EQ(send_heartbeat(o, out, err), 0) << err.str();
    EXPECT_EQ(out.str(), "heartbeat recorded: redis-main at 198.18.0.2 (id 1, 2023-11-21T16:59:30.250Z)\n");
    // The full URL, and the address towards the collector when none is given.
    out.str("");
    o.url = base + "/heartbeat/report";
    o.ip = "";
    EXPECT_EQ(send_heartbeat(o, out, err), 0) << err.str();
    EXPECT_EQ(out.str(), "heartbeat recorded: redis-main at 127.0.0.1 (id 2, 2023-11-21T16:59:30.250Z)\n");
    EXPECT_EQ(reports(), 2);
    // Refused: the collector's reason, exit 1, nothing stored.
    out.str("");
    o.token = "pfh_" + std::string(64, '0');
    EXPECT_EQ(send_heartbeat(o, out, err), 1);
    EXPECT_EQ(out.str(), "");
    EXPECT_EQ(err.str(), "peakflow-bpf: heartbeat send: " + base +
                             "/heartbeat/report answered HTTP 401: unknown or revoked heartbeat token\n");
    EXPECT_EQ(reports(), 2);
}

WireFlowPair pair(int64_t ts, const std::string& client, const std::string& server, int64_t proto, int64_t port,
                  uint64_t bytes, uint64_t packets, uint64_t flows) {
    WireFlowPair p;
    p.ts = ts;
    p.iface = "eth0";
    p.src = client;
    p.dst = server;
    p.proto = proto;
    p.port = port;
    p.bytes = bytes;
    p.packets = packets;
    p.flows = flows;
    return p;
}

// traffic_status from the agents' flow pairs joined with the services' addresses: both
// directions and protocols of a pair summed, a pair two agents measured counted once, the
// range's buckets only, a database's address from its connection string; a viewer gets none.
TEST_F(HeartbeatTest, TrafficBetweenServicesIsTheAgentsMeasuredFlowPairs) {
    HeartbeatConfig hb;
    hb.databases = {"hostaddr=198.18.0.4 port=5432 dbname=app user=app password=s3cret connect_timeout=1"};
    start_server(hb);
    three_services();
    WireBatch flows = flows_batch();
    flows.flows = {pair(kStart + 300, "198.18.0.1", "198.18.0.2", 6, 6379, 1000, 10, 2),
                   pair(kStart + 300, "198.18.0.1", "198.18.0.2", 17, 6379, 500, 5, 1),
                   pair(kStart + 600, "198.18.0.3", "198.18.0.1", 6, 8080, 300, 3, 1),
                   pair(kStart + 600, "198.18.0.1", "198.18.0.4", 6, 5432, 4200, 42, 4),
                   pair(kEnd, "198.18.0.1", "198.18.0.2", 6, 6379, 7, 1, 1),            // after the range
                   pair(kStart + 900, "198.18.0.9", "198.18.0.2", 6, 6379, 77, 1, 1)};  // no service
    WireFlowPair other;
    other.ts = kStart + 300;
    other.iface = "eth0";
    other.other = true;
    other.bytes = 99;
    flows.flows.push_back(other);
    auto in = server_->store().ingest("nas-1", testing::agent_report("nas-1", kEnd - 60, {flows}), kEnd - 60, {});
    ASSERT_TRUE(in) << in.error().message();
    EXPECT_EQ(in->ack.flows, 1);
    // The redis host's agent measured the same TCP pair in the same bucket.
    ASSERT_TRUE(server_->store().create_token("nas-2", kStart));
    WireBatch same = flows;
    same.flows = {pair(kStart + 300, "198.18.0.1", "198.18.0.2", 6, 6379, 1000, 10, 2)};
    ASSERT_TRUE(server_->store().ingest("nas-2", testing::agent_report("nas-2", kEnd - 60, {same}), kEnd - 60, {}));
    // The same batch again (an answer lost): stored once.
    auto again = server_->store().ingest("nas-1", testing::agent_report("nas-1", kEnd - 60, {flows}), kEnd - 60, {});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->duplicates, 1u);

    json s = status(admin_);
    EXPECT_EQ(s["traffic_status"], json::parse(R"({
        "data_collection_to_kafka":[],"kafka_to_database":[],
        "database_to_backend":[{"source_ip":"198.18.0.4","target_ip":"198.18.0.1","data_count":4,"bytes":4200,
                                "packets":42,"flows":4}],
        "redis_to_backend":[{"source_ip":"198.18.0.2","target_ip":"198.18.0.1","data_count":3,"bytes":1500,
                             "packets":15,"flows":3}],
        "backend_to_frontend":[{"source_ip":"198.18.0.1","target_ip":"198.18.0.3","data_count":1,"bytes":300,
                                "packets":3,"flows":1}]})"));
    EXPECT_EQ(status(viewer_)["traffic_status"], kNoTraffic);
}

}  // namespace
}  // namespace pf
