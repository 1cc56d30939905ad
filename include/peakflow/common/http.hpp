#pragma once
// The HTTP client layer over libcurl: move-only owners of an easy handle and a string list
// (also for the SMTP and FTP/SFTP code, which set their own options), and one request
// function for everything that speaks HTTP. Redirects are never followed, every request
// has a total and a connect timeout, and the answer kept in memory is capped.
//
// curl_global_init is not called here: the code that uses libcurl first does it once.

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "peakflow/common/error.hpp"

namespace pf {

// Owner of a CURL* easy handle: a new handle (curl_easy_init), empty if that failed.
class CurlEasy {
  public:
    CurlEasy();
    CurlEasy(const CurlEasy&) = delete;
    CurlEasy& operator=(const CurlEasy&) = delete;
    CurlEasy(CurlEasy&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    CurlEasy& operator=(CurlEasy&& o) noexcept {
        if (this != &o) {
            if (c_) curl_easy_cleanup(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    ~CurlEasy() {
        if (c_) curl_easy_cleanup(c_);
    }

    CURL* get() const { return c_; }
    explicit operator bool() const { return c_ != nullptr; }

  private:
    CURL* c_ = nullptr;
};

// Owner of a curl_slist (headers, recipients, quote commands). It must outlive the
// transfer that uses it: libcurl keeps the pointer, not a copy.
class CurlSlist {
  public:
    CurlSlist() = default;
    CurlSlist(const CurlSlist&) = delete;
    CurlSlist& operator=(const CurlSlist&) = delete;
    CurlSlist(CurlSlist&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    CurlSlist& operator=(CurlSlist&& o) noexcept {
        if (this != &o) {
            curl_slist_free_all(l_);
            l_ = std::exchange(o.l_, nullptr);
        }
        return *this;
    }
    ~CurlSlist() { curl_slist_free_all(l_); }

    // False when out of memory (the list is then unchanged).
    bool append(const std::string& s) {
        curl_slist* n = curl_slist_append(l_, s.c_str());
        if (!n) return false;
        l_ = n;
        return true;
    }
    curl_slist* get() const { return l_; }

  private:
    curl_slist* l_ = nullptr;
};

enum class HttpMethod { Get, Post, Put, Delete };  // Put and Delete send the body as Post does

// What to do with an answer body larger than HttpRequest::max_response_bytes.
enum class OverCap {
    Fail,      // abort the transfer, the request is an error
    Truncate,  // keep the first max_response_bytes, read and drop the rest, set truncated
};

struct HttpRequest {
    HttpMethod method = HttpMethod::Get;
    std::string url;
    std::vector<std::string> headers;                  // "Name: value"
    std::string body;                                  // POST only
    bool form = false;                                 // body is application/x-www-form-urlencoded
    std::string user_agent;                            // "": no User-Agent header
    std::string ca_file;                               // "": the system's CAs; else trust these (a private CA)
    std::chrono::milliseconds timeout{30000};          // the whole request
    std::chrono::milliseconds connect_timeout{10000};  // the connection alone
    size_t max_response_bytes = 1u << 20;
    OverCap over_cap = OverCap::Fail;
};

struct HttpResponse {
    long status = 0;
    std::string body;
    bool truncated = false;  // OverCap::Truncate dropped the end of the body
    // The final answer's header lines, "Name: value" as sent (without the status line).
    std::vector<std::string> headers;
    // The value of the first header `name` (case-insensitive), "" when there is none.
    std::string header(const std::string& name) const;
};

// Sends req and returns the status and body of the answer, whatever the status (a 3xx is
// returned as it is, not followed). An error means no complete answer: the connection
// failed, the timeout struck, or (OverCap::Fail) the body was over the cap. The error
// text is libcurl's ("Timeout was reached", "Couldn't connect to server") or names the cap.
Result<HttpResponse> http_request(const HttpRequest& req);

// Percent-encodes every byte but A-Z a-z 0-9 - . _ ~ (for query string values).
std::string url_escape(const std::string& s);

}  // namespace pf
