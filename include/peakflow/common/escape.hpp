#pragma once
// Text that other people choose (a process name or command line, a service's answer, a
// file name on a server) on its way into a message or onto a terminal: each target gets
// its own escaping, so the text shows as what it is and never acts as markup, a header
// line or a terminal command.
//
//   visible_controls  control characters (C0, DEL, C1), invalid UTF-8 bytes, line and
//                     paragraph separators and bidi overrides as C-style escapes: one line,
//                     the exact bytes still readable. For terminals (`history`, `push --test`).
//   md_text           visible_controls, then every markdown-significant character with a
//                     backslash (CommonMark): literal text inside a markdown message.
//   md_code           visible_controls inside a CommonMark code span whose fence is longer
//                     than any backtick run in the text.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace pf {

namespace escape_detail {

inline std::string hex_byte(unsigned char c) {
    char b[8];
    std::snprintf(b, sizeof b, "\\x%02x", c);
    return b;
}

inline std::string hex_code_point(uint32_t cp) {
    char b[12];
    std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(cp));
    return b;
}

// The length of the valid UTF-8 sequence at s[i] (its code point in cp), 0 when invalid.
inline size_t utf8_at(std::string_view s, size_t i, uint32_t& cp) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t min;
    if (c < 0x80) {
        cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; k++) {
        const auto d = static_cast<unsigned char>(s[i + k]);
        if ((d & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// Code points that move the cursor, change what follows or reorder text on display.
inline bool invisible_control(uint32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace escape_detail

inline std::string visible_controls(std::string_view s) {
    using namespace escape_detail;
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        const size_t n = utf8_at(s, i, cp);
        if (n == 0) {
            out += hex_byte(static_cast<unsigned char>(s[i]));
            i++;
            continue;
        }
        if (!invisible_control(cp)) {
            out.append(s.substr(i, n));
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp < 0x80) {
            out += hex_byte(static_cast<unsigned char>(cp));
        } else {
            out += hex_code_point(cp);
        }
        i += n;
    }
    return out;
}

inline std::string md_text(std::string_view s) {
    // Inline markup: emphasis, code, links and images, HTML, entities, strikethrough,
    // tables. Block markers (#, -, 1.) need no escape: the value never starts a line, as
    // visible_controls leaves no line break in it.
    static constexpr std::string_view kSpecial = "\\`*_[]<>&~|";
    std::string out;
    for (char c : visible_controls(s)) {
        if (kSpecial.find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
    return out;
}

inline std::string md_code(std::string_view s) {
    const std::string v = visible_controls(s);
    size_t longest = 0, run = 0;
    for (char c : v) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    const std::string fence(longest + 1, '`');
    // A space on both sides (stripped by CommonMark) when the text starts or ends with a
    // backtick, or is all spaces.
    const bool pad =
        !v.empty() && (v.front() == '`' || v.back() == '`' || v.find_first_not_of(' ') == std::string::npos);
    return fence + (pad ? " " : "") + v + (pad ? " " : "") + fence;
}

}  // namespace pf
