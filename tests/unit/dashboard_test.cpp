// The collector's dashboard: its files embedded byte for byte and served with their
// headers (content type, ETag and 304, gzip, the security headers, 404), and the JSON the
// pages read (agents, traffic, overview, the history as CSV), exactly, for a store filled
// through the real report endpoint on 127.0.0.1; a viewer reads the same as an admin;
// nothing without a session.

#include "peakflow/fleet/dashboard.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "collector_test_client.hpp"
#include "fleet_test_support.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/central_store.hpp"
#include "peakflow/fleet/collector_server.hpp"

namespace pf {
namespace {

using nlohmann::json;

constexpr int64_t kT0 = 1796000000;   // 2026-11-30 00:53:20 UTC
constexpr int64_t kTs = 1795999800;   // 2026-11-30 00:50:00 UTC
constexpr int64_t kDay = 1795996800;  // 2026-11-30 00:00:00 UTC

const std::string kWeb = std::string(PF_SOURCE_DIR) + "/user/fleet/web";
const std::string kMissing = "missing credentials: log in, or send Authorization: Bearer with a user's API token";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(DashboardFiles, EveryWebFileEmbeddedByteForByte) {
    std::map<std::string, std::string> on_disk;
    for (const auto& e : std::filesystem::directory_iterator(kWeb))
        on_disk[e.path().filename().string()] = read_file(e.path().string());
    ASSERT_GE(on_disk.size(), 6u);
    std::map<std::string, std::string> embedded;
    for (const auto& f : embedded_dashboard_files())
        embedded[f.name] = std::string(reinterpret_cast<const char*>(f.data), f.size);
    EXPECT_EQ(embedded, on_disk);
}

TEST(DashboardFiles, PathsTypesEtagsAnd404) {
    const unsigned char page[] = "<p>x</p>";
    const unsigned char script[] = "export const a = 1;\n";
    const unsigned char empty[] = "";
    DashboardFiles files({{"index.html", page, 8}, {"app.js", script, 20}, {"empty.css", empty, 0}});
    auto root = files.get("/", "");
    EXPECT_EQ(root.status, 200);
    EXPECT_EQ(root.body, "<p>x</p>");
    EXPECT_EQ(root.content_type, "text/html; charset=utf-8");
    // The ETag: W/ and the first 32 hex digits of the SHA-256 of the bytes.
    EXPECT_EQ(files.etag("/"), "W/\"" + sha256_hex("<p>x</p>").substr(0, 32) + "\"");
    EXPECT_EQ(files.etag("/ui/index.html"), files.etag("/"));
    auto js = files.get("/ui/app.js", "");
    EXPECT_EQ(js.body, "export const a = 1;\n");
    EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(files.get("/ui/empty.css", "").content_type, "text/css; charset=utf-8");
    EXPECT_EQ(files.get("/ui/empty.css", "").status, 200);

    const std::string tag = files.etag("/ui/app.js");
    for (const std::string& inm : {tag, tag.substr(2), "\"other\", " + tag, std::string("*")}) {
        auto not_modified = files.get("/ui/app.js", inm);
        EXPECT_EQ(not_modified.status, 304) << inm;
        EXPECT_EQ(not_modified.body, "");
    }
    EXPECT_EQ(files.get("/ui/app.js", "W/\"other\"").status, 200);

    for (const char* p : {"/ui/", "/ui/nope.js", "/index.html", "/ui/../CMakeLists.txt", "/ui/app.js/"}) {
        auto nf = files.get(p, "");
        EXPECT_EQ(nf.status, 404) << p;
        EXPECT_EQ(nf.body, std::string(R"({"status":"error","message":"no such page or file: )") + p + "\"}");
    }
}

TEST(DashboardCsv, QuotesAndFormulaCells) {
    const std::string page = R"({"items":[{"node_name":"n,1","host_name":"h\"q","sink":"s","kind":"k","period":"",
        "push_data_bytes":null,"status":"failed","attempts":2,"error":"=SUM(A1)\nx","update_time":"2026-11-30 00:00:00",
        "update_time_epoch":1,"agent":"@a","id":7,"request_bytes":0}]})";
    EXPECT_EQ(history_csv(page),
              "node_name,host_name,sink,kind,period,push_data_bytes,status,attempts,error,update_time,"
              "update_time_epoch,agent,id,request_bytes\r\n"
              "\"n,1\",\"h\"\"q\",s,k,,,failed,2,\"'=SUM(A1)\nx\",2026-11-30 00:00:00,1,'@a,7,0\r\n");
}

class DashboardServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_dashboard_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        clock_ = kT0 - 2000;  // the offline watch's grace after the start is over by kT0
        CollectorOptions o = testing::local_collector(dir_, clock_);
        o.fleet_name = "Beijing <fleet>";
        o.password_hash = testing::cheap_argon2();
        server_ = CollectorServer::start(o).take();
        auto users = FleetUsers::open(server_->store(), testing::cheap_argon2()).take();
        ASSERT_TRUE(users->add("alice", "admin", "alice-password", kT0).ok());
        ASSERT_TRUE(users->add("victor", "viewer", "victor-password", kT0).ok());
    }
    void TearDown() override {
        server_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    HttpResponse get(const std::string& path, std::vector<std::string> headers = {}) {
        return testing::collector_request(server_->port(), HttpMethod::Get, path, "", std::move(headers));
    }
    HttpResponse post(const std::string& path, const std::string& body, std::vector<std::string> headers) {
        return testing::collector_request(server_->port(), HttpMethod::Post, path, body, std::move(headers));
    }
    std::string session(const std::string& user, const std::string& password) {
        auto r = post("/api/v1/login", json{{"user", user}, {"password", password}}.dump(), {});
        EXPECT_EQ(r.status, 200) << r.body;
        return testing::session_cookie(r);
    }
    void send(const WireReport& r, const std::string& token) {
        auto a = post("/api/v1/agents/report", gzip_compress(render_report(r)),
                      {"Authorization: Bearer " + token, "Content-Encoding: gzip"});
        ASSERT_EQ(a.status, 200) << a.body;
    }

    // Three agents: nas-1 reports now (two buckets today, one two days ago, a peer MAC row,
    // a failing push row), nas-2 reported 1000 s ago (offline; its switch set off
    // centrally), nas-3 never.
    void fill() {
        auto& st = server_->store();
        agent_token_ = st.create_token("nas-1", kT0 - 2000).take();
        token2_ = st.create_token("nas-2", kT0 - 2000).take();
        st.create_token("nas-3", kT0 - 2000).take();
        clock_ = kT0 - 1000;
        send(testing::agent_report("nas-2", kT0 - 1000,
                                   {testing::bucket_batch(1, {{"eth0", "", kTs - 900, false, 4000, 40, 0, 0}})}),
             token2_);
        clock_ = kT0;
        WireReport r = testing::agent_report(
            "nas-1", kT0,
            {testing::bucket_batch(1, {{"eth0", "", kTs - 300, true, 2000, 20, 100, 1},
                                       {"eth0", "", kTs, false, 1000, 10, 500, 5},
                                       {"eth0", "02:00:00:00:00:99", kTs, false, 999, 9, 0, 0},
                                       {"eth0", "", kTs - 2 * 86400, false, 7000, 70, 3000, 30}}),
             testing::push_batch(1, {{41, kT0 - 60, "beijing-1", "nas-1.lan", "ding", "daily", "2026-11-29", 812,
                                      "failed", 3, "=cmd(\"x\"), busy", 1054720}})});
        r.backlog_buckets = 7;
        send(r, agent_token_);
        ASSERT_TRUE(central_set(st, "nas-2", "push.enabled", "false", {"alice", "cli", kT0}).ok());
        ASSERT_TRUE(server_->check_offline().ok());  // nas-2: 1000 s > 3 x 60 s
    }

    std::string dir_, agent_token_, token2_;
    std::atomic<int64_t> clock_{kT0};
    std::unique_ptr<CollectorServer> server_;
};

