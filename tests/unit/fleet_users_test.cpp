// The collector's users: argon2id hashes (round trip, the stored form, no plaintext in the
// database file), the `user` commands, and logins against a real server on 127.0.0.1
// spoken to through the project's HTTP client: the session cookie, logout, roles, API
// tokens and their expiry on an injected clock, and the login rate limit, exactly.

#include "peakflow/fleet/fleet_users.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "collector_test_client.hpp"
#include "peakflow/collector/collector_cli.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "test_log_capture.hpp"
#include "test_postgres.hpp"

namespace pf {
namespace {

using pf::testing::collector_database;
using pf::testing::store_on_postgres;

using nlohmann::json;

constexpr int64_t kT0 = 1796000000;  // 2026-11-30 00:53:20 UTC

std::string make_tmpdir() {
    char tmpl[] = "/tmp/pf_users_XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    return tmpl;
}

using pf::testing::LogCapture;

TEST(PasswordHash, Argon2idRoundTrip) {
    auto h = hash_password("correct horse").take();  // the production cost
    EXPECT_EQ(h.rfind("$argon2id$v=19$m=65536,t=3,p=1$", 0), 0u) << h;
    EXPECT_TRUE(verify_password(h, "correct horse"));
    EXPECT_FALSE(verify_password(h, "correct horsE"));
    EXPECT_FALSE(verify_password(h, ""));
    EXPECT_NE(hash_password("correct horse", testing::cheap_argon2()).take(),
              hash_password("correct horse", testing::cheap_argon2()).take())
        << "a fresh salt each time";
    EXPECT_FALSE(verify_password("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x"));
    EXPECT_FALSE(verify_password("correct horse", "correct horse"));
    EXPECT_FALSE(check_new_password("1234567").ok());
    EXPECT_TRUE(check_new_password("12345678").ok());
    EXPECT_FALSE(check_new_password(std::string(kMaxPasswordLength + 1, 'x')).ok());
}

TEST(LoginLimiter, PerAddressAndPerName) {
    LoginLimiter l(5, 300);
    for (int i = 0; i < 4; i++) l.failed("10.0.0.1", "alice", kT0 + i);
    EXPECT_EQ(l.retry_after("10.0.0.1", "alice", kT0 + 10), 0);
    l.failed("10.0.0.1", "alice", kT0 + 10);
    // Five failures: the next attempt waits until the first leaves the window.
    EXPECT_EQ(l.retry_after("10.0.0.1", "bob", kT0 + 10), 290);    // the address
    EXPECT_EQ(l.retry_after("10.0.0.2", "alice", kT0 + 10), 290);  // the name, elsewhere
    EXPECT_EQ(l.retry_after("10.0.0.2", "bob", kT0 + 10), 0);
    EXPECT_EQ(l.retry_after("10.0.0.1", "alice", kT0 + 299), 1);
    EXPECT_EQ(l.retry_after("10.0.0.1", "alice", kT0 + 300), 0);
    // A success clears the name, not the address.
    LoginLimiter m(5, 300);
    for (int i = 0; i < 5; i++) m.failed("10.0.0.1", "alice", kT0);
    m.succeeded("alice");
    EXPECT_EQ(m.retry_after("10.0.0.2", "alice", kT0), 0);
    EXPECT_EQ(m.retry_after("10.0.0.1", "carol", kT0), 300);
}

// ---- the CLI ------------------------------------------------------------------------------

class UserCliTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = make_tmpdir();
        cfg_ = dir_ + "/collector.yaml";
        std::ofstream(cfg_) << "database: " << collector_database(dir_) << "\ntimezone: UTC\n";
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    struct Out {
        int rc;
        std::string out, err;
    };
    Out run(std::vector<std::string> args) {
        args.insert(args.begin(), "peakflow-collector");
        args.push_back("-f");
        args.push_back(cfg_);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        ::testing::internal::CaptureStdout();
        ::testing::internal::CaptureStderr();
        Out o;
        o.rc = run_collector_cli(static_cast<int>(argv.size()), argv.data());
        o.out = ::testing::internal::GetCapturedStdout();
        o.err = ::testing::internal::GetCapturedStderr();
        return o;
    }
    std::string password_file(const std::string& content, mode_t mode = 0600) {
        const std::string p = dir_ + "/pw" + std::to_string(files_++);
        std::ofstream(p) << content;
        ::chmod(p.c_str(), mode);
        return p;
    }
    std::string dir_, cfg_;
    int files_ = 0;
};

TEST_F(UserCliTest, AddListTokenPasswdDel) {
    const std::string pw = "s3cret-Passw0rd";
    auto add = run({"user", "add", "alice", "--role", "admin", "--password-file", password_file(pw + "\n")});
    ASSERT_EQ(add.rc, 0) << add.err;
    EXPECT_EQ(add.out, "");
    EXPECT_EQ(add.err, "user 'alice' added (admin)\n");

    // Errors: one line each, exit 1.
    auto dup = run({"user", "add", "alice", "--role", "viewer", "--password-file", password_file(pw)});
    EXPECT_EQ(dup.rc, 1);
    EXPECT_EQ(dup.err, "peakflow-collector: error: user 'alice' already exists\n");
    auto role = run({"user", "add", "bob", "--role", "root", "--password-file", password_file(pw)});
    EXPECT_EQ(role.rc, 1);
    EXPECT_EQ(role.err, "peakflow-collector: error: role 'root': use admin or viewer\n");
    auto name = run({"user", "add", "bob smith", "--role", "viewer", "--password-file", password_file(pw)});
    EXPECT_EQ(name.rc, 1);
    EXPECT_EQ(name.err, "peakflow-collector: error: user name 'bob smith': use 1 to 64 of A-Z a-z 0-9 . _ -\n");
    auto shortpw = run({"user", "add", "bob", "--role", "viewer", "--password-file", password_file("short\n")});
    EXPECT_EQ(shortpw.rc, 1);
    EXPECT_EQ(shortpw.err, "peakflow-collector: error: the password is too short: use at least 8 characters\n");
    auto unknown = run({"user", "passwd", "nobody", "--password-file", password_file(pw)});
    EXPECT_EQ(unknown.rc, 1);
    EXPECT_EQ(unknown.err,
              "peakflow-collector: error: no user named 'nobody' (peakflow-collector user list shows them)\n");
    EXPECT_EQ(run({"user", "del", "nobody"}).err,
              "peakflow-collector: error: no user named 'nobody' (peakflow-collector user list shows them)\n");
    EXPECT_EQ(run({"user", "token", "nobody"}).rc, 1);

    // No file and no terminal on stdin: a clear error, nothing read.
    int saved = ::dup(STDIN_FILENO);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    auto noterm = run({"user", "add", "bob", "--role", "viewer"});
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    ::close(null);
    EXPECT_EQ(noterm.rc, 1);
    EXPECT_EQ(noterm.err,
              "peakflow-collector: error: no terminal to ask for the password: give --password-file FILE\n");

    // A file others may read works, with a warning.
    const std::string open_file = password_file("viewer-pass\n", 0644);
    auto bob = run({"user", "add", "bob", "--role", "viewer", "--password-file", open_file});
    EXPECT_EQ(bob.rc, 0);
    EXPECT_EQ(bob.err, "peakflow-collector: warning: " + open_file +
                           " is readable by other users: chmod 600 it\nuser 'bob' added (viewer)\n");

    // A token: alone on stdout, "pfu_" and 64 hex digits.
    auto tok = run({"user", "token", "alice", "--expires", "30"});
    ASSERT_EQ(tok.rc, 0) << tok.err;
    EXPECT_TRUE(std::regex_match(tok.out, std::regex("pfu_[0-9a-f]{64}\n"))) << tok.out;
    EXPECT_NE(tok.err.find("valid until"), std::string::npos);
    EXPECT_EQ(run({"user", "token", "alice", "--expires", "0"}).rc, 2);
    const std::string token = tok.out.substr(0, tok.out.size() - 1);

    auto list = run({"user", "list", "--json"});
    ASSERT_EQ(list.rc, 0);
    json j = json::parse(list.out);
    ASSERT_EQ(j["users"].size(), 2u);
    EXPECT_EQ(j["users"][0]["name"], "alice");
    EXPECT_EQ(j["users"][0]["role"], "admin");
    EXPECT_EQ(j["users"][0]["tokens"], 1);
    EXPECT_EQ(j["users"][1]["name"], "bob");
    EXPECT_EQ(j["users"][1]["role"], "viewer");
    EXPECT_EQ(j["users"][1]["tokens"], 0);
    EXPECT_EQ(list.out.find("argon2"), std::string::npos);
    auto table = run({"user", "list"});
    EXPECT_EQ(table.out.substr(0, table.out.find('\n')),
              "NAME   ROLE    CREATED              UPDATED              TOKENS");

    // What is stored: argon2id hashes and token digests, no secret anywhere in the files.
    {
        auto store = FleetStore::open(collector_database(dir_)).take();
        auto users = FleetUsers::open(*store).take();
        auto hashes = store->with_db([](StoreDb& db) {
            std::vector<std::string> out;
            auto q = db.prepare("SELECT password FROM fleet_users ORDER BY name").take();
            while (q.step() == SQLITE_ROW) out.push_back(q.text(0));
            return out;
        });
        ASSERT_EQ(hashes.size(), 2u);
        for (const auto& h : hashes) EXPECT_EQ(h.rfind("$argon2id$v=19$m=65536,t=3,p=1$", 0), 0u) << h;
        // The trailing newline of the file is not part of the password.
        EXPECT_TRUE(verify_password(hashes[0], pw));
        EXPECT_FALSE(verify_password(hashes[0], pw + "\n"));
        EXPECT_TRUE(verify_password(hashes[1], "viewer-pass"));
        EXPECT_EQ(users->check_token(token, kT0).take().outcome, TokenLookup::Valid);
    }
    std::string bytes = pf::testing::collector_database_contents(dir_);
    EXPECT_EQ(bytes.find(pw), std::string::npos);
    EXPECT_EQ(bytes.find("viewer-pass"), std::string::npos);
    EXPECT_EQ(bytes.find(token), std::string::npos);
    EXPECT_EQ(bytes.find(token.substr(4)), std::string::npos);
    EXPECT_NE(bytes.find(sha256_hex(token)), std::string::npos);

    // passwd: the new one works, the old one no longer.
    auto pass = run({"user", "passwd", "alice", "--password-file", password_file("new-password-1")});
    EXPECT_EQ(pass.rc, 0) << pass.err;
    {
        auto store = FleetStore::open(collector_database(dir_)).take();
        auto users = FleetUsers::open(*store).take();
        EXPECT_TRUE(users->verify_login("alice", "new-password-1").take().has_value());
        EXPECT_FALSE(users->verify_login("alice", pw).take().has_value());
    }

    // del: the user, its tokens and its sessions.
    {
        auto store = FleetStore::open(collector_database(dir_)).take();
        auto users = FleetUsers::open(*store).take();
        users->create_session("alice", kT0, "127.0.0.1").take();
    }
    auto del = run({"user", "del", "alice"});
    EXPECT_EQ(del.rc, 0) << del.err;
    auto store = FleetStore::open(collector_database(dir_)).take();
    EXPECT_EQ(store->count("fleet_user_tokens").take(), 0);
    EXPECT_EQ(store->count("fleet_sessions").take(), 0);
    EXPECT_EQ(json::parse(run({"user", "list", "--json"}).out)["users"].size(), 1u);
}

// An unknown name costs an argon2id verification too: its answer takes as long.
TEST(FleetUsers, UnknownNameTakesTheSameTime) {
    const std::string dir = make_tmpdir();
    auto store = FleetStore::open(collector_database(dir)).take();
    auto users = FleetUsers::open(*store).take();  // the production cost
    ASSERT_TRUE(users->add("alice", "admin", "alice-password", kT0).ok());
    ASSERT_TRUE(users->prepare_logins().ok());
    auto timed = [&](const std::string& name) {
        auto t = std::chrono::steady_clock::now();
        EXPECT_FALSE(users->verify_login(name, "wrong-password").take().has_value());
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    const double known = timed("alice"), unknown = timed("mallory"), invalid = timed("not a name");
    // Without the dummy hash an unknown name would answer in well under 1% of the time;
    // a quarter leaves room for a loaded machine.
    EXPECT_GT(unknown, known * 0.25) << known << " vs " << unknown;
    EXPECT_GT(invalid, known * 0.25) << known << " vs " << invalid;
    EXPECT_GT(known, 0.01);  // really hashed
    std::filesystem::remove_all(dir);
}

// ---- the server ---------------------------------------------------------------------------

class LoginTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = make_tmpdir();
        CollectorOptions o = testing::local_collector(dir_, clock_);
        o.password_hash = testing::cheap_argon2();
        server_ = CollectorServer::start(o).take();
        users_ = FleetUsers::open(server_->store(), testing::cheap_argon2()).take();
        ASSERT_TRUE(users_->add("alice", "admin", "alice-password", kT0).ok());
        ASSERT_TRUE(users_->add("victor", "viewer", "victor-password", kT0).ok());
    }
    void TearDown() override {
        users_.reset();
        server_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    HttpResponse request(HttpMethod m, const std::string& path, const std::string& body,
                         std::vector<std::string> headers) {
        return testing::collector_request(server_->port(), m, path, body, std::move(headers));
    }
    HttpResponse login(const std::string& user, const std::string& password) {
        return request(HttpMethod::Post, "/api/v1/login", json{{"user", user}, {"password", password}}.dump(), {});
    }
    HttpResponse get(const std::string& path, std::vector<std::string> headers) {
        return request(HttpMethod::Get, path, "", std::move(headers));
    }
    static std::string cookie_of(const HttpResponse& r) { return testing::session_cookie(r); }

    std::string dir_;
    std::atomic<int64_t> clock_{kT0};
    std::unique_ptr<CollectorServer> server_;
    std::unique_ptr<FleetUsers> users_;
};

TEST_F(LoginTest, SessionCookieMeAndLogout) {
    LogCapture log;
    auto r = login("alice", "alice-password");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string set = r.header("Set-Cookie");
    const std::string sid = set.substr(std::string("pf_session=").size(), 64);
    // The CSRF token is the session's: HMAC-SHA256 keyed with its id (not the id itself).
    const std::string csrf = session_csrf_token(sid);
    EXPECT_TRUE(std::regex_match(csrf, std::regex("[0-9a-f]{64}")));
    EXPECT_NE(csrf, sid);
    EXPECT_EQ(json::parse(r.body), (json{{"user", "alice"}, {"role", "admin"}, {"csrf_token", csrf}}));
    EXPECT_TRUE(std::regex_match(set, std::regex("pf_session=[0-9a-f]{64}; Path=/; Max-Age=604800; HttpOnly; "
                                                 "SameSite=Strict")))
        << set;  // no Secure over plain HTTP
    const std::string cookie = cookie_of(r);

    auto me = get("/api/v1/me", {cookie});
    EXPECT_EQ(me.status, 200);
    EXPECT_EQ(json::parse(me.body), (json{{"user", "alice"}, {"role", "admin"}, {"csrf_token", csrf}}));
    auto none = get("/api/v1/me", {});
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(json::parse(none.body)["status"], "error");

    // A live session's logout needs its CSRF token.
    auto forged = request(HttpMethod::Post, "/api/v1/logout", "", {cookie});
    EXPECT_EQ(forged.status, 403);
    EXPECT_EQ(get("/api/v1/me", {cookie}).status, 200);
    auto out = request(HttpMethod::Post, "/api/v1/logout", "", {cookie, "X-CSRF-Token: " + csrf});
    EXPECT_EQ(out.status, 200);
    EXPECT_EQ(out.body, R"j({"status":"ok"})j");
    EXPECT_EQ(out.header("Set-Cookie").rfind("pf_session=; Path=/; Max-Age=0;", 0), 0u) << out.header("Set-Cookie");
    auto after = get("/api/v1/me", {cookie});
    EXPECT_EQ(after.status, 401);
    EXPECT_EQ(json::parse(after.body)["message"],
              "the session ended (logged out, idle for 12 h or 7 days old): log in again");
    EXPECT_EQ(server_->store().count("fleet_sessions").take(), 0);
    // An ended session's logout only clears the cookie: there is nothing left to protect.
    auto again = request(HttpMethod::Post, "/api/v1/logout", "", {cookie});
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.header("Set-Cookie").rfind("pf_session=; Path=/; Max-Age=0;", 0), 0u);

