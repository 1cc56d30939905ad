// metrics_listen's HOST:PORT. Apart from the metrics server, so that the config loader
// links without cpp-httplib and libbpf (the fuzz target).
#include <charconv>

#include "peakflow/daemon/metrics.hpp"

namespace pf {

Result<ListenAddr> parse_listen(const std::string& listen) {
    auto bad = [&](const std::string& why) {
        return Error("parse metrics listen address", listen, 0,
                     why + "; expected HOST:PORT such as 127.0.0.1:9977 or [::1]:9977");
    };
    ListenAddr a;
    std::string port;
    if (!listen.empty() && listen[0] == '[') {
        auto close = listen.find(']');
        if (close == std::string::npos) return bad("no closing ']'");
        a.host = listen.substr(1, close - 1);
        if (close + 1 >= listen.size() || listen[close + 1] != ':') return bad("no ':PORT' after ']'");
        port = listen.substr(close + 2);
        if (a.host.find(':') == std::string::npos) return bad("brackets are for IPv6 addresses");
    } else {
        auto colon = listen.rfind(':');
        if (colon == std::string::npos) return bad("no ':PORT'");
        a.host = listen.substr(0, colon);
        port = listen.substr(colon + 1);
        if (a.host.find(':') != std::string::npos) return bad("IPv6 addresses go in brackets");
    }
    if (a.host.empty()) return bad("no host");
    if (port.empty() || port.size() > 5) return bad("bad port '" + port + "'");
    auto r = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || a.port < 0 || a.port > 65535)
        return bad("bad port '" + port + "'");
    return a;
}

}  // namespace pf
