// Central configuration (docs/fleet.md, "Central configuration"): the keys and their shapes,
// the agent applying values on top of its file with the file's parser (and reporting those
// it cannot apply), the collector's versions and audit log, and a real uplink against a real
// collector: the answer carries the config, the agent stores it, asks for a reload, and
// reports the version it runs.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "peakflow/accounting/store.hpp"
#include "peakflow/app/central.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/central_config.hpp"
#include "peakflow/fleet/central_store.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/fleet/fleet_users.hpp"
#include "peakflow/fleet/uplink.hpp"
#include "report_test_support.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

using pf::testing::collector_database;
using pf::testing::store_on_postgres;

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kT0 = 1796000000;  // 2026-11-30 00:53:20 UTC

const std::string kFile =
    "push:\n"
    "  node_name: beijing-1\n"
    "  sinks:\n"
    "    - name: customer\n"
    "      type: http\n"
    "      url: http://198.18.0.1:8080/flux\n"
    "      alerts: false\n"
    "      reports: [hourly]\n"
    "    - name: ops\n"
    "      type: webhook\n"
    "      url: http://198.18.0.1:8081/hook\n"
    "customer_report:\n"
    "  enabled: true\n"
    "  sink: customer\n"
    "  provider_id: 7\n"
    "interfaces: [pf0]\n";

CentralConfig central(int64_t version, std::map<std::string, std::string> values) {
    CentralConfig c;
    c.version = version;
    c.values = std::move(values);
    return c;
}

TEST(CentralKeys, ShapesAndUnknownKeys) {
    EXPECT_EQ(central_key_problem("push.enabled"), "");
    EXPECT_EQ(central_key_problem("push.sinks.ops.url"), "");
    EXPECT_EQ(central_key_problem("push.sinks.ops.token").rfind("'push.sinks.ops.token' cannot be set centrally", 0),
              0u);
    EXPECT_NE(central_key_problem("database"), "");
    EXPECT_NE(central_key_problem("push.sinks..url"), "");
    EXPECT_EQ(central_value_problem("push.enabled", "false"), "");
    EXPECT_EQ(central_value_problem("push.enabled", "\"no\""), "push.enabled takes true or false");
    EXPECT_EQ(central_value_problem("customer_report.provider_id", "12"), "");
    EXPECT_EQ(central_value_problem("customer_report.provider_id", "\"0012\""), "");
    EXPECT_EQ(central_value_problem("customer_report.provider_id", "1.5"),
              "customer_report.provider_id takes a string or an integer");
    EXPECT_EQ(central_value_problem("interfaces", "[\"eth1\"]"), "");
    EXPECT_EQ(central_value_problem("interfaces", "[1]"), "interfaces takes a list of strings");
    EXPECT_EQ(central_value_problem("customer_report.fields", "{\"region\":\"north\",\"rack\":4}"), "");
    EXPECT_EQ(central_value_problem("customer_report.fields", "{\"region\":[1]}"),
              "customer_report.fields takes a map of field names to strings or integers");
    EXPECT_EQ(central_value_problem("adjustments", "[{\"factor\":1.05}]"), "");
    EXPECT_EQ(central_value_problem("adjustments", "{\"factor\":1.05}"), "adjustments takes a list of adjustments");
    EXPECT_EQ(central_value_problem("push.enabled", "{"), "the value is not JSON");
}

