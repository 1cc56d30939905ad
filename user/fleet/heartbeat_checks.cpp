#include "peakflow/fleet/heartbeat_checks.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "peakflow/common/fd.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/version.hpp"

namespace pf {
namespace {

std::string endpoint(const std::string& host, int port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

CheckResult check_tcp(const HeartbeatCheck& c) {
    const std::string where = endpoint(c.target, c.port);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(c.port);
    if (int rc = getaddrinfo(c.target.c_str(), port.c_str(), &hints, &res); rc != 0)
        return {false, "resolve " + c.target + ": " + gai_strerror(rc)};
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(c.timeout);
    std::string why = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
        Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
        if (!fd.valid()) {
            why = std::string("socket: ") + std::strerror(errno);
            continue;
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) return {true, ""};
        if (errno != EINPROGRESS) {
            why = "connect to " + where + ": " + std::strerror(errno);
            continue;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd.get(), POLLOUT, 0};
        int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
        if (n == 0) {
            why = "connect to " + where + ": no answer within " + std::to_string(c.timeout).substr(0, 4) + " s";
            break;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (n < 0)
            err = errno;
        else if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0) return {true, ""};
        why = "connect to " + where + ": " + std::strerror(err);
    }
    return {false, why};
}

CheckResult check_systemd(const HeartbeatCheck& c) {
    sd_bus* raw = nullptr;
    if (int r = sd_bus_open_system(&raw); r < 0)
        return {false, "cannot reach systemd on the system bus: " + std::string(std::strerror(-r))};
    std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)> bus(raw, sd_bus_flush_close_unref);
    sd_bus_set_method_call_timeout(bus.get(), static_cast<uint64_t>(c.timeout * 1e6));
    char* path = nullptr;
    if (int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", c.target.c_str(), &path); r < 0)
        return {false, "unit name " + c.target + ": " + std::strerror(-r)};
    std::unique_ptr<char, decltype(&free)> path_guard(path, free);
    sd_bus_error err = SD_BUS_ERROR_NULL;
    char* state = nullptr;
    int r = sd_bus_get_property_string(bus.get(), "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                       "ActiveState", &err, &state);
    if (r < 0) {
        std::string why = "ask systemd about " + c.target + ": " +
                          (err.message ? std::string(err.message) : std::string(std::strerror(-r)));
        sd_bus_error_free(&err);
        return {false, why};
    }
    std::string s = state ? state : "";
    free(state);
    if (s == "active" || s == "reloading") return {true, ""};
    return {false, c.target + " is " + s};
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    return s;
}

CheckResult check_process(const HeartbeatCheck& c, const Paths& paths) {
    DIR* d = ::opendir(paths.procfs.c_str());
    if (!d) return {false, "read " + paths.procfs + ": " + std::strerror(errno)};
    struct Closer {
        void operator()(DIR* x) const { ::closedir(x); }
    };
    std::unique_ptr<DIR, Closer> guard(d);
    // The kernel keeps 15 bytes of a name in comm; the argv[0] base name has all of it.
    const std::string comm = c.target.substr(0, 15);
    while (dirent* e = ::readdir(d)) {
        bool pid = e->d_name[0] != '\0';
        for (const char* p = e->d_name; *p; p++) pid = pid && *p >= '0' && *p <= '9';
        if (!pid) continue;
        const std::string dir = paths.procfs + "/" + e->d_name;
        if (first_line(dir + "/comm") != comm) continue;
        if (c.target.size() <= 15) return {true, ""};
        std::ifstream in(dir + "/cmdline", std::ios::binary);
        std::string argv0;
        std::getline(in, argv0, '\0');
        if (argv0.substr(argv0.rfind('/') + 1) == c.target) return {true, ""};
    }
    return {false, "no process named " + c.target};
}

bool numeric_ip(const std::string& s, int& family) {
    unsigned char b[16];
    if (inet_pton(AF_INET, s.c_str(), b) == 1) {
        family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), b) == 1) {
        family = AF_INET6;
        return true;
    }
    return false;
}

}  // namespace