TEST_F(DashboardServerTest, FilesWithHeadersGzipAnd304) {
    const std::string index = read_file(kWeb + "/index.html");
    auto r = get("/");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, index);
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.header("Content-Security-Policy"),
              "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
              "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
    EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r.header("Cache-Control"), "no-cache");
    EXPECT_EQ(r.header("Vary"), "Accept-Encoding");
    EXPECT_EQ(r.header("ETag"), "W/\"" + sha256_hex(index).substr(0, 32) + "\"");
    EXPECT_EQ(r.header("Content-Encoding"), "");

    // gzip when the client takes it: the same bytes once inflated.
    const std::string app = read_file(kWeb + "/app.js");
    auto z = get("/ui/app.js", {"Accept-Encoding: gzip"});
    ASSERT_EQ(z.status, 200);
    EXPECT_EQ(z.header("Content-Encoding"), "gzip");
    EXPECT_EQ(z.header("Content-Type"), "text/javascript; charset=utf-8");
    EXPECT_LT(z.body.size(), app.size());
    EXPECT_EQ(gzip_decompress(z.body, 1 << 20).take(), app);

    // Revalidation: 304 with the tag and no body, in either encoding.
    const std::string tag = z.header("ETag");
    for (auto extra : {std::vector<std::string>{}, std::vector<std::string>{"Accept-Encoding: gzip"}}) {
        extra.push_back("If-None-Match: " + tag);
        auto nm = get("/ui/app.js", extra);
        EXPECT_EQ(nm.status, 304);
        EXPECT_EQ(nm.body, "");
        EXPECT_EQ(nm.header("ETag"), tag);
    }
    auto css = get("/ui/style.css", {"If-None-Match: W/\"0000\""});
    EXPECT_EQ(css.status, 200);
    EXPECT_EQ(css.body, read_file(kWeb + "/style.css"));
    EXPECT_EQ(css.header("Content-Type"), "text/css; charset=utf-8");
    EXPECT_EQ(get("/ui/icon.svg").header("Content-Type"), "image/svg+xml");

    auto nf = get("/ui/secret.db");
    EXPECT_EQ(nf.status, 404);
    EXPECT_EQ(nf.body, R"({"status":"error","message":"no such page or file: /ui/secret.db"})");
    EXPECT_EQ(get("/ui/%2e%2e/CMakeLists.txt").status, 404);
}

TEST_F(DashboardServerTest, AgentsExactly) {
    fill();
    const std::string admin = session("alice", "alice-password");
    auto r = get("/api/v1/agents", {admin});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body), json::parse(R"j({"time":"2026-11-30 00:53:20","time_epoch":1796000000,"agents":[
      {"name":"nas-1","node":"beijing-1","host":"nas-1.lan","iface":"eth0","mac":"02:00:00:00:00:01","version":"0.1.0",
       "last_seen":"2026-11-30 00:53:20","last_seen_epoch":1796000000,"state":"online","backlog":7,
       "interval":60,"revoked":false,"push_enabled":null},
      {"name":"nas-2","node":"beijing-1","host":"nas-2.lan","iface":"eth0","mac":"02:00:00:00:00:01","version":"0.1.0",
       "last_seen":"2026-11-30 00:36:40","last_seen_epoch":1795999000,"state":"offline","backlog":0,
       "interval":60,"revoked":false,"push_enabled":false},
      {"name":"nas-3","node":"","host":"","iface":"","mac":"","version":"","last_seen":null,"last_seen_epoch":null,
       "state":"never","backlog":0,"interval":60,"revoked":false,"push_enabled":null}]})j"));
    // A viewer reads the same (nothing in it is an address); no session, nothing.
    EXPECT_EQ(get("/api/v1/agents", {session("victor", "victor-password")}).body, r.body);
    auto none = get("/api/v1/agents");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(json::parse(none.body)["message"], kMissing);
    auto agent = get("/api/v1/agents", {"Authorization: Bearer " + agent_token_});
    EXPECT_EQ(agent.status, 401);
    EXPECT_EQ(json::parse(agent.body)["message"],
              "an agent's token is not accepted here: use a user's API token (pfu_...) or log in");
}

