#pragma once
// Push sinks: each turns an OutboundMessage into one request to its service (DingTalk,
// ServerChan, WeCom, Feishu, a JSON webhook, a raw HTTP endpoint, or SMTP) and judges the
// answer: a message counts as delivered only on HTTP 2xx AND the service's own success code.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/push/push_config.hpp"
#include "peakflow/service/message_queue.hpp"

namespace pf {

// Where a message came from, for templates and history.
struct MessageMeta {
    std::string node;
    std::string host;
};

struct SendResult {
    bool ok = false;
    long http_status = 0;  // 0: no HTTP answer (connection failed, timeout)
    std::string answer;    // the body the service answered
    std::string error;     // why it is not ok ("" when ok)
};

// Pure parts, exposed for tests.
std::string url_encode(const std::string& s);
std::string base64(const std::string& bytes);
std::string hmac_sha256(const std::string& key, const std::string& msg);     // raw 32 bytes
std::string dingtalk_sign(const std::string& secret, int64_t timestamp_ms);  // base64, not url-encoded
std::string feishu_sign(const std::string& secret, int64_t timestamp_s);
std::string json_escape(const std::string& s);  // without the quotes
// Cuts text to at most `limit` bytes (on a UTF-8 character boundary), ending with
// "\n… (cut: N bytes omitted)" when it had to cut. Unchanged if it fits.
std::string cut_text(const std::string& text, size_t limit);
// Largest prefix length <= n of s that does not split a UTF-8 character.
size_t utf8_floor(const std::string& s, size_t n);
// Cuts to at most `limit` characters (UTF-8 code points), no note (titles).
std::string cut_chars(const std::string& text, size_t limit);
std::string render_template(const std::string& tmpl, const OutboundMessage& m, const MessageMeta& meta);

// Size limits we cut to (bytes of the text part); see README "Push: outbox and sinks".
inline constexpr size_t kDingTalkTextLimit = 20000;
inline constexpr size_t kWeComMarkdownLimit = 4096;
inline constexpr size_t kFeishuTextLimit = 18000;      // before JSON escaping; then cut further if need be
inline constexpr size_t kFeishuBodyLimit = 20 * 1024;  // custom bots take request bodies up to 20 KB
inline constexpr size_t kServerChanDespLimit = 32000;
inline constexpr size_t kServerChanTitleChars = 32;

// The request a sink sends for m at now_ms (signatures use it): a POST with its URL,
// headers and body; the sink adds its timeouts. Not for email.
HttpRequest render_request(const SinkConfig& s, const OutboundMessage& m, const MessageMeta& meta, int64_t now_ms);
// Judges an HTTP answer by the sink's rules.
SendResult judge_answer(const SinkConfig& s, long http_status, const std::string& body);
// The RFC 5322 message an email sink sends (CRLF line ends).
std::string render_email(const SinkConfig& s, const OutboundMessage& m, const MessageMeta& meta, int64_t now_s);

class Sink {
  public:
    virtual ~Sink() = default;
    virtual SendResult send(const OutboundMessage& m, const MessageMeta& meta) = 0;
};

// A sink that really sends (libcurl), with the per-request timeout in seconds.
std::unique_ptr<Sink> make_sink(const SinkConfig& s, double timeout_seconds, std::function<int64_t()> now_ms = nullptr);

}  // namespace pf
