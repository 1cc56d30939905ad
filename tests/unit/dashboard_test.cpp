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
    // Interface totals only (the peer MAC row is not added); buckets with traffic only.
    EXPECT_EQ(json::parse(day.body), json::parse(R"j({"agent":"nas-1","node":null,"view":"day","day":"2026-11-30",
      "from":"2026-11-30 00:00:00","from_epoch":1795996800,"to":"2026-12-01 00:00:00","to_epoch":1796083200,
      "totals":{"peak_up_bytes":100,"peak_down_bytes":2000,"offpeak_up_bytes":500,"offpeak_down_bytes":1000,
                "up_bytes":600,"down_bytes":3000,"total_bytes":3600},
      "points":[{"start":"2026-11-30 00:45:00","start_epoch":1795999500,"peak":true,"up_bytes":100,"down_bytes":2000},
                {"start":"2026-11-30 00:50:00","start_epoch":1795999800,"peak":false,"up_bytes":500,"down_bytes":1000}]})j"));
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
    EXPECT_EQ(json::parse(month.body), want);
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
