#pragma once
// Human-readable figures: bytes in IEC units (KiB = 1024 B), rates in bit/s (SI), as
// network people read them.

#include <cstdint>
#include <string>

namespace pf {

std::string human_bytes(uint64_t bytes);         // "1.50 MiB", "512 B"
std::string human_rate(double bits_per_second);  // "12.3 Mbit/s"

}  // namespace pf
