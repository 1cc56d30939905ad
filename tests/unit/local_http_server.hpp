#pragma once
// A cpp-httplib server on 127.0.0.1, on a free port, for a test's lifetime: the routes are
// set up by the caller before it listens.

#include <httplib.h>

#include <functional>
#include <string>
#include <thread>

namespace pf::testing {

class LocalServer {
  public:
    explicit LocalServer(const std::function<void(httplib::Server&)>& routes) {
        routes(srv_);
        port_ = srv_.bind_to_any_port("127.0.0.1");
        th_ = std::thread([this] { srv_.listen_after_bind(); });
    }
    // Every POST to `h`.
    explicit LocalServer(std::function<void(const httplib::Request&, httplib::Response&)> h)
        : LocalServer([h = std::move(h)](httplib::Server& s) {
              s.Post(".*", [h](const httplib::Request& rq, httplib::Response& rs) { h(rq, rs); });
          }) {}
    ~LocalServer() {
        srv_.stop();
        th_.join();
    }
    LocalServer(const LocalServer&) = delete;
    LocalServer& operator=(const LocalServer&) = delete;
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  private:
    httplib::Server srv_;
    int port_ = 0;
    std::thread th_;
};

}  // namespace pf::testing
