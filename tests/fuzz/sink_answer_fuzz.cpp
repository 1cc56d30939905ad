// libFuzzer target: how a sink judges its service's answer (judge_answer: the HTTP status
// and body DingTalk, WeCom, Feishu, ServerChan, a webhook, an http sink or the collector
// sent back). Anything may answer at a sink's URL. It may not crash, throw or hang; a
// message counts as delivered only on 2xx and the service's own success code; a refusal
// says why in a bounded line (it goes to the history and the log); the answer is kept as
// it came.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "peakflow/push/sinks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* const types[] = {"dingtalk", "wecom", "feishu", "serverchan", "webhook", "http", "collector"};
    if (size < 2) return 0;
    pf::SinkConfig s;
    s.type = types[data[0] % 7];
    // The status: 200 in half the inputs, else one from around the edges of 2xx.
    static const long others[] = {0, 100, 199, 201, 204, 299, 300, 302, 400, 401, 403, 404, 429, 500, 502, 600};
    const long status = data[1] < 128 ? 200 : others[data[1] % 16];
    const std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);
    const pf::SendResult r = pf::judge_answer(s, status, body);
    if (r.http_status != status || r.answer != body) abort();
    if (r.ok != r.error.empty()) abort();
    if (r.error.size() > 512) abort();
    if (!r.ok) return 0;
    if (status < 200 || status > 299) abort();
    if (s.type == "webhook" || s.type == "http") return 0;
    // Delivered by a chat service or the collector: its JSON object said so.
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object()) abort();
    if (s.type == "collector") {
        if (j.value("status", nlohmann::json()) != "ok") abort();
        return 0;
    }
    const char* key = s.type == "dingtalk" || s.type == "wecom" ? "errcode" : "code";
    nlohmann::json code = j.contains(key)                                  ? j[key]
                          : s.type == "feishu" && j.contains("StatusCode") ? j["StatusCode"]
                                                                           : nlohmann::json();
    if (!code.is_number_integer() || code.get<int64_t>() != 0) abort();
    return 0;
}
