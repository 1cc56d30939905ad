#pragma once
// The customer's query API answer, as verification reads it (customer_report.cpp): the
// records it holds for a MAC, one per flux_hour. The answer is the customer's, not ours:
// every field verification reads is checked for its type and range here, so a wrong type
// or an absurd number refuses the whole answer (recorded as `error`) instead of throwing
// out of the service's thread or overflowing a version. Pure, so that its fuzz target
// (tests/fuzz/customer_answer_fuzz.cpp) links nothing else.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "peakflow/common/error.hpp"

namespace pf {

// The held records of a few MACs for some hours come far below this, unless the server is
// wrong; a longer answer is an error (the HTTP client stops reading there).
inline constexpr size_t kQueryAnswerCap = 8u << 20;
inline constexpr int64_t kMaxHeldVersion = 1000000;

struct HeldRecord {
    int version = 0;  // 0 when the record has none
    // v0..v11: the held value when it is a non-negative integer, else nullopt (none, or negative).
    std::array<std::optional<uint64_t>, 12> points;
    // v0..v11 as the answer wrote them ("none" when absent), for the mismatch detail.
    std::array<std::string, 12> shown;
};

// The answer's records of `mac` ("aa:bb:cc:dd:ee:ff"), by flux_hour ("YYYY-MM-DD HH"), the
// highest version of each. The answer is a JSON array of records or {"data": [...]}; a
// record is an object with string mac and flux_hour, an integer version in
// 0..kMaxHeldVersion and integer v0..v11, each optional. Anything else: an error naming the
// record and field.
Result<std::map<std::string, HeldRecord>> parse_held_answer(std::string_view body, const std::string& mac);

}  // namespace pf
