// libFuzzer target: the export state file (/run/peakflow/...: what a crash, a full disk or
// another version may leave). Reading it may not crash, throw, hang or allocate by what
// the file claims; a file it takes writes back (render_flow_state) as text that reads to
// the same state.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "peakflow/export/flow_export.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    auto st = pf::parse_flow_state_text(in, "state");
    if (!st) {
        if (st.error().message().empty() || st.error().message().size() > 400) abort();
        return 0;
    }
    const std::string text = pf::render_flow_state(*st);
    auto again = pf::parse_flow_state_text(text, "state");
    if (!again || again->boot_id != st->boot_id || again->ifaces.size() != st->ifaces.size()) abort();
    for (size_t i = 0; i < st->ifaces.size(); i++) {
        const auto &a = st->ifaces[i], &b = again->ifaces[i];
        if (a.name != b.name || a.flow_map_id != b.flow_map_id || !(a.flows == b.flows)) abort();
    }
    if (pf::render_flow_state(*again) != text) abort();
    return 0;
}