TEST(CentralApply, ValuesReplaceTheFileOnlyForTheirKeys) {
    auto r = apply_central(
        kFile, "config.yaml",
        central(4, {{"push.enabled", "false"},
                    {"push.sinks.ops.url", "\"http://198.18.0.2:9000/alerts\""},
                    {"customer_report.provider_id", "\"0042\""},
                    {"customer_report.fields", "{\"region\":\"north\",\"rack\":4}"},
                    {"adjustments", R"([{"factor":1.5},{"iface":"pf0","direction":"tx","offset_bytes":-100}])"},
                    {"interfaces", "[\"pf1\"]"}}));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->problems.empty());
    EXPECT_EQ(r->applied.size(), 6u);
    const Config& c = r->cfg;
    EXPECT_FALSE(c.push.enabled);
    EXPECT_EQ(c.push.node_name, "beijing-1");  // not a central key: the file's
    EXPECT_EQ(c.push.find("ops")->url, "http://198.18.0.2:9000/alerts");
    EXPECT_EQ(c.push.find("customer")->url, "http://198.18.0.1:8080/flux");
    EXPECT_EQ(c.customer_report.provider_id.value, "0042");
    EXPECT_FALSE(c.customer_report.provider_id.number);  // quoted: sent as a string
    ASSERT_EQ(c.customer_report.fields.size(), 2u);
    EXPECT_EQ(c.customer_report.fields[0].key, "region");  // in the order the value gives them
    EXPECT_FALSE(c.customer_report.fields[0].number);
    EXPECT_EQ(c.customer_report.fields[1].key, "rack");
    EXPECT_TRUE(c.customer_report.fields[1].number);
    EXPECT_EQ(c.customer_report.sink, "customer");
    ASSERT_EQ(c.accounting.adjustments.size(), 2u);
    EXPECT_DOUBLE_EQ(c.accounting.adjustments[0].factor, 1.5);
    EXPECT_EQ(c.accounting.adjustments[1].offset_bytes, -100);
    EXPECT_EQ(c.interfaces, std::vector<std::string>{"pf1"});
    EXPECT_EQ(c.source, "config.yaml");

    auto view = central_view(c);
    EXPECT_EQ(view["push.enabled"], "false");
    EXPECT_EQ(view["customer_report.provider_id"], "\"0042\"");
    EXPECT_EQ(view["customer_report.fields"], R"({"region":"north","rack":4})");
    EXPECT_EQ(view["interfaces"], R"(["pf1"])");
    EXPECT_EQ(
        view["adjustments"],
        R"([{"direction":"both","factor":1.5,"offset_bytes":0},{"iface":"pf0","direction":"tx","factor":1.0,"offset_bytes":-100}])");
}

TEST(CentralApply, WhatCannotApplyIsAProblemAndTheRestApplies) {
    auto r = apply_central(kFile, "config.yaml",
                           central(9, {{"push.sinks.pager.enabled", "false"},
                                       {"push.enabled", "\"off\""},
                                       {"adjustments", R"([{"direction":"up"}])"},
                                       {"customer_report.isp_id", "3"}}));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->problems.size(), 3u);
    EXPECT_EQ(r->problems[0].key, "adjustments");
    EXPECT_EQ(r->problems[0].message, "key 'adjustments.direction': expected rx, tx or both, got 'up'");
    EXPECT_EQ(r->problems[1].key, "push.enabled");
    EXPECT_EQ(r->problems[1].message, "push.enabled takes true or false");
    EXPECT_EQ(r->problems[2].key, "push.sinks.pager.enabled");
    EXPECT_EQ(r->problems[2].message, "no push sink named 'pager' in the agent's config");
    EXPECT_EQ(r->applied, std::vector<std::string>{"customer_report.isp_id"});
    EXPECT_TRUE(r->cfg.push.enabled);
    EXPECT_EQ(r->cfg.customer_report.isp_id.value, "3");
    // The acceptance switch on without a sink to report through cannot apply.
    auto bare = apply_central("", "", central(2, {{"customer_report.enabled", "true"}}));
    ASSERT_TRUE(bare);
    ASSERT_EQ(bare->problems.size(), 1u);
    EXPECT_NE(bare->problems[0].message.find("needs the name of a push sink"), std::string::npos)
        << bare->problems[0].message;
    // An error in the file itself stays an error.
    auto broken = apply_central("push: [", "config.yaml", central(2, {}));
    ASSERT_FALSE(broken);
    EXPECT_EQ(broken.error().message().rfind("config.yaml:", 0), 0u) << broken.error().message();
}

