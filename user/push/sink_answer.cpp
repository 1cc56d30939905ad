// The sinks' pure text parts: cutting text to a service's limit, and judging a service's
// answer. Apart from the senders, so that the answer's fuzz target
// (tests/fuzz/sink_answer_fuzz.cpp) links without libcurl and OpenSSL.
#include <nlohmann/json.hpp>

#include "peakflow/push/sinks.hpp"

namespace pf {

// Largest prefix length <= n that does not split a UTF-8 character.
size_t utf8_floor(const std::string& s, size_t n) {
    if (n >= s.size()) return s.size();
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return n;
}

std::string cut_text(const std::string& text, size_t limit) {
    if (text.size() <= limit) return text;
    // The note's length depends on the number it carries; two rounds settle it.
    size_t keep = limit;
    std::string note;
    for (int i = 0; i < 3; ++i) {
        note = "\n… (cut: " + std::to_string(text.size() - keep) + " bytes omitted)";
        keep = note.size() > limit ? 0 : utf8_floor(text, limit - note.size());
    }
    note = "\n… (cut: " + std::to_string(text.size() - keep) + " bytes omitted)";
    return text.substr(0, keep) + note;
}

std::string cut_chars(const std::string& text, size_t limit) {
    size_t chars = 0, i = 0;
    while (i < text.size()) {
        if (chars == limit) return text.substr(0, i);
        unsigned char c = static_cast<unsigned char>(text[i]);
        i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        ++chars;
    }
    return text;
}

SendResult judge_answer(const SinkConfig& s, long status, const std::string& body) {
    SendResult r;
    r.http_status = status;
    r.answer = body;
    if (status < 200 || status > 299) {
        r.error = "HTTP " + std::to_string(status) + (body.empty() ? "" : ": " + cut_text(body, 200));
        return r;
    }
    if (s.type == "webhook" || s.type == "http") {
        r.ok = true;
        return r;
    }
    // A NUL byte ends nlohmann's input: "{...}\0junk" is not a JSON answer either.
    auto j = body.find('\0') == std::string::npos ? nlohmann::json::parse(body, nullptr, false)
                                                  : nlohmann::json(nlohmann::json::value_t::discarded);
    if (j.is_discarded() || !j.is_object()) {
        r.error = "answer is not a JSON object: " + cut_text(body, 200);
        return r;
    }
    if (s.type == "collector") {
        auto st = j.find("status");
        r.ok = st != j.end() && st->is_string() && *st == "ok";
        if (!r.ok) r.error = "answer has no \"status\":\"ok\": " + cut_text(body, 200);
        return r;
    }
    const char* code_key = s.type == "dingtalk" || s.type == "wecom" ? "errcode" : "code";
    const char* msg_key = s.type == "dingtalk" || s.type == "wecom" ? "errmsg" : s.type == "feishu" ? "msg" : "message";
    auto code = j.find(code_key);
    if (code == j.end() && s.type == "feishu") code = j.find("StatusCode");  // older Feishu answers
    if (code == j.end() || !code->is_number_integer()) {
        r.error = std::string("answer has no ") + code_key + ": " + cut_text(body, 200);
        return r;
    }
    if (code->get<int64_t>() != 0) {
        // Cut as the body is: the error goes to the history and the log.
        std::string msg =
            j.contains(msg_key) && j[msg_key].is_string() ? cut_text(j[msg_key].get<std::string>(), 200) : "";
        r.error = std::string(code_key) + " " + std::to_string(code->get<int64_t>()) + (msg.empty() ? "" : ": " + msg);
        return r;
    }
    r.ok = true;
    return r;
}

}  // namespace pf
