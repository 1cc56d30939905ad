#include "peakflow/push/sinks.hpp"
#include "peakflow/common/escape.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>

namespace pf {

std::string url_encode(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string o;
    for (unsigned char c : s) {
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            o += static_cast<char>(c);
        } else {
            o += '%';
            o += hex[c >> 4];
            o += hex[c & 15];
        }
    }
    return o;
}

std::string base64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string hmac_sha256(const std::string& key, const std::string& msg) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
         msg.size(), md, &len);
    return std::string(reinterpret_cast<char*>(md), len);
}

std::string dingtalk_sign(const std::string& secret, int64_t timestamp_ms) {
    return base64(hmac_sha256(secret, std::to_string(timestamp_ms) + "\n" + secret));
}

std::string feishu_sign(const std::string& secret, int64_t timestamp_s) {
    return base64(hmac_sha256(std::to_string(timestamp_s) + "\n" + secret, ""));
}

std::string json_escape(const std::string& s) {
    std::string q = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return q.substr(1, q.size() - 2);
}

std::string render_template(const std::string& tmpl, const OutboundMessage& m, const MessageMeta& meta) {
    const std::pair<const char*, const std::string*> vars[] = {
        {"{{title}}", &m.title},  {"{{text}}", &m.text},    {"{{kind}}", &m.kind}, {"{{period}}", &m.period},
        {"{{node}}", &meta.node}, {"{{host}}", &meta.host}, {"{{sink}}", &m.sink}, {"{{body}}", &m.body},
    };
    std::string out;
    size_t i = 0;
    while (i < tmpl.size()) {
        bool hit = false;
        if (tmpl.compare(i, 2, "{{") == 0) {
            for (const auto& [name, value] : vars) {
                size_t len = strlen(name);
                if (tmpl.compare(i, len, name) == 0) {
                    out += json_escape(*value);
                    i += len;
                    hit = true;
                    break;
                }
            }
        }
        if (!hit) out += tmpl[i++];
    }
    return out;
}

namespace {

const char* kDefaultTemplate =
    R"({"title":"{{title}}","text":"{{text}}","kind":"{{kind}}","period":"{{period}}","node":"{{node}}","host":"{{host}}"})";

std::string chat_text(const OutboundMessage& m) {
    return m.text.empty() ? m.title : m.text;
}

// The title is plain text; where a sink puts it into markdown, it is escaped there.
std::string markdown_text(const OutboundMessage& m) {
    return m.text.empty() ? md_text(m.title) : m.text;
}

std::string with_keyword(const SinkConfig& s, std::string text) {
    if (!s.keyword.empty() && text.find(s.keyword) == std::string::npos) text += "\n\n" + s.keyword;
    return text;
}

std::string default_url(const std::string& type) {
    if (type == "dingtalk") return "https://oapi.dingtalk.com/robot/send";
    if (type == "serverchan") return "https://sctapi.ftqq.com";
    if (type == "wecom") return "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";
    if (type == "feishu") return "https://open.feishu.cn/open-apis/bot/v2/hook";
    return "";
}

}  // namespace