TEST_F(DashboardServerTest, TrafficOfADayAndAMonthExactly) {
    fill();
    const std::string viewer = session("victor", "victor-password");
    auto day = get("/api/v1/traffic?agent=nas-1", {viewer});
    ASSERT_EQ(day.status, 200) << day.body;
    // Interface totals (the peer MAC row is not added to them); buckets with traffic only;
    // the peer MAC row in `macs`.
    EXPECT_EQ(json::parse(day.body), json::parse(R"j({"agent":"nas-1","node":null,"view":"day","day":"2026-11-30",
      "from":"2026-11-30 00:00:00","from_epoch":1795996800,"to":"2026-12-01 00:00:00","to_epoch":1796083200,
      "totals":{"peak_up_bytes":100,"peak_down_bytes":2000,"offpeak_up_bytes":500,"offpeak_down_bytes":1000,
                "up_bytes":600,"down_bytes":3000,"total_bytes":3600},
      "points":[{"start":"2026-11-30 00:45:00","start_epoch":1795999500,"peak":true,"up_bytes":100,"down_bytes":2000},
                {"start":"2026-11-30 00:50:00","start_epoch":1795999800,"peak":false,"up_bytes":500,"down_bytes":1000}],
      "macs":[{"iface":"eth0","mac":"02:00:00:00:00:99","up_bytes":0,"down_bytes":999,"total_bytes":999}],
      "macs_total":1})j"));
    EXPECT_EQ(get("/api/v1/traffic?agent=nas-1&day=2026-11-30", {viewer}).body, day.body);
    auto other = json::parse(get("/api/v1/traffic?agent=nas-1&day=2026-11-28", {viewer}).body);
    EXPECT_EQ(other["points"], json::parse(R"j([{"start":"2026-11-28 00:50:00","start_epoch":1795827000,"peak":false,
      "up_bytes":3000,"down_bytes":7000}])j"));
    // The node: both agents' buckets, summed per bucket.
    auto node = json::parse(get("/api/v1/traffic?node=beijing-1", {viewer}).body);
    EXPECT_EQ(node["agent"], nullptr);
    EXPECT_EQ(node["node"], "beijing-1");
    EXPECT_EQ(node["points"].size(), 3u);
    EXPECT_EQ(node["points"][0], json::parse(R"j({"start":"2026-11-30 00:35:00","start_epoch":1795998900,"peak":false,
      "up_bytes":0,"down_bytes":4000})j"));
    EXPECT_EQ(node["totals"]["total_bytes"], 7600);

    auto month = get("/api/v1/traffic?agent=nas-1&month=2026-11", {viewer});
    ASSERT_EQ(month.status, 200) << month.body;
    json want = json::parse(R"j({"agent":"nas-1","node":null,"view":"month","month":"2026-11",
      "from":"2026-11-01 00:00:00","from_epoch":1793491200,"to":"2026-12-01 00:00:00","to_epoch":1796083200,
      "totals":{"peak_up_bytes":100,"peak_down_bytes":2000,"offpeak_up_bytes":3500,"offpeak_down_bytes":8000,
                "up_bytes":3600,"down_bytes":10000,"total_bytes":13600},"days":[]})j");
    for (int d = 1; d <= 30; d++) {
        char day_name[16];
        std::snprintf(day_name, sizeof day_name, "2026-11-%02d", d);
        json f = {{"peak_up_bytes", 0}, {"peak_down_bytes", 0}, {"offpeak_up_bytes", 0}, {"offpeak_down_bytes", 0},
                  {"up_bytes", 0},      {"down_bytes", 0},      {"total_bytes", 0}};
        if (d == 28)
            f.update({{"offpeak_up_bytes", 3000},
                      {"offpeak_down_bytes", 7000},
                      {"up_bytes", 3000},
                      {"down_bytes", 7000},
                      {"total_bytes", 10000}});
        if (d == 30)
            f.update({{"peak_up_bytes", 100},
                      {"peak_down_bytes", 2000},
                      {"offpeak_up_bytes", 500},
                      {"offpeak_down_bytes", 1000},
                      {"up_bytes", 600},
                      {"down_bytes", 3000},
                      {"total_bytes", 3600}});
        json row = {{"day", day_name}, {"start_epoch", 1793491200 + (d - 1) * 86400}};
        row.update(f);
        want["days"].push_back(row);
    }
    // nas-1's 95th percentile of November, as `report --month` computes it: 8363 intervals
    // from the month's start to now, three with data: the 95th of them is 0.
    want["p95"] = json::parse(R"j({"intervals":8363,"until":"2026-11-30 00:53:20","until_epoch":1796000000,
      "interfaces":[{"iface":"eth0","up_bps":0.0,"down_bps":0.0,"intervals_with_data":3}]})j");
    EXPECT_EQ(json::parse(month.body), want);
    // No traffic at all in the selection: no percentile.
    EXPECT_EQ(json::parse(get("/api/v1/traffic?agent=nas-3&month=2026-11", {viewer}).body)["p95"], nullptr);
}

