// The maps' keys apart from the map readers: MAC address text (what the config, the
// history and the reports write and read) and the flow key's hash and equality, so that
// the config loader and the export state file link without libbpf (their fuzz targets).
#include <cctype>
#include <cstdio>
#include <cstring>

#include "peakflow/hash_kern_user.h"
#include "peakflow/kernel/maps.hpp"

namespace pf {

std::string format_mac(const MacAddr& m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

std::optional<MacAddr> parse_mac(const std::string& s) {
    MacAddr m{};
    if (s.size() != 17) return std::nullopt;
    for (size_t i = 0; i < 6; i++) {
        if (i > 0 && s[i * 3 - 1] != ':' && s[i * 3 - 1] != '-') return std::nullopt;
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = s[i * 3 + j];
            int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                    : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                                : -1;
            if (d < 0) return std::nullopt;
            v = v * 16 + static_cast<unsigned>(d);
        }
        m[i] = static_cast<uint8_t>(v);
    }
    return m;
}

size_t FlowKeyHash::operator()(const pf_flow_key& k) const noexcept {
    __u64 w[PF_FLOW_KEY_WORDS];
    std::memcpy(w, &k, sizeof w);
    return static_cast<size_t>(pf_hash_flow(w, 0));
}

bool FlowKeyEq::operator()(const pf_flow_key& a, const pf_flow_key& b) const noexcept {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace pf