TEST(CentralApply, TheCollectorChecksWithTheAgentsParser) {
    EXPECT_EQ(check_central_value("customer_report.enabled", "true"), "");
    EXPECT_EQ(check_central_value("adjustments", R"([{"mac":"02:00:00:00:00:01","factor":0.5}])"), "");
    EXPECT_EQ(check_central_value("adjustments", R"([{"mac":"nope"}])"),
              "key 'adjustments.mac': 'nope' is not a MAC address");
    EXPECT_EQ(check_central_value("interfaces", R"(["a/b"])"), "key 'interfaces': 'a/b' is not a valid interface name");
    EXPECT_EQ(check_central_value("push.sinks.ops.url", "\"ftp://198.18.0.1/\""),
              "push.sinks.ops.url: expected an http://, https://, smtp:// or smtps:// URL");
    EXPECT_EQ(check_central_value("push.sinks.ops.to", R"(["ops@example.com"])"), "");
}

class CentralStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_central_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        store_ = FleetStore::open(collector_database(dir_)).take();
    }
    void TearDown() override {
        store_.reset();
        fs::remove_all(dir_);
    }
    std::string dir_;
    std::unique_ptr<FleetStore> store_;
};

TEST_F(CentralStoreTest, VersionsScopesAndAudit) {
    ChangeOrigin alice{"alice", "cli", kT0};
    EXPECT_EQ(central_effective(*store_, "nas-1").take().version, 0);
    EXPECT_EQ(central_set(*store_, "", "push.enabled", "true", alice).take(), 1);
    EXPECT_EQ(central_set(*store_, "nas-1", "push.enabled", "false", alice).take(), 2);
    EXPECT_EQ(central_set(*store_, "", "adjustments", R"([{"factor":1.1}])", alice).take(), 3);
    // The same value again: no new version, nothing audited.
    EXPECT_EQ(central_set(*store_, "", "adjustments", R"([{"factor":1.1}])", alice).take(), 3);

    CentralConfig one = central_effective(*store_, "nas-1").take();
    EXPECT_EQ(one.version, 3);
    EXPECT_EQ(one.values,
              (std::map<std::string, std::string>{{"adjustments", R"([{"factor":1.1}])"}, {"push.enabled", "false"}}));
    CentralConfig two = central_effective(*store_, "nas-2").take();
    EXPECT_EQ(two.version, 3);
    EXPECT_EQ(two.values.at("push.enabled"), "true");

    // A change to nas-2 alone moves nas-2's version, not nas-1's.
    EXPECT_EQ(central_set(*store_, "nas-2", "interfaces", R"(["eth1"])", {"bob", "198.18.0.9", kT0 + 60}).take(), 4);
    EXPECT_EQ(central_effective(*store_, "nas-1").take().version, 3);
    EXPECT_EQ(central_effective(*store_, "nas-2").take().version, 4);
    EXPECT_EQ(central_fleet(*store_).take().version, 3);

    auto gone = central_unset(*store_, "nas-1", "push.enabled", {"alice", "cli", kT0 + 120});
    ASSERT_TRUE(gone);
    EXPECT_EQ(*gone, 5);
    EXPECT_EQ(central_effective(*store_, "nas-1").take().values.at("push.enabled"), "true");
    EXPECT_EQ(central_effective(*store_, "nas-1").take().version, 5);
    auto again = central_unset(*store_, "nas-1", "push.enabled", alice);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().message(), "'push.enabled' is not set for agent 'nas-1'");

    auto audit = central_audit(*store_, 100, std::nullopt).take();
    ASSERT_EQ(audit.size(), 5u);
    EXPECT_EQ(audit[0].version, 5);
    EXPECT_EQ(audit[0].who, "alice");
    EXPECT_EQ(audit[0].scope, "nas-1");
    EXPECT_EQ(audit[0].old_value, std::optional<std::string>("false"));
    EXPECT_EQ(audit[0].new_value, std::nullopt);
    EXPECT_EQ(audit[1].who, "bob");
    EXPECT_EQ(audit[1].from, "198.18.0.9");
    EXPECT_EQ(audit[1].time, kT0 + 60);
    EXPECT_EQ(audit[1].old_value, std::nullopt);
    EXPECT_EQ(audit[1].new_value, std::optional<std::string>(R"(["eth1"])"));
    EXPECT_EQ(audit[4].version, 1);
    EXPECT_EQ(central_audit(*store_, 100, std::string("nas-2")).take().size(), 1u);
    EXPECT_EQ(central_audit(*store_, 100, std::string()).take().size(), 2u);
    EXPECT_EQ(central_audit(*store_, 2, std::nullopt).take().size(), 2u);
}

