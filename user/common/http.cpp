#include "peakflow/common/http.hpp"

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

}  // namespace

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
    if (req.method == HttpMethod::Post) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.c_str());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
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

    const CURLcode rc = curl_easy_perform(h);
    if (out.over && req.over_cap == OverCap::Fail)
        return Error("answer larger than " + std::to_string(req.max_response_bytes) + " bytes");
    if (rc != CURLE_OK) return Error(curl_easy_strerror(rc));
    HttpResponse r;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = std::move(out.body);
    r.truncated = out.over;
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