// The 95th percentile of a full month: 460 of October's 8928 intervals hold 1000 x i bytes
// down and 10 x i up (i = 1..460); the nearest rank ceil(0.95 x 8928) = 8482 is the 14th of
// them (8468 empty intervals first): 14000 bytes down in 300 s = 373.33 bit/s.
TEST_F(DashboardServerTest, TrafficMonthP95) {
    fill();
    std::vector<WireBucket> rows;
    const int64_t october = 1790812800;  // 2026-10-01 00:00:00 UTC
    for (uint64_t i = 1; i <= 460; i++)
        rows.push_back({"eth0", "", october + static_cast<int64_t>(i - 1) * 600, false, 1000 * i, i, 10 * i, i});
    send(testing::agent_report("nas-1", kT0, {testing::bucket_batch(2, rows)}), agent_token_);
    auto r = get("/api/v1/traffic?agent=nas-1&month=2026-10", {session("victor", "victor-password")});
    ASSERT_EQ(r.status, 200) << r.body;
    const json p95 = json::parse(r.body)["p95"];
    EXPECT_EQ(p95["intervals"], 8928);
    EXPECT_EQ(p95["until"], "2026-11-01 00:00:00");
    ASSERT_EQ(p95["interfaces"].size(), 1u);
    EXPECT_EQ(p95["interfaces"][0]["iface"], "eth0");
    EXPECT_DOUBLE_EQ(p95["interfaces"][0]["down_bps"].get<double>(), 14000 * 8 / 300.0);
    EXPECT_DOUBLE_EQ(p95["interfaces"][0]["up_bps"].get<double>(), 140 * 8 / 300.0);
    EXPECT_EQ(p95["interfaces"][0]["intervals_with_data"], 460);
}

// An agent's host health and runaway-process episodes as its host stream stored them; a
// host's text (the process name) is data, sent as it came.
TEST_F(DashboardServerTest, HostHealthAndEpisodesExactly) {
    fill();
    auto sample = [](int64_t t, double cpu, double mem, double disk, std::optional<double> temp) {
        WireHost h;
        h.type = "sys";
        h.time = t;
        h.load1 = cpu / 100;
        h.cpu = cpu;
        h.mem_total = 1024 * 1024 * 1024;
        h.mem_used = mem;
        h.disk_total = 500LL * 1024 * 1024 * 1024;
        h.disk_used = disk;
        h.temperature = temp;
        return h;
    };
    auto episode = [](int64_t id, const std::string& name, int64_t since, int64_t ended) {
        WireHost e;
        e.type = "episode";
        e.id = id;
        e.pid = 4000 + id;
        e.name = name;
        e.user = "bob";
        e.since = since;
        e.detected = since + 5;
        e.ended = ended;
        e.end_reason = "exited";
        e.peak_cpu = 99.5;
        e.peak_mem = 1.25;
        return e;
    };
    send(testing::agent_report(
             "nas-1", kT0,
             {testing::host_batch(1, {sample(kT0 - 90000, 90, 90, 90, 80.0),  // over 24 h ago: not counted
                                      sample(kT0 - 120, 10, 40, 20, std::nullopt), sample(kT0 - 60, 30, 50, 20, 55.5),
                                      episode(7, "<script>alert(1)</script>", kT0 - 4000, kT0 - 3000),
                                      episode(8, "pf-burn", kT0 - 1000, kT0 - 100)})}),
         agent_token_);
    const std::string viewer = session("victor", "victor-password");
    auto r = get("/api/v1/host?agent=nas-1", {viewer});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body),
              json::parse(R"j({"agent":"nas-1","time":"2026-11-30 00:53:20","time_epoch":1796000000,
      "latest":{"time":"2026-11-30 00:52:20","time_epoch":1795999940,"load1":0.3,"cpu":30.0,"mem_total":1073741824,
                "mem_used":50.0,"disk_total":536870912000,"disk_used":20.0,"temperature":55.5},
      "last24h":{"from":"2026-11-29 00:53:20","from_epoch":1795913600,"to":"2026-11-30 00:53:21","to_epoch":1796000001,
                 "samples":2,"cpu":{"avg":20.0,"max":30.0},"mem_used":{"avg":45.0,"max":50.0},
                 "disk_used":{"avg":20.0,"max":20.0},"load1":{"avg":0.2,"max":0.3},
                 "temperature":{"avg":55.5,"max":55.5}},
      "episodes":[
        {"id":8,"pid":4008,"name":"pf-burn","user":"bob","since":"2026-11-30 00:36:40","since_epoch":1795999000,
         "detected":"2026-11-30 00:36:45","detected_epoch":1795999005,"ended":"2026-11-30 00:51:40",
         "ended_epoch":1795999900,"for":"15m 0s","for_seconds":900,"end_reason":"exited","peak_cpu":99.5,"peak_mem":1.25},
        {"id":7,"pid":4007,"name":"<script>alert(1)</script>","user":"bob","since":"2026-11-29 23:46:40",
         "since_epoch":1795996000,"detected":"2026-11-29 23:46:45","detected_epoch":1795996005,
         "ended":"2026-11-30 00:03:20","ended_epoch":1795997000,"for":"16m 40s","for_seconds":1000,
         "end_reason":"exited","peak_cpu":99.5,"peak_mem":1.25}]})j"));
    // An agent with no host stream: no sample, no episode.
    EXPECT_EQ(get("/api/v1/host?agent=nas-3", {viewer}).body,
              R"({"agent":"nas-3","time":"2026-11-30 00:53:20","time_epoch":1796000000,"latest":null,)"
              R"("last24h":{"from":"2026-11-29 00:53:20","from_epoch":1795913600,"to":"2026-11-30 00:53:21",)"
              R"("to_epoch":1796000001,"samples":0,"cpu":null,"mem_used":null,"disk_used":null,"load1":null,)"
              R"("temperature":null},"episodes":[]})");

    const std::pair<const char*, const char*> refusals[] = {
        {"", R"({"status":"error","message":"missing parameter 'agent'"})"},
        {"?agent=nas-9", R"({"status":"error","message":"no agent named 'nas-9'"})"},
        {"?agent=nas-1&agent=nas-2", R"({"status":"error","message":"parameter 'agent' given twice"})"},
        {"?agent=nas-1&day=2026-11-30", R"({"status":"error","message":"unknown parameter 'day': use agent"})"},
    };
    for (const auto& [query, body] : refusals) {
        auto bad = get(std::string("/api/v1/host") + query, {viewer});
        EXPECT_EQ(bad.status, std::string(query) == "?agent=nas-9" ? 404 : 400) << query;
        EXPECT_EQ(bad.body, body) << query;
    }
    EXPECT_EQ(get("/api/v1/host?agent=nas-1").status, 401);
}