HttpRequest render_request(const SinkConfig& s, const OutboundMessage& m, const MessageMeta& meta, int64_t now_ms) {
    HttpRequest r;
    r.method = HttpMethod::Post;
    std::string base = s.url.empty() ? default_url(s.type) : s.url;
    while (!base.empty() && base.back() == '/' && s.type != "webhook" && s.type != "http") base.pop_back();
    nlohmann::json j;
    if (s.type == "dingtalk") {
        r.url = base + "?access_token=" + url_encode(s.token);
        if (!s.secret.empty())
            r.url += "&timestamp=" + std::to_string(now_ms) + "&sign=" + url_encode(dingtalk_sign(s.secret, now_ms));
        // The keyword goes in before cutting, the cut note after: the text stays within the limit.
        std::string kw = s.keyword.empty() ? "" : "\n\n" + s.keyword;
        if (s.msgtype == "text") {
            std::string content = m.title + "\n\n" + chat_text(m);
            bool has_kw = s.keyword.empty() || content.find(s.keyword) != std::string::npos;
            content = cut_text(content, kDingTalkTextLimit - (has_kw ? 0 : kw.size()));
            j = {{"msgtype", "text"}, {"text", {{"content", with_keyword(s, content)}}}};
        } else {
            std::string text = markdown_text(m);
            bool has_kw = s.keyword.empty() || text.find(s.keyword) != std::string::npos ||
                          m.title.find(s.keyword) != std::string::npos;
            text = cut_text(text, kDingTalkTextLimit - (has_kw ? 0 : kw.size()));
            if (!has_kw) text += kw;
            j = {{"msgtype", "markdown"}, {"markdown", {{"title", m.title}, {"text", text}}}};
        }
    } else if (s.type == "serverchan") {
        r.url = base + "/" + s.sendkey + ".send";
        r.form = true;
        r.body = "title=" + url_encode(cut_chars(m.title.empty() ? m.kind : m.title, kServerChanTitleChars)) +
                 "&desp=" + url_encode(cut_text(markdown_text(m), kServerChanDespLimit));
        return r;
    } else if (s.type == "wecom") {
        r.url = base + "?key=" + url_encode(s.key);
        std::string head = "**" + md_text(m.title) + "**\n";
        j = {{"msgtype", "markdown"},
             {"markdown", {{"content", cut_text(head + markdown_text(m), kWeComMarkdownLimit)}}}};
    } else if (s.type == "feishu") {
        r.url = base + "/" + s.token;
        // The keyword goes in before cutting, as for DingTalk. The bot refuses request bodies
        // over 20 KB, and JSON escaping makes the body longer than the text (up to 6 bytes a
        // byte): where the body at the text limit is too long, the longest cut that fits is
        // searched for (the body grows with the cut).
        const std::string text = m.title + "\n\n" + chat_text(m);
        const std::string kw = s.keyword.empty() ? "" : "\n\n" + s.keyword;
        const bool has_kw = s.keyword.empty() || text.find(s.keyword) != std::string::npos;
        auto body = [&](size_t limit) {
            nlohmann::json b = {{"msg_type", "text"},
                                {"content", {{"text", cut_text(text, limit) + (has_kw ? "" : kw)}}}};
            if (!s.secret.empty()) {
                int64_t ts = now_ms / 1000;
                b["timestamp"] = std::to_string(ts);
                b["sign"] = feishu_sign(s.secret, ts);
            }
            return b.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        };
        const size_t limit = kFeishuTextLimit - (has_kw ? 0 : kw.size());
        r.body = body(limit);
        if (r.body.size() > kFeishuBodyLimit) {
            size_t fits = 0, too_long = limit;  // body(0) is the note alone
            while (too_long - fits > 1) {
                const size_t mid = fits + (too_long - fits) / 2;
                (body(mid).size() <= kFeishuBodyLimit ? fits : too_long) = mid;
            }
            r.body = body(fits);
        }
        r.headers.push_back("Content-Type: application/json; charset=utf-8");
        return r;
    } else if (s.type == "webhook") {
        r.url = base;
        r.body = render_template(s.tmpl.empty() ? kDefaultTemplate : s.tmpl, m, meta);
        r.headers.push_back("Content-Type: application/json");
        for (const auto& [k, v] : s.headers) r.headers.push_back(k + ": " + v);
        return r;
    } else if (s.type == "http") {
        r.url = base;
        r.body = m.body.empty() ? render_template(kDefaultTemplate, m, meta) : m.body;
        bool has_ct = false;
        for (const auto& [k, v] : s.headers) {
            r.headers.push_back(k + ": " + v);
            has_ct = has_ct || strcasecmp(k.c_str(), "content-type") == 0;
        }
        if (!has_ct) r.headers.push_back("Content-Type: application/json");
        return r;
    } else if (s.type == "collector") {
        // docs/fleet.md, "POST /api/v1/agents/alert": the collector files it under the
        // token's agent, once per body, so an outbox resend is not a second alert.
        r.url = base + "/api/v1/agents/alert";
        r.ca_file = s.ca_file;
        r.headers.push_back("Authorization: Bearer " + s.token);
        r.headers.push_back("Content-Type: application/json");
        // In the documented order: people read these bodies in captures.
        nlohmann::ordered_json b = {{"kind", m.kind}, {"period", m.period}, {"title", m.title},
                                    {"text", m.text}, {"node", meta.node},  {"host", meta.host}};
        r.body = b.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        return r;
    }
    r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    r.headers.push_back("Content-Type: application/json; charset=utf-8");
    return r;
}

namespace {

// A header value as is when it is printable ASCII; otherwise RFC 2047 encoded words (so
// a line break, from whatever produced the title, never starts a header line of its own),
// each at most 75 characters (45 bytes of UTF-8, never split inside a character), folded.
std::string mime_header(const std::string& v) {
    bool printable = true;
    for (unsigned char c : v) printable = printable && c >= 0x20 && c <= 0x7E;
    if (printable) return v;
    std::string out;
    for (size_t at = 0; at < v.size();) {
        size_t n = utf8_floor(v.substr(at), 45);
        if (n == 0) n = std::min<size_t>(45, v.size() - at);  // not UTF-8: bytes as they come
        out += (out.empty() ? "" : "\r\n ") + std::string("=?UTF-8?B?") + base64(v.substr(at, n)) + "?=";
        at += n;
    }
    return out;
}

}  // namespace