    // Every attempt is logged, never the password.
    EXPECT_EQ(login("alice", "wrong-password").status, 401);
    const std::string text = log.text();
    EXPECT_NE(text.find("login from 127.0.0.1 as 'alice': accepted (role admin)"), std::string::npos) << text;
    EXPECT_NE(text.find("login from 127.0.0.1 as 'alice': refused (401): wrong user name or password"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("logout from 127.0.0.1: user 'alice'"), std::string::npos) << text;
    EXPECT_EQ(text.find("alice-password"), std::string::npos);
    EXPECT_EQ(text.find("wrong-password"), std::string::npos);
}

TEST_F(LoginTest, BadCredentialsAndBodies) {
    const json generic = json::parse(R"j({"status":"error","message":"wrong user name or password"})j");
    auto wrong = login("alice", "nope-nope-nope");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(json::parse(wrong.body), generic);
    EXPECT_EQ(wrong.header("Set-Cookie"), "");
    auto unknown = login("mallory", "alice-password");
    EXPECT_EQ(unknown.status, 401);
    EXPECT_EQ(json::parse(unknown.body), generic);

    auto post = [&](const std::string& body) { return request(HttpMethod::Post, "/api/v1/login", body, {}); };
    auto msg = [](const HttpResponse& r) { return json::parse(r.body)["message"].get<std::string>(); };
    auto a = post("{not json");
    EXPECT_EQ(a.status, 400);
    EXPECT_EQ(msg(a), "the body is not JSON");
    auto b = post("[1,2]");
    EXPECT_EQ(b.status, 400);
    EXPECT_EQ(msg(b), "the body must be a JSON object {\"user\", \"password\"}");
    auto c = post(R"j({"user":"alice"})j");
    EXPECT_EQ(c.status, 400);
    EXPECT_EQ(msg(c), "missing field 'password'");
    auto d = post(R"j({"user":"alice","password":12345678})j");
    EXPECT_EQ(d.status, 400);
    EXPECT_EQ(msg(d), "field 'password' must be a string");
    auto e = post(std::string(20000, ' '));
    EXPECT_EQ(e.status, 413);
    // Only JSON: what another site's form posts (text/plain, urlencoded) is refused.
    auto typed = [&](const std::string& type) {
        HttpRequest rq;
        rq.method = HttpMethod::Post;
        rq.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/login";
        rq.body = R"j({"user":"alice","password":"alice-password"})j";
        if (!type.empty()) rq.headers.push_back("Content-Type: " + type);
        return http_request(rq).take();
    };
    for (const char* type : {"text/plain", "application/x-www-form-urlencoded", ""}) {
        auto form = typed(type);
        EXPECT_EQ(form.status, 415) << type;
        EXPECT_EQ(form.body, R"j({"status":"error","message":"Content-Type must be application/json"})j");
        EXPECT_EQ(form.header("Set-Cookie"), "");
    }
    EXPECT_EQ(server_->store().count("fleet_sessions").take(), 0);
    // A media type's case and parameters do not matter.
    EXPECT_EQ(typed("Application/JSON; charset=utf-8").status, 200);
}

TEST_F(LoginTest, RolesThroughRequireAdmin) {
    const std::string admin = cookie_of(login("alice", "alice-password"));
    const std::string viewer = cookie_of(login("victor", "victor-password"));
    auto v = get("/api/v1/users", {viewer});
    EXPECT_EQ(v.status, 403);
    EXPECT_EQ(json::parse(v.body), json::parse(R"j({"status":"error","message":"this needs the admin role"})j"));
    EXPECT_EQ(json::parse(get("/api/v1/me", {viewer}).body)["role"], "viewer");
    auto a = get("/api/v1/users", {admin});
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(json::parse(a.body), json::parse(R"j({"users":[
        {"name":"alice","role":"admin","created":"2026-11-30 00:53:20","created_epoch":1796000000,
         "updated":"2026-11-30 00:53:20","updated_epoch":1796000000,"tokens":0},
        {"name":"victor","role":"viewer","created":"2026-11-30 00:53:20","created_epoch":1796000000,
         "updated":"2026-11-30 00:53:20","updated_epoch":1796000000,"tokens":0}]})j"));
    // An agent's token is not a user's.
    const std::string agent = server_->store().create_token("nas-1", kT0).take();
    auto ag = get("/api/v1/me", {"Authorization: Bearer " + agent});
    EXPECT_EQ(ag.status, 401);
    EXPECT_EQ(json::parse(ag.body)["message"],
              "an agent's token is not accepted here: use a user's API token (pfu_...) or log in");
}