TEST_F(DashboardServerTest, TrafficRefusesBadParameters) {
    fill();
    const std::string admin = session("alice", "alice-password");
    const std::pair<const char*, const char*> cases[] = {
        {"?agent=nas-9", R"({"status":"error","message":"no agent named 'nas-9'"})"},
        {"?node=paris", R"({"status":"error","message":"no agent in node 'paris'"})"},
        {"?agent=nas-1&node=beijing-1", R"({"status":"error","message":"give agent or node, not both"})"},
        {"?day=2026-11-30&month=2026-11", R"({"status":"error","message":"give day or month, not both"})"},
        {"?days=1", R"({"status":"error","message":"unknown parameter 'days': use agent, node, day or month"})"},
        {"?day=2026-11-30&day=2026-11-29", R"({"status":"error","message":"parameter 'day' given twice"})"},
    };
    for (const auto& [query, body] : cases) {
        auto r = get(std::string("/api/v1/traffic") + query, {admin});
        EXPECT_EQ(r.status, std::string(query).find("nas-9") != std::string::npos ||
                                    std::string(query).find("paris") != std::string::npos
                                ? 404
                                : 400)
            << query;
        EXPECT_EQ(r.body, body) << query;
    }
    auto bad_day = get("/api/v1/traffic?day=2026-02-30", {admin});
    EXPECT_EQ(bad_day.status, 400);
    EXPECT_EQ(json::parse(bad_day.body)["message"].get<std::string>().rfind("day: ", 0), 0u) << bad_day.body;
    auto bad_month = get("/api/v1/traffic?month=2026-13", {admin});
    EXPECT_EQ(bad_month.status, 400);
    EXPECT_EQ(json::parse(bad_month.body)["message"].get<std::string>().rfind("month: ", 0), 0u) << bad_month.body;
    EXPECT_EQ(get("/api/v1/traffic?agent=nas-1").status, 401);
}

