#include "peakflow/common/http.hpp"

#include <strings.h>

namespace pf {

CurlEasy::CurlEasy() : c_(curl_easy_init()) {}

namespace {

struct Collector {
    std::string body;
    size_t cap = 0;
    OverCap over_cap = OverCap::Fail;
    bool over = false;
};

size_t collect(char* p, size_t size, size_t n, void* ud) {
    auto* c = static_cast<Collector*>(ud);
    const size_t len = size * n;
    const size_t room = c->cap - c->body.size();
    if (len <= room) {
        c->body.append(p, len);
        return len;
    }
    c->over = true;
    if (c->over_cap == OverCap::Fail) return 0;  // anything but len aborts the transfer
    c->body.append(p, room);
    return len;  // the rest is read and dropped, so the status and outcome stay the server's
}

// Header lines of each answer; an interim (1xx) or earlier answer's lines are dropped when
// the next status line arrives. Capped like the body, at 256 lines.
size_t collect_header(char* p, size_t size, size_t n, void* ud) {
    auto* h = static_cast<std::vector<std::string>*>(ud);
    std::string line(p, size * n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.rfind("HTTP/", 0) == 0)
        h->clear();
    else if (!line.empty() && h->size() < 256)
        h->push_back(std::move(line));
    return size * n;
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
    for (const auto& h : headers) {
        const size_t colon = h.find(':');
        if (colon != name.size() || strncasecmp(h.data(), name.data(), colon) != 0) continue;
        size_t v = colon + 1;
        while (v < h.size() && (h[v] == ' ' || h[v] == '\t')) v++;
        return h.substr(v);
    }
    return "";
}

Result<HttpResponse> http_request(const HttpRequest& req) {
    CurlEasy c;
    if (!c) return Error("curl_easy_init failed");
    CurlSlist headers;
    bool listed = true;
    for (const auto& h : req.headers) listed = listed && headers.append(h);
    if (req.form) listed = listed && headers.append("Content-Type: application/x-www-form-urlencoded");
    // No "Expect: 100-continue" for larger bodies: waiting for the interim answer only eats
    // into the timeout, and some services never send one.
    listed = listed && headers.append("Expect:");
    if (!listed) return Error("out of memory building the headers for", req.url);

    Collector out;
    out.cap = req.max_response_bytes;
    out.over_cap = req.over_cap;
    CURL* h = c.get();
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    if (req.method != HttpMethod::Get) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.c_str());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
    if (req.method == HttpMethod::Put) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    if (req.method == HttpMethod::Delete) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    // A redirect is an answer like any other: the caller sees the 3xx. Following it could
    // carry the body and headers (tokens) to another host.
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for DNS timeouts
    if (!req.user_agent.empty()) curl_easy_setopt(h, CURLOPT_USERAGENT, req.user_agent.c_str());
    if (!req.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, req.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    std::vector<std::string> answer_headers;
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &answer_headers);

    const CURLcode rc = curl_easy_perform(h);
    if (out.over && req.over_cap == OverCap::Fail)
        return Error("answer larger than " + std::to_string(req.max_response_bytes) + " bytes");
    if (rc != CURLE_OK) return Error(curl_easy_strerror(rc));
    HttpResponse r;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = std::move(out.body);
    r.truncated = out.over;
    r.headers = std::move(answer_headers);
    return r;
}

std::string url_escape(const std::string& s) {
    // The handle argument is ignored since libcurl 7.82.
    char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
    std::string r = e ? e : "";
    curl_free(e);
    return r;
}

}  // namespace pf