// A real collector and a real uplink over a real history: the config the collector holds
// reaches the agent's database, the reload hook runs once per version, and the agent's
// status (version, problems) reaches the collector.
TEST_F(CentralStoreTest, UplinkReceivesStoresAndReportsBack) {
    store_.reset();
    std::atomic<int64_t> clock{kT0};
    CollectorOptions co;
    co.port = 0;
    co.database = collector_database(dir_);
    co.timezone = "UTC";
    co.clock = [&] { return clock.load(); };
    testing::RecordingQueue queue;
    co.queue = &queue;
    co.watch = false;
    co.threads = 2;
    auto server = CollectorServer::start(co).take();
    const std::string token = server->store().create_token("nas-1", kT0).take();
    ASSERT_TRUE(central_set(server->store(), "", "push.enabled", "false", {"alice", "cli", kT0}));

    const std::string db = dir_ + "/peakflow.db";
    fs::create_directories(dir_ + "/sys/class/net/pf0");
    { std::ofstream(dir_ + "/sys/class/net/pf0/address") << "02:00:00:00:00:01\n"; }
    Store::open(db).take();
    int reloads = 0;
    UplinkOptions uo;
    uo.database = db;
    uo.cfg.configured = true;
    uo.cfg.url = "http://127.0.0.1:" + std::to_string(server->port());
    uo.cfg.token = token;
    uo.cfg.name = "nas-1";
    uo.clock = [&] { return clock.load(); };
    uo.ifaces = {"pf0"};
    uo.paths.sysfs = dir_ + "/sys";
    uo.host = "nas-1.lan";
    uo.boot_id = "boot";
    uo.on_central = [&] { reloads++; };
    auto up = Uplink::open(uo).take();
    auto out = up->report_once().take();
    ASSERT_TRUE(out.acked) << out.error;
    EXPECT_EQ(reloads, 1);
    EXPECT_EQ(up->central_version(), 1);
    auto stored = load_central(db).take();
    ASSERT_TRUE(stored);
    EXPECT_EQ(*stored, central(1, {{"push.enabled", "false"}}));

    // Until the agent says it runs v1 the answer carries it again, and it is not applied twice.
    clock = kT0 + 60;
    ASSERT_TRUE(up->report_once().take().acked);
    EXPECT_EQ(reloads, 1);
    ASSERT_TRUE(save_central_status(db, {1, {{"interfaces", "cannot attach to pf9: no such interface"}}}));
    clock = kT0 + 120;
    out = up->report_once().take();
    ASSERT_TRUE(out.acked);
    json sent = json::parse(out.body);
    EXPECT_EQ(
        sent["agent"]["config"],
        json::parse(
            R"({"version":1,"problems":[{"key":"interfaces","message":"cannot attach to pf9: no such interface"}]})"));
    AgentConfigState st = agent_config_state(server->store(), "nas-1").take();
    EXPECT_EQ(st.version, 1);
    ASSERT_EQ(st.problems.size(), 1u);
    EXPECT_EQ(st.problems[0].message, "cannot attach to pf9: no such interface");

    // A new version: stored and applied once; the agent's old uplink (a restart) knows it.
    ASSERT_TRUE(central_set(server->store(), "nas-1", "customer_report.provider_id", "\"p-9\"", {"bob", "cli", kT0}));
    clock = kT0 + 180;
    ASSERT_TRUE(up->report_once().take().acked);
    EXPECT_EQ(reloads, 2);
    EXPECT_EQ(load_central(db).take()->values.at("customer_report.provider_id"), "\"p-9\"");
    up.reset();
    EXPECT_EQ(Uplink::open(uo).take()->central_version(), 2);
    server->stop();
}

