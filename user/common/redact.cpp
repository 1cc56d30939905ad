#include "peakflow/common/redact.hpp"

#include <algorithm>

namespace pf {

namespace {

constexpr const char* kMasked = "****";

// "k=v&k2=v2" with each non-empty value masked; a parameter without '=' may itself be a
// token ("?SECRET"), so it is masked whole.
std::string mask_query(const std::string& q) {
    std::string out;
    size_t start = 0;
    while (start <= q.size()) {
        size_t end = q.find('&', start);
        if (end == std::string::npos) end = q.size();
        std::string param = q.substr(start, end - start);
        if (auto eq = param.find('='); eq != std::string::npos)
            out += param.substr(0, eq + 1) + (eq + 1 < param.size() ? kMasked : "");
        else if (!param.empty())
            out += kMasked;
        if (end == q.size()) break;
        out += '&';
        start = end + 1;
    }
    return out;
}

}  // namespace

std::string mask_url_secrets(const std::string& url) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const size_t auth = scheme + 3;
    const size_t auth_end = std::min(url.find_first_of("/?#", auth), url.size());
    std::string out = url.substr(0, auth);
    // The last '@' ends the user info: a password may contain '@' itself.
    const size_t at = url.rfind('@', auth_end == 0 ? 0 : auth_end - 1);
    size_t host = auth;
    if (at != std::string::npos && at >= auth) {
        const std::string userinfo = url.substr(auth, at - auth);
        const size_t colon = userinfo.find(':');
        out += colon == std::string::npos ? userinfo : userinfo.substr(0, colon + 1) + kMasked;
        out += '@';
        host = at + 1;
    }
    const size_t fragment = std::min(url.find('#', auth_end), url.size());
    const size_t query = url.find('?', auth_end);
    if (query >= fragment) return out + url.substr(host);
    return out + url.substr(host, query + 1 - host) + mask_query(url.substr(query + 1, fragment - query - 1)) +
           url.substr(fragment);
}

std::string mask_url_in(const std::string& text, const std::string& url) {
    if (url.empty()) return text;
    const std::string masked = mask_url_secrets(url);
    if (masked == url) return text;
    std::string out = text;
    for (size_t p = out.find(url); p != std::string::npos; p = out.find(url, p + masked.size()))
        out.replace(p, url.size(), masked);
    return out;
}

}  // namespace pf