TEST_F(LoginTest, ApiTokensAndExpiry) {
    const std::string t = users_->create_token("victor", kT0, kT0 + 86400).take();
    const std::string forever = users_->create_token("alice", kT0, std::nullopt).take();
    auto me = get("/api/v1/me", {"Authorization: Bearer " + t});
    EXPECT_EQ(me.status, 200);
    EXPECT_EQ(json::parse(me.body), json::parse(R"j({"user":"victor","role":"viewer"})j"));
    EXPECT_EQ(get("/api/v1/users", {"Authorization: Bearer " + t}).status, 403);
    EXPECT_EQ(get("/api/v1/users", {"Authorization: Bearer " + forever}).status, 200);

    clock_ = kT0 + 86399;
    EXPECT_EQ(get("/api/v1/me", {"Authorization: Bearer " + t}).status, 200);
    clock_ = kT0 + 86400;
    auto expired = get("/api/v1/me", {"Authorization: Bearer " + t});
    EXPECT_EQ(expired.status, 401);
    EXPECT_EQ(json::parse(expired.body), json::parse(R"j({"status":"error","message":"token expired"})j"));
    EXPECT_EQ(get("/api/v1/me", {"Authorization: Bearer " + forever}).status, 200);

    auto bogus = get("/api/v1/me", {"Authorization: Bearer pfu_" + std::string(64, '0')});
    EXPECT_EQ(bogus.status, 401);
    EXPECT_EQ(json::parse(bogus.body)["message"], "unknown or revoked token");
    // Deleting the user ends its tokens.
    ASSERT_TRUE(users_->remove("alice").ok());
    EXPECT_EQ(get("/api/v1/me", {"Authorization: Bearer " + forever}).status, 401);
}