CheckResult run_heartbeat_check(const HeartbeatCheck& c, const Paths& paths) {
    switch (c.kind) {
        case HeartbeatCheck::Kind::Tcp: return check_tcp(c);
        case HeartbeatCheck::Kind::Systemd: return check_systemd(c);
        case HeartbeatCheck::Kind::Process: return check_process(c, paths);
    }
    return {false, "unknown check"};
}

std::string source_address_for(const std::string& url) {
    // scheme://host[:port]/...: the host, brackets off an IPv6 literal.
    auto start = url.find("://");
    if (start == std::string::npos) return "";
    std::string rest = url.substr(start + 3);
    rest = rest.substr(0, rest.find('/'));
    if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
    std::string host;
    if (!rest.empty() && rest[0] == '[') {
        host = rest.substr(1, rest.find(']') - 1);
    } else {
        host = rest.substr(0, rest.find(':'));
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), "9", &hints, &res) != 0) return "";
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    for (addrinfo* a = res; a; a = a->ai_next) {
        Fd fd(::socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd.valid() || ::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) continue;
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
        char buf[INET6_ADDRSTRLEN] = {};
        const void* addr = local.ss_family == AF_INET
                               ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
                               : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
        if (inet_ntop(local.ss_family, addr, buf, sizeof buf)) return buf;
    }
    return "";
}

std::string heartbeat_ip(const HeartbeatCheck& c, const std::string& fallback) {
    if (!c.ip.empty()) return c.ip;
    int family = 0;
    if (c.kind == HeartbeatCheck::Kind::Tcp && numeric_ip(c.target, family)) {
        const bool loopback = (family == AF_INET && c.target.rfind("127.", 0) == 0) || c.target == "::1";
        if (!loopback) return c.target;
    }
    return fallback;
}

int send_heartbeat(const HeartbeatSendOptions& o, std::ostream& out, std::ostream& err) {
    std::string url = o.url;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        err << "peakflow-bpf: heartbeat send: --url must be an http:// or https:// URL\n";
        return 1;
    }
    // The collector's base URL gets the requirements' path.
    const size_t path = url.find('/', url.find("://") + 3);
    if (path == std::string::npos || url.substr(path) == "/") url = url.substr(0, path) + "/heartbeat/report";
    std::string ip = o.ip.empty() ? source_address_for(url) : o.ip;
    if (ip.empty()) {
        err << "peakflow-bpf: heartbeat send: cannot tell this host's address towards " << url
            << " (no route, or a name that does not resolve): give --ip\n";
        return 1;
    }
    nlohmann::json body = {{"ip_address", ip}, {"service_name", o.service_name}};
    HttpRequest req;
    req.method = HttpMethod::Post;
    req.url = url;
    req.headers = {"Content-Type: application/json"};
    if (!o.token.empty()) req.headers.push_back("Authorization: Bearer " + o.token);
    req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.ca_file = o.ca_file;
    req.user_agent = "peakflow-bpf/" + std::string(kVersion);
    req.connect_timeout = std::chrono::seconds(10);
    req.timeout = std::chrono::seconds(30);
    req.max_response_bytes = 64 * 1024;
    req.over_cap = OverCap::Fail;
    auto r = http_request(req);
    if (!r) {
        err << "peakflow-bpf: heartbeat send: " << r.error().message() << "\n";
        return 1;
    }
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    auto text = [&](const nlohmann::json& v, const char* key) -> std::string {
        if (!v.is_object() || !v.contains(key)) return "";
        const auto& x = v[key];
        return x.is_string() ? x.get<std::string>() : x.is_number_integer() ? std::to_string(x.get<int64_t>()) : "";
    };
    if (r->status != 200) {
        std::string msg = text(j, "message");
        // The answer is another program's text: no control characters reach the terminal.
        for (char& c : msg)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
        err << "peakflow-bpf: heartbeat send: " << url << " answered HTTP " << r->status
            << (msg.empty() ? "" : ": " + msg.substr(0, 300)) << "\n";
        return 1;
    }
    const nlohmann::json data = j.is_object() && j.contains("data") ? j["data"] : nlohmann::json();
    out << "heartbeat recorded: " << o.service_name << " at " << ip << " (id " << text(data, "id") << ", "
        << text(data, "report_time") << ")\n";
    return 0;
}

}  // namespace pf
