#include "peakflow/common/http.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include "local_http_server.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

namespace pf {
namespace {

using testing::LocalServer;

HttpRequest get(const std::string& url) {
    HttpRequest r;
    r.url = url;
    r.timeout = std::chrono::seconds(5);
    r.connect_timeout = std::chrono::seconds(2);
    return r;
}

TEST(Http, ReturnsTheExactStatusAndBody) {
    // Binary-safe: a NUL and bytes above 0x7f come back as sent.
    const std::string answer = std::string("{\"id\":7}\0\xff\n", 11);
    std::string got_method, got_body, got_ct, got_auth, got_ua, got_expect, got_target;
    LocalServer srv([&](httplib::Server& s) {
        s.Post("/api/points", [&](const httplib::Request& rq, httplib::Response& rs) {
            got_method = rq.method;
            got_body = rq.body;
            got_ct = rq.get_header_value("Content-Type");
            got_auth = rq.get_header_value("Authorization");
            got_ua = rq.get_header_value("User-Agent");
            got_expect = rq.get_header_value("Expect");
            got_target = rq.target;
            rs.status = 201;
            rs.set_content(answer, "application/octet-stream");
        });
        s.Get("/plain", [](const httplib::Request&, httplib::Response& rs) { rs.set_content("hello", "text/plain"); });
    });

    HttpRequest rq = get(srv.url("/api/points?x=1"));
    rq.method = HttpMethod::Post;
    rq.headers = {"Content-Type: application/json", "Authorization: Bearer t0k"};
    rq.body = std::string(3000, 'b');  // above curl's old 1024-byte Expect threshold
    rq.user_agent = "peakflow-bpf";
    auto r = http_request(rq);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->body, answer);
    EXPECT_FALSE(r->truncated);
    EXPECT_EQ(got_method, "POST");
    EXPECT_EQ(got_body, rq.body);
    EXPECT_EQ(got_ct, "application/json");
    EXPECT_EQ(got_auth, "Bearer t0k");
    EXPECT_EQ(got_ua, "peakflow-bpf");
    EXPECT_EQ(got_expect, "");
    EXPECT_EQ(got_target, "/api/points?x=1");

    auto p = http_request(get(srv.url("/plain")));
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_EQ(p->status, 200);
    EXPECT_EQ(p->body, "hello");
    auto missing = http_request(get(srv.url("/nothing-here")));
    ASSERT_TRUE(missing.ok()) << missing.error().message();
    EXPECT_EQ(missing->status, 404);  // an HTTP error status is an answer, not a failure
}

TEST(Http, FormBodiesAreSentAsForms) {
    std::string got_ct, got_body;
    LocalServer srv([&](httplib::Server& s) {
        s.Post("/f", [&](const httplib::Request& rq, httplib::Response& rs) {
            got_ct = rq.get_header_value("Content-Type");
            got_body = rq.body;
            rs.set_content("ok", "text/plain");
        });
    });
    HttpRequest rq = get(srv.url("/f"));
    rq.method = HttpMethod::Post;
    rq.form = true;
    rq.body = "a=1&b=%20";
    auto r = http_request(rq);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(got_ct, "application/x-www-form-urlencoded");
    EXPECT_EQ(got_body, "a=1&b=%20");
}

TEST(Http, ARedirectIsReturnedNotFollowed) {
    std::atomic<int> target_hits{0};
    LocalServer srv([&](httplib::Server& s) {
        s.Post("/old", [](const httplib::Request&, httplib::Response& rs) {
            rs.status = 302;
            rs.set_header("Location", "/new");
            rs.set_content("moved", "text/plain");
        });
        s.Post("/new", [&](const httplib::Request&, httplib::Response& rs) {
            ++target_hits;
            rs.set_content("followed", "text/plain");
        });
        s.Get("/new", [&](const httplib::Request&, httplib::Response& rs) {
            ++target_hits;
            rs.set_content("followed", "text/plain");
        });
    });
    HttpRequest rq = get(srv.url("/old"));
    rq.method = HttpMethod::Post;
    rq.body = "secret";
    auto r = http_request(rq);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 302);
    EXPECT_EQ(r->body, "moved");
    EXPECT_EQ(target_hits.load(), 0);
}

