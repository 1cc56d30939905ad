// libFuzzer target: the collector's report parser (what any holder of a token, or anyone
// who can reach the port before authentication is checked, can send), and the gzip
// decompression in front of it. Neither may crash, hang, or allocate without bound; a
// report that parses must render back into one that parses to the same content.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "peakflow/fleet/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    const int64_t now = 1796000000;
    auto r = pf::parse_report(in, now);
    if (r) {
        // Round trip: what we render from a parsed report parses again, the same.
        std::string again = pf::render_report(*r);
        auto r2 = pf::parse_report(again, now);
        if (!r2 || pf::render_report(*r2) != again) abort();
    }
    auto z = pf::gzip_decompress(in, 1u << 20);
    if (z && z->size() > (1u << 20)) abort();
    (void)pf::parse_ack(in);
    return 0;
}