// The JSON API over a real server: who may read and change what, the exact answers, the
// audit log, and the requirements' compatibility endpoints.
class CentralApiTest : public CentralStoreTest {
  protected:
    void SetUp() override {
        CentralStoreTest::SetUp();
        store_.reset();
        CollectorOptions co;
        co.port = 0;
        co.database = collector_database(dir_);
        co.timezone = "UTC";
        co.clock = [] { return kT0; };
        co.queue = &queue_;
        co.watch = false;
        co.threads = 2;
        co.password_hash = Argon2Params{1, 8, 1};  // cheap: the hash is not what is tested here
        co.check_central = check_central_value;
        server_ = CollectorServer::start(co).take();
        agent_token_ = server_->store().create_token("nas-1", kT0).take();
        (void)server_->store().create_token("nas-2", kT0).take();
        auto users = FleetUsers::open(server_->store(), Argon2Params{1, 8, 1}).take();
        for (const char* u : {"ann", "vic"}) {
            auto st = users->add(u, u == std::string("ann") ? "admin" : "viewer", "correct horse battery", kT0);
            ASSERT_TRUE(st) << st.error().message();
        }
        admin_ = users->create_token("ann", kT0, std::nullopt).take();
        viewer_ = users->create_token("vic", kT0, std::nullopt).take();
    }
    void TearDown() override {
        server_.reset();
        CentralStoreTest::TearDown();
    }
    HttpResponse call(HttpMethod m, const std::string& path, const std::string& token, const std::string& body = "") {
        HttpRequest rq;
        rq.method = m;
        rq.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
        rq.body = body;
        if (!token.empty()) rq.headers.push_back("Authorization: Bearer " + token);
        rq.headers.push_back("Content-Type: application/json");
        auto r = http_request(rq);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? *r : HttpResponse{};
    }
    testing::RecordingQueue queue_;
    std::unique_ptr<CollectorServer> server_;
    std::string agent_token_, admin_, viewer_;
};