TEST(Http, ABodyOverTheCapIsRefusedOrCutWhenAskedTo) {
    LocalServer srv([](httplib::Server& s) {
        s.Get("/big", [](const httplib::Request&, httplib::Response& rs) {
            rs.set_content(std::string(200000, 'x'), "text/plain");
        });
        s.Get("/exact", [](const httplib::Request&, httplib::Response& rs) {
            rs.set_content(std::string(1000, 'y'), "text/plain");
        });
    });
    HttpRequest rq = get(srv.url("/big"));
    rq.max_response_bytes = 1000;
    auto r = http_request(rq);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "answer larger than 1000 bytes");

    rq.over_cap = OverCap::Truncate;
    r = http_request(rq);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->truncated);
    EXPECT_EQ(r->body, std::string(1000, 'x'));

    // At the cap is not over it.
    HttpRequest at = get(srv.url("/exact"));
    at.max_response_bytes = 1000;
    r = http_request(at);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->truncated);
    EXPECT_EQ(r->body.size(), 1000u);
}

TEST(Http, ASilentServerGivesAnErrorAfterTheTotalTimeout) {
    // The handler holds the answer until the test lets it go (or 5 s), so the server stops quickly.
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    LocalServer srv([&](httplib::Server& s) {
        s.Get("/slow", [&](const httplib::Request&, httplib::Response& rs) {
            std::unique_lock lk(mu);
            cv.wait_for(lk, std::chrono::seconds(5), [&] { return release; });
            rs.set_content("late", "text/plain");
        });
    });
    HttpRequest rq = get(srv.url("/slow"));
    rq.timeout = std::chrono::milliseconds(400);
    rq.connect_timeout = std::chrono::milliseconds(400);
    auto start = std::chrono::steady_clock::now();
    auto r = http_request(rq);
    auto took = std::chrono::steady_clock::now() - start;
    {
        std::lock_guard lk(mu);
        release = true;
    }
    cv.notify_all();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "Timeout was reached");
    EXPECT_GE(took, std::chrono::milliseconds(350));
    EXPECT_LT(took, std::chrono::milliseconds(1500));
}

TEST(Http, ARefusedConnectionIsAnError) {
    auto r = http_request(get("http://127.0.0.1:1/x"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "Couldn't connect to server");
}

TEST(Http, OnlyHttpAndHttpsAreSpoken) {
    auto r = http_request(get("file:///etc/hostname"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "Unsupported protocol");
}

TEST(Http, UrlEscapeKeepsOnlyUnreservedCharacters) {
    EXPECT_EQ(url_escape("02:aa:bb:cc:dd:01"), "02%3Aaa%3Abb%3Acc%3Add%3A01");
    EXPECT_EQ(url_escape("2026-11-21 17:00"), "2026-11-21%2017%3A00");
    EXPECT_EQ(url_escape("a-b.c_d~e"), "a-b.c_d~e");
    EXPECT_EQ(url_escape(""), "");
}

TEST(Http, HandlesAreMoveOnlyOwners) {
    static_assert(!std::is_copy_constructible_v<CurlEasy> && std::is_nothrow_move_constructible_v<CurlEasy>);
    static_assert(!std::is_copy_constructible_v<CurlSlist> && std::is_nothrow_move_constructible_v<CurlSlist>);
    CurlEasy a;
    ASSERT_TRUE(a);
    CURL* raw = a.get();
    CurlEasy b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
    EXPECT_EQ(b.get(), raw);
    CurlSlist l;
    EXPECT_EQ(l.get(), nullptr);
    ASSERT_TRUE(l.append("one"));
    ASSERT_TRUE(l.append("two"));
    CurlSlist m = std::move(l);
    EXPECT_EQ(l.get(), nullptr);  // NOLINT(bugprone-use-after-move)
    ASSERT_NE(m.get(), nullptr);
    EXPECT_STREQ(m.get()->data, "one");
    EXPECT_STREQ(m.get()->next->data, "two");
}

}  // namespace
}  // namespace pf
