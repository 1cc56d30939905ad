// The xdp_mode names. Apart from the loader, so that the config loader links without
// libbpf (the fuzz target).
#include "peakflow/kernel/loader.hpp"

namespace pf {

const char* to_string(XdpMode m) {
    switch (m) {
        case XdpMode::Auto: return "auto";
        case XdpMode::Native: return "native";
        case XdpMode::Generic: return "generic";
        case XdpMode::Off: return "off";
    }
    return "?";
}

Result<XdpMode> parse_xdp_mode(const std::string& s) {
    if (s == "auto") return XdpMode::Auto;
    if (s == "native") return XdpMode::Native;
    if (s == "generic") return XdpMode::Generic;
    if (s == "off") return XdpMode::Off;
    return Error{"invalid XDP mode '" + s + "'", "", 0, "expected auto, native, generic or off"};
}

}  // namespace pf