TEST_F(DashboardServerTest, OverviewExactly) {
    fill();
    const std::string admin = session("alice", "alice-password");
    auto r = get("/api/v1/overview", {admin});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body), json::parse(R"j({"fleet":"Beijing <fleet>","timezone":"UTC",
      "time":"2026-11-30 00:53:20","time_epoch":1796000000,
      "agents":{"total":3,"online":1,"offline":1,"never":1,"offline_agents":[{"name":"nas-2","node":"beijing-1",
        "last_seen":"2026-11-30 00:36:40","last_seen_epoch":1795999000,"for":"16m 40s","for_seconds":1000}]},
      "today":{"day":"2026-11-30","peak_up_bytes":100,"peak_down_bytes":2000,"offpeak_up_bytes":500,
               "offpeak_down_bytes":5000,"up_bytes":600,"down_bytes":7000,"total_bytes":7600},
      "month":{"month":"2026-11","peak_up_bytes":100,"peak_down_bytes":2000,"offpeak_up_bytes":3500,
               "offpeak_down_bytes":12000,"up_bytes":3600,"down_bytes":14000,"total_bytes":17600},
      "last24h":{"from":"2026-11-29 00:55:00","from_epoch":1795913700,"to":"2026-11-30 00:55:00","to_epoch":1796000100,
        "points":[{"start":"2026-11-30 00:35:00","start_epoch":1795998900,"peak":false,"up_bytes":0,"down_bytes":4000},
                  {"start":"2026-11-30 00:45:00","start_epoch":1795999500,"peak":true,"up_bytes":100,"down_bytes":2000},
                  {"start":"2026-11-30 00:50:00","start_epoch":1795999800,"peak":false,"up_bytes":500,"down_bytes":1000}]},
      "top_agents":[{"name":"nas-2","node":"beijing-1","up_bytes":0,"down_bytes":4000,"total_bytes":4000},
                    {"name":"nas-1","node":"beijing-1","up_bytes":600,"down_bytes":3000,"total_bytes":3600}],
      "open_alerts":[{"time":"2026-11-30 00:53:20","time_epoch":1796000000,"agent":"nas-2","origin":"collector",
                      "key":"agent-offline:nas-2","title":"nas-2 offline"},
                     {"time":"2026-11-30 00:53:20","time_epoch":1796000000,"agent":"nas-1","origin":"collector",
                      "key":"push-failed:nas-1:ding","title":"nas-1: push to ding failing"}]})j"));
    EXPECT_EQ(get("/api/v1/overview", {session("victor", "victor-password")}).body, r.body);
    EXPECT_EQ(get("/api/v1/overview").status, 401);

    // nas-2 reports again: its recovery closes its alert, and it is online.
    clock_ = kT0 + 10;
    send(testing::agent_report("nas-2", kT0 + 10), token2_);
    auto again = json::parse(get("/api/v1/overview", {admin}).body);
    EXPECT_EQ(again["agents"], json::parse(R"j({"total":3,"online":2,"offline":0,"never":1,"offline_agents":[]})j"));
    ASSERT_EQ(again["open_alerts"].size(), 1u);
    EXPECT_EQ(again["open_alerts"][0]["key"], "push-failed:nas-1:ding");
}