TEST_F(LoginTest, SessionsEndWhenIdleOrOld) {
    std::string c = cookie_of(login("alice", "alice-password"));
    clock_ = kT0 + kSessionIdle;  // used within 12 h: still on, renewed
    EXPECT_EQ(get("/api/v1/me", {c}).status, 200);
    clock_ = kT0 + 2 * kSessionIdle + 1;  // idle for 12 h and a second
    EXPECT_EQ(get("/api/v1/me", {c}).status, 401);

    clock_ = kT0;
    c = cookie_of(login("alice", "alice-password"));
    for (int64_t t = kT0; t < kT0 + kSessionMax; t += kSessionIdle / 2) {
        clock_ = t;
        ASSERT_EQ(get("/api/v1/me", {c}).status, 200) << t - kT0;
    }
    clock_ = kT0 + kSessionMax;  // 7 days, however busy
    EXPECT_EQ(get("/api/v1/me", {c}).status, 401);
    // A new password ends the sessions made with the old one.
    clock_ = kT0;
    c = cookie_of(login("alice", "alice-password"));
    ASSERT_TRUE(users_->set_password("alice", "alice-password-2", kT0).ok());
    EXPECT_EQ(get("/api/v1/me", {c}).status, 401);
}

TEST_F(LoginTest, RateLimitExactly) {
    LogCapture log;
    for (int i = 0; i < 5; i++) {
        clock_ = kT0 + i;
        ASSERT_EQ(login("alice", "wrong-" + std::to_string(i) + "-password").status, 401) << i;
    }
    // The sixth attempt is refused before the password is looked at, the right one too.
    clock_ = kT0 + 10;
    auto limited = login("alice", "alice-password");
    EXPECT_EQ(limited.status, 429);
    EXPECT_EQ(limited.header("Retry-After"), "290");
    EXPECT_EQ(json::parse(limited.body),
              json::parse(R"j({"status":"error","message":"too many failed logins: try again in 290 s"})j"));
    // The address is over the limit too: another name from it waits as long.
    EXPECT_EQ(login("victor", "victor-password").status, 429);
    EXPECT_EQ(server_->store().count("fleet_sessions").take(), 0);
    EXPECT_NE(log.text().find("login from 127.0.0.1 as 'alice': refused (429): too many failed logins, retry in 290 s"),
              std::string::npos)
        << log.text();

    clock_ = kT0 + 299;  // the first failure is still in the window
    EXPECT_EQ(login("alice", "alice-password").header("Retry-After"), "1");
    clock_ = kT0 + 300;  // it left: one attempt free, and it is right
    auto ok = login("alice", "alice-password");
    EXPECT_EQ(ok.status, 200) << ok.body;
    // Four failures still in the window, plus one: limited again.
    EXPECT_EQ(login("alice", "wrong-again-password").status, 401);
    EXPECT_EQ(login("victor", "victor-password").status, 429);
}

}  // namespace
}  // namespace pf
