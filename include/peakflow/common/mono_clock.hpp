#pragma once
// Milliseconds on the monotonic clock: what durations (retries, rotations, refreshes) are
// timed with, so that a wall clock stepped back stalls none of them. Wall times stay for
// timestamps (records, file names, the history).

#include <chrono>
#include <cstdint>

namespace pf {

inline int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace pf