TEST_F(CentralApiTest, AdminsChangeViewersAndAgentsRead) {
    auto put = call(HttpMethod::Put, "/api/v1/config", admin_, R"({"key":"push.enabled","value":false})");
    EXPECT_EQ(put.status, 200);
    EXPECT_EQ(put.body, R"({"status":"ok","version":1})");
    put = call(HttpMethod::Put, "/api/v1/config", admin_,
               R"({"agent":"nas-1","key":"adjustments","value":[{"direction":"tx","factor":2}]})");
    EXPECT_EQ(put.body, R"({"status":"ok","version":2})");

    // Refusals: the reason, nothing stored.
    auto viewer = call(HttpMethod::Put, "/api/v1/config", viewer_, R"({"key":"push.enabled","value":true})");
    EXPECT_EQ(viewer.status, 403);
    EXPECT_EQ(viewer.body, R"({"status":"error","message":"this needs the admin role"})");
    auto agent = call(HttpMethod::Put, "/api/v1/config", agent_token_, R"({"key":"push.enabled","value":true})");
    EXPECT_EQ(agent.status, 401);
    auto none = call(HttpMethod::Put, "/api/v1/config", "", R"({"key":"push.enabled","value":true})");
    EXPECT_EQ(none.status, 401);
    auto bad = call(HttpMethod::Put, "/api/v1/config", admin_, R"({"key":"adjustments","value":[{"mac":"nope"}]})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body, R"({"status":"error","message":"key 'adjustments.mac': 'nope' is not a MAC address"})");
    auto key = call(HttpMethod::Put, "/api/v1/config", admin_, R"({"key":"database","value":"/tmp/x"})");
    EXPECT_EQ(key.status, 400);
    EXPECT_NE(key.body.find("'database' cannot be set centrally"), std::string::npos) << key.body;
    auto who =
        call(HttpMethod::Put, "/api/v1/config", admin_, R"({"agent":"nas-9","key":"push.enabled","value":true})");
    EXPECT_EQ(who.status, 404);
    EXPECT_EQ(who.body, R"({"status":"error","message":"no agent named 'nas-9'"})");
    auto gone = call(HttpMethod::Delete, "/api/v1/config?key=interfaces", admin_);
    EXPECT_EQ(gone.status, 404);
    EXPECT_EQ(gone.body, R"({"status":"error","message":"'interfaces' is not set fleet-wide"})");
    EXPECT_EQ(central_audit(server_->store(), 100, std::nullopt).take().size(), 2u);

    const std::string fleet =
        R"({"version":1,"config":{"push":{"enabled":false}},"entries":[{"key":"push.enabled","value":false,"source":"fleet v1"}]})";
    EXPECT_EQ(call(HttpMethod::Get, "/api/v1/config", viewer_).body, fleet);
    EXPECT_EQ(call(HttpMethod::Get, "/api/v1/config", agent_token_).status, 403);  // ?agent= its own only
    EXPECT_EQ(
        call(HttpMethod::Get, "/agent/get_global_config/", agent_token_).body,
        R"({"status":"ok","version":1,"config":{"push":{"enabled":false}},"entries":[{"key":"push.enabled","value":false,"source":"fleet v1"}]})");

    const std::string own =
        R"({"agent":"nas-1","version":2,"config":{"adjustments":[{"direction":"tx","factor":2}],"push":{"enabled":false}},)"
        R"("entries":[{"key":"adjustments","value":[{"direction":"tx","factor":2}],"source":"agent v2"},)"
        R"({"key":"push.enabled","value":false,"source":"fleet v1"}],"applied":{"version":0,"problems":[]}})";
    EXPECT_EQ(call(HttpMethod::Get, "/api/v1/config?agent=nas-1", agent_token_).body, own);
    EXPECT_EQ(call(HttpMethod::Get, "/api/v1/config?agent=nas-1", admin_).body, own);
    auto other = call(HttpMethod::Get, "/api/v1/config?agent=nas-2", agent_token_);
    EXPECT_EQ(other.status, 403);
    EXPECT_EQ(other.body,
              R"j({"status":"error","message":"an agent token reads only its own config (?agent=nas-1)"})j");

    auto machine = call(HttpMethod::Get, "/agent/config/?name=nas-1", viewer_);
    EXPECT_EQ(machine.status, 200);
    EXPECT_EQ(machine.body,
              R"({"status":"ok","name":"nas-1","node":"","host":"","mac":"","iface":"","version":2,)"
              R"("config":{"adjustments":[{"direction":"tx","factor":2}],"push":{"enabled":false}},)"
              R"("entries":[{"key":"adjustments","value":[{"direction":"tx","factor":2}],"source":"agent v2"},)"
              R"({"key":"push.enabled","value":false,"source":"fleet v1"}],"applied":{"version":0,"problems":[]}})");
    EXPECT_EQ(call(HttpMethod::Get, "/agent/config/", viewer_).body,
              R"({"status":"error","message":"give one of name= or mac="})");
    EXPECT_EQ(call(HttpMethod::Get, "/agent/config/?mac=02:00:00:00:00:99", viewer_).status, 404);
    EXPECT_EQ(call(HttpMethod::Get, "/agent/config/?name=nas-2", agent_token_).status, 403);

    auto del = call(HttpMethod::Delete, "/api/v1/config?agent=nas-1&key=adjustments", admin_);
    EXPECT_EQ(del.body, R"({"status":"ok","version":3})");

    // The audit log: admins see where a change came from, viewers the placeholder.
    json a = json::parse(call(HttpMethod::Get, "/api/v1/audit", admin_).body)["audit"];
    ASSERT_EQ(a.size(), 3u);
    EXPECT_EQ(a[0], json::parse(R"({"id":3,"time":"2026-11-30 00:53:20","time_epoch":1796000000,"version":3,)"
                                R"("who":"ann","from":"127.0.0.1","scope":"agent","agent":"nas-1","key":"adjustments",)"
                                R"("old":[{"direction":"tx","factor":2}],"new":null})"));
    EXPECT_EQ(a[2]["key"], "push.enabled");
    EXPECT_EQ(a[2]["scope"], "fleet");
    EXPECT_EQ(a[2]["agent"], nullptr);
    json v = json::parse(call(HttpMethod::Get, "/api/v1/audit?agent=nas-1&limit=1", viewer_).body)["audit"];
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0]["from"], "隐私保护");
    EXPECT_EQ(call(HttpMethod::Get, "/api/v1/audit?limit=0", viewer_).status, 400);
    EXPECT_EQ(call(HttpMethod::Get, "/api/v1/audit", agent_token_).status, 401);
}

}  // namespace
}  // namespace pf
