#pragma once
// A whole small text file (/proc, /sys, /boot/config-*); "" if it cannot be read.

#include <fstream>
#include <sstream>
#include <string>

namespace pf {

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return {};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace pf
