#pragma once
// What the collector's server tests use to run one on 127.0.0.1 and talk to it as a user:
// the options of a test server (a free port, the test's clock, no offline watch, two
// threads), a request, a login's session cookie, and a cheap argon2id for the many hashes.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "peakflow/common/http.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "test_postgres.hpp"

namespace pf::testing {

// The production cost (Argon2Params{}) stays for the hashing tests themselves.
inline Argon2Params cheap_argon2() {
    Argon2Params p;
    p.t_cost = 1;
    p.m_cost_kib = 1024;
    return p;
}

inline CollectorOptions local_collector(const std::string& dir, std::atomic<int64_t>& clock,
                                        const std::string& timezone = "UTC") {
    CollectorOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.database = collector_database(dir);  // SQLite, or PostgreSQL under PF_TEST_STORE
    o.timezone = timezone;
    o.clock = [&clock] { return clock.load(); };
    o.watch = false;
    o.threads = 2;
    return o;
}

// A request to the server on 127.0.0.1:port; a POST's body is JSON.
inline HttpResponse collector_request(int port, HttpMethod m, const std::string& path, const std::string& body,
                                      std::vector<std::string> headers) {
    HttpRequest rq;
    rq.method = m;
    rq.url = "http://127.0.0.1:" + std::to_string(port) + path;
    rq.body = body;
    rq.headers = std::move(headers);
    if (m == HttpMethod::Post) rq.headers.push_back("Content-Type: application/json");
    auto r = http_request(rq);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : HttpResponse{};
}

// "Cookie: pf_session=..." from a login's Set-Cookie.
inline std::string session_cookie(const HttpResponse& login) {
    const std::string c = login.header("Set-Cookie");
    return "Cookie: " + c.substr(0, c.find(';'));
}

}  // namespace pf::testing
