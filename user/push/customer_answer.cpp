#include "peakflow/push/customer_answer.hpp"

#include <nlohmann/json.hpp>

namespace pf {

namespace {

using Json = nlohmann::json;

std::string held_record_problem(const Json& rec) {
    if (!rec.is_object()) return "not an object";
    for (const char* k : {"mac", "flux_hour"})
        if (rec.contains(k) && !rec[k].is_string()) return std::string("field '") + k + "' is not a string";
    if (rec.contains("version")) {
        const Json& v = rec["version"];
        // An unsigned above INT64_MAX would read as negative: checked as unsigned first.
        const bool ok = v.is_number_unsigned()  ? v.get<uint64_t>() <= static_cast<uint64_t>(kMaxHeldVersion)
                        : v.is_number_integer() ? v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxHeldVersion
                                                : false;
        if (!ok) return "field 'version' is not an integer between 0 and " + std::to_string(kMaxHeldVersion);
    }
    for (int i = 0; i < 12; i++) {
        const std::string k = "v" + std::to_string(i);
        if (rec.contains(k) && !rec[k].is_number_integer()) return "field '" + k + "' is not an integer";
    }
    return "";
}

}  // namespace

Result<std::map<std::string, HeldRecord>> parse_held_answer(std::string_view body, const std::string& mac) {
    if (body.size() > kQueryAnswerCap) return Error("answer larger than " + std::to_string(kQueryAnswerCap) + " bytes");
    // nlohmann's parser ends the input at a NUL byte, which JSON text never holds: what
    // follows one would be ignored (found by the fuzz target: "[...]\0junk" was taken).
    if (body.find('\0') != std::string_view::npos) return Error("not JSON");
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded()) return Error("not JSON");
    if (j.is_object() && j.contains("data")) j = Json(std::move(j["data"]));
    if (!j.is_array()) return Error("expected a JSON array or {\"data\": [...]}");
    std::map<std::string, HeldRecord> out;
    for (size_t i = 0; i < j.size(); i++) {
        const Json& rec = j[i];
        if (std::string why = held_record_problem(rec); !why.empty())
            return Error("record " + std::to_string(i) + ": " + why);
        if (!rec.contains("mac") || rec["mac"].get<std::string>() != mac || !rec.contains("flux_hour")) continue;
        HeldRecord h;
        h.version = rec.contains("version") ? static_cast<int>(rec["version"].get<int64_t>()) : 0;
        for (size_t p = 0; p < 12; p++) {
            const std::string k = "v" + std::to_string(p);
            if (!rec.contains(k)) {
                h.shown[p] = "none";
                continue;
            }
            h.shown[p] = rec[k].dump();
            if (rec[k].is_number_unsigned()) h.points[p] = rec[k].get<uint64_t>();
        }
        // Several versions held: the highest counts (the first of equal ones).
        auto [it, fresh] = out.try_emplace(rec["flux_hour"].get<std::string>(), h);
        if (!fresh && h.version > it->second.version) it->second = std::move(h);
    }
    return out;
}

}  // namespace pf
