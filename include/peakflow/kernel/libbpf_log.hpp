#pragma once

#include <cstddef>
#include <string>

namespace pf {

void clear_libbpf_log();
// The last lines libbpf printed (the verifier log, when a load failed).
std::string libbpf_log_tail(size_t max_lines = 25);

}  // namespace pf
