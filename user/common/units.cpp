#include "peakflow/common/units.hpp"

#include <cstdio>

namespace pf {

std::string human_bytes(uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1023.995 && u < 6) {  // choose the unit after rounding to 2 decimals
        v /= 1024.0;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
    return buf;
}

std::string human_rate(double bps) {
    static const char* units[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
    int u = 0;
    while (bps >= (u == 0 ? 999.5 : 999.95) && u < 4) {  // after rounding, as printed
        bps /= 1000.0;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bps, units[u]);
    return buf;
}

}  // namespace pf
