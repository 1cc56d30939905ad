// libFuzzer target: the customer query API's answer as the customer report's verification
// reads it (anything the customer's server, or whoever answers in its place, sends). It may
// not crash, throw or hang; what it takes has versions in range and v0..v11 shown as the
// answer wrote them; the same records wrapped in {"data": ...} read the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "peakflow/push/customer_answer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    const std::string mac = "02:00:00:00:00:01";
    auto held = pf::parse_held_answer(in, mac);
    if (!held) {
        if (held.error().message().empty()) abort();
        return 0;
    }
    for (const auto& [hour, rec] : *held) {
        if (rec.version < 0 || rec.version > pf::kMaxHeldVersion) abort();
        for (size_t i = 0; i < 12; i++) {
            if (rec.shown[i].empty()) abort();
            if (rec.points[i] && rec.shown[i] != std::to_string(*rec.points[i])) abort();
        }
    }
    // An array read bare or as {"data": [...]}: the same records.
    if (in.find_first_not_of(" \t\r\n") != std::string::npos && in[in.find_first_not_of(" \t\r\n")] == '[') {
        auto wrapped = pf::parse_held_answer("{\"data\":" + in + "}", mac);
        if (!wrapped || wrapped->size() != held->size()) abort();
        for (auto a = held->begin(), b = wrapped->begin(); a != held->end(); ++a, ++b)
            if (a->first != b->first || a->second.version != b->second.version || a->second.shown != b->second.shown)
                abort();
    }
    return 0;
}