std::string render_email(const SinkConfig& s, const OutboundMessage& m, const MessageMeta& meta, int64_t now_s) {
    char date[64];
    time_t t = static_cast<time_t>(now_s);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tmv);
    std::string to;
    for (const auto& a : s.to) to += (to.empty() ? "" : ", ") + a;
    std::string body = chat_text(m);
    // CRLF line ends; a line with a lone "." is the SMTP end marker, so such lines are
    // doubled (libcurl does dot-stuffing itself, this is only for the line ends).
    std::string crlf;
    for (size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) crlf += '\r';
        crlf += body[i];
    }
    std::string host = meta.host.empty() ? "localhost" : meta.host;
    return "Date: " + std::string(date) + "\r\nFrom: " + s.from + "\r\nTo: " + to +
           "\r\nSubject: " + mime_header(m.title) + "\r\nMessage-ID: <peakflow-" + std::to_string(now_s) + "-" +
           m.kind + "@" + host + ">\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
           "Content-Transfer-Encoding: 8bit\r\n\r\n" + crlf + "\r\n";
}

namespace {

void curl_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// What is kept of a service's answer (it is judged and quoted in errors, never stored).
constexpr size_t kAnswerCap = 1u << 20;

struct ReadState {
    const std::string* data;
    size_t pos = 0;
};

size_t feed(char* buf, size_t size, size_t n, void* ud) {
    auto* r = static_cast<ReadState*>(ud);
    size_t len = std::min(size * n, r->data->size() - r->pos);
    memcpy(buf, r->data->data() + r->pos, len);
    r->pos += len;
    return len;
}

class CurlSink : public Sink {
  public:
    CurlSink(SinkConfig cfg, double timeout, std::function<int64_t()> now_ms)
        : cfg_(std::move(cfg)), timeout_ms_(static_cast<long>(timeout * 1000)), now_ms_(std::move(now_ms)) {
        curl_init_once();
        if (!now_ms_)
            now_ms_ = [] {
                return std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                    .count();
            };
    }

    SendResult send(const OutboundMessage& m, const MessageMeta& meta) override {
        if (cfg_.type == "email") return send_email(m, meta);
        HttpRequest req = render_request(cfg_, m, meta, now_ms_());
        req.user_agent = "peakflow-bpf";
        req.timeout = std::chrono::milliseconds(timeout_ms_);
        req.connect_timeout = std::chrono::milliseconds(timeout_ms_);
        req.max_response_bytes = kAnswerCap;
        req.over_cap = OverCap::Truncate;  // the status and the start of the answer are enough to judge
        auto r = http_request(req);
        if (!r) return SendResult{false, 0, "", r.error().message()};
        return judge_answer(cfg_, r->status, r->body);
    }

  private:
    SendResult send_email(const OutboundMessage& m, const MessageMeta& meta) {
        // The config refuses it at load; a config built otherwise (the collector's, tests)
        // meets the same rule here.
        if (smtp_auth_in_clear(cfg_)) return SendResult{false, 0, "", kPlaintextAuth};
        std::string msg = render_email(cfg_, m, meta, now_ms_() / 1000);
        CurlEasy easy;
        if (!easy) return SendResult{false, 0, "", "curl_easy_init failed"};
        CurlSlist rcpt;
        for (const auto& a : cfg_.to) rcpt.append(a);
        ReadState rs{&msg};
        CURL* c = easy.get();
        curl_easy_setopt(c, CURLOPT_URL, cfg_.url.c_str());
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, cfg_.from.c_str());
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
        curl_easy_setopt(c, CURLOPT_READFUNCTION, feed);
        curl_easy_setopt(c, CURLOPT_READDATA, &rs);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms_);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms_);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (cfg_.starttls) curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
        if (!cfg_.username.empty()) {
            curl_easy_setopt(c, CURLOPT_USERNAME, cfg_.username.c_str());
            curl_easy_setopt(c, CURLOPT_PASSWORD, cfg_.password.c_str());
        }
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        SendResult r;
        r.http_status = status;
        r.answer = "SMTP " + std::to_string(status);
        r.ok = rc == CURLE_OK;
        if (!r.ok)
            r.error = std::string(curl_easy_strerror(rc)) + (status ? " (SMTP " + std::to_string(status) + ")" : "");
        return r;
    }

    SinkConfig cfg_;
    long timeout_ms_;
    std::function<int64_t()> now_ms_;
};

}  // namespace

std::unique_ptr<Sink> make_sink(const SinkConfig& s, double timeout_seconds, std::function<int64_t()> now_ms) {
    return std::make_unique<CurlSink>(s, timeout_seconds, std::move(now_ms));
}

}  // namespace pf