// Every change made with the session cookie carries the session's CSRF token (the login's
// and /api/v1/me's csrf_token) in X-CSRF-Token, else 403 and nothing changes; reads need
// none, and neither does a user's API token (no ambient credential).
TEST_F(DashboardServerTest, CsrfTokenOnEveryChange) {
    fill();
    auto login = post("/api/v1/login", R"({"user":"alice","password":"alice-password"})", {});
    ASSERT_EQ(login.status, 200) << login.body;
    const std::string admin = testing::session_cookie(login);
    const std::string csrf = json::parse(login.body)["csrf_token"];
    EXPECT_EQ(json::parse(get("/api/v1/me", {admin}).body)["csrf_token"], csrf);
    auto vlogin = post("/api/v1/login", R"({"user":"victor","password":"victor-password"})", {});
    const std::string viewer = testing::session_cookie(vlogin);
    const std::string viewer_csrf = json::parse(vlogin.body)["csrf_token"];
    EXPECT_NE(viewer_csrf, csrf);

    const std::string missing =
        R"({"status":"error","message":"missing X-CSRF-Token header: a change made with the session cookie needs )"
        R"j(the session's csrf_token (of the login or GET /api/v1/me)"})j";
    const std::string wrong = R"({"status":"error","message":"wrong X-CSRF-Token for this session: reload the page"})";
    auto call = [&](HttpMethod m, const std::string& path, const std::string& body, std::vector<std::string> h) {
        return testing::collector_request(server_->port(), m, path, body, std::move(h));
    };
    const std::string set_off = R"({"agent":"nas-1","key":"push.enabled","value":false})";
    for (const auto& [headers, body] :
         {std::pair{std::vector<std::string>{admin}, missing},
          std::pair{std::vector<std::string>{admin, "X-CSRF-Token: "}, missing},
          std::pair{std::vector<std::string>{admin, "X-CSRF-Token: " + std::string(64, '0')}, wrong},
          std::pair{std::vector<std::string>{admin, "X-CSRF-Token: " + viewer_csrf}, wrong},
          std::pair{std::vector<std::string>{admin, "X-CSRF-Token: " + csrf + "0"}, wrong}}) {
        auto r = call(HttpMethod::Put, "/api/v1/config", set_off, headers);
        EXPECT_EQ(r.status, 403) << headers.back();
        EXPECT_EQ(r.body, body) << headers.back();
        auto d = call(HttpMethod::Delete, "/api/v1/config?agent=nas-2&key=push.enabled", "", headers);
        EXPECT_EQ(d.status, 403);
        EXPECT_EQ(d.body, body);
        auto hb = post("/heartbeat/status", R"({"start_time":1795996800,"end_time":1796000000})", headers);
        EXPECT_EQ(hb.status, 403);
        EXPECT_EQ(hb.body, body);
        auto out = post("/api/v1/logout", "", headers);
        EXPECT_EQ(out.status, 403);
        EXPECT_EQ(out.body, body);
    }
    // Nothing changed, the session lives on; reads need no token.
    auto audit = get("/api/v1/audit", {admin});
    ASSERT_EQ(audit.status, 200) << audit.body;
    EXPECT_EQ(json::parse(audit.body)["audit"].size(), 1u);  // fill()'s, from the CLI
    EXPECT_EQ(get("/api/v1/me", {admin}).status, 200);

    // With the token: done.
    const std::string token = "X-CSRF-Token: " + csrf;
    auto put = call(HttpMethod::Put, "/api/v1/config", set_off, {admin, token});
    EXPECT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.body, R"({"status":"ok","version":2})");
    auto del = call(HttpMethod::Delete, "/api/v1/config?agent=nas-2&key=push.enabled", "", {admin, token});
    EXPECT_EQ(del.body, R"({"status":"ok","version":3})");
    EXPECT_EQ(post("/heartbeat/status", R"({"start_time":1795996800,"end_time":1796000000})", {admin, token}).status,
              200);
    // The viewer's own token passes the CSRF check; the role check still refuses.
    auto v = call(HttpMethod::Put, "/api/v1/config", set_off, {viewer, "X-CSRF-Token: " + viewer_csrf});
    EXPECT_EQ(v.status, 403);
    EXPECT_EQ(v.body, R"({"status":"error","message":"this needs the admin role"})");

    // A user's API token is no ambient credential: no CSRF token with it.
    auto users = FleetUsers::open(server_->store(), testing::cheap_argon2()).take();
    const std::string api = "Authorization: Bearer " + users->create_token("alice", kT0, std::nullopt).take();
    auto bearer = call(HttpMethod::Put, "/api/v1/config", R"({"key":"push.enabled","value":true})", {api});
    EXPECT_EQ(bearer.body, R"({"status":"ok","version":4})");
    EXPECT_EQ(json::parse(get("/api/v1/me", {api}).body), json::parse(R"j({"user":"alice","role":"admin"})j"));

    auto out = post("/api/v1/logout", "", {admin, token});
    EXPECT_EQ(out.status, 200) << out.body;
    EXPECT_EQ(get("/api/v1/me", {admin}).status, 401);
}

TEST_F(DashboardServerTest, HistoryCsv) {
    fill();
    const std::string admin = session("alice", "alice-password");
    auto r = get("/api/v1/history.csv?node=beijing-1&status=failed", {admin});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "text/csv; charset=utf-8");
    EXPECT_EQ(r.header("Content-Disposition"), "attachment; filename=\"push-history.csv\"");
    EXPECT_EQ(r.body,
              "node_name,host_name,sink,kind,period,push_data_bytes,status,attempts,error,update_time,"
              "update_time_epoch,agent,id,request_bytes\r\n"
              "beijing-1,nas-1.lan,ding,daily,2026-11-29,1054720,failed,3,\"'=cmd(\"\"x\"\"), busy\","
              "2026-11-30 00:52:20,1795999940,nas-1,41,812\r\n");
    auto none = get("/api/v1/history.csv?status=sent", {admin});
    EXPECT_EQ(none.body,
              "node_name,host_name,sink,kind,period,push_data_bytes,status,attempts,error,update_time,"
              "update_time_epoch,agent,id,request_bytes\r\n");
    auto bad = get("/api/v1/history.csv?status=ok", {admin});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(json::parse(bad.body)["message"], "status must be pending, failed, sent or skipped, got 'ok'");
    EXPECT_EQ(get("/api/v1/history.csv").status, 401);
}

}  // namespace
}  // namespace pf
